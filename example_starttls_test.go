package mtasts_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/smtp"

	"github.com/mtasts-go/mtasts"
)

// startTLS is how an MTA's SMTP client, here net/smtp on a connection to
// MX host mx, starts TLS under a policy, and how it hands its errors to
// the classifier.
func startTLS(conn net.Conn, mx mtasts.Domain) (*smtp.Client, error) {
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
	// nil roots: the system's.
	if err := c.StartTLS(mtasts.MXTLSConfig(mx, nil)); err != nil {
		c.Close()
		return nil, &mtasts.STARTTLSError{MX: mx, Err: err}
	}
	return c, nil
}

func ExampleMXTLSConfig() {
	mx, _ := mtasts.ParseDomain("mail.bücher.example")
	cfg := mtasts.MXTLSConfig(mx, nil)
	fmt.Println(cfg.ServerName, cfg.MinVersion == tls.VersionTLS12)

	// With an SMTP client, see startTLS above; a failure becomes a row of
	// a TLS report:
	conn, err := net.Dial("tcp", "127.0.0.1:0") // no MX listens here
	if err == nil {
		_, err = startTLS(conn, mx)
	}
	fmt.Printf("%q\n", mtasts.TLSReportResultType(err)) // a failed connection is not a TLS failure
	// Output:
	// mail.xn--bcher-kva.example true
	// ""
}
