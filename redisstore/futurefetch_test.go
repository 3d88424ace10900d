package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/redisstore"
)

// TestFetchedInTheFutureRewritten: a policy saved by a member whose clock
// ran a year ahead, with a ten-year expiry, is taken as fetched now by the
// first cache that loads it, which saves it so: its stored times are then
// the first load's, max_age apart, and its key's TTL is max_age. Another
// member, or a restart, loads those times; none gives the policy a new
// max_age (RFC 8461 3.2, 5.1).
func TestFetchedInTheFutureRewritten(t *testing.T) {
	srv := startRedis(t, "")
	ctx := context.Background()
	const key = "mtasts:policy:example.com"
	store := redisstore.New(srv.client(), redisstore.Options{})
	future := time.Now().Add(365 * 24 * time.Hour)
	if err := store.Save(ctx, cache.Entry{Domain: "example.com", RecordID: "1", Policy: policy, Fetched: future, Expires: future.Add(10 * 365 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	rdb := srv.client()
	if ttl := rdb.PTTL(ctx, key).Val(); ttl < 10*365*24*time.Hour {
		t.Fatalf("PTTL of the wrong clock's entry %v, want 11 years", ttl)
	}
	resolver, _ := world(t)

	before := time.Now()
	c, err := cache.New(cache.Options{Resolver: resolver, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	r := c.Get(ctx, mustDomain(t, "example.com"))
	after := time.Now()
	c.Close()
	if r.Policy == nil || r.Fetched.Before(before) || r.Fetched.After(after) {
		t.Fatalf("Get = %+v; want the stored policy, taken as fetched now", r)
	}
	e, ok, err := store.Load(ctx, "example.com")
	if err != nil || !ok || !e.Fetched.Equal(r.Fetched.Truncate(time.Millisecond)) || !e.Expires.Equal(e.Fetched.Add(24*time.Hour)) {
		t.Errorf("stored after the first load: %v %v fetched %v, expires %v; want %v and 24h later", ok, err, e.Fetched, e.Expires, r.Fetched)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > 24*time.Hour {
		t.Errorf("PTTL after the first load %v, want at most max_age (24h)", ttl)
	}

	// Another member of the fleet, on its own client, loads the
	// corrected times.
	other := redisstore.New(srv.client(), redisstore.Options{})
	c2, err := cache.New(cache.Options{Resolver: resolver, Store: other})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	r2 := c2.Get(ctx, mustDomain(t, "example.com"))
	if r2.Policy == nil || !r2.Fetched.Equal(e.Fetched) || !r2.Expires.Equal(e.Expires) {
		t.Errorf("another member's Get: fetched %v, expires %v; want the first load's, %v and %v", r2.Fetched, r2.Expires, e.Fetched, e.Expires)
	}
}
