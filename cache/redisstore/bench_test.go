package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/cache/redisstore"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// benchCache returns a cache over a Redis store holding the policies of
// a.example and b.example, with room for one domain in memory.
func benchCache(b *testing.B, maxEntries int) *cache.Cache {
	srv := startRedis(b, "")
	store := redisstore.New(srv.client(), redisstore.Options{})
	resolver := mtaststest.NewResolver()
	for _, d := range []string{"a.example", "b.example"} {
		resolver.SetRecord(d, "v=STSv1; id=1")
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
