package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
)

// logRecorder is a slog.Handler that keeps the level of each record.
type logRecorder struct {
	mu     sync.Mutex
	levels []slog.Level
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.levels = append(h.levels, r.Level)
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// warnings returns how many records of level Warn or above were logged.
func (h *logRecorder) warnings() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, l := range h.levels {
		if l >= slog.LevelWarn {
			n++
		}
	}
	return n
}

// TestRecheck: RFC 8461 5.1 step 3, a check of the record's id before a
// message is permanently failed.
func TestRecheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 7*86400))
		c := w.newCache(t, cache.Options{CheckInterval: 24 * time.Hour})
		d := domain(t, "example.com")
		c.Get(t.Context(), d)

		// Same id: a lookup, no fetch, the cached policy.
		r := c.Recheck(t.Context(), d)
		if r.Policy == nil || r.RecordID != "1" || w.lookupCount("example.com") != 2 || w.fetchCount("example.com") != 1 {
			t.Fatalf("Recheck, same id = %+v, %d lookups, %d fetches; want the cached policy, 2 lookups, 1 fetch", r, w.lookupCount("example.com"), w.fetchCount("example.com"))
		}

		// A new id, well inside CheckInterval: Get still answers from
		// the cache, Recheck sees the new policy at once.
		w.publish("example.com", "2", policyText("testing", 7*86400))
		if r := c.Get(t.Context(), d); r.RecordID != "1" {
			t.Fatalf("Get = %+v, want the cached policy", r)
		}
		r = c.Recheck(t.Context(), d)
		if r.Policy == nil || r.Policy.Mode != mtasts.ModeTesting || r.RecordID != "2" || !r.Fresh {
			t.Fatalf("Recheck, new id = %+v; want the new policy, fresh", r)
		}
		if r := c.Get(t.Context(), d); r.RecordID != "2" || r.Fresh {
			t.Fatalf("Get after Recheck = %+v, want the new policy from the cache", r)
		}

		// A new id whose fetch fails: the cached policy stays, the
		// failure is reported, and the id is not fetched again within
		// the back-off (RFC 8461 3.3).
		w.publish("example.com", "3", policyText("enforce", 7*86400))
		w.breakFetch("example.com", errFetch)
		for range 3 {
			r = c.Recheck(t.Context(), d)
			if r.RecordID != "2" || !errors.Is(r.Err, mtasts.ErrPolicyFetch) {
				t.Fatalf("Recheck, failing fetch = %+v; want the cached policy and the failure", r)
			}
		}
		if n := w.fetchCount("example.com"); n != 3 {
			t.Errorf("%d fetches, want 3: the failed id is not retried within the back-off", n)
		}
	})
}

func TestRecheckCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.resolver.Hold("_mta-sts.slow.example") // never released: lookups hang until their context ends
		c := w.newCache(t, cache.Options{Timeout: time.Hour})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if r := c.Recheck(ctx, domain(t, "slow.example")); r.Policy != nil || !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Fatalf("Recheck = %+v, want the deadline's error", r)
		}
	})
}

// TestRefreshRegardlessOfRecord: RFC 8461 10.2, the background refresh
// fetches the live policy "regardless of the state of the '_mta-sts' TXT
// record", so an attacker blocking DNS must do so for the policy's whole
// lifetime.
func TestRefreshRegardlessOfRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 2*86400))
		c := w.newCache(t, cache.Options{RefreshAge: 24 * time.Hour, CheckInterval: 6 * time.Hour})
		go c.Run(t.Context())
		d := domain(t, "example.com")
		first := c.Get(t.Context(), d)

		w.resolver.ServFail("_mta-sts.example.com")
		for day := 1; day <= 5; day++ {
			time.Sleep(24 * time.Hour)
			synctest.Wait()
			r := c.Get(t.Context(), d)
			if r.Policy == nil || r.Policy.Mode != mtasts.ModeEnforce || r.RecordID != "1" {
				t.Fatalf("day %d: Get = %+v; want the refreshed policy", day, r)
			}
			if !r.Expires.After(first.Expires) {
				t.Fatalf("day %d: expires %v, not after the first fetch's %v: not refreshed", day, r.Expires, first.Expires)
			}
			if !errors.Is(r.Err, mtasts.ErrDNS) || mtasts.TLSReportResultType(r.Err) != mtasts.ResultSTSPolicyFetchError {
				t.Fatalf("day %d: Get = %+v; want the DNS failure reported", day, r)
			}
		}
	})
}

