package mtasts_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// An SMTP client delivering under a policy in mode testing finishes the
// TLS handshake whatever the certificate, then checks the connection as a
// policy in mode enforce would have, for its TLS report (RFC 8461 5). Here
// the MX host is a TLS server on 127.0.0.1 with a certificate for
// mx.example.com from the test kit's CA, and the client reaches it as two
// MX hosts in turn.
func ExampleVerifyMXConnection() {
	ca, err := mtaststest.StartPolicyServer() // for its CA only
	if err != nil {
		log.Fatal(err)
	}
	defer ca.Close()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CACertificatePEM())
	cert, err := ca.IssueCertificate(time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "mx.example.com")
	if err != nil {
		log.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()

	for _, name := range []string{"mx.example.com", "mail.example.net"} {
		mx, _ := mtasts.ParseDomain(name)
		// In an SMTP session, this is the handshake after STARTTLS.
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: mx.ASCII, InsecureSkipVerify: true}) // checked below
		if err != nil {
			log.Fatal(err)
		}
		err = mtasts.VerifyMXConnection(conn.ConnectionState(), mx, roots) // nil roots: the system's
		conn.Close()
		if err != nil {
			fmt.Printf("%s: TLS-RPT result %s, reason %s\n", name, mtasts.TLSReportResultType(err), mtasts.TLSReportFailureReason(err))
			continue
		}
		fmt.Printf("%s: valid\n", name)
	}
	// Output:
	// mx.example.com: valid
	// mail.example.net: TLS-RPT result certificate-host-mismatch, reason certificate-host-mismatch
}
