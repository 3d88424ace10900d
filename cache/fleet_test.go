package cache_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
)

// TestFleetLockToken has two caches share one Store value. The first
// cache's lock expires while its fetch is slow and the second takes the
// lock: the first one's release, with its own token, must leave the second's
// lock in place, and the second must release its own.
func TestFleetLockToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		store := newSharedStore(time.Second)
		slowFetch := func(ctx context.Context, d mtasts.Domain) (*mtasts.Policy, string, error) {
			time.Sleep(2 * time.Second) // longer than the lock lasts
			return w.fetch(ctx, d)
		}
		var caches [2]*cache.Cache
		for i := range caches {
			c, err := cache.New(cache.Fake(cache.Options{Resolver: w.resolver, Store: store}, nil, slowFetch))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			caches[i] = c
		}
		d := domain(t, "example.com")
		var wg sync.WaitGroup
		wg.Go(func() { caches[0].Get(t.Context(), d) }) // holds lock 1 from 0s
		time.Sleep(1500 * time.Millisecond)             // lock 1 expired at 1s
		wg.Go(func() { caches[1].Get(t.Context(), d) }) // takes lock 2 at 1.5s
		time.Sleep(600 * time.Millisecond)              // the first fetch ended at 2s
		synctest.Wait()
		if held := store.holder("example.com"); held != "2" {
			t.Errorf("after the first cache's release the lock is %q, want the second cache's", held)
		}
		wg.Wait()
		if held := store.holder("example.com"); held != "" {
			t.Errorf("after the second cache's release the lock is %q, want none", held)
		}
	})
}

// holder returns the token of the lock of domain, or "" when none is held.
func (s *sharedStore) holder(domain string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.locks[domain]; ok && time.Now().Before(l.expires) {
		return l.token
	}
	return ""
}
