package mtasts_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/mtasts-go/mtasts"
)

// ownCA is a CA of the test's own, for certificates the test kit does not
// issue: one without a DNS name, one for client authentication only. Unless
// added to the roots, it is a CA nobody trusts.
type ownCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newOwnCA(t *testing.T) *ownCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "own test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &ownCA{cert, key, pool}
}

// issue returns a leaf certificate made from tmpl, which needs no serial,
// validity or key usage unless it wants other ones than the defaults.
func (ca *ownCA) issue(t *testing.T, tmpl x509.Certificate) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(2)
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if tmpl.ExtKeyUsage == nil {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// startTLSServer starts an HTTPS server on loopback with cfg, from
// httptest, and returns its address and a function giving the server name
// the last client asked for.
func startTLSServer(t *testing.T, cfg *tls.Config) (addr string, sni func() string) {
	t.Helper()
	var (
		mu   sync.Mutex
		last string
	)
	cfg = cfg.Clone()
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		last = hello.ServerName
		mu.Unlock()
		return nil, nil
	}
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are the point
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), func() string {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// handshake connects to addr and makes a TLS handshake as a sending MTA
// does with MX host mx, under MXTLSConfig.
func handshake(t *testing.T, addr string, mx mtasts.Domain, roots *x509.CertPool) (tls.ConnectionState, error) {
	t.Helper()
	d := tls.Dialer{Config: mtasts.MXTLSConfig(mx, roots)}
	conn, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState(), nil
}

// TestMXTLSConfig checks the certificate validation of RFC 8461 4.2 against
// real TLS servers presenting crafted certificates: PKIX validation to the
// given roots, the MX host name checked against the DNS-IDs (RFC 6125, a
// wildcard only as the whole left-most label, for one label), no expired
// certificate. Each failure gets its RFC 8460 4.3 result type and reason.
func TestMXTLSConfig(t *testing.T) {
	ca := newTestCA(t)
	own := newOwnCA(t)
	now := time.Now()
	valid := func(names ...string) tls.Certificate {
		return ca.issue(t, now.Add(-time.Hour), now.Add(time.Hour), names...)
	}
	for _, tc := range []struct {
		name   string
		mx     string
		cert   tls.Certificate
		roots  *x509.CertPool    // ca.pool when nil
		result mtasts.ResultType // "" for success
		reason string
	}{
		{"exact name", "mail.example.com", valid("mail.example.com"), nil, "", ""},
		{"second name", "mail.example.com", valid("other.example.net", "mail.example.com"), nil, "", ""},
		{"case differs", "MAIL.Example.com", valid("mail.example.COM"), nil, "", ""},
		{"idn", "mail.bücher.example", valid("mail.xn--bcher-kva.example"), nil, "", ""},
		// RFC 8461 4.1 and RFC 6125 6.4.3: "*" is the whole left-most
		// label and matches one label.
		{"wildcard", "mail.example.com", valid("*.example.com"), nil, "", ""},
		{"wildcard, two labels", "a.mail.example.com", valid("*.example.com"), nil, mtasts.ResultCertificateHostMismatch, "certificate-host-mismatch"},
		{"wildcard, no label", "example.com", valid("*.example.com"), nil, mtasts.ResultCertificateHostMismatch, "certificate-host-mismatch"},
		{"wildcard, part of a label", "mail.example.com", valid("m*.example.com"), nil, mtasts.ResultCertificateHostMismatch, "certificate-host-mismatch"},
		{"wildcard, not left-most", "mail.example.com", valid("mail.*.com"), nil, mtasts.ResultCertificateHostMismatch, "certificate-host-mismatch"},
		{"other name", "mail.example.com", valid("mail.example.net"), nil, mtasts.ResultCertificateHostMismatch, "certificate-host-mismatch"},
		// RFC 8461 4.2: "a subject alternative name (SAN) with a DNS-ID".
		{"common name only", "mail.example.com", own.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "mail.example.com"}}), own.pool, mtasts.ResultCertificateHostMismatch, "certificate-host-mismatch"},
		{"expired", "mail.example.com", ca.issue(t, now.Add(-48*time.Hour), now.Add(-time.Hour), "mail.example.com"), nil, mtasts.ResultCertificateExpired, "certificate-expired"},
		{"not yet valid", "mail.example.com", ca.issue(t, now.Add(time.Hour), now.Add(48*time.Hour), "mail.example.com"), nil, mtasts.ResultValidationFailure, "certificate-not-yet-valid"},
		{"unknown root", "mail.example.com", own.issue(t, x509.Certificate{DNSNames: []string{"mail.example.com"}}), nil, mtasts.ResultCertificateNotTrusted, "certificate-unknown-authority"},
		{"no roots", "mail.example.com", valid("mail.example.com"), x509.NewCertPool(), mtasts.ResultCertificateNotTrusted, "certificate-unknown-authority"},
		{"client certificate", "mail.example.com", own.issue(t, x509.Certificate{DNSNames: []string{"mail.example.com"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}), own.pool, mtasts.ResultValidationFailure, "certificate-incompatible-usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mx := mustDomain(t, tc.mx)
			roots := tc.roots
			if roots == nil {
				roots = ca.pool
			}
			addr, sni := startTLSServer(t, &tls.Config{Certificates: []tls.Certificate{tc.cert}})
			_, err := handshake(t, addr, mx, roots)
			if (err == nil) != (tc.result == "") {
				t.Fatalf("handshake: %v, want result %q", err, tc.result)
			}
			// RFC 8461 7.1: "the SNI extension MUST contain the MX
			// hostname", in A-labels.
			if got := sni(); got != mx.ASCII {
				t.Errorf("server name %q sent, want %q", got, mx.ASCII)
			}
			if got := mtasts.TLSReportResultType(err); got != tc.result {
				t.Errorf("TLSReportResultType(%v) = %q, want %q", err, got, tc.result)
			}
			if got := mtasts.TLSReportFailureReason(err); got != tc.reason {
				t.Errorf("TLSReportFailureReason(%v) = %q, want %q", err, got, tc.reason)
			}

			// An opportunistic client finishes the handshake and
			// checks after: the same outcome.
			conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: mx.ASCII, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
			if err != nil {
				t.Fatalf("handshake without verification: %v", err)
			}
			defer conn.Close()
			err = mtasts.VerifyMXConnection(conn.ConnectionState(), mx, roots)
			if (err == nil) != (tc.result == "") || mtasts.TLSReportResultType(err) != tc.result || mtasts.TLSReportFailureReason(err) != tc.reason {
				t.Errorf("VerifyMXConnection: %v (%q, %q), want %q, %q", err, mtasts.TLSReportResultType(err), mtasts.TLSReportFailureReason(err), tc.result, tc.reason)
			}
		})
	}
}

