package cache_test

import (
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
)

// TestHitAllocatesNothing: a hit on a policy in use hands out the policy
// that memory holds decoded, without allocating, the same one each time.
func TestHitAllocatesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		c := w.newCache(t, cache.Options{})
		d := domain(t, "example.com")
		if r := c.Get(t.Context(), d); r.Policy == nil || !r.Fresh {
			t.Fatalf("first Get = %+v, want a fresh policy", r)
		}
		first := c.Get(t.Context(), d).Policy
		if first == nil || !c.Materialized(d.ASCII) {
			t.Fatalf("hit: policy %v, materialized %v; want a policy, kept decoded", first, c.Materialized(d.ASCII))
		}
		var r cache.Result
		if n := testing.AllocsPerRun(100, func() { r = c.Get(t.Context(), d) }); n != 0 {
			t.Errorf("hit: %v allocations, want 0", n)
		}
		if r.Policy != first {
			t.Errorf("hits gave policies %p and %p, want the one memory holds", first, r.Policy)
		}
	})
}

// TestSweepDropsIdlePolicy: Run drops the decoded policy of a domain not used
// since its previous round, keeps that of a domain in use, and the next hit
// on the idle domain decodes an equal policy again.
func TestSweepDropsIdlePolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("idle.example", "1", "version: STSv1\nmode: enforce\nmx: mail.idle.example\nmx: *.xn--bcher-kva.example\nmax_age: 604800\nx-ext: v\n")
		w.publish("busy.example", "1", policyText("testing", 604800))
		c := w.newCache(t, cache.Options{})
		go c.Run(t.Context())
		idle, busy := domain(t, "idle.example"), domain(t, "busy.example")
		for _, d := range []mtasts.Domain{idle, busy} {
			c.Get(t.Context(), d)
		}
		before := c.Get(t.Context(), idle).Policy
		busyPolicy := c.Get(t.Context(), busy).Policy
		if before == nil || busyPolicy == nil || !c.Materialized(idle.ASCII) {
			t.Fatalf("hits: %v, %v; want policies kept decoded", before, busyPolicy)
		}

		// Run's rounds at one and two minutes: idle is not used after
		// the first, busy is.
		for range 4 {
			time.Sleep(30 * time.Second)
			synctest.Wait()
			c.Get(t.Context(), busy)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if c.Materialized(idle.ASCII) {
			t.Error("idle domain: decoded policy kept after a round of Run without use, want the compact form alone")
		}
		if !c.Materialized(busy.ASCII) {
			t.Error("busy domain: decoded policy dropped, want it kept while in use")
		}
		if p := c.Get(t.Context(), busy).Policy; p != busyPolicy {
			t.Errorf("busy domain: policy %p, want the one held, %p", p, busyPolicy)
		}

		r := c.Get(t.Context(), idle)
		if r.Policy == nil || !reflect.DeepEqual(r.Policy, before) || r.Fresh {
			t.Fatalf("hit after the sweep = %+v, want %+v from memory", r.Policy, before)
		}
		if !c.Materialized(idle.ASCII) {
			t.Error("hit after the sweep: policy not kept decoded")
		}
		if w.fetchCount(idle.ASCII) != 1 {
			t.Errorf("%d fetches of idle.example, want 1", w.fetchCount(idle.ASCII))
		}
	})
}