// TestRefreshFailureBacksOff: a refresh that keeps failing, at the TXT
// lookup and the fetch, is retried every Backoff, not at every sweep of Run (once a minute).
func TestRefreshFailureBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 7*86400))
		c := w.newCache(t, cache.Options{RefreshAge: 24 * time.Hour, Backoff: 10 * time.Minute, CheckInterval: 1000 * time.Hour})
		go c.Run(t.Context())
		d := domain(t, "example.com")
		c.Get(t.Context(), d)

		w.resolver.ServFail("_mta-sts.example.com")
		w.breakFetch("example.com", errFetch)
		time.Sleep(24 * time.Hour) // refresh due
		lookups, fetches := w.lookupCount("example.com"), w.fetchCount("example.com")
		time.Sleep(time.Hour)
		synctest.Wait()
		// One attempt per 10 minutes: 6 in the hour, 7 at most with the
		// edges.
		if n := w.lookupCount("example.com") - lookups; n < 5 || n > 7 {
			t.Errorf("%d TXT lookups in an hour of failing refreshes, want about 6", n)
		}
		if n := w.fetchCount("example.com") - fetches; n < 5 || n > 7 {
			t.Errorf("%d fetches in an hour of failing refreshes, want about 6", n)
		}
		if r := c.Get(t.Context(), d); r.Policy == nil || r.Err == nil {
			t.Errorf("Get = %+v; want the cached policy and the failure", r)
		}
	})
}

// TestRefreshFailureAlerts: RFC 8461 3.3 and 10.2, a failed refresh is
// logged as a warning and reported, unless the cached policy's mode is none;
// RFC 8461 6 makes its failures unreportable.
func TestRefreshFailureAlerts(t *testing.T) {
	for _, mode := range []string{"enforce", "testing", "none"} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld()
				text := policyText(mode, 7*86400)
				if mode == "none" {
					text = "version: STSv1\nmode: none\nmax_age: 604800\n"
				}
				w.publish("example.com", "1", text)
				logs := &logRecorder{}
				c := w.newCache(t, cache.Options{Logger: slog.New(logs), CheckInterval: time.Hour})
				d := domain(t, "example.com")
				c.Get(t.Context(), d)

				w.resolver.Remove("_mta-sts.example.com")
				w.breakFetch("example.com", errFetch)
				time.Sleep(2 * time.Hour)
				c.Get(t.Context(), d)
				synctest.Wait()
				r := c.Get(t.Context(), d)
				if r.Policy == nil || string(r.Policy.Mode) != mode {
					t.Fatalf("Get = %+v; want the cached %s policy", r, mode)
				}
				if mode == "none" {
					if r.Err != nil || mtasts.TLSReportResultType(r.Err) != "" || logs.warnings() != 0 {
						t.Errorf("mode none: Err %v, ResultType %q, %d warnings; want nothing reported", r.Err, mtasts.TLSReportResultType(r.Err), logs.warnings())
					}
					return
				}
				if !errors.Is(r.Err, mtasts.ErrNoRecord) || mtasts.TLSReportResultType(r.Err) != mtasts.ResultSTSPolicyFetchError || mtasts.TLSReportFailureReason(r.Err) != "mta-sts-record-not-found" || logs.warnings() != 1 {
					t.Errorf("mode %s: Result %+v, %d warnings; want the missing record reported and one warning", mode, r, logs.warnings())
				}
			})
		})
	}
}

// TestRemovalWorkflow: RFC 8461 8.3, a domain publishes mode none with a new
// id, then removes its record and policy host; once the none policy expires
// the domain has no policy, and the old enforce policy does not come back,
// not even from the store.
func TestRemovalWorkflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 30*86400))
		store := cache.NewMemoryStore(10)
		c := w.newCache(t, cache.Options{Store: store, CheckInterval: time.Hour})
		d := domain(t, "example.com")
		c.Get(t.Context(), d)

		w.publish("example.com", "2", "version: STSv1\nmode: none\nmax_age: 86400\n")
		time.Sleep(2 * time.Hour)
		c.Get(t.Context(), d)
		synctest.Wait()
		if r := c.Get(t.Context(), d); r.Policy == nil || r.Policy.Mode != mtasts.ModeNone {
			t.Fatalf("Get after the new id = %+v, want mode none", r)
		}

		w.resolver.Remove("_mta-sts.example.com")
		w.breakFetch("example.com", errFetch)
		time.Sleep(25 * time.Hour)
		r := c.Get(t.Context(), d)
		if r.Policy != nil || r.Err != nil {
			t.Fatalf("Get after the none policy expired = %+v; want no policy, nothing to report", r)
		}
		if e, ok, _ := store.Load(t.Context(), "example.com"); ok && e.RecordID == "1" {
			t.Errorf("the store still holds the enforce policy: %+v", e)
		}
	})
}

