package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/redisstore"
)

// benchCache returns a cache over a Redis store holding the policies of
// a.example and b.example, with room for one domain in memory.
func benchCache(b *testing.B, maxEntries int) *cache.Cache {
	srv := startRedis(b, "")
	// The client as ExampleNew configures it.
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), ContextTimeoutEnabled: true})
	b.Cleanup(func() { rdb.Close() })
	store := redisstore.New(rdb, redisstore.Options{})
	resolver := mtaststest.NewResolver()
	for _, d := range []string{"a.example", "b.example"} {
		resolver.SetTXT("_mta-sts."+d, "v=STSv1; id=1")
		now := time.Now()
		if err := store.Save(context.Background(), cache.Entry{Domain: d, RecordID: "1", Policy: policy, Fetched: now, Expires: now.Add(24 * time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	c, err := cache.New(cache.Options{Resolver: resolver, Store: store, MaxEntries: maxEntries})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkGetFromRedis measures a Get whose domain is not in memory, served
// from Redis: with room for one domain, alternating between two makes every
// Get a memory miss. Each also starts the background record check that
// follows a load from the store (against an in-memory resolver).
func BenchmarkGetFromRedis(b *testing.B) {
	c := benchCache(b, 1)
	domains := []mtasts.Domain{mustDomain(b, "a.example"), mustDomain(b, "b.example")}
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		r := c.Get(ctx, domains[i%2])
		if r.Policy == nil || r.Fresh {
			b.Fatalf("Get = %+v", r)
		}
		i++
	}
}

// BenchmarkGetHitMemory is the in-memory hit of the same cache, for
// comparison.
func BenchmarkGetHitMemory(b *testing.B) {
	c := benchCache(b, 10)
	d := mustDomain(b, "a.example")
	ctx := context.Background()
	c.Get(ctx, d)
	b.ReportAllocs()
	for b.Loop() {
		if r := c.Get(ctx, d); r.Policy == nil {
			b.Fatal("miss")
		}
	}
}

// BenchmarkLoad measures the store's Load alone, with a client that bounds
// commands by their context and with go-redis's defaults, for which the store
// runs each command in a goroutine it can stop waiting for.
func BenchmarkLoad(b *testing.B) {
	srv := startRedis(b, "")
	for _, bc := range []struct {
		name string
		opts redis.Options
	}{
		{"ContextTimeoutEnabled", redis.Options{ContextTimeoutEnabled: true}},
		{"default client", redis.Options{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bc.opts.Addr = srv.addr()
			rdb := redis.NewClient(&bc.opts)
			defer rdb.Close()
			store := redisstore.New(rdb, redisstore.Options{})
			ctx := context.Background()
			if err := store.Save(ctx, entry("example.com")); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := store.Load(ctx, "example.com"); !ok || err != nil {
					b.Fatalf("Load = %v, %v", ok, err)
				}
			}
		})
	}
}
