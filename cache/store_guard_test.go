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

// deafStore is a store whose Load ignores its context and returns only
// when released.
type deafStore struct {
	cache.MemoryStore
	release chan struct{}
}

func (s *deafStore) Load(ctx context.Context, domain string) (cache.Entry, bool, error) {
	<-s.release
	return cache.Entry{}, false, nil
}

// TestStoreIgnoringContext: StoreTimeout promises that past it "the cache
// goes on as without the store", also for a store that ignores its context.
func TestStoreIgnoringContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		store := &deafStore{MemoryStore: *cache.NewMemoryStore(10), release: make(chan struct{})}
		defer close(store.release)
		c := w.newCache(t, cache.Options{Store: store, StoreTimeout: 2 * time.Second})
		start := time.Now()
		r := c.Get(context.Background(), domain(t, "example.com"))
		if r.Policy == nil || time.Since(start) != 2*time.Second {
			t.Fatalf("Get with a deaf store = %+v after %v; want the policy after StoreTimeout (2s)", r, time.Since(start))
		}
	})
}

// TestGetAfterClose: after Close, Get still answers from memory, starts no
// lookup, fetch or store call, and a domain not in memory gets ErrClosed.
func TestGetAfterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		w.publish("other.example", "1", policyText("enforce", 86400))
		c := w.newCache(t, cache.Options{CheckInterval: time.Minute})
		d := domain(t, "example.com")
		c.Get(t.Context(), d)
		c.Close()
		time.Sleep(time.Hour) // the record check is due
		if r := c.Get(t.Context(), d); r.Policy == nil || r.Err != nil {
			t.Errorf("Get of a cached domain after Close = %+v; want the cached policy", r)
		}
		synctest.Wait()
		if n := w.lookupCount("example.com"); n != 1 {
			t.Errorf("%d lookups; a closed cache started a record check", n)
		}
		for name, r := range map[string]cache.Result{
			"Get":     c.Get(t.Context(), domain(t, "other.example")),
			"Recheck": c.Recheck(t.Context(), d),
		} {
			if !errors.Is(r.Err, cache.ErrClosed) || r.Policy != nil {
				t.Errorf("%s needing the network after Close = %+v; want ErrClosed and no policy", name, r)
			}
		}
	})
}

// TestFetchedInTheFuture: an entry whose fetch time lies ahead of now, from
// a fleet member with a wrong clock or a restored file store, is taken as
// fetched now: it expires by now plus its max_age at the latest (never past
// now plus MaxAgeLimit), is refreshed as any other, and is counted and
// logged as a store error.
func TestFetchedInTheFuture(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		store := cache.NewMemoryStore(10)
		now := time.Now()
		future := now.Add(365 * 24 * time.Hour)
		store.Save(t.Context(), cache.Entry{Domain: "example.com", RecordID: "1", Policy: policyText("enforce", 86400),
			Fetched: future, Expires: future.Add(24 * time.Hour)})
		logs := &logRecorder{}
		c := w.newCache(t, cache.Options{Store: store, RefreshAge: time.Hour, Logger: slog.New(logs)})
		reg := prometheus.NewRegistry()
		if err := c.RegisterMetrics(reg); err != nil {
			t.Fatal(err)
		}
		go c.Run(t.Context())
		d := domain(t, "example.com")
		r := c.Get(t.Context(), d)
		if r.Policy == nil || r.Fetched.After(now) || r.Expires.After(now.Add(24*time.Hour)) {
			t.Fatalf("Get of an entry fetched in the future = fetched %v, expires %v; want at most now (%v) and now plus max_age", r.Fetched, r.Expires, now)
		}
		if n := counterValue(t, reg, "mtastsgo_cache_store_errors_total"); n != 1 || logs.warnings() == 0 {
			t.Errorf("store errors %v, %d warnings; want the entry counted and logged", n, logs.warnings())
		}
		time.Sleep(time.Hour + 2*time.Minute)
		synctest.Wait()
		if n := w.fetchCount("example.com"); n != 1 {
			t.Errorf("%d fetches after RefreshAge, want 1: the entry is refreshed as any other", n)
		}
	})
}

// TestRecheckNotSatisfiedByStaleCheck: RFC 8461 5.1 step 3. The domain is only
// in the store, with id 7, and the record now says 8. However Gets and
// background checks interleave with it, Recheck returns the policy of id 8.
func TestRecheckNotSatisfiedByStaleCheck(t *testing.T) {
	for try := range 200 {
		w := newWorld()
		w.publish("example.com", "8", policyText("testing", 86400))
		store := cache.NewMemoryStore(10)
		now := time.Now()
		store.Save(context.Background(), cache.Entry{Domain: "example.com", RecordID: "7", Policy: policyText("enforce", 86400),
			Fetched: now, Expires: now.Add(24 * time.Hour)})
		c := w.newCache(t, cache.Options{Store: store})
		d := domain(t, "example.com")
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { c.Get(context.Background(), d) })
		}
		r := c.Recheck(context.Background(), d)
		wg.Wait()
		c.Close()
		if r.RecordID != "8" || r.Policy == nil || r.Policy.Mode != mtasts.ModeTesting {
			t.Fatalf("try %d: Recheck = id %q %+v; want the policy of id 8", try, r.RecordID, r.Policy)
		}
	}
}

// TestDeafStoreBounded: calls to a store that never returns pile up to a
// bound (64); past it, the cache skips the store at once instead of waiting
// StoreTimeout each time.
func TestDeafStoreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		store := &deafStore{MemoryStore: *cache.NewMemoryStore(10), release: make(chan struct{})}
		defer close(store.release)
		c := w.newCache(t, cache.Options{Store: store, StoreTimeout: 2 * time.Second, MaxEntries: 1000})
		for i := range 64 {
			start := time.Now()
			c.Get(context.Background(), domain(t, fmt.Sprintf("d%d.example", i)))
			if time.Since(start) != 2*time.Second {
				t.Fatalf("Get %d took %v, want StoreTimeout (2s)", i, time.Since(start))
			}
		}
		start := time.Now()
		c.Get(context.Background(), domain(t, "one-more.example"))
		if time.Since(start) != 0 {
			t.Errorf("Get with 64 store calls hung took %v; want the store skipped at once", time.Since(start))
		}
	})
}
