package tlsrpt_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// benchPolicy is an MTA-STS policy of a usual size.
func benchPolicy(domain string) tlsrpt.Policy {
	return tlsrpt.Policy{
		PolicyType: tlsrpt.PolicyTypeSTS,
		PolicyString: []string{"version: STSv1", "mode: enforce", "mx: mx1." + domain, "mx: mx2." + domain,
			"mx: *.backup-mx." + domain, "max_age: 604800"},
		PolicyDomain: domain,
		MXHost:       []string{"mx1." + domain, "mx2." + domain, "*.backup-mx." + domain},
	}
}

// Recording a success for a policy already seen today, by the policy: all
// cores on the same policy, the worst case for sharing.
func BenchmarkSuccess(b *testing.B) {
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	p := benchPolicy("example.com")
	rec.Success(p)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec.Success(p)
		}
	})
}

// Successes spread over 10,000 policy domains, as an MTA's traffic is.
func BenchmarkSuccessManyDomains(b *testing.B) {
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	policies := make([]tlsrpt.Policy, 10000)
	for i := range policies {
		policies[i] = benchPolicy(fmt.Sprintf("domain%d.example", i))
		rec.Success(policies[i])
	}
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			rec.Success(policies[i%len(policies)])
			i++
		}
	})
}

// Recording a failure with its details, of a row already seen (the common
// case: a broken MX fails every session) and of 100 rows in turn.
func BenchmarkFailure(b *testing.B) {
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	p := benchPolicy("example.com")
	rows := make([]tlsrpt.FailureDetail, 100)
	for i := range rows {
		rows[i] = tlsrpt.FailureDetail{
			ResultType:          mtasts.ResultCertificateExpired,
			SendingMTAIP:        netip.MustParseAddr("2001:db8::25"),
			ReceivingMXHostname: "mx1.example.com",
			ReceivingMXHelo:     "mx1.example.com",
			ReceivingIP:         netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}),
			FailureReasonCode:   "X509_V_ERR_CERT_HAS_EXPIRED",
		}
	}
	b.Run("row=1", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rec.Failure(p, rows[0])
			}
		})
	})
	b.Run("rows=100", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				rec.Failure(p, rows[i%len(rows)])
				i++
			}
		})
	})
}

// Reading a closed day of 100,000 policy domains into reports: Take from a
// memory store (flushing the recorder first), then Reports.
func BenchmarkTakeDay100k(b *testing.B) {
	const domains = 100000
	day := storefixture.DayOne
	clk := newClock(day)
	policies := make([]tlsrpt.Policy, domains)
	for i := range policies {
		policies[i] = benchPolicy(fmt.Sprintf("domain%d.example", i))
	}
	row := storefixture.Row(mtasts.ResultCertificateExpired, "example.com", 1, 0)
	info := tlsrpt.ReportInfo{OrganizationName: "Example", ContactInfo: "tlsrpt@example.net"}
	b.ReportAllocs()
	var reports int
	for b.Loop() {
		b.StopTimer()
		clk.set(day)
		rec, err := tlsrpt.NewRecorder(tlsrpt.WithNow(tlsrpt.RecorderOptions{}, clk.now))
		if err != nil {
			b.Fatal(err)
		}
		for i, p := range policies {
			rec.Success(p)
			if i%10 == 0 {
				row.ReceivingMXHostname = "mx1." + p.PolicyDomain
				rec.Failure(p, row)
			}
		}
		if err := rec.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		clk.set(afterDay(day))
		b.StartTimer()

		d, err := rec.Take(context.Background(), day)
		if err != nil {
			b.Fatal(err)
		}
		reports = len(d.Reports(info))
	}
	if reports != domains {
		b.Fatalf("%d reports, want %d", reports, domains)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/domains, "ns/domain")
}

// Flushing the counts of 100,000 policies, each with new counts, to a
// memory store: what Run does every second at most.
func BenchmarkFlush100k(b *testing.B) {
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	policies := make([]tlsrpt.Policy, 100000)
	for i := range policies {
		policies[i] = benchPolicy(fmt.Sprintf("domain%d.example", i))
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for _, p := range policies {
			rec.Success(p)
		}
		b.StartTimer()
		if err := rec.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
