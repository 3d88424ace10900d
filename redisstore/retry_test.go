package redisstore_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts/redisstore"
)

// countingHandler counts the records logged at Warn or above.
type countingHandler struct{ warnings atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.warnings.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// TestRetryAfter checks that after a failed command the store leaves a hung
// Redis alone for RetryAfter, so that one operation, not each, waits for the
// timeout, that it logs the failure once and counts every failed operation,
// and that it uses Redis again once RetryAfter is over.
func TestRetryAfter(t *testing.T) {
	srv := startRedis(t, "")
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	h := &countingHandler{}
	const retryAfter = 500 * time.Millisecond
	store := redisstore.New(rdb, redisstore.Options{Timeout: 100 * time.Millisecond, RetryAfter: retryAfter, Logger: slog.New(h)})
	reg := prometheus.NewPedanticRegistry()
	if err := store.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := store.Save(ctx, entry("example.com")); err != nil {
		t.Fatal(err)
	}

	// The caller's own context ending is no failure of Redis.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := store.Load(canceled, "example.com"); !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a canceled context: %v", err)
	}
	if _, ok, err := store.Load(ctx, "example.com"); !ok || err != nil {
		t.Errorf("Load after a canceled one = %v, %v; want Redis used", ok, err)
	}

	srv.pause()
	failedAt := time.Now()
	_, _, err := store.Load(ctx, "example.com")
	if err == nil || errors.Is(err, redisstore.ErrUnavailable) {
		t.Fatalf("first Load with Redis hung: %v; want Redis's failure", err)
	}
	ops := []func() error{
		func() error { _, _, err := store.Load(ctx, "example.com"); return err },
		func() error { return store.Save(ctx, entry("example.org")) },
		func() error { _, _, err := store.Lock(ctx, "example.com"); return err },
		func() error { return store.Delete(ctx, "example.com") },
	}
	for i, op := range ops {
		err := op()
		if time.Since(failedAt) >= retryAfter {
			t.Skip("too slow a machine to test within RetryAfter")
		}
		if !errors.Is(err, redisstore.ErrUnavailable) {
			t.Errorf("operation %d right after the failure: %v; want ErrUnavailable", i, err)
		}
	}
	if n := counter(t, reg, "mtastsgo_redisstore_errors_total"); n != 1+float64(len(ops)) {
		t.Errorf("%v errors counted, want %d", n, 1+len(ops))
	}
	if n := h.warnings.Load(); n != 1 {
		t.Errorf("%d warnings logged, want 1", n)
	}

	// Redis answers again: once RetryAfter is over, the store uses it.
	srv.resume()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, ok, err := store.Load(ctx, "example.com")
		if ok && err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis not used again: %v", err)
		}
		time.Sleep(retryAfter / 10) // polling for the end of RetryAfter
	}
}