// TestMXTLSConfigVersions checks that TLS 1.2 and 1.3 are accepted and older
// versions refused (RFC 8461 7.2: "TLS 1.2 or TLS 1.3 or higher"). A server
// that speaks only TLS 1.1 answers the client hello with an alert, which is
// reported as a validation failure naming it.
func TestMXTLSConfigVersions(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.issue(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "mail.example.com")
	mx := mustDomain(t, "mail.example.com")
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		addr, _ := startTLSServer(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: v, MaxVersion: v})
		cs, err := handshake(t, addr, mx, ca.pool)
		if err != nil || cs.Version != v {
			t.Errorf("%s only: %v, version %s", tls.VersionName(v), err, tls.VersionName(cs.Version))
		}
	}
	addr, _ := startTLSServer(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	_, err := handshake(t, addr, mx, ca.pool)
	if got := mtasts.TLSReportResultType(err); got != mtasts.ResultValidationFailure {
		t.Errorf("TLS 1.1 only: %v, result %q", err, got)
	}
	if got, want := mtasts.TLSReportFailureReason(err), "tls-alert-70-protocol-version-not-supported"; got != want {
		t.Errorf("TLS 1.1 only: %v, reason %q, want %q", err, got, want)
	}
	if cfg := mtasts.MXTLSConfig(mx, nil); cfg.MinVersion != tls.VersionTLS12 || cfg.RootCAs != nil || cfg.InsecureSkipVerify {
		t.Errorf("MXTLSConfig(nil roots) = %+v", cfg)
	}
}

