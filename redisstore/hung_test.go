package redisstore_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/redisstore"
)

// pause stops the server's process without closing its socket: a Redis that
// accepts connections and never answers, the slow Redis at its worst.
func (s *redisServer) pause() {
	s.t.Helper()
	if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { s.resume() })
}

func (s *redisServer) resume() {
	if s.cmd != nil {
		syscall.Kill(s.cmd.Process.Pid, syscall.SIGCONT)
	}
}

// TestRedisHung checks that a Redis that never answers holds no operation up
// past Options.Timeout, whether or not the user's client honours contexts:
// go-redis, unless ContextTimeoutEnabled is set, bounds socket reads by its
// ReadTimeout (3 seconds by default, then retries) and not by the context.
func TestRedisHung(t *testing.T) {
	const timeout = 100 * time.Millisecond
	// The bound asserted is well above the store's Timeout and well
	// below go-redis's own default read timeout of 3 seconds.
	const bound = 2 * time.Second
	for _, tc := range []struct {
		name string
		opts redis.Options
	}{
		{"default client", redis.Options{}},
		{"client honouring contexts", redis.Options{ContextTimeoutEnabled: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRedis(t, "")
			tc.opts.Addr = srv.addr()
			rdb := redis.NewClient(&tc.opts)
			t.Cleanup(func() { rdb.Close() })
			// Each operation tries Redis: this tests the bound of each.
			store := redisstore.New(rdb, redisstore.Options{Timeout: timeout, RetryAfter: time.Nanosecond})
			reg := prometheus.NewPedanticRegistry()
			if err := store.RegisterMetrics(reg); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			// A connection in the pool, so that the hang is in a read, not
			// in a dial.
			if err := store.Save(ctx, entry("example.com")); err != nil {
				t.Fatal(err)
			}
			srv.pause()

			ops := []struct {
				name string
				do   func() error
			}{
				{"load", func() error { _, _, err := store.Load(ctx, "example.com"); return err }},
				{"save", func() error { return store.Save(ctx, entry("example.org")) }},
				{"delete", func() error { return store.Delete(ctx, "example.com") }},
				{"lock", func() error { _, _, err := store.Lock(ctx, "example.com"); return err }},
			}
			for _, op := range ops {
				start := time.Now()
				err := op.do()
				if elapsed := time.Since(start); elapsed > bound {
					t.Errorf("%s with Redis hung took %v; Timeout is %v", op.name, elapsed, timeout)
				}
				if err == nil {
					t.Errorf("%s with Redis hung succeeded", op.name)
				}
			}
			if n := counter(t, reg, "mtastsgo_redisstore_errors_total"); n != float64(len(ops)) {
				t.Errorf("%v errors counted, want %d", n, len(ops))
			}

			// Deliveries go on: a cache over the hung store fetches the
			// policy, held up by the store's Timeout per operation only.
			resolver, server := world(t)
			c, err := cache.New(cache.Options{Resolver: resolver, Store: store})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			if r := c.Get(ctx, mustDomain(t, "example.com")); r.Policy == nil || !r.Fresh || r.Err != nil {
				t.Errorf("Get with Redis hung = %+v", r)
			}
			if elapsed := time.Since(start); elapsed > bound {
				t.Errorf("Get with Redis hung took %v", elapsed)
			}
			if n := server.Requests("example.com"); n != 1 {
				t.Errorf("%d fetches, want 1", n)
			}
		})
	}
}