// TestFailedRefreshKeepsExpiry: a failed refresh neither extends nor
// shortens the cached policy's life (RFC 8461 5.1).
func TestFailedRefreshKeepsExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 3*86400))
		c := w.newCache(t, cache.Options{RefreshAge: 24 * time.Hour})
		go c.Run(t.Context())
		d := domain(t, "example.com")
		first := c.Get(t.Context(), d)

		w.publish("example.com", "2", policyText("enforce", 3*86400))
		w.breakFetch("example.com", errFetch)
		time.Sleep(2 * 24 * time.Hour)
		synctest.Wait()
		r := c.Get(t.Context(), d)
		if r.Policy == nil || !r.Fetched.Equal(first.Fetched) || !r.Expires.Equal(first.Expires) || r.Err == nil {
			t.Fatalf("Get after failed refreshes = %+v; want the first fetch's policy, fetched %v, expiring %v, and the failure", r, first.Fetched, first.Expires)
		}
	})
}

// TestEvictionBatch: a full cache drops the least recently used 1/64 of its
// entries to make room, and only those.
func TestEvictionBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		c := w.newCache(t, cache.Options{MaxEntries: 128})
		name := func(i int) string { return fmt.Sprintf("d%d.example", i) }
		for i := range 128 {
			c.Get(t.Context(), domain(t, name(i)))
			time.Sleep(2 * time.Second)
		}
		// d0 and d1 used again: d2 and d3 are now the least recent.
		c.Get(t.Context(), domain(t, name(0)))
		c.Get(t.Context(), domain(t, name(1)))
		time.Sleep(2 * time.Second)
		c.Get(t.Context(), domain(t, name(128)))
		if c.Len() != 127 {
			t.Fatalf("Len = %d, want 127: two dropped, one added", c.Len())
		}
		// The dropped two last, as adding them back drops others.
		var order []int
		for i := range 129 {
			if i != 2 && i != 3 {
				order = append(order, i)
			}
		}
		order = append(order, 2, 3)
		for _, i := range order {
			before := w.lookupCount(name(i))
			c.Get(t.Context(), domain(t, name(i)))
			looked := w.lookupCount(name(i)) > before
			if want := i == 2 || i == 3; looked != want {
				t.Errorf("%s: looked up again %v, want %v", name(i), looked, want)
			}
		}
	})
}

// TestBackgroundBounded: many policies due for refresh at once are refreshed
// MaxBackground at a time, and all of them in the end.
func TestBackgroundBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		var (
			mu            sync.Mutex
			running, most int
			slow          bool
		)
		fetch := func(ctx context.Context, d mtasts.Domain) (*mtasts.Policy, string, error) {
			mu.Lock()
			running++
			most = max(most, running)
			wait := slow
			mu.Unlock()
			if wait {
				time.Sleep(time.Second) // a slow policy host
			}
			mu.Lock()
			running--
			mu.Unlock()
			return w.fetch(ctx, d)
		}
		c, err := cache.New(cache.Fake(cache.Options{Resolver: w.resolver, MaxBackground: 4, RefreshAge: 24 * time.Hour, CheckInterval: 1000 * time.Hour}, nil, fetch))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		const n = 100
		for i := range n {
			name := fmt.Sprintf("d%d.example", i)
			w.publish(name, "1", policyText("enforce", 7*86400))
			c.Get(t.Context(), domain(t, name))
		}
		mu.Lock()
		slow, most = true, 0
		mu.Unlock()

		go c.Run(t.Context())
		time.Sleep(24*time.Hour + time.Minute + 30*time.Second) // one sweep, 25 rounds of 4
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if most != 4 {
			t.Errorf("at most %d refreshes ran at once, want 4", most)
		}
		for i := range n {
			if got := w.fetchCount(fmt.Sprintf("d%d.example", i)); got != 2 {
				t.Errorf("d%d.example fetched %d times, want 2", i, got)
			}
		}
	})
}

