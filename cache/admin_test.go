package cache_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
)

// TestMemoryListing: an admin page lists what memory holds: domain, id,
// mode, mx, fetched, expires, last error and when the record was checked.
func TestMemoryListing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("good.example", "1", policyText("enforce", 86400))
		w.publish("broken.example", "2", policyText("enforce", 86400))
		w.breakFetch("broken.example", errFetch)
		c := w.newCache(t, cache.Options{})
		start := time.Now()
		for _, d := range []string{"good.example", "broken.example", "none.example"} {
			c.Get(t.Context(), domain(t, d))
		}
		got := map[string]cache.Status{}
		for st := range c.Memory() {
			got[st.Domain.ASCII] = st
		}
		if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, []string{"broken.example", "good.example", "none.example"}) {
			t.Fatalf("listed %v", keys)
		}
		good := got["good.example"]
		if good.Policy == nil || good.Policy.Mode != mtasts.ModeEnforce || good.Policy.MX[0].String() != "mx.example.com" ||
			good.RecordID != "1" || !good.Fetched.Equal(start) || !good.Expires.Equal(start.Add(24*time.Hour)) ||
			good.Err != nil || !good.Checked.Equal(start) || !good.LastUsed.Equal(start) {
			t.Errorf("good.example listed as %+v", good)
		}
		if b := got["broken.example"]; b.Policy != nil || !errors.Is(b.Err, mtasts.ErrPolicyFetch) || !b.RetryAt.Equal(start.Add(5*time.Minute)) {
			t.Errorf("broken.example listed as %+v", b)
		}
		if n := got["none.example"]; n.Policy != nil || n.Err != nil {
			t.Errorf("none.example listed as %+v", n)
		}
		// Breaking off the listing early is honoured.
		n := 0
		for range c.Memory() {
			n++
			break
		}
		if n != 1 {
			t.Errorf("listing went on after break: %d", n)
		}
	})
}

// TestStoreListing: MemoryStore and FileStore list their entries, a broken
// file as an error without ending the listing.
func TestStoreListing(t *testing.T) {
	now := time.Now()
	e1 := cache.Entry{Domain: "a.example", RecordID: "1", Policy: policyText("enforce", 86400), Fetched: now, Expires: now.Add(time.Hour)}
	e2 := cache.Entry{Domain: "b.example", RecordID: "2", Policy: policyText("testing", 86400), Fetched: now, Expires: now.Add(time.Hour)}
	fstore, err := cache.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, store := range map[string]cache.Store{"memory": cache.NewMemoryStore(10), "file": fstore} {
		for _, e := range []cache.Entry{e1, e2} {
			if err := store.Save(t.Context(), e); err != nil {
				t.Fatal(err)
			}
		}
		var ids []string
		for e, err := range store.(cache.Lister).List(t.Context()) {
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			ids = append(ids, e.Domain+"="+e.RecordID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"a.example=1", "b.example=2"}) {
			t.Errorf("%s store lists %v", name, ids)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		for _, err := range store.(cache.Lister).List(ctx) {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: listing with a canceled context gave %v", name, err)
			}
		}
	}
}

// TestForget: an operator removes a domain from memory and the store; its
// next Get fetches anew, without the back-off of the earlier failure.
func TestForget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		w.breakFetch("example.com", errFetch)
		store := cache.NewMemoryStore(10)
		c := w.newCache(t, cache.Options{Store: store})
		d := domain(t, "example.com")
		if r := c.Get(t.Context(), d); r.Policy != nil {
			t.Fatalf("Get with a broken policy host = %+v", r)
		}
		// The domain fixed its policy; within the back-off the cache
		// would not know before Backoff.
		w.publish("example.com", "1", policyText("enforce", 86400))
		if r := c.Get(t.Context(), d); r.Policy != nil || !r.Remembered {
			t.Fatalf("Get in back-off = %+v; want the remembered failure", r)
		}
		store.Save(t.Context(), cache.Entry{Domain: "example.com", RecordID: "0", Policy: policyText("enforce", 86400), Fetched: time.Now(), Expires: time.Now().Add(time.Hour)})
		if err := c.Forget(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		if store.Len() != 0 || c.Len() != 0 {
			t.Fatalf("after Forget: %d in the store, %d in memory", store.Len(), c.Len())
		}
		if r := c.Get(t.Context(), d); r.Policy == nil || !r.Fresh || r.RecordID != "1" {
			t.Errorf("Get after Forget = %+v; want the policy fetched anew", r)
		}
	})
}

