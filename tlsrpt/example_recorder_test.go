package tlsrpt_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// Recording: the cache's answer gives the policy, the STARTTLS outcome its
// result type, and the recorder counts each TLS session attempt of the UTC
// day. In production the recorder runs with Run in a goroutine, with a
// store on disk (OpenFileStore) or in Redis, and a Reporter sends each
// day's reports once the day has closed (see ExampleReporter); here
// Results reads today's counts, as an admin page may.
func ExampleRecorder() {
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{
		// Store: tlsrpt.OpenFileStore(dir), or redisstore.NewReportStore
		// for a fleet; nil keeps the counts in memory.
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close()
	today := time.Now()

	// A delivery to company-y.example: the cache's answer gives the
	// policy; the session with the MX gives the outcome.
	recipient, _ := mtasts.ParseDomain("company-y.example")
	mx, _ := mtasts.ParseDomain("mx1.mail.company-y.example")
	policy, _ := mtasts.ParsePolicy("version: STSv1\nmode: enforce\nmx: *.mail.company-y.example\nmax_age: 604800\n")
	res := cache.Result{Policy: policy} // from cache.Get
	sts, _ := tlsrpt.Target{Recipient: recipient, MX: mx}.FromCache(res)

	// Successes: a policy seen today is counted without a lock or an
	// allocation.
	for range 5326 {
		if err := rec.Success(sts); err != nil {
			log.Fatal(err)
		}
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

	results, err := rec.Results(context.Background(), today)
	if err != nil {
		log.Fatal(err)
	}
	for _, pr := range results {
		fmt.Printf("%s %s: %d successful, %d failed sessions\n", pr.Policy.PolicyType, pr.Policy.PolicyDomain,
			pr.Summary.TotalSuccessfulSessionCount, pr.Summary.TotalFailureSessionCount)
		for _, fd := range pr.FailureDetails {
			fmt.Printf("  %d× %s at %s\n", fd.FailedSessionCount, fd.ResultType, fd.ReceivingMXHostname)
		}
	}
	// Output:
	// sts company-y.example: 5326 successful, 100 failed sessions
	//   100× certificate-expired at mx1.mail.company-y.example
	// no-policy-found example.net: 1 successful, 0 failed sessions
}