// hungStore is a store, and a fleet lock, that never answers: each call
// waits for its context to end.
type hungStore struct{}

func (hungStore) Load(ctx context.Context, domain string) (cache.Entry, bool, error) {
	<-ctx.Done()
	return cache.Entry{}, false, ctx.Err()
}
func (hungStore) Save(ctx context.Context, e cache.Entry) error { <-ctx.Done(); return ctx.Err() }
func (hungStore) Delete(ctx context.Context, d string) error    { <-ctx.Done(); return ctx.Err() }
func (hungStore) Lock(ctx context.Context, d string) (string, bool, error) {
	<-ctx.Done()
	return "", false, ctx.Err()
}
func (hungStore) Unlock(ctx context.Context, d, token string) error { <-ctx.Done(); return ctx.Err() }

// TestHungStore: a store that hangs delays a miss by StoreTimeout per call
// at most, a hit not at all, and fails no delivery.
func TestHungStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		c := w.newCache(t, cache.Options{Store: hungStore{}, StoreTimeout: 2 * time.Second})
		d := domain(t, "example.com")
		start := time.Now()
		r := c.Get(t.Context(), d)
		// Load, Lock and Save, each given up after 2 seconds.
		if r.Policy == nil || !r.Fresh || time.Since(start) != 6*time.Second {
			t.Fatalf("Get with a hung store = %+v after %v; want a fresh policy after 6s", r, time.Since(start))
		}
		start = time.Now()
		if r := c.Get(t.Context(), d); r.Policy == nil || time.Since(start) != 0 {
			t.Fatalf("hit with a hung store = %+v after %v; want the policy at once", r, time.Since(start))
		}
	})
}

// TestMetrics: hits, misses, fetches and refreshes by result, and entries,
// as registered by RegisterMetrics.
func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 2*86400))
		w.publish("broken.example", "1", policyText("enforce", 86400))
		w.breakFetch("broken.example", errFetch)
		c := w.newCache(t, cache.Options{RefreshAge: 24 * time.Hour, CheckInterval: 1000 * time.Hour})
		reg := prometheus.NewPedanticRegistry()
		if err := c.RegisterMetrics(reg); err != nil {
			t.Fatal(err)
		}
		if err := c.RegisterMetrics(reg); err == nil {
			t.Error("a second registration with the same registry did not fail")
		}
		for range 4 {
			c.Get(t.Context(), domain(t, "example.com"))
		}
		c.Get(t.Context(), domain(t, "broken.example"))
		go c.Run(t.Context())
		time.Sleep(24*time.Hour + 2*time.Minute)
		synctest.Wait()

		want := map[string]float64{
			"mtastsgo_cache_hits_total":      3,
			"mtastsgo_cache_misses_total":    2,
			"mtastsgo_cache_fetches_total":   3, // example.com twice, broken.example once
			"mtastsgo_cache_refreshes_total": 1,
		}
		for name, n := range want {
			if got := counterValue(t, reg, name); got != n {
				t.Errorf("%s = %v, want %v", name, got, n)
			}
		}
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		labels := map[string]float64{}
		for _, mf := range families {
			for _, m := range mf.GetMetric() {
				switch mf.GetName() {
				case "mtastsgo_cache_fetches_total":
					labels[m.GetLabel()[0].GetValue()] += m.GetCounter().GetValue()
				case "mtastsgo_cache_entries":
					// broken.example, without a policy, was
					// dropped once unused for its back-off.
					if v := m.GetGauge().GetValue(); v != 1 {
						t.Errorf("mtastsgo_cache_entries = %v, want 1", v)
					}
				}
			}
		}
		if labels["ok"] != 2 || labels["fetch-error"] != 1 {
			t.Errorf("fetches by result = %v, want ok 2, fetch-error 1", labels)
		}
	})
}

// wrongStore returns, for every domain, the entry of another.
type wrongStore struct{ cache.Store }

func (s wrongStore) Load(ctx context.Context, domain string) (cache.Entry, bool, error) {
	return s.Store.Load(ctx, "other.example")
}

