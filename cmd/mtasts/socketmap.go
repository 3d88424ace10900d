package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The server side of Postfix's socketmap protocol (socketmap_table(5)): the
// client sends one request, "name <space> key", and the server one reply,
// each as a netstring ("LEN:DATA,", http://cr.yp.to/proto/netstrings.txt).
// Postfix keeps the connection open for further requests.
//
// Everything read is bounded: a request may be maxRequest bytes, a
// connection waits idleTimeout for a request and readTimeout for the rest of
// one, and the server holds at most maxConns connections. Input it cannot
// read as a request gets a PERM reply naming the fault, and the connection
// is closed, since the stream cannot be resynchronised; nothing a client
// sends makes the server panic or grow without bound.

const (
	// maxReply bounds a reply's data: socketmap_table(5), "The Postfix
	// socketmap client requires that replies are not longer than 100000
	// characters (not including the netstring encapsulation)".
	maxReply = 100000
	// maxRequest bounds a request's data. Postfix asks smtp_tls_policy_maps
	// for a next-hop domain or "[host]:port", a few hundred bytes at most
	// (a domain name is at most 253); a longer request is not one of
	// Postfix's, and is refused without being read.
	maxRequest = 4096
	// maxQuotedInput is how many bytes of a client's input an error quotes.
	maxQuotedInput = 64
)

// Socketmap reply statuses (socketmap_table(5), REPLY FORMAT).
const (
	statusOK       = "OK"       // the data was found
	statusNotFound = "NOTFOUND" // the data was not found
	statusTemp     = "TEMP"     // the request failed; try again later
	statusTimeout  = "TIMEOUT"  // the request failed: a timeout
	statusPerm     = "PERM"     // the request failed for good
)

// errNetstringTooLong is the error of a netstring whose length exceeds the
// reader's limit; its data was not read.
var errNetstringTooLong = errors.New("netstring too long")

// netstringError is input that is not a netstring.
type netstringError struct{ msg string }

func (e *netstringError) Error() string { return "malformed netstring: " + e.msg }

// quoteInput returns b for an error message: Go-quoted in printable ASCII, at
// most maxQuotedInput bytes of it, cut at a character boundary, followed by
// "...(N bytes)" when longer.
func quoteInput(b []byte) string {
	if len(b) <= maxQuotedInput {
		return strconv.QuoteToASCII(string(b))
	}
	cut := maxQuotedInput
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(b[cut]); i++ {
		cut--
	}
	return strconv.QuoteToASCII(string(b[:cut])) + fmt.Sprintf("...(%d bytes)", len(b))
}

// readNetstring reads one netstring from r and returns its data, in buf
// when it has room. The data may be at most max bytes; a longer netstring
// is errNetstringTooLong, reported once its length is read, before its data.
// It returns io.EOF when r ends before the netstring's first byte,
// io.ErrUnexpectedEOF when r ends within it, and a *netstringError for input
// that is not a netstring.
func readNetstring(r *bufio.Reader, buf []byte, max int) ([]byte, error) {
	// The length: a nonempty sequence of ASCII digits without leading
	// zeros ("Leading zeros in [len] are prohibited"), then ':'.
	n := 0
	digits := 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF && digits > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if c == ':' && digits > 0 {
			break
		}
		if c < '0' || c > '9' {
			if digits == 0 {
				return nil, &netstringError{fmt.Sprintf("expected a digit at the start of the length, got %s", quoteInput([]byte{c}))}
			}
			return nil, &netstringError{fmt.Sprintf("expected a digit or ':' after length %d, got %s", n, quoteInput([]byte{c}))}
		}
		if digits == 1 && n == 0 {
			return nil, &netstringError{"leading zero in the length"}
		}
		n = n*10 + int(c-'0')
		digits++
		if n > max {
			return nil, fmt.Errorf("%w: length %d and counting, over the limit of %d bytes", errNetstringTooLong, n, max)
		}
	}
	if cap(buf) >= n {
		buf = buf[:n]
	} else {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	c, err := r.ReadByte()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if c != ',' {
		return nil, &netstringError{fmt.Sprintf("expected ',' after %d bytes of data, got %s", n, quoteInput([]byte{c}))}
	}
	return buf, nil
}

