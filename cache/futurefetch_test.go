package cache_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/mtasts-go/mtasts/cache"
)

// TestFetchedInTheFutureRewritten: an entry of a file store whose fetch
// time lies ahead of now is taken as fetched now, and rewritten so: its
// stored Fetched and Expires are those of the first load, so that a restart
// does not give it a new max_age. While fetches fail, it stops applying
// max_age after the first load, restarts or not (RFC 8461 3.2, 5.1).
func TestFetchedInTheFutureRewritten(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		const maxAge = 86400
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", maxAge))
		w.breakFetch("example.com", errFetch)
		fs, err := cache.OpenFileStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		first := time.Now()
		future := first.Add(365 * 24 * time.Hour)
		if err := fs.Save(t.Context(), cache.Entry{Domain: "example.com", RecordID: "1", Policy: policyText("enforce", maxAge),
			Fetched: future, Expires: future.Add(10 * 365 * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		d := domain(t, "example.com")

		c := w.newCache(t, cache.Options{Store: fs})
		if r := c.Get(t.Context(), d); r.Policy == nil || !r.Fetched.Equal(first) {
			t.Fatalf("first Get = %+v; want the stored policy, taken as fetched now", r)
		}
		synctest.Wait()
		c.Close()
		e, ok, err := fs.Load(t.Context(), "example.com")
		if err != nil || !ok || !e.Fetched.Equal(first) || !e.Expires.Equal(first.Add(maxAge*time.Second)) {
			t.Errorf("stored after the first load: %v %v fetched %v, expires %v; want %v and %v", ok, err, e.Fetched, e.Expires, first, first.Add(maxAge*time.Second))
		}

		// Restarts, each on the same directory: the policy applies
		// until max_age after the first load, and not after.
		for _, at := range []time.Duration{time.Hour, maxAge*time.Second - time.Minute, maxAge*time.Second + time.Minute} {
			time.Sleep(time.Until(first.Add(at)))
			fs2, err := cache.OpenFileStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			c2 := w.newCache(t, cache.Options{Store: fs2})
			r := c2.Get(t.Context(), d)
			applies := at < maxAge*time.Second
			if (r.Policy != nil) != applies || r.Policy != nil && (!r.Fetched.Equal(first) || !r.Expires.Equal(first.Add(maxAge*time.Second))) {
				t.Errorf("Get after a restart %v after the first load = policy %v, fetched %v, expires %v; want the policy to apply: %v", at, r.Policy != nil, r.Fetched, r.Expires, applies)
			}
			synctest.Wait()
			c2.Close()
		}
	})
}

// TestExpiresBeyondMaxAgeRewritten: an entry whose stored expiry lies past
// its fetch time plus max_age is cut to that on load, and rewritten so.
func TestExpiresBeyondMaxAgeRewritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 3600))
		store := cache.NewMemoryStore(10)
		fetched := time.Now().Add(-time.Minute)
		store.Save(t.Context(), cache.Entry{Domain: "example.com", RecordID: "1", Policy: policyText("enforce", 3600),
			Fetched: fetched, Expires: fetched.Add(10 * 365 * 24 * time.Hour)})
		c := w.newCache(t, cache.Options{Store: store})
		if r := c.Get(t.Context(), domain(t, "example.com")); r.Policy == nil || !r.Expires.Equal(fetched.Add(time.Hour)) {
			t.Fatalf("Get = %+v; want the policy, expiring max_age after its fetch", r)
		}
		synctest.Wait()
		e, ok, err := store.Load(t.Context(), "example.com")
		if err != nil || !ok || !e.Fetched.Equal(fetched) || !e.Expires.Equal(fetched.Add(time.Hour)) {
			t.Errorf("stored after the load: %v %v fetched %v, expires %v; want %v and %v", ok, err, e.Fetched, e.Expires, fetched, fetched.Add(time.Hour))
		}
	})
}
