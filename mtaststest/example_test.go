package mtaststest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/mjl-/adns"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// A test of delivery code publishes a domain's record and policy, points
// mtasts at the server, and runs the library unchanged. In a test,
// t.Cleanup(server.Close) and t.Cleanup(server.Install()) clean up.
func Example() {
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=20240101")

	server, err := mtaststest.StartPolicyServer()
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	server.SetPolicy("example.com", "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n")
	restore := server.Install()
	defer restore()

	domain, _ := mtasts.ParseDomain("example.com")
	record, policy, _, err := mtasts.Get(context.Background(), resolver, domain)
	fmt.Println(record.ID, policy.Mode, policy.MX[0], err)
	fmt.Println(resolver.Lookups("_mta-sts.example.com"), server.Requests("example.com"))

	resolver.ServFail("_mta-sts.example.com")
	_, _, _, err = mtasts.Get(context.Background(), resolver, domain)
	fmt.Println(errors.Is(err, mtasts.ErrDNS))
	// Output:
	// 20240101 enforce mail.example.com <nil>
	// 1 1
	// true
}

// A test of how delivery code treats DNS failures makes names fail in the
// ways a real resolver does.
func ExampleResolver() {
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_mta-sts.spf.example.", "v=spf1 -all") // exists, no MTA-STS record
	resolver.ServFail("_mta-sts.servfail.example")
	resolver.ServFail("_mta-sts.bogus.example", adns.ErrDNSSECBogus)

	for _, name := range []string{"spf.example", "unknown.example", "servfail.example", "bogus.example"} {
		_, _, err := mtasts.LookupRecord(context.Background(), resolver, mtasts.Domain{ASCII: name})
		fmt.Println(name, mtasts.TLSReportFailureReason(err))
	}
	fmt.Println(resolver.Lookups("_mta-sts.bogus.example."))
	// Output:
	// spf.example mta-sts-record-not-found
	// unknown.example mta-sts-record-not-found
	// servfail.example mta-sts-record-dns-error
	// bogus.example dns-extended-error-6-dnssec-bogus
	// 1
}

// A test of how delivery code treats a policy host with a bad certificate
// has the server present one: here, one that expired.
func ExamplePolicyServer_SetCertificate() {
	server, err := mtaststest.StartPolicyServer()
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	defer server.Install()()

	server.SetPolicy("example.com", "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n")
	now := time.Now()
	cert, err := server.IssueCertificate(now.Add(-48*time.Hour), now.Add(-24*time.Hour), "mta-sts.example.com")
	if err != nil {
		log.Fatal(err)
	}
	server.SetCertificate("example.com", cert)

	_, _, err = mtasts.FetchPolicy(context.Background(), mtasts.Domain{ASCII: "example.com"})
	fmt.Println(mtasts.TLSReportResultType(err), mtasts.TLSReportFailureReason(err))
	// Output:
	// sts-webpki-invalid mta-sts-policy-certificate-expired
}
