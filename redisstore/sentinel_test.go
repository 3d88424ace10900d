package redisstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/redisstore"
)

// TestSentinel runs two caches of a fleet over a Redis found through a
// Sentinel, with go-redis's universal client given a MasterName.
func TestSentinel(t *testing.T) {
	master := startRedis(t, "")
	sentinel := newRedis(t, "")
	conf := filepath.Join(sentinel.dir, "sentinel.conf")
	// Sentinel rewrites its configuration file, so it gets one of its own.
	if err := os.WriteFile(conf, fmt.Appendf(nil, "sentinel monitor fleet 127.0.0.1 %d 1\n", master.port), 0o600); err != nil {
		t.Fatal(err)
	}
	sentinel.confFile = conf
	sentinel.extraArgs = []string{"--sentinel"}
	sentinel.start()
	t.Cleanup(sentinel.stop)

	resolver, server := world(t)
	ctx := context.Background()
	d := mustDomain(t, "example.com")
	newCache := func() *cache.Cache {
		rdb := redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs: []string{sentinel.addr()}, MasterName: "fleet", ContextTimeoutEnabled: true,
		})
		t.Cleanup(func() { rdb.Close() })
		c, err := cache.New(cache.Options{Resolver: resolver, Store: redisstore.New(rdb, redisstore.Options{})})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	if r := newCache().Get(ctx, d); r.Policy == nil || !r.Fresh {
		t.Fatalf("first cache: %+v", r)
	}
	if r := newCache().Get(ctx, d); r.Policy == nil || r.Fresh {
		t.Fatalf("second cache: %+v; want the policy from the Sentinel's master", r)
	}
	if n := server.Requests("example.com"); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
	// The entry is in the master the Sentinel monitors.
	if n := master.client().Exists(ctx, "mtasts:policy:example.com").Val(); n != 1 {
		t.Error("no entry in the master")
	}
}
