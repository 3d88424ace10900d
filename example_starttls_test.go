package mtasts_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"net"
	"net/smtp"
	"net/textproto"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// startTLS is how an MTA's SMTP client, here net/smtp on a connection to
// MX host mx, starts TLS under a policy, and how it hands its errors to
// the classifier. roots nil means the system's.
func startTLS(conn net.Conn, mx mtasts.Domain, roots *x509.CertPool) (*smtp.Client, error) {
	c, err := smtp.NewClient(conn, mx.ASCII)
	if err != nil {
		return nil, err
	}
	if err := c.Hello("sender.example.org"); err != nil {
		c.Close()
		return nil, err
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		c.Close()
		return nil, fmt.Errorf("%s: %w", mx.ASCII, mtasts.ErrSTARTTLSNotSupported)
	}
	if err := c.StartTLS(mtasts.MXTLSConfig(mx, roots)); err != nil {
		c.Close()
		return nil, &mtasts.STARTTLSError{MX: mx, Err: err}
	}
	return c, nil
}

// serveMX answers each connection on ln as an MX host does, as far as
// STARTTLS and the EHLO after it, with cert.
func serveMX(ln net.Listener, cert tls.Certificate) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		text := textproto.NewConn(conn)
		text.PrintfLine("220 mx.example ESMTP")
		text.ReadLine() // EHLO
		text.PrintfLine("250-mx.example\r\n250 STARTTLS")
		text.ReadLine() // STARTTLS
		text.PrintfLine("220 Go ahead")
		text = textproto.NewConn(tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}}))
		text.ReadLine() // EHLO, once the handshake succeeded
		text.PrintfLine("250 mx.example")
		text.Close()
	}
}

// An SMTP client delivering under a policy starts TLS with MXTLSConfig,
// which checks the MX host's certificate as RFC 8461 4.2 asks; a failure
// becomes a row of a TLS report. Here the MX host listens on 127.0.0.1,
// with a certificate for mail.example.com from the test kit's CA, and the
// client reaches it as two MX hosts in turn.
func ExampleMXTLSConfig() {
	idn, _ := mtasts.ParseDomain("mail.bücher.example")
	cfg := mtasts.MXTLSConfig(idn, nil)
	fmt.Println(cfg.ServerName, tls.VersionName(cfg.MinVersion))

	ca, err := mtaststest.StartPolicyServer() // for its CA only
	if err != nil {
		log.Fatal(err)
	}
	defer ca.Close()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CACertificatePEM())
	cert, err := ca.IssueCertificate(time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "mail.example.com")
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go serveMX(ln, cert)

	for _, name := range []string{"mail.example.com", "mail.example.net"} {
		mx, _ := mtasts.ParseDomain(name)
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			log.Fatal(err)
		}
		c, err := startTLS(conn, mx, roots)
		if err != nil {
			fmt.Printf("%s: TLS-RPT result %s, reason %s\n", name, mtasts.TLSReportResultType(err), mtasts.TLSReportFailureReason(err))
			continue
		}
		state, _ := c.TLSConnectionState()
		fmt.Printf("%s: %s, certificate valid\n", name, tls.VersionName(state.Version))
		c.Close()
	}
	// Output:
	// mail.xn--bcher-kva.example TLS 1.2
	// mail.example.com: TLS 1.3, certificate valid
	// mail.example.net: TLS-RPT result certificate-host-mismatch, reason certificate-host-mismatch
}