// parseRequest splits a socketmap request, "name <space> key", at its first
// space (socketmap_table(5), REQUEST FORMAT). The name must not be empty;
// the key may be, and may hold further spaces. The name is a part of data.
func parseRequest(data []byte) (name []byte, key string, err error) {
	for i, c := range data {
		if c == ' ' {
			if i == 0 {
				return nil, "", errors.New("malformed request: empty map name before the space")
			}
			return data[:i], string(data[i+1:]), nil
		}
	}
	return nil, "", fmt.Errorf("malformed request: no space between map name and key in %s", quoteInput(data))
}

// smHandler answers one request: it appends the reply's data (OK) or reason
// (TEMP, TIMEOUT, PERM) to dst and returns the status with the extended
// slice; NOTFOUND has none. name is only valid during the call. ctx ends
// when the server is stopped without waiting. Appending to a buffer the
// connection reuses keeps a cached answer free of allocations.
type smHandler func(ctx context.Context, name []byte, key string, dst []byte) (status string, data []byte)

// smServer serves the socketmap protocol on any number of listeners.
type smServer struct {
	handler smHandler
	// maxConns bounds the connections held at once. A connection beyond
	// it closes the one that has been idle longest; when none is idle,
	// the new connection is closed at once.
	maxConns int
	// idleTimeout is how long a connection may wait for a request.
	// readTimeout is how long the rest of a request may take once its
	// first byte came, and writeTimeout how long a reply may take.
	idleTimeout, readTimeout, writeTimeout time.Duration
	logger                                 *slog.Logger
	metrics                                *smMetrics // may be nil

	ctx    context.Context // of handlers; ends at a hard stop
	cancel context.CancelFunc

	mu        sync.Mutex
	conns     map[*smConn]struct{}
	listeners map[net.Listener]struct{}
	draining  bool
	wg        sync.WaitGroup // connection goroutines
}

// smConn is one client connection.
type smConn struct {
	conn net.Conn
	// Under smServer.mu:
	busy     bool      // a request is being read or answered
	idleFrom time.Time // when it last became idle
	closed   bool      // closed by the server: evicted or drained
}

func newSMServer(handler smHandler, logger *slog.Logger) *smServer {
	ctx, cancel := context.WithCancel(context.Background())
	return &smServer{
		handler:      handler,
		maxConns:     1000,
		idleTimeout:  2 * time.Minute,
		readTimeout:  10 * time.Second,
		writeTimeout: 10 * time.Second,
		logger:       logger,
		ctx:          ctx,
		cancel:       cancel,
		conns:        map[*smConn]struct{}{},
		listeners:    map[net.Listener]struct{}{},
	}
}

// serve accepts connections on ln until it is closed; it returns nil once
// drain or stop closed it, else the error of Accept.
func (s *smServer) serve(ln net.Listener) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			draining := s.draining
			s.mu.Unlock()
			if draining {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors, say: wait a little and go on,
			// as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logger.Warn("accepting a connection", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.admit(conn)
	}
}

// admit starts serving conn, making room under maxConns first.
func (s *smServer) admit(conn net.Conn) {
	c := &smConn{conn: conn, idleFrom: time.Now()}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		conn.Close()
		return
	}
	if len(s.conns) >= s.maxConns {
		var oldest *smConn
		for o := range s.conns {
			if !o.busy && !o.closed && (oldest == nil || o.idleFrom.Before(oldest.idleFrom)) {
				oldest = o
			}
		}
		if oldest == nil {
			s.mu.Unlock()
			s.metrics.dropped("limit")
			s.logger.Warn("connection limit reached with every connection busy; closing the new one", "remote", conn.RemoteAddr().String(), "max_connections", s.maxConns)
			conn.Close()
			return
		}
		// Closing makes its goroutine end and remove it; it no
		// longer counts from now on.
		oldest.closed = true
		oldest.conn.Close()
		delete(s.conns, oldest)
		s.metrics.dropped("evicted")
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.metrics.connOpened()
	go s.serveConn(c)
}

