package redisstore_test

import (
	"context"
	"crypto/tls"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/redisstore"
)

// TestTLSAndPassword runs a fleet of two caches over a Redis that speaks TLS
// only and wants a password, through go-redis's universal client as
// docs/fleets.md configures it; a client that does not trust the server's
// certificate gets an error, and the cache goes on without the store.
func TestTLSAndPassword(t *testing.T) {
	srv := startRedisTLS(t, "s3cret")
	resolver, server := world(t)
	ctx := context.Background()
	d := mustDomain(t, "example.com")

	newCache := func(tlsConfig *tls.Config) (*cache.Cache, *redisstore.Store) {
		rdb := redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs: []string{srv.addr()}, Password: "s3cret", TLSConfig: tlsConfig,
			ContextTimeoutEnabled: true, MaxRetries: -1,
		})
		t.Cleanup(func() { rdb.Close() })
		store := redisstore.New(rdb, redisstore.Options{})
		c, err := cache.New(cache.Options{Resolver: resolver, Store: store})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, store
	}

	c1, _ := newCache(srv.tlsConfig)
	if r := c1.Get(ctx, d); r.Policy == nil || !r.Fresh {
		t.Fatalf("first cache: %+v", r)
	}
	c2, store2 := newCache(srv.tlsConfig)
	if r := c2.Get(ctx, d); r.Policy == nil || r.Fresh {
		t.Fatalf("second cache: %+v; want the policy from Redis", r)
	}
	if e, ok, err := store2.Load(ctx, "example.com"); err != nil || !ok || e.RecordID != "1" {
		t.Errorf("Load over TLS = %+v, %v, %v", e, ok, err)
	}

	// The server speaks TLS only: a plain client gets nowhere.
	plain := redis.NewClient(&redis.Options{Addr: srv.addr(), Password: "s3cret", MaxRetries: -1})
	defer plain.Close()
	if _, _, err := redisstore.New(plain, redisstore.Options{}).Load(ctx, "example.com"); err == nil {
		t.Error("Load without TLS succeeded")
	}

	// A client that does not trust the certificate.
	c3, store3 := newCache(&tls.Config{ServerName: "redis.test", MinVersion: tls.VersionTLS12})
	if _, _, err := store3.Load(ctx, "example.com"); err == nil {
		t.Error("Load with an untrusted certificate succeeded")
	}
	if r := c3.Get(ctx, d); r.Policy == nil || !r.Fresh {
		t.Errorf("cache with an untrusted Redis: %+v; want a fetched policy", r)
	}
	if n := server.Requests("example.com"); n != 2 {
		t.Errorf("%d fetches, want 2: the first cache's and the untrusting one's", n)
	}
}
