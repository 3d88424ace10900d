package mtasts_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
)

func ExampleParsePolicy() {
	policy, err := mtasts.ParsePolicy("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(policy.Mode, policy.MaxAge(), len(policy.MX))

	_, err = mtasts.ParsePolicy("version: STSv1\nmode: enforced\n")
	fmt.Println(err)
	fmt.Println(errors.Is(err, mtasts.ErrPolicySyntax))
	// Output:
	// enforce 168h0m0s 2
	// mtasts: invalid policy: line 2: "mode": invalid mode "enforced", expected "enforce", "testing" or "none"
	// true
}

func ExampleParseRecord() {
	record, ismtasts, err := mtasts.ParseRecord("v=STSv1; id=20160831085700Z;")
	fmt.Println(record.ID, ismtasts, err)

	// Other TXT records at the name are not MTA-STS records, not errors.
	_, ismtasts, err = mtasts.ParseRecord("v=spf1 -all")
	fmt.Println(ismtasts, err)
	// Output:
	// 20160831085700Z true <nil>
	// false <nil>
}

func ExamplePolicy_Matches() {
	policy, err := mtasts.ParsePolicy("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n")
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"mail.example.com", "mx1.example.net", "example.net", "a.b.example.net"} {
		host, err := mtasts.ParseDomain(name)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(name, policy.Matches(host))
	}
	// Output:
	// mail.example.com true
	// mx1.example.net true
	// example.net false
	// a.b.example.net false
}

func ExampleLookupRecord() {
	// The test kit's DNS. In production: resolver := &adns.Resolver{}
	// (or any mtasts.Resolver).
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_mta-sts.example.com", "v=spf1 -all", "v=STSv1; id=20160831085700Z;")
	domain, err := mtasts.ParseDomain("example.com")
	if err != nil {
		log.Fatal(err)
	}
	record, text, err := mtasts.LookupRecord(context.Background(), resolver, domain)
	fmt.Printf("%q %s %v\n", text, record.ID, err)

	other, _ := mtasts.ParseDomain("example.org")
	_, _, err = mtasts.LookupRecord(context.Background(), resolver, other)
	fmt.Println(errors.Is(err, mtasts.ErrNoRecord), mtasts.TLSReportFailureReason(err))
	// Output:
	// "v=STSv1; id=20160831085700Z;" 20160831085700Z <nil>
	// true mta-sts-record-not-found
}

// FetchPolicy fetches a domain's policy, whether or not its TXT record
// says it has one: delivery code uses Get, or the cache subpackage, which
// applies RFC 8461 5. Here the test kit's policy host on 127.0.0.1 stands
// in for the web: it serves example.com's policy, presents a certificate for
// another name as example.org's policy host, and has no host for
// example.net, as if its name did not resolve.
func ExampleFetchPolicy() {
	server, err := mtaststest.StartPolicyServer()
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	defer server.Install()() // mtasts.HTTPClient fetches from it until the end
	server.SetPolicy("example.com", "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n")
	server.SetPolicy("example.org", "version: STSv1\nmode: enforce\nmx: mail.example.org\nmax_age: 604800\n")
	cert, err := server.IssueCertificate(time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "www.example.org")
	if err != nil {
		log.Fatal(err)
	}
	server.SetCertificate("example.org", cert)

	for _, name := range []string{"example.com", "example.org", "example.net"} {
		domain, err := mtasts.ParseDomain(name)
		if err != nil {
			log.Fatal(err)
		}
		policy, _, err := mtasts.FetchPolicy(context.Background(), domain)
		switch {
		case errors.Is(err, mtasts.ErrNoPolicy):
			fmt.Println(name, "publishes no policy")
		case err != nil:
			// A TLS report (RFC 8460) names the failure so.
			fmt.Println(name, mtasts.TLSReportResultType(err), mtasts.TLSReportFailureReason(err))
		default:
			fmt.Println(name, policy.Mode, policy.MX)
		}
	}
	// Output:
	// example.com enforce [mail.example.com]
	// example.org sts-webpki-invalid mta-sts-policy-certificate-host-mismatch
	// example.net publishes no policy
}

// Delivery code checks each MX host of a domain against its policy before
// it connects (RFC 8461 4.1, 5). Here the test kit's DNS and policy host
// stand in for the network; in production the resolver is
// &adns.Resolver{}, and policies come through the cache subpackage, which
// applies RFC 8461 5.1 and keeps them.
func ExampleGet() {
	resolver := mtaststest.NewResolver()
	server, err := mtaststest.StartPolicyServer()
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	defer server.Install()() // mtasts.HTTPClient fetches from it until the end
	resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=20250601T000000;")
	server.SetPolicy("example.com", "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n")

	for _, delivery := range []struct{ domain, mx string }{
		{"example.com", "mail.example.com"},
		{"example.com", "backup.example.net"},
		{"example.org", "mx.example.org"}, // no TXT record
	} {
		domain, _ := mtasts.ParseDomain(delivery.domain)
		mx, _ := mtasts.ParseDomain(delivery.mx)
		_, policy, _, err := mtasts.Get(context.Background(), resolver, domain)
		switch {
		case err != nil:
			// RFC 8461 5.1: without a valid policy, deliver as if
			// the domain had none.
			fmt.Printf("%s: no policy (%s): deliver as usual\n", mx.ASCII, mtasts.TLSReportFailureReason(err))
		case policy.Mode == mtasts.ModeNone:
			fmt.Printf("%s: mode none: deliver as usual\n", mx.ASCII)
		case policy.Mode == mtasts.ModeTesting:
			fmt.Printf("%s: mode testing: deliver, and report what the policy would refuse\n", mx.ASCII)
		case !policy.Matches(mx):
			fmt.Printf("%s: not allowed by the policy: do not deliver to it\n", mx.ASCII)
		default:
			fmt.Printf("%s: deliver only over STARTTLS with a certificate valid for it\n", mx.ASCII)
		}
	}
	// Output:
	// mail.example.com: deliver only over STARTTLS with a certificate valid for it
	// backup.example.net: not allowed by the policy: do not deliver to it
	// mx.example.org: no policy (mta-sts-record-not-found): deliver as usual
}
