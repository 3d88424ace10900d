package tlsrpt_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// Recording a DANE delivery (RFC 8460 4.3.2.1): the TLSA records of the MX
// host are the policy, whose policy domain is the host (RFC 8460 1.1); the
// Target keeps the recipient domain beside it. Record takes what a session
// gave in one call: here a delivery that went on over TLS although one of
// the host's TLSA records was unusable, and a batch of sessions that failed
// because the TLSA lookup did not validate.
func ExampleTarget_TLSA() {
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close()
	today := time.Now()

	recipient, _ := mtasts.ParseDomain("example.org")
	mx, _ := mtasts.ParseDomain("mx.hoster.example")
	target := tlsrpt.Target{Recipient: recipient, MX: mx}
	tlsa, err := target.TLSA([]string{
		"3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6",
		"2 0 1 E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
	})
	if err != nil {
		log.Fatal(err)
	}
	row := tlsrpt.FailureDetail{
		ReceivingMXHostname: mx.ASCII,
		ReceivingIP:         netip.MustParseAddr("192.0.2.25"),
	}
	// A success that still carries a row: one record did not match.
	unusable := row
	unusable.ResultType = mtasts.ResultTLSAInvalid
	unusable.FailureReasonCode = "tlsa-2-0-1-no-match"
	if err := rec.Record(tlsrpt.PolicyResult{Policy: tlsa,
		Summary:        tlsrpt.Summary{TotalSuccessfulSessionCount: 1},
		FailureDetails: []tlsrpt.FailureDetail{unusable}}); err != nil {
		log.Fatal(err)
	}
	// Three failed sessions of a batch: the TLSA records did not validate.
	bogus := row
	bogus.ResultType = mtasts.ResultDNSSECInvalid
	bogus.FailedSessionCount = 3
	if err := rec.Record(tlsrpt.PolicyResult{Policy: tlsa,
		Summary:        tlsrpt.Summary{TotalFailureSessionCount: 3},
		FailureDetails: []tlsrpt.FailureDetail{bogus}}); err != nil {
		log.Fatal(err)
	}

	// Today's counts, as an admin page reads them.
	results, err := rec.Results(context.Background(), today)
	if err != nil {
		log.Fatal(err)
	}
	for _, pr := range results {
		p := pr.Policy
		fmt.Printf("%s %s for %s: %d ok, %d failed\n", p.PolicyType, p.PolicyDomain, p.RecipientDomain,
			pr.Summary.TotalSuccessfulSessionCount, pr.Summary.TotalFailureSessionCount)
		for _, fd := range pr.FailureDetails {
			fmt.Printf("  %d× %s\n", fd.FailedSessionCount, fd.ResultType)
		}
	}
	// Output:
	// tlsa mx.hoster.example for example.org: 1 ok, 3 failed
	//   3× dnssec-invalid
	//   1× tlsa-invalid
}

// The two kinds of report mox sends (ReportInfo.Recipients and MXHosts): to
// each recipient domain, its MTA-STS results and the DANE results of the MX
// hosts its deliveries used; to each DANE MX host, its results, with the
// recipient domain as policy-domain and the host as mx-host. Report.Domain
// says whose TLSRPT record takes each report. Without them, a report goes
// to each policy domain. Here the Recorder's store holds the successes of
// 2016-04-01, a closed day, added as a Recorder's flush adds them
// (Store.Add), and the Reporter hands each report to the MTA's queue.
func ExampleReportInfo() {
	mx, _ := mtasts.ParseDomain("mx.hoster.example")
	records := []string{"3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6"}
	var results []tlsrpt.PolicyResult
	success := tlsrpt.Summary{TotalSuccessfulSessionCount: 1}
	for _, name := range []string{"example.org", "example.net"} {
		recipient, _ := mtasts.ParseDomain(name)
		target := tlsrpt.Target{Recipient: recipient, MX: mx}
		// example.org has no MTA-STS policy; example.net is reached by
		// DANE alone.
		if name == "example.org" {
			results = append(results, tlsrpt.PolicyResult{Policy: target.NoPolicyFound(), Summary: success})
		}
		tlsa, _ := target.TLSA(records)
		results = append(results, tlsrpt.PolicyResult{Policy: tlsa, Summary: success})
	}
	dir, err := os.MkdirTemp("", "tlsrpt")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := tlsrpt.OpenFileStore(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer store.(io.Closer).Close()
	day := time.Date(2016, 4, 1, 0, 0, 0, 0, time.UTC)
	if _, err := store.Add(context.Background(), tlsrpt.Batch{Day: day, Results: results}); err != nil {
		log.Fatal(err)
	}
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{Store: store})
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close()

	resolver := mtaststest.NewResolver() // in production: &adns.Resolver{}
	for _, name := range []string{"example.org", "example.net", "mx.hoster.example"} {
		resolver.SetTXT("_smtp._tls."+name, "v=TLSRPTv1; rua=mailto:tlsrpt@"+name)
	}
	received := make(chan *tlsrpt.Report, 3)
	sender, err := tlsrpt.NewSender(tlsrpt.SenderOptions{
		Resolver: resolver,
		From:     "tlsrpt@mail.company-x.example",
		Submit: func(ctx context.Context, msg *tlsrpt.Message) error {
			r, _, err := tlsrpt.ReadReport(bytes.NewReader(msg.Data), tlsrpt.ReadOptions{})
			if err != nil {
				return err
			}
			r.Domain = msg.PolicyDomain.ASCII // not in the JSON
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
		Info: tlsrpt.ReportInfo{
			OrganizationName: "Company-X",
			ContactInfo:      "sts-reporting@company-x.example",
			Recipients:       true,
			MXHosts:          true,
		},
		MaxDelay: -1, // production keeps the defaults: hours of delay,
		Spread:   -1, // and the sends spread over half an hour
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reporter.Run(ctx) }()
	reports := []*tlsrpt.Report{<-received, <-received, <-received}
	cancel()
	<-done

	slices.SortFunc(reports, func(a, b *tlsrpt.Report) int { return strings.Compare(a.Domain, b.Domain) })
	for _, r := range reports {
		fmt.Println("to", r.Domain+":")
		for _, pr := range r.Policies {
			fmt.Println("  ", pr.Policy.PolicyType, pr.Policy.PolicyDomain, pr.Policy.MXHost)
		}
	}
	// Output:
	// to example.net:
	//    tlsa mx.hoster.example [mx.hoster.example]
	// to example.org:
	//    no-policy-found example.org []
	//    tlsa mx.hoster.example [mx.hoster.example]
	// to mx.hoster.example:
	//    tlsa example.net [mx.hoster.example]
	//    tlsa example.org [mx.hoster.example]
}
