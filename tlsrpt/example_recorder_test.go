package tlsrpt_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// The whole path: the cache's answer gives the policy, the STARTTLS outcome
// its result type, the recorder counts each TLS session attempt, and once
// the UTC day has closed, its counts become one report per policy domain. In production the
// recorder runs with Run in a goroutine, a FileStore or a Redis store, and
// the real clock; here the clock is set by hand.
func ExampleRecorder() {
	now := time.Date(2016, 4, 1, 9, 30, 0, 0, time.UTC)
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{
		Now: func() time.Time { return now }, // default: the real clock
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
	text := "version: STSv1\nmode: enforce\nmx: *.mail.company-y.example\nmax_age: 604800\n"
	policy, _ := mtasts.ParsePolicy(text)
	res := cache.Result{Policy: policy} // from cache.Get
	target := tlsrpt.Target{Recipient: recipient, MX: mx}
	sts, _ := target.FromCache(res)

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
			ResultType:          tlsrpt.ResultType(mtasts.TLSReportResultType(handshakeErr)),
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

	// The next day, once the day has closed: take it, once, and report.
	now = now.Add(24 * time.Hour)
	days, err := rec.ClosedDays(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, day := range days {
		d, err := rec.Take(context.Background(), day)
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range d.Reports(tlsrpt.ReportInfo{OrganizationName: "Company-X", ContactInfo: "sts-reporting@company-x.example"}) {
			// Send r to the rua of the TLSRPT record of its policy
			// domain (LookupRecord).
			js, _ := json.Marshal(r.Policies[0].Summary)
			fmt.Println(r.ReportID, r.DateRange.End.Format(time.RFC3339), string(js))
			for _, fd := range r.Policies[0].FailureDetails {
				fmt.Printf("  %d× %s at %s\n", fd.FailedSessionCount, fd.ResultType, fd.ReceivingMXHostname)
			}
		}
	}
	// Output:
	// 2016-04-01_company-y.example 2016-04-01T23:59:59Z {"total-successful-session-count":5326,"total-failure-session-count":100}
	//   100× certificate-expired at mx1.mail.company-y.example
	// 2016-04-01_example.net 2016-04-01T23:59:59Z {"total-successful-session-count":1,"total-failure-session-count":0}
}
