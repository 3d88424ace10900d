package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/redisstore"
)

// TestLock checks the lock itself: SET NX, lasting the store's Lease, one
// holder at a time, and release only with the holder's token, also between
// holders that share one Store value.
func TestLock(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	ctx := context.Background()
	a := redisstore.New(rdb, redisstore.Options{Lease: 30 * time.Second})
	b := redisstore.New(srv.client(), redisstore.Options{Lease: 30 * time.Second})

	token, held, err := a.Lock(ctx, "example.com")
	if !held || err != nil || token == "" {
		t.Fatalf("first Lock = %q, %v, %v", token, held, err)
	}
	// The lock expires by itself, after Lease.
	if ttl := rdb.PTTL(ctx, "mtasts:lock:example.com").Val(); ttl <= 29*time.Second || ttl > 30*time.Second {
		t.Errorf("lock PTTL %v, want just under 30s", ttl)
	}
	for _, s := range []*redisstore.Store{a, b} {
		if other, held, err := s.Lock(ctx, "example.com"); held || err != nil || other != "" {
			t.Errorf("second Lock = %q, %v, %v; want not held", other, held, err)
		}
	}
	// Unlock without the holder's token leaves the lock.
	for _, wrong := range []string{"", "not-the-token"} {
		if err := b.Unlock(ctx, "example.com", wrong); err != nil || rdb.Exists(ctx, "mtasts:lock:example.com").Val() != 1 {
			t.Errorf("Unlock with token %q: %v, or it removed the lock", wrong, err)
		}
	}
	// The token, not the Store value, makes the holder.
	if err := b.Unlock(ctx, "example.com", token); err != nil || rdb.Exists(ctx, "mtasts:lock:example.com").Val() != 0 {
		t.Errorf("Unlock with the holder's token: %v, or the lock is still there", err)
	}

	// The holder's lock expired and another holder, of the same Store
	// value, took it: the first holder's Unlock must not release the new
	// holder's lock.
	first, held, err := a.Lock(ctx, "example.org")
	if !held || err != nil {
		t.Fatalf("Lock = %v, %v", held, err)
	}
	rdb.Del(ctx, "mtasts:lock:example.org") // as if it expired
	second, held, err := a.Lock(ctx, "example.org")
	if !held || err != nil || second == first {
		t.Fatalf("Lock after expiry = %q, %v, %v; first token %q", second, held, err, first)
	}
	if err := a.Unlock(ctx, "example.org", first); err != nil {
		t.Fatal(err)
	}
	if rdb.Get(ctx, "mtasts:lock:example.org").Val() != second {
		t.Error("a stale holder released the new holder's lock")
	}
	if err := a.Unlock(ctx, "example.org", second); err != nil || rdb.Exists(ctx, "mtasts:lock:example.org").Val() != 0 {
		t.Errorf("Unlock by the new holder: %v, or the lock is still there", err)
	}
}

// TestDeadLockHolder checks that a lock left by an MTA that died while
// fetching delays the others by LockWait at most, and callers by no more
// than their own context.
func TestDeadLockHolder(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	resolver, server := world(t)
	ctx := context.Background()
	d := mustDomain(t, "example.com")
	// The dead MTA's lock, which would last a minute.
	rdb.Set(ctx, "mtasts:lock:example.com", "dead-mta", time.Minute)

	const lockWait = time.Second
	c, err := cache.New(cache.Options{Resolver: resolver, Store: redisstore.New(rdb, redisstore.Options{}), LockWait: lockWait})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// A caller whose context ends before LockWait gets its context's
	// error, when its context ends, not later.
	short, cancel := context.WithTimeout(ctx, lockWait/10)
	defer cancel()
	if r := c.Get(short, d); r.Policy != nil || !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Errorf("Get with a short context = %+v; want its deadline error", r)
	}
	if n := server.Requests("example.com"); n != 0 {
		t.Errorf("%d fetches while the lock was held and LockWait not over, want 0", n)
	}
	// Once LockWait is over, the cache fetches itself.
	if r := c.Get(ctx, d); r.Policy == nil || !r.Fresh {
		t.Errorf("Get after LockWait = %+v; want a fetched policy", r)
	}
	if n := server.Requests("example.com"); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
	// The dead MTA's lock is not this cache's to release.
	if v := rdb.Get(ctx, "mtasts:lock:example.com").Val(); v != "dead-mta" {
		t.Errorf("lock now %q, want the dead MTA's", v)
	}
}
