package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts/internal/testkit"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// The servers these tests run on loopback: a DNS server answering from a
// map, an HTTPS server for policies, an SMTP server with STARTTLS, and the
// CA that signs their certificates.

// zone is what the test DNS server knows about one name.
type zone struct {
	txt      [][]string // each record's strings
	mx       []mxRecord
	a        []netip.Addr // IPv4 for A queries, IPv6 for AAAA
	servfail bool
}

type mxRecord struct {
	pref uint16
	host string
}

// dnsServer is the test kit's DNS server on loopback, loaded with zones.
type dnsServer struct {
	addr string
}

// startDNS starts a DNS server answering from zones (by name, with the
// trailing dot), until the test ends. Names not in zones are NXDOMAIN.
func startDNS(t *testing.T, zones map[string]zone) *dnsServer {
	t.Helper()
	s := testkit.DNSServer(t)
	for name, z := range zones {
		r := mtaststest.DNSRecords{TXT: z.txt, Addrs: z.a, ServFail: z.servfail}
		for _, mx := range z.mx {
			r.MX = append(r.MX, &net.MX{Host: mx.host, Pref: mx.pref})
		}
		s.Set(name, r)
	}
	return &dnsServer{addr: s.Addr()}
}

// testCA issues the certificates of the test servers, from the test kit's
// in-memory CA.
type testCA struct {
	kit     *mtaststest.PolicyServer
	pemFile string // the CA certificate, for --ca
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	kit := testkit.PolicyServer(t)
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, kit.CACertificatePEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return &testCA{kit, file}
}

// issue returns a certificate for names valid until notAfter.
func (ca *testCA) issue(t *testing.T, notAfter time.Time, names ...string) tls.Certificate {
	t.Helper()
	notBefore := time.Now().Add(-time.Hour)
	if notAfter.Before(notBefore) {
		notBefore = notAfter.Add(-48 * time.Hour)
	}
	cert, err := ca.kit.IssueCertificate(notBefore, notAfter, names...)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// certsBySNI picks a certificate by the name the client asked for.
func certsBySNI(certs map[string]tls.Certificate) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if c, ok := certs[hello.ServerName]; ok {
			return &c, nil
		}
		return nil, errors.New("no certificate for " + hello.ServerName)
	}
}

// startHTTPS starts an HTTPS server on loopback presenting certs by SNI,
// with handler; it returns its port.
func startHTTPS(t *testing.T, certs, more map[string]tls.Certificate, handler http.Handler) string {
	t.Helper()
	certs = maps.Clone(certs)
	maps.Copy(certs, more)
	srv := httptest.NewUnstartedServer(handler)
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are part of the tests
	srv.TLS = &tls.Config{GetCertificate: certsBySNI(certs)}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return port
}

// startSMTP starts an SMTP server on loopback that offers STARTTLS (unless
// noTLS) with certificates picked by SNI; it returns its port.
func startSMTP(t *testing.T, certs map[string]tls.Certificate, noTLS bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{GetCertificate: certsBySNI(certs)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serveSMTP(conn, cfg, noTLS) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// serveSMTP speaks just enough SMTP (RFC 5321, RFC 3207) for a STARTTLS
// probe: greeting, EHLO, STARTTLS, QUIT.
func serveSMTP(conn net.Conn, cfg *tls.Config, noTLS bool) {
	defer func() { conn.Close() }()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	io.WriteString(conn, "220 mx.test ESMTP\r\n")
	secure := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.Fields(line + " x")[0])
		switch cmd {
		case "EHLO", "HELO":
			if noTLS || secure {
				io.WriteString(conn, "250-mx.test\r\n250 8BITMIME\r\n")
			} else {
				io.WriteString(conn, "250-mx.test\r\n250-8BITMIME\r\n250 STARTTLS\r\n")
			}
		case "STARTTLS":
			if noTLS || secure {
				io.WriteString(conn, "502 not here\r\n")
				continue
			}
			io.WriteString(conn, "220 go ahead\r\n")
			tconn := tls.Server(conn, cfg)
			if tconn.Handshake() != nil {
				return
			}
			conn, r, secure = tconn, bufio.NewReader(tconn), true
		case "QUIT":
			io.WriteString(conn, "221 bye\r\n")
			return
		default:
			io.WriteString(conn, "500 unknown\r\n")
		}
	}
}
