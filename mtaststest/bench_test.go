package mtaststest_test

import (
	"context"
	"testing"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/testkit"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// BenchmarkResolverLookupTXT measures the fake resolver's own cost, which a
// cache benchmark built on it pays on every miss.
func BenchmarkResolverLookupTXT(b *testing.B) {
	r := mtaststest.NewResolver()
	r.SetTXT("_mta-sts.example.org", "v=STSv1; id=1")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.LookupTXT(ctx, "_mta-sts.example.org."); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPolicyServerFetch measures a FetchPolicy from the policy server
// over a kept-alive HTTP/2 connection.
func BenchmarkPolicyServerFetch(b *testing.B) {
	s := testkit.PolicyServer(b)
	b.Cleanup(s.Install())
	s.SetPolicy("example.org", "version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 86400\n")
	ctx := context.Background()
	domain := mtasts.Domain{ASCII: "example.org"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := mtasts.FetchPolicy(ctx, domain); err != nil {
			b.Fatal(err)
		}
	}
}
