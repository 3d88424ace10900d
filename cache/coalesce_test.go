package cache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/internal/testkit"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// TestCoalescingLateArrivals: callers that arrive while the first lookup and
// fetch run, and just after they ended, share one TXT lookup and one fetch;
// the answer just published serves the late ones. Arrivals are spread over
// 10 ms and the lookup and fetch take 2 and 3 ms, so each round has callers
// before, during and after the update.
func TestCoalescingLateArrivals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		slowLookup := func(ctx context.Context, r mtasts.Resolver, d mtasts.Domain) (*mtasts.Record, string, error) {
			time.Sleep(2 * time.Millisecond)
			return mtasts.LookupRecord(ctx, r, d)
		}
		slowFetch := func(ctx context.Context, d mtasts.Domain) (*mtasts.Policy, string, error) {
			time.Sleep(3 * time.Millisecond)
			return w.fetch(ctx, d)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for round := range 50 {
			name := fmt.Sprintf("round%d.example", round)
			if round%5 == 4 {
				// Some rounds have no policy: the answer
				// "none" is shared the same way.
				w.resolver.Remove("_mta-sts." + name)
			} else {
				w.publish(name, "1", policyText("enforce", 86400))
			}
			c := w.newCache(t, cache.Fake(cache.Options{}, slowLookup, slowFetch))
			d := domain(t, name)
			var wg sync.WaitGroup
			for range 200 {
				delay := time.Duration(rng.Int64N(int64(10 * time.Millisecond)))
				wg.Go(func() {
					time.Sleep(delay)
					c.Get(t.Context(), d)
				})
			}
			wg.Wait()
			if n := w.lookupCount(name); n != 1 {
				t.Errorf("round %d: %d TXT lookups for 200 callers, want 1", round, n)
			}
			if n := w.fetchCount(name); round%5 != 4 && n != 1 {
				t.Errorf("round %d: %d fetches, want 1", round, n)
			}
		}
	})
}

// TestCoalescingRealServer: 1,000 cold Gets per round against a real TLS
// policy server, arriving over 10 ms of real time, share one TXT lookup and
// one fetch, round after round.
func TestCoalescingRealServer(t *testing.T) {
	resolver := mtaststest.NewResolver()
	server := testkit.PolicyServer(t)
	t.Cleanup(server.Install())
	c, err := cache.New(cache.Options{Resolver: resolver})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 20 {
		name := fmt.Sprintf("round%d.example", round)
		resolver.SetTXT("_mta-sts."+name, "v=STSv1; id=1")
		server.SetResponse(name, mtaststest.Response{Body: policyText("enforce", 86400)})
		d := domain(t, name)
		var wg sync.WaitGroup
		start := time.Now()
		for range 1000 {
			at := start.Add(time.Duration(rng.Int64N(int64(10 * time.Millisecond))))
			wg.Go(func() {
				// Arrive at at: some before the lookup
				// returns, some during the fetch, some after.
				for time.Now().Before(at) {
					runtime.Gosched()
				}
				if r := c.Get(context.Background(), d); r.Policy == nil {
					t.Errorf("round %d: Get = %+v", round, r)
				}
			})
		}
		wg.Wait()
		if n := resolver.Lookups("_mta-sts." + name); n != 1 {
			t.Errorf("round %d: %d TXT lookups for 1,000 callers, want 1", round, n)
		}
		if n := server.Requests(name); n != 1 {
			t.Errorf("round %d: %d fetches, want 1", round, n)
		}
	}
}
