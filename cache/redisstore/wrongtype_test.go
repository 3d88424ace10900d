package redisstore_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/cache/redisstore"
)

// TestWrongTypeKey puts a hash, then a list, under a policy key, as a
// mistaken operator or another program might. Redis answers GET with
// WRONGTYPE: that is a bad value under one key, not a Redis failing. Load
// reports it (counted, logged) without leaving Redis alone for RetryAfter,
// other domains are served at once, and the next Save repairs the key.
func TestWrongTypeKey(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	h := &countingHandler{}
	// A RetryAfter far longer than the test: a store that took
	// WRONGTYPE for a failing Redis would refuse everything below.
	store := redisstore.New(rdb, redisstore.Options{RetryAfter: time.Hour, Logger: slog.New(h)})
	reg := prometheus.NewPedanticRegistry()
	if err := store.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const key = "mtasts:policy:example.com"

	for i, put := range []struct {
		name string
		do   func() error
	}{
		{"hash", func() error { return rdb.HSet(ctx, key, "policy", "x").Err() }},
		{"list", func() error { return rdb.RPush(ctx, key, "x", "y").Err() }},
	} {
		t.Run(put.name, func(t *testing.T) {
			rdb.Del(ctx, key)
			if err := put.do(); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := store.Load(ctx, "example.com"); ok || err == nil || errors.Is(err, redisstore.ErrUnavailable) {
				t.Errorf("Load of a %s = %v, %v; want an error about the value", put.name, ok, err)
			}
			if n := counter(t, reg, "mtasts_redisstore_errors_total"); n != float64(i+1) {
				t.Errorf("%v errors counted, want %d", n, i+1)
			}
			if n := h.warnings.Load(); n != int64(i+1) {
				t.Errorf("%d warnings logged, want %d", n, i+1)
			}

			// Redis is still in use, for other domains at once.
			other := entry("example.org")
			if err := store.Save(ctx, other); err != nil {
				t.Errorf("Save of another domain after WRONGTYPE: %v", err)
			}
			if e, ok, err := store.Load(ctx, "example.org"); err != nil || !ok || e.Policy != other.Policy {
				t.Errorf("Load of another domain after WRONGTYPE = %+v, %v, %v", e, ok, err)
			}

			// The next Save overwrites the key, whatever its type.
			e := entry("example.com")
			if err := store.Save(ctx, e); err != nil {
				t.Fatalf("Save over a %s: %v", put.name, err)
			}
			if typ := rdb.Type(ctx, key).Val(); typ != "string" {
				t.Errorf("key is a %s after Save, want a string", typ)
			}
			if got, ok, err := store.Load(ctx, "example.com"); err != nil || !ok || got.Policy != e.Policy {
				t.Errorf("Load after the repairing Save = %+v, %v, %v", got, ok, err)
			}
		})
	}

	// Through a cache: a Get treats the key as absent, fetches, and its
	// Save repairs the key.
	rdb.Del(ctx, key)
	rdb.HSet(ctx, key, "policy", "x")
	resolver, server := world(t)
	c, err := cache.New(cache.Options{Resolver: resolver, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r := c.Get(ctx, mustDomain(t, "example.com")); r.Policy == nil || !r.Fresh {
		t.Fatalf("Get over a hash = %+v; want a fetched policy", r)
	}
	if e, ok, err := store.Load(ctx, "example.com"); err != nil || !ok || e.RecordID != "1" || server.Requests("example.com") != 1 {
		t.Errorf("after Get: %+v, %v, %v; %d fetches", e, ok, err, server.Requests("example.com"))
	}
}
