package tlsrpt_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// A sending MTA finds where a domain wants its reports. Here the DNS is the
// test kit's; in production the resolver is &adns.Resolver{}.
func ExampleLookupRecord() {
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_smtp._tls.example.com", "v=TLSRPTv1; rua=mailto:reports@example.com,https://reporting.example.com/v1/tlsrpt")
	domain, _ := mtasts.ParseDomain("example.com")

	record, _, err := tlsrpt.LookupRecord(context.Background(), resolver, domain)
	if err != nil {
		// RFC 8460 3: no record, several, or an invalid one: the
		// domain does not implement TLSRPT.
		log.Fatal(err)
	}
	for _, uri := range record.SupportedRUA() {
		fmt.Println("send reports to", uri)
	}
	// Output:
	// send reports to mailto:reports@example.com
	// send reports to https://reporting.example.com/v1/tlsrpt
}

// ParseRecord names the field at fault.
func ExampleParseRecord() {
	_, _, err := tlsrpt.ParseRecord("v=TLSRPTv1; rua=mailto:reports!@example.com")
	fmt.Println(err)
	fmt.Println(errors.Is(err, tlsrpt.ErrRecordSyntax))
	// Output:
	// tlsrpt: invalid txt record: "rua": '!' in URI "mailto:reports!@example.com" must be percent-encoded as %21 (RFC 8460 3)
	// true
}

// A domain reads the reports it receives: here RFC 8460's own example, and
// then the same with an error, which names the JSON path at fault.
func ExampleReadReport() {
	f, err := os.Open("testdata/rfc8460-appendix-b.json") // or a message, or gzip
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	report, _, err := tlsrpt.ReadReport(f, tlsrpt.ReadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(report.OrganizationName, report.DateRange.Start.Format("2006-01-02"))
	for _, p := range report.Policies {
		fmt.Printf("%s %s: %d ok, %d failed\n", p.Policy.PolicyType, p.Policy.PolicyDomain,
			p.Summary.TotalSuccessfulSessionCount, p.Summary.TotalFailureSessionCount)
		for _, fd := range p.FailureDetails {
			fmt.Printf("  %d× %s at %s\n", fd.FailedSessionCount, fd.ResultType, fd.ReceivingMXHostname)
		}
	}

	bad, _ := os.ReadFile("testdata/rfc8460-appendix-b.json")
	_, err = tlsrpt.ParseReport([]byte(strings.Replace(string(bad), "303", "-303", 1)))
	fmt.Println(err)
	// Output:
	// Company-X 2016-04-01
	// sts company-y.example: 5326 ok, 303 failed
	//   100× certificate-expired at mx1.mail.company-y.example
	//   200× starttls-not-supported at mx2.mail.company-y.example
	//   3× validation-failure at mx-backup.mail.company-y.example
	// tlsrpt: invalid report: policies[0].summary.total-failure-session-count: -303, expected a count of 0 or more
}

// A receiver reads a report as its sender wrote it, and learns where the
// sender deviates from RFC 8460; the strict reader refuses the same report.
func ExampleReadOptions() {
	const report = `{"organization-name": "Sender Org", "contact-info": null, "report-id": "r1",
	  "date-range": {"start-datetime": "2026-11-01T00:00:00", "end-datetime": "2026-11-02T00:00:00Z"},
	  "policies": [{"policy": {"policy-type": "sts", "policy-domain": "Example.COM."},
	    "summary": {"total-successful-session-count": 10, "total-failure-session-count": 0}}]}`
	read, warnings, err := tlsrpt.ReadReport(strings.NewReader(report), tlsrpt.ReadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(read.Policies[0].Policy.PolicyDomain, read.DateRange.Start)
	for _, w := range warnings {
		fmt.Println(w)
	}

	_, _, err = tlsrpt.ReadReport(strings.NewReader(report), tlsrpt.ReadOptions{Strict: true})
	fmt.Println(err)
	// Output:
	// example.com 2026-11-01 00:00:00 +0000 UTC
	// contact-info: null, expected a string (RFC 8460 4.4); read as empty
	// date-range.start-datetime: "2026-11-01T00:00:00" has no time zone offset, which RFC 3339 5.6 requires; read as UTC
	// policies[0].policy.policy-domain: "Example.COM." read as "example.com": domains are written in lower case without a trailing dot
	// tlsrpt: invalid report: contact-info: null, expected a string
}

// A Target describes the policies of a delivery, each for its own policy
// domain: MTA-STS for the recipient domain, DANE for the MX host.
func ExampleTarget() {
	recipient, _ := mtasts.ParseDomain("example.com")
	mx, _ := mtasts.ParseDomain("mx1.provider.example")
	target := tlsrpt.Target{Recipient: recipient, MX: mx}

	text := "version: STSv1\nmode: enforce\nmx: *.provider.example\nmax_age: 604800\n"
	policy, _ := mtasts.ParsePolicy(text)
	sts := target.STS(policy, text)
	fmt.Println(sts.PolicyType, sts.PolicyDomain, sts.MXHost, len(sts.PolicyString), "lines")

	tlsa, err := target.TLSA([]string{"3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tlsa.PolicyType, tlsa.PolicyDomain, tlsa.PolicyString)
	// Output:
	// sts example.com [*.provider.example] 4 lines
	// tlsa mx1.provider.example [3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6]
}
