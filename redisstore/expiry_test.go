package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts/redisstore"
)

// TestEntryExpires checks that Redis drops an entry when its policy expires,
// with no help from the store: a short-lived policy is gone from Redis soon
// after its Expires, and Load then finds nothing.
func TestEntryExpires(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	s := redisstore.New(rdb, redisstore.Options{})
	ctx := context.Background()

	e := entry("example.com")
	e.Expires = time.Now().Add(200 * time.Millisecond)
	if err := s.Save(ctx, e); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, "mtasts:policy:example.com").Val(); ttl <= 0 || ttl > 200*time.Millisecond {
		t.Fatalf("PTTL %v, want at most 200ms", ttl)
	}
	if _, ok, err := s.Load(ctx, "example.com"); !ok || err != nil {
		t.Fatalf("Load before expiry = %v, %v", ok, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rdb.Exists(ctx, "mtasts:policy:example.com").Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("entry still in Redis 5s after its policy expired")
		}
		time.Sleep(20 * time.Millisecond) // polling for Redis's expiry
	}
	if time.Now().Before(e.Expires) {
		t.Error("entry dropped before its policy expired")
	}
	if _, ok, err := s.Load(ctx, "example.com"); ok || err != nil {
		t.Errorf("Load after expiry = %v, %v; want nothing", ok, err)
	}
}