// TestMXTLSConfigFrom checks that MXTLSConfigFrom keeps what an MTA's own
// tls.Config sets (a client certificate, cipher suites, a clock) and still
// makes the checks of RFC 8461 4.2 and 7, against real TLS servers: one that
// asks for the client certificate and speaks TLS 1.2 with the cipher suites
// the MTA allows, presenting a certificate that expired half an hour ago.
func TestMXTLSConfigFrom(t *testing.T) {
	ca := newTestCA(t)
	own := newOwnCA(t)
	now := time.Now()
	mx := mustDomain(t, "mail.example.com")
	clientCert := own.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "sender.example"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	suite := tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
	then := now.Add(-45 * time.Minute) // within the MX certificate's validity and the CA's
	clock := func() time.Time { return then }
	base := &tls.Config{
		Certificates:       []tls.Certificate{clientCert},
		CipherSuites:       []uint16{suite},
		Time:               clock,
		ServerName:         "ignored.example",
		MinVersion:         tls.VersionTLS10,
		InsecureSkipVerify: true, // the MTA's opportunistic default
	}
	server := func(cert tls.Certificate) string {
		addr, _ := startTLSServer(t, &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    own.pool,
			MaxVersion:   tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, suite},
		})
		return addr
	}
	dial := func(cfg *tls.Config, addr string) (tls.ConnectionState, error) {
		conn, err := (&tls.Dialer{Config: cfg}).DialContext(context.Background(), "tcp", addr)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer conn.Close()
		return conn.(*tls.Conn).ConnectionState(), nil
	}
	expiredNow := ca.issue(t, now.Add(-48*time.Hour), now.Add(-30*time.Minute), "mail.example.com")

	cfg := mtasts.MXTLSConfigFrom(base, mx, ca.pool)
	if cfg == base || cfg.ServerName != mx.ASCII || cfg.MinVersion != tls.VersionTLS12 || cfg.InsecureSkipVerify || cfg.RootCAs != ca.pool {
		t.Errorf("MXTLSConfigFrom: ServerName %q, MinVersion %s, InsecureSkipVerify %v, own roots %v", cfg.ServerName, tls.VersionName(cfg.MinVersion), cfg.InsecureSkipVerify, cfg.RootCAs == ca.pool)
	}
	if len(cfg.Certificates) != 1 || len(cfg.CipherSuites) != 1 || cfg.CipherSuites[0] != suite || cfg.Time == nil || !cfg.Time().Equal(then) {
		t.Errorf("MXTLSConfigFrom dropped the caller's fields: %d certificates, suites %v, time %v", len(cfg.Certificates), cfg.CipherSuites, cfg.Time != nil)
	}
	if base.ServerName != "ignored.example" || !base.InsecureSkipVerify || base.MinVersion != tls.VersionTLS10 || base.RootCAs != nil {
		t.Errorf("MXTLSConfigFrom changed its base: %+v", base)
	}

	// The handshake: the client certificate is sent (the server requires
	// it), the cipher suite is the MTA's, and the MX certificate is checked
	// at the MTA's time, when it was valid.
	addr := server(expiredNow)
	cs, err := dial(cfg, addr)
	if err != nil {
		t.Fatalf("handshake under the MTA's config: %v", err)
	}
	if cs.CipherSuite != suite || cs.Version != tls.VersionTLS12 {
		t.Errorf("handshake: %s, %s, want %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), tls.CipherSuiteName(suite))
	}

	// Without the clock, the certificate is expired: the verification is
	// on, although the base skipped it.
	noClock := base.Clone()
	noClock.Time = nil
	_, err = dial(mtasts.MXTLSConfigFrom(noClock, mx, ca.pool), addr)
	if got := mtasts.TLSReportResultType(err); got != mtasts.ResultCertificateExpired {
		t.Errorf("without the clock: %v, result %q, want %q", err, got, mtasts.ResultCertificateExpired)
	}

	// A certificate for another name, or from a CA not among the roots,
	// is refused.
	other := server(ca.issue(t, now.Add(-time.Hour), now.Add(time.Hour), "mail.example.net"))
	_, err = dial(mtasts.MXTLSConfigFrom(noClock, mx, ca.pool), other)
	if got := mtasts.TLSReportResultType(err); got != mtasts.ResultCertificateHostMismatch {
		t.Errorf("certificate for another name: %v, result %q", err, got)
	}
	untrusted := server(own.issue(t, x509.Certificate{DNSNames: []string{"mail.example.com"}}))
	_, err = dial(mtasts.MXTLSConfigFrom(noClock, mx, ca.pool), untrusted)
	if got := mtasts.TLSReportResultType(err); got != mtasts.ResultCertificateNotTrusted {
		t.Errorf("certificate of another CA: %v, result %q", err, got)
	}

	// nil roots: the base's; nil base: as MXTLSConfig; a higher minimum
	// version is kept.
	withRoots := base.Clone()
	withRoots.RootCAs = ca.pool
	withRoots.MinVersion = tls.VersionTLS13
	if cfg := mtasts.MXTLSConfigFrom(withRoots, mx, nil); cfg.RootCAs != ca.pool || cfg.MinVersion != tls.VersionTLS13 {
		t.Errorf("MXTLSConfigFrom(base with roots, nil): roots kept %v, MinVersion %s", cfg.RootCAs == ca.pool, tls.VersionName(cfg.MinVersion))
	}
	if cfg := mtasts.MXTLSConfigFrom(nil, mx, ca.pool); cfg.ServerName != mx.ASCII || cfg.RootCAs != ca.pool || cfg.MinVersion != tls.VersionTLS12 || cfg.InsecureSkipVerify || cfg.Certificates != nil {
		t.Errorf("MXTLSConfigFrom(nil) = %+v", cfg)
	}
}

