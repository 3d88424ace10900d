package cache_test

import (
	"strconv"

	"context"
	"github.com/mtasts-go/mtasts"
	"testing"

	"github.com/mtasts-go/mtasts/cache"
)

// benchCache returns a cache holding example.com's policy.
func benchCache(b *testing.B) *cache.Cache {
	w := newWorld()
	w.publish("example.com", "1", policyText("enforce", 86400))
	c, err := cache.New(cache.Fake(cache.Options{Resolver: w.resolver}, nil, w.fetch))
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

// BenchmarkGetMissFull measures a miss in a full cache: a domain never seen,
// with no MTA-STS record, so that the least recently used domain must make
// room for it. The resolver is in memory; the figure is the cache's own cost.
func BenchmarkGetMissFull(b *testing.B) {
	w := newWorld()
	c, err := cache.New(cache.Fake(cache.Options{Resolver: w.resolver, MaxEntries: 10000}, nil, w.fetch))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	ctx := context.Background()
	names := make([]mtasts.Domain, 50000)
	for i := range names {
		names[i] = mtasts.Domain{ASCII: "d" + strconv.Itoa(i) + ".example"}
	}
	for _, d := range names[:10000] {
		c.Get(ctx, d)
	}
	b.ReportAllocs()
	i := 10000
	for b.Loop() {
		c.Get(ctx, names[i%len(names)])
		i++
	}
}
