package mtasts_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/mjl-/adns"

	"github.com/mtasts-go/mtasts"
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

// staticResolver answers TXT lookups from a map, and reports other names as
// not existing, as *adns.Resolver would.
type staticResolver map[string][]string

func (r staticResolver) LookupTXT(ctx context.Context, name string) ([]string, adns.Result, error) {
	if txts, ok := r[name]; ok {
		return txts, adns.Result{}, nil
	}
	return nil, adns.Result{}, &adns.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func ExampleLookupRecord() {
	// In production: resolver := &adns.Resolver{} (or any mtasts.Resolver).
	resolver := staticResolver{
		"_mta-sts.example.com.": {"v=spf1 -all", "v=STSv1; id=20160831085700Z;"},
	}
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

// This example fetches a policy over the network, so it is not run by go
// test. Delivery code normally gets policies through a cache that applies
// RFC 8461 section 5; see the cache subpackage.
func ExampleFetchPolicy() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	domain, err := mtasts.ParseDomain("example.com")
	if err != nil {
		log.Fatal(err)
	}
	policy, _, err := mtasts.FetchPolicy(ctx, domain)
	switch {
	case errors.Is(err, mtasts.ErrNoPolicy):
		fmt.Println("no policy published")
	case err != nil:
		// For a TLS report (RFC 8460).
		fmt.Println(mtasts.TLSReportResultType(err), mtasts.TLSReportFailureReason(err))
	default:
		fmt.Println(policy.Mode, policy.MX)
	}
}

// This example looks a domain up over the network, so it is not run by go
// test. It shows the checks outbound delivery code makes for one MX host.
func ExampleGet() {
	ctx := context.Background()
	resolver := &adns.Resolver{}
	domain, err := mtasts.ParseDomain("example.com")
	if err != nil {
		log.Fatal(err)
	}
	_, policy, _, err := mtasts.Get(ctx, resolver, domain)
	if err != nil {
		// RFC 8461 5.1: without a valid (cached) policy, deliver as if
		// the domain had no MTA-STS policy.
		fmt.Println("no policy:", err)
		return
	}
	mx, _ := mtasts.ParseDomain("mail.example.com")
	switch {
	case policy.Mode == mtasts.ModeNone:
		fmt.Println("deliver as usual")
	case !policy.Matches(mx) && policy.Mode == mtasts.ModeEnforce:
		fmt.Println("MX not allowed by the policy: do not deliver to it")
	default:
		fmt.Println("deliver over STARTTLS with a PKIX-valid certificate for", mx.ASCII)
	}
}
