package cache_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
)

// TestNetworkBounded: cold Gets of many distinct domains whose DNS hangs run
// at most MaxNetwork lookups at once, and no goroutine for each waiting
// domain; each caller waits on its own context, and the wait is exported.
// Once every caller has left, the updates still waiting for a slot are
// dropped, and nothing more is looked up.
func TestNetworkBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var running, most, started atomic.Int64
		hang := func(ctx context.Context, r mtasts.Resolver, d mtasts.Domain) (*mtasts.Record, string, error) {
			started.Add(1)
			n := running.Add(1)
			defer running.Add(-1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			<-ctx.Done()
			return nil, "", fmt.Errorf("%w: %w", mtasts.ErrDNS, ctx.Err())
		}
		w := newWorld()
		c := w.newCache(t, cache.Fake(cache.Options{MaxNetwork: 8, Timeout: time.Minute}, hang, nil))
		reg := prometheus.NewRegistry()
		if err := c.RegisterMetrics(reg); err != nil {
			t.Fatal(err)
		}

		const callers = 1000
		before := runtime.NumGoroutine()
		var wg sync.WaitGroup
		results := make([]cache.Result, callers)
		for i := range callers {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				results[i] = c.Get(ctx, domain(t, fmt.Sprintf("hang%d.example", i)))
			})
		}
		synctest.Wait()
		// The callers' own goroutines, and 8 updates.
		if n := runtime.NumGoroutine() - before - callers; n > 8 {
			t.Errorf("%d goroutines besides the callers while %d domains hang, want at most 8", n, callers)
		}
		wg.Wait()
		if m := most.Load(); m != 8 {
			t.Errorf("at most %d lookups ran at once, want MaxNetwork (8)", m)
		}
		for i, r := range results {
			if r.Policy != nil || !errors.Is(r.Err, context.DeadlineExceeded) {
				t.Fatalf("Get %d = %+v; want its own context's deadline", i, r)
			}
		}
		// The callers left after 10 s: the updates that waited for a
		// slot then never run, and those running end by Timeout.
		time.Sleep(time.Minute)
		synctest.Wait()
		n := started.Load()
		if n >= callers {
			t.Errorf("%d lookups began; want those of the updates whose callers were waiting only", n)
		}
		if w := histogramCount(t, reg, "mtastsgo_cache_network_wait_seconds"); w != uint64(n) {
			t.Errorf("network waits observed %d times, want one per update run (%d)", w, n)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if started.Load() != n || running.Load() != 0 {
			t.Errorf("an hour later: %d lookups began, %d run; want %d and none", started.Load(), running.Load(), n)
		}
	})
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
