package cache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mjl-/adns"

	"github.com/mtasts-go/mtasts"
)

// fullCache returns a cache holding n domains, every other one with a valid
// policy, put in memory directly: a million updates through the network
// path would take the benchmark's time.
func fullCache(b *testing.B, n int) (*Cache, []mtasts.Domain) {
	c, err := New(Options{Resolver: nullResolver{}, MaxEntries: n})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	p, err := mtasts.ParsePolicy("version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	domains := make([]mtasts.Domain, n)
	for i := range domains {
		domains[i] = mtasts.Domain{ASCII: fmt.Sprintf("d%07d.example", i)}
		it := c.item(domains[i], now)
		it.checkedAt.Store(c.clock(now))
		if i%2 == 0 {
			it.snap.Store(newSnapshot(p, "1", now, now.Add(p.MaxAge())))
		} else {
			it.snap.Store(noRecord)
		}
	}
	return c, domains
}

type nullResolver struct{}

func (nullResolver) LookupTXT(ctx context.Context, name string) ([]string, adns.Result, error) {
	return nil, adns.Result{}, fmt.Errorf("%w: no network in this benchmark", mtasts.ErrDNS)
}

// BenchmarkSweep measures one round of Run over a million domains, none of
// them due for a refresh or a drop: the scan that Run makes once a minute.
func BenchmarkSweep(b *testing.B) {
	c, _ := fullCache(b, 1_000_000)
	ctx := context.Background()
	now := time.Now()
	for b.Loop() {
		c.sweep(ctx, now)
	}
}

// BenchmarkHitDuringSweep measures hits on random domains of a million,
// alone and while another goroutine sweeps without pause, and reports the
// median, 99th percentile and largest latency of a hit.
func BenchmarkHitDuringSweep(b *testing.B) {
	c, domains := fullCache(b, 1_000_000)
	for _, sweeping := range []bool{false, true} {
		b.Run(fmt.Sprintf("sweeping=%v", sweeping), func(b *testing.B) {
			var stop atomic.Bool
			done := make(chan struct{})
			go func() {
				defer close(done)
				for sweeping && !stop.Load() {
					c.sweep(context.Background(), time.Now())
				}
			}()
			rng := rand.New(rand.NewPCG(1, 2))
			ctx := context.Background()
			// Room for the latencies up front: growing the slice
			// would make the collector's work part of the figures.
			lat := make([]time.Duration, 0, 1<<22)
			for b.Loop() {
				d := domains[rng.IntN(len(domains))]
				start := time.Now()
				c.Get(ctx, d)
				lat = append(lat, time.Since(start))
			}
			stop.Store(true)
			<-done
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
			b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds()), "max-ns")
		})
	}
}