// TestVerifyMXConnectionSentinels checks the two failures of
// VerifyMXConnection that are not of the certificate's validation: a
// connection below TLS 1.2 (RFC 8461 7.2), here a real one to a server that
// speaks TLS 1.1 at most, and no certificate (RFC 8461 4.2), here the state
// of a connection without a handshake. Each wraps its sentinel and reaches a
// report with a result type and a reason code.
func TestVerifyMXConnectionSentinels(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.issue(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "mail.example.com")
	mx := mustDomain(t, "mail.example.com")
	addr, _ := startTLSServer(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	// An opportunistic client that takes what the MX offers.
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: mx.ASCII, InsecureSkipVerify: true, MinVersion: tls.VersionTLS10})
	if err != nil {
		t.Fatalf("handshake at TLS 1.1: %v", err)
	}
	defer conn.Close()
	old := conn.ConnectionState()
	if old.Version != tls.VersionTLS11 {
		t.Fatalf("version %s, want TLS 1.1", tls.VersionName(old.Version))
	}
	for _, tc := range []struct {
		name     string
		cs       tls.ConnectionState
		sentinel error
		result   mtasts.ResultType
		reason   string
		text     string // in the message
	}{
		{"tls 1.1", old, mtasts.ErrTLSVersion, mtasts.ResultValidationFailure, "tls-version-too-old", "TLS 1.1"},
		{"no certificate", tls.ConnectionState{Version: tls.VersionTLS13}, mtasts.ErrNoCertificate, mtasts.ResultCertificateNotTrusted, "certificate-missing", "no certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := mtasts.VerifyMXConnection(tc.cs, mx, ca.pool)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("VerifyMXConnection: %v, want %v", err, tc.sentinel)
			}
			if got := mtasts.TLSReportResultType(err); got != tc.result {
				t.Errorf("TLSReportResultType(%v) = %q, want %q", err, got, tc.result)
			}
			if got := mtasts.TLSReportFailureReason(err); got != tc.reason {
				t.Errorf("TLSReportFailureReason(%v) = %q, want %q", err, got, tc.reason)
			}
			if msg := err.Error(); !strings.Contains(msg, "mail.example.com") || !strings.Contains(msg, tc.text) {
				t.Errorf("error %q does not name the MX host and %q", msg, tc.text)
			}
		})
	}
	// The MX host's name is hostile text when the Domain was built by hand.
	err = mtasts.VerifyMXConnection(tls.ConnectionState{}, mtasts.Domain{ASCII: "mx\x1b[2J" + strings.Repeat("a", 600)}, nil)
	if msg := err.Error(); strings.ContainsRune(msg, 0x1b) || len(msg) > 300 {
		t.Errorf("error %q not escaped and bounded", msg)
	}
}

