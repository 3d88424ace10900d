package mtasts_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/textproto"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/mtasts-go/mtasts"
)

func ExampleMXTLSConfigFrom() {
	// The MTA's own TLS client configuration: its client certificate
	// (e.g. from tls.LoadX509KeyPair), its cipher suites, its clock, and
	// no verification, for opportunistic delivery.
	var clientCert tls.Certificate
	own := &tls.Config{
		Certificates:       []tls.Certificate{clientCert},
		CipherSuites:       []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		Time:               func() time.Time { return time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) },
		InsecureSkipVerify: true,
	}
	// For an MX host under a policy: the same, with the checks of RFC
	// 8461 4.2 and 7. nil roots: own.RootCAs, here the system's.
	mx, _ := mtasts.ParseDomain("mail.example.com")
	cfg := mtasts.MXTLSConfigFrom(own, mx, nil)
	fmt.Println(cfg.ServerName, tls.VersionName(cfg.MinVersion), cfg.InsecureSkipVerify)
	fmt.Println(len(cfg.Certificates), tls.CipherSuiteName(cfg.CipherSuites[0]), cfg.Time().Format(time.DateOnly))
	fmt.Println(own.InsecureSkipVerify, own.ServerName == "") // the MTA's own is unchanged
	// Output:
	// mail.example.com TLS 1.2 false
	// 1 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 2025-06-01
	// true true
}

func ExampleTLSReportResultType_starttls() {
	mx, _ := mtasts.ParseDomain("mail.example.com")
	for _, err := range []error{
		fmt.Errorf("%s: %w", mx.ASCII, mtasts.ErrSTARTTLSNotSupported),
		&mtasts.STARTTLSError{MX: mx, Err: &textproto.Error{Code: 454, Msg: "4.7.0 TLS not available"}},
		// The same refusal as go-smtp's client returns it.
		&mtasts.STARTTLSError{MX: mx, Err: &gosmtp.SMTPError{Code: 454, EnhancedCode: gosmtp.EnhancedCode{4, 7, 0}, Message: "TLS not available"}},
		&mtasts.STARTTLSError{MX: mx, Err: &tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: mx.ASCII}}},
		&mtasts.STARTTLSError{MX: mx, Err: tls.AlertError(40)},
	} {
		fmt.Println(mtasts.TLSReportResultType(err), mtasts.TLSReportFailureReason(err))
	}
	// Output:
	// starttls-not-supported starttls-not-offered
	// starttls-not-supported starttls-refused
	// starttls-not-supported starttls-refused
	// certificate-host-mismatch certificate-host-mismatch
	// validation-failure tls-alert-40-handshake-failure
}
