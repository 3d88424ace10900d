package tlsrpt_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// Recording a DANE delivery (RFC 8460 4.3.2.1): the TLSA records of the MX
// host are the policy, whose policy domain is the host (RFC 8460 1.1); the
// Target keeps the recipient domain beside it. Record takes what a session
// gave in one call: here a delivery that went on over TLS although one of
// the host's TLSA records was unusable, and a batch of sessions that failed
// because the TLSA lookup did not validate.
func ExampleTarget_TLSA() {
	now := time.Date(2016, 4, 1, 9, 30, 0, 0, time.UTC)
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{Now: func() time.Time { return now }})
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close()

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

	now = now.Add(24 * time.Hour)
	d, err := rec.Take(context.Background(), time.Date(2016, 4, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		log.Fatal(err)
	}
	for _, pr := range d.Results {
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
// to each policy domain.
func ExampleReportInfo() {
	now := time.Date(2016, 4, 1, 9, 30, 0, 0, time.UTC)
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{Now: func() time.Time { return now }})
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close()
	mx, _ := mtasts.ParseDomain("mx.hoster.example")
	records := []string{"3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6"}
	for _, name := range []string{"example.org", "example.net"} {
		recipient, _ := mtasts.ParseDomain(name)
		target := tlsrpt.Target{Recipient: recipient, MX: mx}
		// example.org has no MTA-STS policy; example.net is reached by
		// DANE alone.
		if name == "example.org" {
			rec.Success(target.NoPolicyFound())
		}
		tlsa, _ := target.TLSA(records)
		rec.Success(tlsa)
	}

	now = now.Add(24 * time.Hour)
	d, err := rec.Take(context.Background(), time.Date(2016, 4, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		log.Fatal(err)
	}
	info := tlsrpt.ReportInfo{
		OrganizationName: "Company-X",
		ContactInfo:      "sts-reporting@company-x.example",
		Recipients:       true,
		MXHosts:          true,
	}
	for _, r := range d.Reports(info) {
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