// fakeMX is a tiny SMTP server (RFC 5321, RFC 3207) on loopback, enough for
// a sending MTA's way to TLS: greeting, EHLO, STARTTLS, the handshake, QUIT.
type fakeMX struct {
	offer  bool        // list STARTTLS in the EHLO reply
	refuse string      // reply to STARTTLS instead of "220", e.g. "454 ..."
	tls    *tls.Config // the server's handshake; nil: write raw and close
	raw    string      // written after "220" when tls is nil
	hold   bool        // when tls is nil: hold the connection open after "220"
	ready  chan struct{}
}

func (m *fakeMX) start(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.ready = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				stop := context.AfterFunc(ctx, func() { conn.Close() })
				defer stop()
				m.serve(conn)
			})
		}
	})
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

func (m *fakeMX) serve(conn net.Conn) {
	defer func() { conn.Close() }()
	r := bufio.NewReader(conn)
	io.WriteString(conn, "220 mx.test ESMTP\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
		case strings.HasPrefix(cmd, "EHLO"):
			if m.offer {
				io.WriteString(conn, "250-mx.test\r\n250 STARTTLS\r\n")
			} else {
				io.WriteString(conn, "250-mx.test\r\n250 8BITMIME\r\n")
			}
		case cmd == "STARTTLS" && m.refuse != "":
			io.WriteString(conn, m.refuse+"\r\n")
		case cmd == "STARTTLS":
			io.WriteString(conn, "220 go ahead\r\n")
			m.ready <- struct{}{}
			if m.tls == nil {
				if m.raw != "" {
					// After the client hello: what the client's
					// SMTP reader buffered is lost to its TLS.
					r.ReadByte()
					io.WriteString(conn, m.raw)
				}
				if m.hold {
					io.Copy(io.Discard, conn)
				}
				return
			}
			tconn := tls.Server(conn, m.tls)
			if tconn.Handshake() != nil {
				return
			}
			conn, r = tconn, bufio.NewReader(tconn)
		case cmd == "QUIT":
			io.WriteString(conn, "221 bye\r\n")
			return
		default:
			io.WriteString(conn, "502 not here\r\n")
		}
	}
}

// sendTLS does what a sending MTA does with MX host mx at addr, up to TLS,
// with net/smtp as its SMTP client: it reads the greeting, says EHLO, and
// starts TLS under MXTLSConfig. Its errors are those the package asks MTAs
// to give the classifier: ErrSTARTTLSNotSupported when STARTTLS is not
// offered, a *STARTTLSError for the STARTTLS command and handshake.
func sendTLS(ctx context.Context, addr string, mx mtasts.Domain, roots *x509.CertPool) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, mx.ASCII)
	if err != nil {
		return err
	}
	if err := c.Hello("sender.example"); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return fmt.Errorf("%s: %w", mx.ASCII, mtasts.ErrSTARTTLSNotSupported)
	}
	if err := c.StartTLS(mtasts.MXTLSConfig(mx, roots)); err != nil {
		return &mtasts.STARTTLSError{MX: mx, Err: err}
	}
	return c.Quit()
}

