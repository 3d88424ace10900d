package tlsrpt_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// benchReports returns n reports of one day, each of its own policy domain.
func benchReports(n int) []tlsrpt.Report {
	reports := make([]tlsrpt.Report, n)
	for i := range reports {
		reports[i] = storefixture.Report(storefixture.DayOne, fmt.Sprintf("d%d.example", i), "id"+strconv.Itoa(i), 1)
	}
	return reports
}

// markAll runs mark(i) for each report at once, as a Reporter's deliveries
// do, and returns each call's latency.
func markAll(b *testing.B, n int, mark func(i int) error) []time.Duration {
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			start := time.Now()
			if err := mark(i); err != nil {
				b.Error(err)
			}
			lat[i] = time.Since(start)
		})
	}
	wg.Wait()
	return lat
}

// reportLatency reports the 50th and 90th percentiles of lat, in ms.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms/mark")
	b.ReportMetric(float64(lat[len(lat)*9/10])/1e6, "p90-ms/mark")
}

// BenchmarkFileOutboxMarks marks each of 1,000 pending reports at once, as
// the deliveries of a day's reports do: Delivered (a rua URI took it) and
// Done. An op is the 1,000 marks; p50 and p90 are of one mark's latency.
//
//	go test -run '^$' -bench FileOutboxMarks -benchtime 3x -benchmem ./tlsrpt
func BenchmarkFileOutboxMarks(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	reports := benchReports(n)
	b.Run("delivered", func(b *testing.B) {
		o, err := tlsrpt.OpenFileOutbox(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		if err := o.Put(ctx, reports); err != nil {
			b.Fatal(err)
		}
		var lat []time.Duration
		round := 0
		for b.Loop() {
			round++
			uri := "https://c" + strconv.Itoa(round) + ".example/r"
			lat = append(lat, markAll(b, n, func(i int) error { return o.Delivered(ctx, &reports[i], uri) })...)
		}
		reportLatency(b, lat)
	})
	b.Run("done", func(b *testing.B) {
		var lat []time.Duration
		for b.Loop() {
			b.StopTimer()
			o, err := tlsrpt.OpenFileOutbox(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			if err := o.Put(ctx, reports); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			lat = append(lat, markAll(b, n, func(i int) error { return o.Done(ctx, &reports[i]) })...)
		}
		reportLatency(b, lat)
	})
}
