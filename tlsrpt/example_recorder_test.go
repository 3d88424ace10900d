package tlsrpt_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"log"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// The whole path: the cache's answer gives the policy, the STARTTLS outcome
// its result type, the recorder counts each TLS session attempt, and once
// the UTC day has closed, the Reporter sends one report per policy domain,
// here through the MTA's own mail queue (Submit). In production the
// recorder runs with Run in a goroutine, with a FileStore or a Redis store,
// and the real clock; here the clock is set by hand, so that the day closes
// at once.
func ExampleRecorder() {
	day := time.Date(2016, 4, 1, 0, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(day.Add(9 * time.Hour).UnixNano())
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{
		Now: func() time.Time { return time.Unix(0, now.Load()).UTC() }, // default: the real clock
		// Store: a FileStore, or redisstore.NewTLSRPTStore for a fleet.
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close()

	// A delivery to company-y.example: the cache's answer gives the
	// policy; the session with the MX gives the outcome.
	recipient, _ := mtasts.ParseDomain("company-y.example")
	mx, _ := mtasts.ParseDomain("mx1.mail.company-y.example")
	policy, _ := mtasts.ParsePolicy("version: STSv1\nmode: enforce\nmx: *.mail.company-y.example\nmax_age: 604800\n")
	res := cache.Result{Policy: policy} // from cache.Get
	sts, _ := tlsrpt.Target{Recipient: recipient, MX: mx}.FromCache(res)

	// Successes: keep a Handle beside the policy to skip the lookup.
	h, err := rec.Handle(sts)
	if err != nil {
		log.Fatal(err)
	}
	for range 5326 {
		h.Success()
	}
	// A failure: the STARTTLS handshake under mtasts.MXTLSConfig
	// failed, and the core classifies the error.
	handshakeErr := &mtasts.STARTTLSError{MX: mx, Err: x509.CertificateInvalidError{Reason: x509.Expired}}
	for range 100 {
		err := rec.Failure(sts, tlsrpt.FailureDetail{
			ResultType:          mtasts.TLSReportResultType(handshakeErr),
			SendingMTAIP:        netip.MustParseAddr("2001:db8:abcd:0012::1"),
			ReceivingMXHostname: mx.ASCII,
			ReceivingIP:         netip.MustParseAddr("203.0.113.56"),
			FailureReasonCode:   mtasts.TLSReportFailureReason(handshakeErr),
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	// A domain with no policy gets the heartbeat of RFC 8460 4.2.1.
	other, _ := mtasts.ParseDomain("example.net")
	rec.Success(tlsrpt.Target{Recipient: other}.NoPolicyFound())

	// The next day: the Reporter takes the closed day, puts its reports
	// in its outbox, releases the day, and sends each report to the rua
	// of its policy domain's TLSRPT record.
	now.Store(day.AddDate(0, 0, 1).Add(time.Hour).UnixNano())
	resolver := mtaststest.NewResolver() // in production: &adns.Resolver{}
	resolver.SetTXT("_smtp._tls.company-y.example", "v=TLSRPTv1; rua=mailto:sts-reports@company-y.example")
	resolver.SetTXT("_smtp._tls.example.net", "v=TLSRPTv1; rua=mailto:tlsrpt@example.net")
	received := make(chan *tlsrpt.Report, 2)
	sender, err := tlsrpt.NewSender(tlsrpt.SenderOptions{
		Resolver: resolver,
		From:     "tlsrpt@mail.company-x.example",
		Submit: func(ctx context.Context, msg *tlsrpt.Message) error {
			// The MTA would sign and queue msg (see ExampleSender_mail);
			// here the report is read back from it.
			r, _, err := tlsrpt.ReadReport(bytes.NewReader(msg.Data), tlsrpt.ReadOptions{})
			if err != nil {
				return err
			}
			received <- r
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	reporter, err := tlsrpt.NewReporter(tlsrpt.ReporterOptions{
		Recorder: rec,
		Sender:   sender,
		Info:     tlsrpt.ReportInfo{OrganizationName: "Company-X", ContactInfo: "sts-reporting@company-x.example"},
		MaxDelay: -1, // production keeps the defaults: hours of delay,
		Spread:   -1, // and the sends spread over half an hour
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reporter.Run(ctx) }()
	reports := []*tlsrpt.Report{<-received, <-received}
	cancel()
	<-done

	slices.SortFunc(reports, func(a, b *tlsrpt.Report) int {
		return strings.Compare(a.Policies[0].Policy.PolicyDomain, b.Policies[0].Policy.PolicyDomain)
	})
	for _, r := range reports {
		p := r.Policies[0]
		fmt.Printf("%s %s: %d successful, %d failed sessions\n", p.Policy.PolicyDomain,
			r.DateRange.Start.Format(time.DateOnly), p.Summary.TotalSuccessfulSessionCount, p.Summary.TotalFailureSessionCount)
		for _, fd := range p.FailureDetails {
			fmt.Printf("  %d× %s at %s\n", fd.FailedSessionCount, fd.ResultType, fd.ReceivingMXHostname)
		}
	}
	// Output:
	// company-y.example 2016-04-01: 5326 successful, 100 failed sessions
	//   100× certificate-expired at mx1.mail.company-y.example
	// example.net 2016-04-01: 1 successful, 0 failed sessions
}
