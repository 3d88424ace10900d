package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// smtpServer is the demo's mail server: it listens on 127.0.0.1 and speaks
// just enough SMTP (RFC 5321) for a STARTTLS probe: greeting, EHLO
// offering STARTTLS (RFC 3207), STARTTLS, QUIT. After the handshake it
// presents the certificate set for the server name the client sent (SNI).
type smtpServer struct {
	ln  net.Listener
	cfg *tls.Config
	wg  sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// startSMTPServer starts an smtpServer on a random port of 127.0.0.1 that
// presents certs[name] to a client asking for name. The caller must close
// it.
func startSMTPServer(certs map[string]tls.Certificate) (*smtpServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &smtpServer{ln: ln, conns: map[net.Conn]struct{}{}}
	s.cfg = &tls.Config{GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if c, ok := certs[hello.ServerName]; ok {
			return &c, nil
		}
		return nil, errors.New("no certificate for " + hello.ServerName)
	}}
	s.wg.Go(s.accept)
	return s, nil
}

// addr returns the address the server listens on, 127.0.0.1:port.
func (s *smtpServer) addr() string {
	return s.ln.Addr().String()
}

// close stops the server, ends its connections and waits for their
// goroutines. Calling it again does nothing.
func (s *smtpServer) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *smtpServer) accept() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return
		}
		s.conns[conn] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			s.serve(conn)
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
			conn.Close()
		})
	}
}

// maxLine bounds a command line: 512 octets with its CRLF (RFC 5321
// 4.5.3.1.4), with room to spare.
const maxLine = 1000

// serve speaks SMTP on one connection until QUIT, an error, or thirty
// seconds.
func (s *smtpServer) serve(conn net.Conn) {
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var c net.Conn = conn
	r := bufio.NewReaderSize(c, maxLine)
	io.WriteString(c, "220 localhost ESMTP mtasts demo\r\n")
	secure := false
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			io.WriteString(c, "500 line too long\r\n")
			return
		}
		if err != nil {
			return
		}
		verb, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(" "))
		switch string(bytes.ToUpper(verb)) {
		case "EHLO":
			if secure {
				io.WriteString(c, "250-localhost\r\n250 8BITMIME\r\n")
			} else {
				io.WriteString(c, "250-localhost\r\n250-8BITMIME\r\n250 STARTTLS\r\n")
			}
		case "HELO":
			io.WriteString(c, "250 localhost\r\n")
		case "STARTTLS":
			if secure {
				// RFC 3207 4.2: not again on a secure connection.
				io.WriteString(c, "503 already under TLS\r\n")
				continue
			}
			io.WriteString(c, "220 ready to start TLS\r\n")
			tc := tls.Server(conn, s.cfg)
			if tc.Handshake() != nil {
				return
			}
			// RFC 3207 4.2: forget what the client said before.
			c, r, secure = tc, bufio.NewReaderSize(tc, maxLine), true
		case "NOOP", "RSET":
			io.WriteString(c, "250 ok\r\n")
		case "QUIT":
			io.WriteString(c, "221 bye\r\n")
			return
		default:
			io.WriteString(c, "502 not implemented in the demo\r\n")
		}
	}
}