// sendTLSGoSMTP does what sendTLS does with github.com/emersion/go-smtp as
// the SMTP client, as Go MTAs such as maddy use it: NewClientStartTLS says
// EHLO, checks that STARTTLS is offered and sends the command, so every
// error it returns is of the STARTTLS step, and the MTA wraps it in a
// *STARTTLSError without looking inside. go-smtp makes the handshake at
// the next command, so the MTA says EHLO again at once; an error of that
// which is not the server's reply is the handshake's.
func sendTLSGoSMTP(ctx context.Context, addr string, mx mtasts.Domain, roots *x509.CertPool) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := gosmtp.NewClientStartTLS(conn, mtasts.MXTLSConfig(mx, roots))
	if err != nil {
		return &mtasts.STARTTLSError{MX: mx, Err: err}
	}
	if err := c.Hello("sender.example"); err != nil {
		var reply *gosmtp.SMTPError
		if errors.As(err, &reply) {
			return err // the reply to EHLO, under TLS
		}
		return &mtasts.STARTTLSError{MX: mx, Err: err}
	}
	return c.Quit()
}

// TestSTARTTLSOutcomes checks the result type and reason code of what can
// happen on an SMTP connection, against a fake MX on loopback: RFC 8460
// 4.3.1 for the negotiation failures, 4.3.3 for the others, and 4.3.4 for
// the transient ones, which have none.
func TestSTARTTLSOutcomes(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	good := &tls.Config{Certificates: []tls.Certificate{ca.issue(t, now.Add(-time.Hour), now.Add(time.Hour), "mail.example.com")}}
	expired := &tls.Config{Certificates: []tls.Certificate{ca.issue(t, now.Add(-48*time.Hour), now.Add(-time.Hour), "mail.example.com")}}
	old := good.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	for _, tc := range []struct {
		name   string
		mx     fakeMX
		result mtasts.ResultType
		reason string
		is     error // also wrapped, when not nil
	}{
		{"tls", fakeMX{offer: true, tls: good}, "", "", nil},
		{"not offered", fakeMX{}, mtasts.ResultSTARTTLSNotSupported, "starttls-not-offered", mtasts.ErrSTARTTLSNotSupported},
		{"refused", fakeMX{offer: true, refuse: "454 4.7.0 TLS not available"}, mtasts.ResultSTARTTLSNotSupported, "starttls-refused", mtasts.ErrSTARTTLSNotSupported},
		// RFC 3207 4: "501 Syntax error (no parameters allowed)", or any
		// other reply than 220.
		{"refused, 5xx", fakeMX{offer: true, refuse: "502 5.5.1 not here"}, mtasts.ResultSTARTTLSNotSupported, "starttls-refused", mtasts.ErrSTARTTLSNotSupported},
		{"expired", fakeMX{offer: true, tls: expired}, mtasts.ResultCertificateExpired, "certificate-expired", nil},
		{"alert", fakeMX{offer: true, tls: old}, mtasts.ResultValidationFailure, "tls-alert-70-protocol-version-not-supported", nil},
		{"closed", fakeMX{offer: true}, mtasts.ResultValidationFailure, "tls-connection-closed", nil},
		{"not tls", fakeMX{offer: true, raw: "250 still plain text here\r\n"}, mtasts.ResultValidationFailure, "tls-not-spoken", nil},
	} {
		// The same outcome whichever SMTP library the MTA uses: net/smtp
		// gives a refusal as a *textproto.Error, go-smtp as its own
		// *smtp.SMTPError.
		for _, client := range []struct {
			name string
			send func(context.Context, string, mtasts.Domain, *x509.CertPool) error
		}{{"net/smtp", sendTLS}, {"go-smtp", sendTLSGoSMTP}} {
			t.Run(tc.name+"/"+client.name, func(t *testing.T) {
				mx := mustDomain(t, "mail.example.com")
				m := tc.mx
				addr := m.start(t)
				err := client.send(context.Background(), addr, mx, ca.pool)
				if (err == nil) != (tc.result == "") {
					t.Fatalf("send: %v, want result %q", err, tc.result)
				}
				if got := mtasts.TLSReportResultType(err); got != tc.result {
					t.Errorf("TLSReportResultType(%v) = %q, want %q", err, got, tc.result)
				}
				if got := mtasts.TLSReportFailureReason(err); got != tc.reason {
					t.Errorf("TLSReportFailureReason(%v) = %q, want %q", err, got, tc.reason)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("error %v does not wrap %v", err, tc.is)
				}
				if err != nil && !strings.Contains(err.Error(), "mail.example.com") {
					t.Errorf("error %q does not name the MX host", err)
				}
			})
		}
	}

	// A handshake that times out is transient (RFC 8460 4.3.4): no result
	// type. The MX holds the connection after "220"; the sender gives up.
	t.Run("timeout", func(t *testing.T) {
		m := fakeMX{offer: true, hold: true}
		addr := m.start(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { <-m.ready; cancel() }()
		err := sendTLS(ctx, addr, mustDomain(t, "mail.example.com"), ca.pool)
		var serr *mtasts.STARTTLSError
		if !errors.As(err, &serr) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("sendTLS: %v, want a timed out handshake", err)
		}
		if rt, reason := mtasts.TLSReportResultType(err), mtasts.TLSReportFailureReason(err); rt != "" || reason != "" {
			t.Errorf("timeout: result %q, reason %q, want none", rt, reason)
		}
	})
}