// setBusy marks c busy or idle; it reports false when c is to be closed
// instead: evicted, or idle while the server drains.
func (s *smServer) setBusy(c *smConn, busy bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.closed || (s.draining && !busy) {
		return false
	}
	c.busy = busy
	if !busy {
		c.idleFrom = time.Now()
	}
	return true
}

// serveConn answers c's requests until it closes, fails, or times out.
func (s *smServer) serveConn(c *smConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		c.closed = true
		delete(s.conns, c)
		s.mu.Unlock()
		c.conn.Close()
		s.metrics.connClosed()
	}()
	r := bufio.NewReaderSize(c.conn, 512)
	var buf, reply, out []byte
	for {
		c.conn.SetReadDeadline(time.Now().Add(s.idleTimeout))
		if _, err := r.Peek(1); err != nil {
			if isTimeout(err) {
				s.metrics.dropped("idle")
			}
			return
		}
		if !s.setBusy(c, true) {
			return
		}
		c.conn.SetReadDeadline(time.Now().Add(s.readTimeout))
		data, err := readNetstring(r, buf[:0], maxRequest)
		var status string
		switch {
		case err == nil:
			buf = data
			if s.metrics == nil {
				status, reply = s.answer(data, reply[:0])
				break
			}
			start := time.Now()
			status, reply = s.answer(data, reply[:0])
			s.metrics.answered(status, time.Since(start))
		case malformed(err):
			// The stream cannot be resynchronised: say why, then close.
			s.metrics.dropped("malformed")
			s.logger.Info("closing a connection after a bad request", "remote", c.conn.RemoteAddr().String(), "err", err)
			status, reply = statusPerm, append(reply[:0], err.Error()...)
		default:
			if isTimeout(err) {
				s.metrics.dropped("read_timeout")
			}
			return // EOF within a request, a timeout, a reset: nobody to answer
		}
		out = appendReply(out[:0], status, reply)
		c.conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
		if _, werr := c.conn.Write(out); werr != nil {
			return
		}
		if err != nil {
			lingerClose(c.conn)
			return
		}
		if cap(out) > 4096 {
			// Keep no large reply's buffers while idle.
			out, reply = nil, nil
		}
		if !s.setBusy(c, false) {
			return
		}
	}
}

// answer parses a request and asks the handler, which appends the reply's
// data to dst; it bounds the reply.
func (s *smServer) answer(data, dst []byte) (string, []byte) {
	name, key, err := parseRequest(data)
	if err != nil {
		return statusPerm, append(dst, err.Error()...)
	}
	status, reply := s.handler(s.ctx, name, key, dst)
	if len(status)+1+len(reply) > maxReply {
		s.logger.Error("reply over the socketmap limit; answering TEMP", "map", string(name), "key", key, "bytes", len(reply))
		return statusTemp, fmt.Appendf(reply[:0], "reply of %d bytes over the socketmap limit of %d", len(reply), maxReply)
	}
	return status, reply
}

// appendReply appends the reply "status data" to b as a netstring.
func appendReply(b []byte, status string, data []byte) []byte {
	b = strconv.AppendInt(b, int64(len(status)+1+len(data)), 10)
	b = append(b, ':')
	b = append(b, status...)
	b = append(b, ' ')
	b = append(b, data...)
	return append(b, ',')
}

// lingerClose ends a connection whose client may still be sending: it
// closes the sending side, then reads and discards what comes for a moment,
// so that the reply just written is not lost to a reset, as closing with
// unread input would send.
func lingerClose(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	io.CopyN(io.Discard, conn, 256<<10)
}

// malformed reports whether err is of input that is not a request, after
// which the stream cannot be read on.
func malformed(err error) bool {
	var nerr *netstringError
	return errors.Is(err, errNetstringTooLong) || errors.As(err, &nerr)
}

// isTimeout reports whether err is a deadline that passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// drain stops accepting connections, closes the idle ones, lets those
// answering a request finish it and then closes them, and waits until all
// are closed or ctx ends; then it closes the rest and ends the handlers'
// context, and returns ctx's error.
func (s *smServer) drain(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		if !c.busy {
			c.closed = true
			c.conn.Close()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.closed = true
		c.conn.Close()
	}
	s.mu.Unlock()
	s.cancel()
	<-done
	return ctx.Err()
}

// connections returns the number of connections held.
func (s *smServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
