package cache_test

import (
	"context"
	"testing"

	"github.com/mtasts-go/mtasts/cache"
)

// benchCache returns a cache holding example.com's policy.
func benchCache(b *testing.B) *cache.Cache {
	w := newWorld()
	w.publish("example.com", "1", policyText("enforce", 86400))
	c, err := cache.New(cache.Options{Resolver: w.resolver, FetchPolicy: w.fetch})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if r := c.Get(context.Background(), domain(b, "example.com")); r.Policy == nil {
		b.Fatal("no policy")
	}
	return c
}

func BenchmarkGetHit(b *testing.B) {
	c := benchCache(b)
	d := domain(b, "example.com")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r := c.Get(ctx, d); r.Policy == nil {
			b.Fatal("miss")
		}
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	c := benchCache(b)
	d := domain(b, "example.com")
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := c.Get(ctx, d); r.Policy == nil {
				b.Fatal("miss")
			}
		}
	})
}
