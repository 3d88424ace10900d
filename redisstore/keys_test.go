package redisstore_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts/redisstore"
)

// TestKeys checks the key scheme: the prefix, then the domain in A-label
// form, whatever form the caller gives it in.
func TestKeys(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	s := redisstore.New(rdb, redisstore.Options{Prefix: "fleet1:"})
	reg := prometheus.NewPedanticRegistry()
	if err := s.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	if err := s.Save(ctx, entry("Bücher.Example.")); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, "fleet1:policy:xn--bcher-kva.example").Val(); n != 1 {
		keys := rdb.Keys(ctx, "*").Val()
		t.Fatalf("no key fleet1:policy:xn--bcher-kva.example; keys: %q", keys)
	}
	for _, name := range []string{"xn--bcher-kva.example", "XN--BCHER-KVA.EXAMPLE", "bücher.example"} {
		e, ok, err := s.Load(ctx, name)
		if err != nil || !ok || e.Domain != "xn--bcher-kva.example" {
			t.Errorf("Load(%q) = %+v, %v, %v", name, e, ok, err)
		}
	}
	token, held, err := s.Lock(ctx, "BÜCHER.example")
	if err != nil || !held || rdb.Exists(ctx, "fleet1:lock:xn--bcher-kva.example").Val() != 1 {
		t.Errorf("Lock = %v, %v; lock key: %q", held, err, rdb.Keys(ctx, "fleet1:lock:*").Val())
	}
	if err := s.Unlock(ctx, "xn--bcher-kva.example", token); err != nil || rdb.Exists(ctx, "fleet1:lock:xn--bcher-kva.example").Val() != 0 {
		t.Errorf("Unlock: %v, or the lock is still there", err)
	}
	if err := s.Delete(ctx, "bücher.example"); err != nil || rdb.Exists(ctx, "fleet1:policy:xn--bcher-kva.example").Val() != 0 {
		t.Errorf("Delete: %v, or the key is still there", err)
	}

	// A name that is not a domain is an error, counted, and touches no key.
	before := rdb.DBSize(ctx).Val()
	if _, ok, err := s.Load(ctx, "a..example"); ok || err == nil {
		t.Errorf("Load of a..example = %v, %v; want an error", ok, err)
	}
	if err := s.Save(ctx, entry("")); err == nil {
		t.Error("Save of an entry without a domain succeeded")
	}
	if rdb.DBSize(ctx).Val() != before {
		t.Errorf("keys now: %q", rdb.Keys(ctx, "*").Val())
	}
	if n := counter(t, reg, "mtastsgo_redisstore_errors_total"); n != 2 {
		t.Errorf("%v errors counted, want 2", n)
	}
}