// TestStoreReturnsOtherDomain: a store that mixes domains up cannot make the
// cache apply one domain's policy to another.
func TestStoreReturnsOtherDomain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("testing", 86400))
		mem := cache.NewMemoryStore(10)
		now := time.Now()
		mem.Save(t.Context(), cache.Entry{Domain: "other.example", RecordID: "9", Policy: policyText("enforce", 86400), Fetched: now, Expires: now.Add(24 * time.Hour)})
		c := w.newCache(t, cache.Options{Store: wrongStore{mem}})
		r := c.Get(t.Context(), domain(t, "example.com"))
		if r.Policy == nil || r.Policy.Mode != mtasts.ModeTesting || r.RecordID != "1" || !r.Fresh {
			t.Fatalf("Get = %+v; want example.com's own policy, fetched", r)
		}
	})
}

// TestMaxAgeZero: a policy with max_age 0 applies to the delivery that
// fetched it, though the fetch took time, and never from the cache afterwards
// (RFC 8461 5.1). Its domain is not fetched again before Backoff (RFC 8461
// 3.3 lets senders rate-limit fetches), so a zero max_age cannot make the
// cache fetch for every delivery.
func TestMaxAgeZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 0))
		slowFetch := func(ctx context.Context, d mtasts.Domain) (*mtasts.Policy, string, error) {
			time.Sleep(50 * time.Millisecond) // a fetch over a network takes time
			return w.fetch(ctx, d)
		}
		c := w.newCache(t, cache.Fake(cache.Options{Backoff: 5 * time.Minute}, nil, slowFetch))
		d := domain(t, "example.com")
		applied := 0
		// 200 deliveries, one every 3 seconds: 10 minutes.
		for i := range 200 {
			r := c.Get(t.Context(), d)
			if r.Policy != nil {
				applied++
				if !r.Fresh || !r.Expires.Equal(r.Fetched) {
					t.Errorf("Get %d = %+v; want the policy just fetched, expiring as fetched", i, r)
				}
			}
			if r.Err != nil {
				t.Errorf("Get %d: %v", i, r.Err)
			}
			time.Sleep(3 * time.Second)
		}
		// At 0 s and once the first fetch is 5 minutes old.
		if n := w.fetchCount("example.com"); n != 2 || applied != n {
			t.Errorf("200 Gets over 10 minutes: %d fetches, %d applied; want 2 fetches (one per Backoff), each applied by its Get", n, applied)
		}
	})
}

// TestIDComparedExactly: ids are compared as strings, case-sensitively, with
// no ordering (RFC 8461 3.1): "ABC" to "abc", or to a smaller number, is a
// new policy.
func TestIDComparedExactly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "ABC", policyText("enforce", 86400))
		c := w.newCache(t, cache.Options{})
		d := domain(t, "example.com")
		c.Get(t.Context(), d)
		for i, id := range []string{"abc", "20200101", "20190101"} {
			w.publish("example.com", id, policyText("enforce", 86400))
			if r := c.Recheck(t.Context(), d); r.RecordID != id || !r.Fresh || w.fetchCount("example.com") != i+2 {
				t.Errorf("Recheck after id %q = %+v, %d fetches; want the new policy fetched", id, r, w.fetchCount("example.com"))
			}
		}
	})
}

// TestCheckWaitsForSlot: with every background slot busy, a due record check
// is not lost: a later Get starts it once a slot is free.
func TestCheckWaitsForSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("a.example", "1", policyText("enforce", 7*86400))
		w.publish("b.example", "1", policyText("enforce", 7*86400))
		c := w.newCache(t, cache.Options{MaxBackground: 1, CheckInterval: time.Hour, Timeout: 10 * time.Minute})
		a, b := domain(t, "a.example"), domain(t, "b.example")
		c.Get(t.Context(), a)
		c.Get(t.Context(), b)

		w.resolver.Hold("_mta-sts.a.example") // never released: lookups hang until their context ends
		time.Sleep(time.Hour)
		c.Get(t.Context(), a) // its check takes the one slot, for 10 minutes
		synctest.Wait()
		c.Get(t.Context(), b) // due, but no slot
		synctest.Wait()
		if n := w.lookupCount("b.example"); n != 1 {
			t.Fatalf("%d lookups of b with no slot free, want 1", n)
		}
		time.Sleep(10 * time.Minute) // a's check times out
		synctest.Wait()
		c.Get(t.Context(), b)
		synctest.Wait()
		if n := w.lookupCount("b.example"); n != 2 {
			t.Errorf("%d lookups of b once a slot is free, want 2", n)
		}
	})
}