// TestCheckEveryGet: with the option, each Get looks the record up and sees
// a new id at once; without it, a cached policy is answered from memory.
func TestCheckEveryGet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		c := w.newCache(t, cache.Options{CheckEveryGet: true})
		d := domain(t, "example.com")
		for i := 1; i <= 3; i++ {
			if r := c.Get(t.Context(), d); r.Policy == nil || r.RecordID != "1" {
				t.Fatalf("Get %d = %+v", i, r)
			}
			if n := w.lookupCount("example.com"); n != i {
				t.Fatalf("%d lookups after %d Gets, want one each", n, i)
			}
		}
		if n := w.fetchCount("example.com"); n != 1 {
			t.Errorf("%d fetches for an unchanged id, want 1", n)
		}
		w.publish("example.com", "2", policyText("testing", 86400))
		if r := c.Get(t.Context(), d); r.RecordID != "2" || r.Policy.Mode != mtasts.ModeTesting || !r.Fresh {
			t.Errorf("Get after the id changed = %+v; want the new policy at once", r)
		}
		// A failed fetch of a new id backs off (RFC 8461 3.3) though
		// the record is looked up each time.
		w.publish("example.com", "3", policyText("enforce", 86400))
		w.breakFetch("example.com", errFetch)
		for range 3 {
			if r := c.Get(t.Context(), d); r.RecordID != "2" || !errors.Is(r.Err, mtasts.ErrPolicyFetch) {
				t.Fatalf("Get with a failing new id = %+v; want the cached policy and the failure", r)
			}
		}
		if n := w.fetchCount("example.com"); n != 3 {
			t.Errorf("%d fetches, want 3: the failed id waits for its back-off", n)
		}
		// After Close, Get answers from memory.
		c.Close()
		if r := c.Get(t.Context(), d); r.RecordID != "2" {
			t.Errorf("Get after Close = %+v; want the cached policy", r)
		}
	})
}

// TestResultTellsRememberedFailure: a Result says whether its failure is new
// or remembered within the back-off, when the back-off ends, and when the
// record was last checked.
func TestResultTellsRememberedFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		w.breakFetch("example.com", errFetch)
		c := w.newCache(t, cache.Options{Backoff: 10 * time.Minute})
		d := domain(t, "example.com")
		start := time.Now()
		r := c.Get(t.Context(), d)
		if r.Err == nil || r.Remembered || !r.RetryAt.Equal(start.Add(10*time.Minute)) || !r.Checked.Equal(start) {
			t.Fatalf("first Get = %+v; want a new failure, retry in 10 minutes, checked now", r)
		}
		time.Sleep(time.Minute)
		r = c.Get(t.Context(), d)
		if r.Err == nil || !r.Remembered || !r.RetryAt.Equal(start.Add(10*time.Minute)) || !r.Checked.Equal(start) {
			t.Fatalf("Get in back-off = %+v; want the remembered failure", r)
		}
		time.Sleep(10 * time.Minute)
		r = c.Get(t.Context(), d)
		if r.Err == nil || r.Remembered || !r.Checked.Equal(time.Now()) {
			t.Fatalf("Get after the back-off = %+v; want a new failure", r)
		}
		w.publish("example.com", "1", policyText("enforce", 86400))
		time.Sleep(11 * time.Minute)
		if r := c.Get(t.Context(), d); r.Err != nil || r.Remembered || !r.RetryAt.IsZero() || !r.Fresh {
			t.Fatalf("Get after recovery = %+v", r)
		}
	})
}

// TestNewEntry: an entry made by hand, as for seeding a store, loads as the
// cache's own would, with max_age capped.
func TestNewEntry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "7", policyText("enforce", 999999999))
		store := cache.NewMemoryStore(10)
		e, err := cache.NewEntry(domain(t, "example.com"), "7", policyText("enforce", 999999999), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Now().Add(mtasts.MaxAgeLimit * time.Second); !e.Expires.Equal(want) {
			t.Errorf("Expires %v, want max_age capped: %v", e.Expires, want)
		}
		store.Save(t.Context(), e)
		c := w.newCache(t, cache.Options{Store: store})
		if r := c.Get(t.Context(), domain(t, "example.com")); r.Policy == nil || r.RecordID != "7" || r.Fresh || w.fetchCount("example.com") != 0 {
			t.Errorf("Get of a seeded domain = %+v, %d fetches; want the seeded policy, no fetch", r, w.fetchCount("example.com"))
		}
		if _, err := cache.NewEntry(domain(t, "example.com"), "7", "mode: enforce\n", time.Now()); !errors.Is(err, mtasts.ErrPolicySyntax) {
			t.Errorf("NewEntry of no policy: %v", err)
		}
		if _, err := cache.NewEntry(mtasts.Domain{ASCII: "a@b"}, "7", policyText("enforce", 1), time.Now()); !errors.Is(err, mtasts.ErrInvalidDomain) {
			t.Errorf("NewEntry of no host name: %v", err)
		}
	})
}

// TestInvalidDomainNotKept: a hand-built Domain that is no host name gets
// mtasts.ErrInvalidDomain from Get, Recheck and CheckEveryGet, with no
// lookup, and takes no room in memory.
func TestInvalidDomainNotKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		for _, every := range []bool{false, true} {
			c := w.newCache(t, cache.Options{CheckEveryGet: every})
			bad := mtasts.Domain{ASCII: "evil.example@127.0.0.1"}
			for name, r := range map[string]cache.Result{"Get": c.Get(t.Context(), bad), "Recheck": c.Recheck(t.Context(), bad)} {
				if !errors.Is(r.Err, mtasts.ErrInvalidDomain) || r.Policy != nil || mtasts.TLSReportResultType(r.Err) != "" {
					t.Errorf("%s (CheckEveryGet %v) = %+v; want ErrInvalidDomain", name, every, r)
				}
			}
			if n := c.Len(); n != 0 {
				t.Errorf("%d domains in memory after an invalid one, want 0", n)
			}
		}
		if n := w.resolver.Lookups("_mta-sts.evil.example@127.0.0.1"); n != 0 {
			t.Errorf("%d lookups of an invalid name", n)
		}
	})
}