// replyError is the error of an SMTP library of a user's own for a reply
// it did not expect, made recognisable by its SMTPReplyCode method.
type replyError int

func (e replyError) Error() string      { return fmt.Sprintf("reply %d", int(e)) }
func (e replyError) SMTPReplyCode() int { return int(e) }

// replyText is an error of another type with go-smtp's text.
type replyText string

func (e replyText) Error() string { return string(e) }

// TestSTARTTLSClassifierErrors checks the classifier on errors made by hand:
// a certificate failure of a policy fetch stays sts-webpki-invalid, the same
// failure of an MX is a negotiation failure; certificate errors are found
// however deeply wrapped.
func TestSTARTTLSClassifierErrors(t *testing.T) {
	leaf := &x509.Certificate{NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	for _, tc := range []struct {
		name   string
		err    error
		result mtasts.ResultType
		reason string
	}{
		{"host mismatch", x509.HostnameError{Certificate: leaf, Host: "mx.example"}, mtasts.ResultCertificateHostMismatch, "certificate-host-mismatch"},
		{"wrapped", &mtasts.STARTTLSError{Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{Cert: leaf}}}, mtasts.ResultCertificateNotTrusted, "certificate-unknown-authority"},
		{"name constraints", x509.CertificateInvalidError{Cert: leaf, Reason: x509.CANotAuthorizedForThisName}, mtasts.ResultCertificateNotTrusted, "certificate-name-constraints"},
		{"chain", x509.CertificateInvalidError{Cert: leaf, Reason: x509.NotAuthorizedToSign}, mtasts.ResultCertificateNotTrusted, "certificate-chain-invalid"},
		{"critical extension", x509.UnhandledCriticalExtension{}, mtasts.ResultValidationFailure, "certificate-invalid"},
		{"expired, time of the check unknown", x509.CertificateInvalidError{Reason: x509.Expired}, mtasts.ResultCertificateExpired, "certificate-expired"},
		{"alert type", &mtasts.STARTTLSError{Err: tls.AlertError(40)}, mtasts.ResultValidationFailure, "tls-alert-40-handshake-failure"},
		{"unknown alert", tls.AlertError(251), mtasts.ResultValidationFailure, "tls-alert-251"},
		{"other handshake failure", &mtasts.STARTTLSError{Err: errors.New("tls: something odd")}, mtasts.ResultValidationFailure, "tls-handshake-failed"},
		{"refused reply", &mtasts.STARTTLSError{Err: &textproto.Error{Code: 502, Msg: "no"}}, mtasts.ResultSTARTTLSNotSupported, "starttls-refused"},
		{"refused reply, go-smtp, wrapped", &mtasts.STARTTLSError{Err: fmt.Errorf("starttls: %w", errors.Join(io.EOF, &gosmtp.SMTPError{Code: 454, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0}, Message: "TLS not available"}))}, mtasts.ResultSTARTTLSNotSupported, "starttls-refused"},
		{"refused reply, own library", &mtasts.STARTTLSError{Err: fmt.Errorf("starttls: %w", replyError(454))}, mtasts.ResultSTARTTLSNotSupported, "starttls-refused"},
		// RFC 5321 4.2: a reply code is three digits, the first 2 to 5.
		{"no reply code", &mtasts.STARTTLSError{Err: replyError(0)}, mtasts.ResultValidationFailure, "tls-handshake-failed"},
		{"reply code out of range", &mtasts.STARTTLSError{Err: replyError(700)}, mtasts.ResultValidationFailure, "tls-handshake-failed"},
		{"go-smtp reply, not of starttls", &gosmtp.SMTPError{Code: 454, Message: "not now"}, "", ""},
		{"own reply, not of starttls", replyError(550), "", ""},
		{"go-smtp reply, nil", &mtasts.STARTTLSError{Err: (*gosmtp.SMTPError)(nil)}, mtasts.ResultValidationFailure, "tls-handshake-failed"},
		{"go-smtp, not offered", &mtasts.STARTTLSError{Err: errors.New("smtp: server doesn't support STARTTLS")}, mtasts.ResultSTARTTLSNotSupported, "starttls-not-offered"},
		{"go-smtp's text, not of errors.New", &mtasts.STARTTLSError{Err: replyText("smtp: server doesn't support STARTTLS")}, mtasts.ResultValidationFailure, "tls-handshake-failed"},
		{"go-smtp, not offered, not of starttls", errors.New("smtp: server doesn't support STARTTLS"), "", ""},
		{"canceled", &mtasts.STARTTLSError{Err: context.Canceled}, "", ""},
		{"timeout", &mtasts.STARTTLSError{Err: &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}}, "", ""},
		{"closed by the sender", &mtasts.STARTTLSError{Err: &net.OpError{Op: "read", Err: net.ErrClosed}}, "", ""},
		{"reset by the server", &mtasts.STARTTLSError{Err: &net.OpError{Op: "read", Err: syscall.ECONNRESET}}, mtasts.ResultValidationFailure, "tls-connection-closed"},
		{"not a starttls error", io.EOF, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mtasts.TLSReportResultType(tc.err); got != tc.result {
				t.Errorf("TLSReportResultType(%v) = %q, want %q", tc.err, got, tc.result)
			}
			if got := mtasts.TLSReportFailureReason(tc.err); got != tc.reason {
				t.Errorf("TLSReportFailureReason(%v) = %q, want %q", tc.err, got, tc.reason)
			}
		})
	}
	// RFC 8460 4.3.1 and 4.3.3: the two types that SHOULD carry a reason.
	for _, err := range []error{x509.UnknownAuthorityError{}, &mtasts.STARTTLSError{Err: io.EOF}} {
		if rt := mtasts.TLSReportResultType(err); (rt == mtasts.ResultCertificateNotTrusted || rt == mtasts.ResultValidationFailure) && mtasts.TLSReportFailureReason(err) == "" {
			t.Errorf("%v: result %q without a reason", err, rt)
		}
	}
	e := &mtasts.STARTTLSError{MX: mtasts.Domain{ASCII: "mx.example"}, Err: errors.New("tls: bad \x1b[2J")}
	if got := e.Error(); got != `mtasts: starttls with mx.example: tls: bad \x1b[2J` {
		t.Errorf("Error() = %q", got)
	}
}
