package tlsrpt_test

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// quickStart is the README's quick start, from the cache to the report, as
// a function that compiles; TestREADMEQuickStart keeps the two the same.
func quickStart(ctx context.Context, resolver mtasts.Resolver, submit func(context.Context, *tlsrpt.Message) error,
	recipient, mx mtasts.Domain, startTLS func(*tls.Config) error) error {
	// resolver: &adns.Resolver{}; submit: your MTA's DKIM signing and queue.
	c, err1 := cache.New(cache.Options{Resolver: resolver})
	rec, err2 := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{}) // counts in memory; a file store survives restarts
	sender, err3 := tlsrpt.NewSender(tlsrpt.SenderOptions{Resolver: resolver, Submit: submit})
	reporter, err4 := tlsrpt.NewReporter(tlsrpt.ReporterOptions{Recorder: rec, Sender: sender,
		Info: tlsrpt.ReportInfo{OrganizationName: "Example Mail", ContactInfo: "tlsrpt@mail.example.com"}})
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return err
	}
	defer c.Close()
	defer rec.Close()
	go c.Run(ctx)        // refreshes the policies in use before they expire
	go rec.Run(ctx)      // hands the counts to the store every second
	go reporter.Run(ctx) // sends each UTC day's reports once the day has closed

	// Each delivery to recipient, through the MX host mx:
	r := c.Get(ctx, recipient)
	if r.Policy != nil && r.Policy.Mode == mtasts.ModeEnforce && !r.Policy.Matches(mx) {
		return errors.New("the policy does not allow this MX host") // RFC 8461 5: try the next
	}
	policy, failure := tlsrpt.Target{Recipient: recipient, MX: mx}.FromCache(r) // failure: the fetch failed
	// Your SMTP client's STARTTLS, verifying the MX host's certificate:
	if err := startTLS(mtasts.MXTLSConfig(mx, nil)); err != nil {
		err = &mtasts.STARTTLSError{MX: mx, Err: err}
		failure = &tlsrpt.FailureDetail{ResultType: mtasts.TLSReportResultType(err),
			ReceivingMXHostname: mx.ASCII, FailureReasonCode: mtasts.TLSReportFailureReason(err)}
	}
	if failure != nil {
		return rec.Failure(policy, *failure)
	}
	return rec.Success(policy)
}

// TestREADMEQuickStart checks that the README's quick start is the body of
// quickStart, and runs it once: a delivery to a domain without MTA-STS,
// whose STARTTLS succeeds, is counted as a success.
func TestREADMEQuickStart(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "## Quick start")
	if !ok {
		t.Fatal("README.md has no section \"## Quick start\"")
	}
	_, after, ok = strings.Cut(after, "```go\n")
	if !ok {
		t.Fatal("README.md: the quick start has no Go code")
	}
	shown, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatal("README.md: the quick start's Go code has no end")
	}
	source, err := os.ReadFile("quickstart_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, fn, _ := strings.Cut(string(source), "startTLS func(*tls.Config) error) error {\n")
	fn, _, _ = strings.Cut(fn, "\n}\n")
	var body strings.Builder
	for line := range strings.Lines(fn + "\n") {
		body.WriteString(strings.TrimPrefix(line, "\t"))
	}
	if shown != body.String() {
		t.Errorf("README.md's quick start is not the body of quickStart in quickstart_test.go:\n%s\nwant\n%s", shown, body.String())
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	recipient, err := mtasts.ParseDomain("example.net")
	if err != nil {
		t.Fatal(err)
	}
	mx, err := mtasts.ParseDomain("mx.example.net")
	if err != nil {
		t.Fatal(err)
	}
	var sni string
	startTLS := func(cfg *tls.Config) error {
		sni = cfg.ServerName
		return nil
	}
	submit := func(context.Context, *tlsrpt.Message) error { return nil }
	if err := quickStart(ctx, mtaststest.NewResolver(), submit, recipient, mx, startTLS); err != nil {
		t.Fatalf("quick start: %v", err)
	}
	if sni != "mx.example.net" {
		t.Errorf("STARTTLS with server name %q, want mx.example.net", sni)
	}
}
