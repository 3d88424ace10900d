package cache_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
)

// TestNoExpiredPolicyDuringBackoff: RFC 8461 5.1 applies a cached policy
// only while "time-since-fetch has not exceeded its max_age". A fetch that
// fails shortly before the policy expires starts a back-off; once the policy
// has expired, Get and Recheck answer with no policy and the failure, even
// while the back-off runs.
func TestNoExpiredPolicyDuringBackoff(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(t *testing.T, w *world, c *cache.Cache, d mtasts.Domain)
	}{
		{"new id", func(t *testing.T, w *world, c *cache.Cache, d mtasts.Domain) {
			// A new id whose fetch fails, 100 seconds before expiry.
			time.Sleep(3500 * time.Second)
			w.publish("example.com", "2", policyText("enforce", 3600))
			w.breakFetch("example.com", errFetch)
			if r := c.Recheck(t.Context(), d); r.RecordID != "1" || !errors.Is(r.Err, mtasts.ErrPolicyFetch) {
				t.Fatalf("Recheck before expiry = %+v; want the cached policy and the failure", r)
			}
		}},
		{"refresh", func(t *testing.T, w *world, c *cache.Cache, d mtasts.Domain) {
			// Run's refresh of the same id fails at half the
			// lifetime; the back-off outlasts the policy.
			w.breakFetch("example.com", errFetch)
			go c.Run(t.Context())
			time.Sleep(1800*time.Second + time.Minute)
			synctest.Wait()
			if n := w.fetchCount("example.com"); n != 2 {
				t.Fatalf("%d fetches, want 2: the first and the failed refresh", n)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld()
				w.publish("example.com", "1", policyText("enforce", 3600))
				c := w.newCache(t, cache.Options{Backoff: time.Hour, CheckInterval: 24 * time.Hour})
				d := domain(t, "example.com")
				if r := c.Get(t.Context(), d); r.Policy == nil {
					t.Fatalf("first Get = %+v", r)
				}
				start := time.Now()
				tc.fail(t, w, c, d)

				// In use until shortly before expiry, so that Run
				// keeps it in memory.
				time.Sleep(3550*time.Second - time.Since(start))
				if r := c.Get(t.Context(), d); r.Policy == nil {
					t.Fatalf("Get before expiry = %+v; want the cached policy", r)
				}
				time.Sleep(3700*time.Second - time.Since(start))
				synctest.Wait()
				for name, get := range map[string]func() cache.Result{
					"Get":     func() cache.Result { return c.Get(t.Context(), d) },
					"Recheck": func() cache.Result { return c.Recheck(t.Context(), d) },
				} {
					r := get()
					if r.Policy != nil {
						t.Errorf("%s after expiry, in back-off = policy %q expiring %v; want no policy", name, r.RecordID, r.Expires)
					}
					if !errors.Is(r.Err, mtasts.ErrPolicyFetch) || mtasts.TLSReportResultType(r.Err) != mtasts.ResultSTSPolicyFetchError {
						t.Errorf("%s after expiry = %+v; want the fetch failure reported", name, r)
					}
				}
			})
		})
	}
}

// TestBackoffPerVersionID: RFC 8461 3.3 limits fetch attempts "to a period of
// five minutes or longer per version ID". Record checks that succeed and show
// the same id do not shorten the back-off of a failed refresh.
func TestBackoffPerVersionID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		c := w.newCache(t, cache.Options{CheckInterval: time.Minute, Backoff: 10 * time.Minute, RefreshAge: time.Hour})
		d := domain(t, "example.com")
		c.Get(t.Context(), d)
		go c.Run(t.Context())

		w.breakFetch("example.com", errFetch)
		time.Sleep(time.Hour + 30*time.Second)
		synctest.Wait()
		if n := w.fetchCount("example.com"); n != 2 {
			t.Fatalf("%d fetches, want 2: the first and the failed refresh", n)
		}
		// Nine minutes of deliveries, each minute's record check
		// succeeding with the same id.
		for range 9 {
			time.Sleep(time.Minute)
			if r := c.Get(t.Context(), d); r.Policy == nil {
				t.Fatalf("Get = %+v; want the cached policy", r)
			}
			synctest.Wait()
		}
		if n := w.fetchCount("example.com"); n != 2 {
			t.Errorf("%d fetches within the back-off of the failed refresh, want 2", n)
		}
		if n := w.lookupCount("example.com"); n < 5 {
			t.Errorf("%d record lookups, want one a minute: the checks go on", n)
		}
		// The back-off over, the refresh is tried again.
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if n := w.fetchCount("example.com"); n != 3 {
			t.Errorf("%d fetches after the back-off, want 3", n)
		}
	})
}

// TestNoPolicyExpiredDuringLookup: a lookup that hangs past the cached
// policy's expiry, then fails, does not return the policy it outlived
// (RFC 8461 5.1).
func TestNoPolicyExpiredDuringLookup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 3600))
		var hang atomic.Bool
		lookup := func(ctx context.Context, r mtasts.Resolver, d mtasts.Domain) (*mtasts.Record, string, error) {
			if hang.Load() {
				time.Sleep(20 * time.Second)
				return nil, "", fmt.Errorf("%w: timed out", mtasts.ErrDNS)
			}
			return mtasts.LookupRecord(ctx, r, d)
		}
		c := w.newCache(t, cache.Fake(cache.Options{CheckInterval: 24 * time.Hour}, lookup, nil))
		d := domain(t, "example.com")
		c.Get(t.Context(), d)
		time.Sleep(3590 * time.Second)
		hang.Store(true)
		if r := c.Recheck(t.Context(), d); r.Policy != nil {
			t.Errorf("Recheck whose lookup ended 10 s after expiry = policy expiring %v; want none", r.Expires)
		}
	})
}
