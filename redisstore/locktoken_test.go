package redisstore_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/redisstore"
)

// TestLockSharedStoreValue has two caches of one process share one Store
// value, as an MTA with several caches over one Redis client would. The
// first cache's lock expires while it fetches, the second takes the lock:
// the first one's release must leave the second's lock alone, and the second
// must release its own.
func TestLockSharedStoreValue(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	store := redisstore.New(rdb, redisstore.Options{})
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
	ctx := context.Background()
	const key = "mtasts:lock:example.com"

	// Each fetch says it started, then waits for its release.
	entered := make(chan int)
	release := []chan struct{}{make(chan struct{}), make(chan struct{})}
	var fetches atomic.Int32
	fetch := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		i := int(fetches.Add(1)) - 1
		entered <- i
		<-release[i]
		return &http.Response{
			StatusCode: http.StatusOK,
			Header:     http.Header{"Content-Type": {"text/plain"}},
			Body:       io.NopCloser(strings.NewReader(policy)),
			Request:    r,
		}, nil
	})
	client := &mtasts.Client{HTTPClient: &http.Client{Transport: fetch}}
	var caches [2]*cache.Cache
	for i := range caches {
		c, err := cache.New(cache.Options{Resolver: resolver, Store: store, Client: client})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		caches[i] = c
	}
	d := mustDomain(t, "example.com")
	var done [2]chan cache.Result
	get := func(i int) {
		done[i] = make(chan cache.Result, 1)
		go func() { done[i] <- caches[i].Get(ctx, d) }()
		if n := <-entered; n != i {
			t.Fatalf("fetch %d started, want %d", n, i)
		}
	}

	get(0) // the first cache holds the lock and fetches
	if rdb.Exists(ctx, key).Val() != 1 {
		t.Fatal("no lock taken by the first cache")
	}
	rdb.Del(ctx, key) // as if it expired during a slow fetch
	get(1)            // the second cache takes the lock and fetches
	second := rdb.Get(ctx, key).Val()
	if second == "" {
		t.Fatal("no lock taken by the second cache")
	}

	// The first Get returns once its policy is saved and its lock
	// released.
	close(release[0])
	if r := <-done[0]; r.Policy == nil {
		t.Errorf("first Get = %+v", r)
	}
	if v := rdb.Get(ctx, key).Val(); v != second {
		t.Errorf("after the first cache's release the lock is %q, want the second cache's %q", v, second)
	}
	close(release[1])
	if r := <-done[1]; r.Policy == nil {
		t.Errorf("second Get = %+v", r)
	}
	if rdb.Exists(ctx, key).Val() != 0 {
		t.Error("the second cache did not release its lock")
	}
}

// lateReply is a go-redis hook that holds back the reply of the first
// command that match selects, as a slow network or a stalled Redis would:
// Redis has run the command, the client has not heard. With honour set, it
// gives up when the context ends, as a client with ContextTimeoutEnabled
// does; without, it waits for release, as one that ignores contexts does
// until its ReadTimeout.
type lateReply struct {
	match   func(cmd redis.Cmder, err error) bool
	honour  bool
	release chan struct{}
	held    atomic.Bool
}

func (h *lateReply) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *lateReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *lateReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if !h.match(cmd, err) || !h.held.CompareAndSwap(false, true) {
			return err
		}
		if h.honour {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-h.release:
				return err
			}
		}
		<-h.release
		return err
	}
}

// isLockSet selects the SET NX of a lock.
func isLockSet(cmd redis.Cmder, _ error) bool {
	return cmd.Name() == "set" && strings.Contains(cmd.String(), "mtasts:lock:")
}

// isScriptRun selects a script that ran, as the lock's extension to Lease
// does: not the EVALSHA that fails with NOSCRIPT before go-redis sends EVAL.
func isScriptRun(cmd redis.Cmder, err error) bool {
	return (cmd.Name() == "evalsha" || cmd.Name() == "eval") && err == nil
}

// TestLockReplyLate: a SET NX that Redis runs but whose reply comes after
// the store's Timeout. Lock fails, so the cache has no token and never
// releases that lock: it must not stay in Redis for Lease, or the fleet
// waits LockWait for a fetch that nobody makes. The same holds when the
// reply that comes late is that of the lock's extension to Lease.
func TestLockReplyLate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		late   func(redis.Cmder, error) bool
		honour bool
		short  bool // the lock Redis holds is short-lived
	}{
		{"SET NX, client ignoring contexts", isLockSet, false, true},
		{"SET NX, client honouring contexts", isLockSet, true, true},
		{"extension, client ignoring contexts", isScriptRun, false, false},
		{"extension, client honouring contexts", isScriptRun, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			honour := tc.honour
			srv := startRedis(t, "")
			check := srv.client()
			rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), ContextTimeoutEnabled: honour, MaxRetries: -1})
			hook := &lateReply{match: tc.late, honour: honour, release: make(chan struct{})}
			rdb.AddHook(hook)
			t.Cleanup(func() { close(hook.release); rdb.Close() })
			const timeout = 100 * time.Millisecond
			store := redisstore.New(rdb, redisstore.Options{Timeout: timeout, Lease: time.Hour, RetryAfter: time.Nanosecond})
			ctx := context.Background()
			const key = "mtasts:lock:example.com"

			_, held, err := store.Lock(ctx, "example.com")
			if held || err == nil {
				t.Fatalf("Lock with a late reply = %v, %v; want an error", held, err)
			}
			if !hook.held.Load() {
				t.Fatal("no reply was held back")
			}
			// After a late SET NX, the lock Redis took lasts a few
			// Timeouts at most, not Lease; after a late extension,
			// it lasts Lease unless Lock deletes it.
			if ttl := check.PTTL(ctx, key).Val(); tc.short && ttl > 10*timeout {
				t.Errorf("lock left with PTTL %v after a late reply; Lease is an hour, Timeout %v", ttl, timeout)
			}
			waitGone(t, check, key)
		})
	}
}

// waitGone polls Redis until key is gone, for a few seconds at most.
func waitGone(t *testing.T, rdb *redis.Client, key string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for rdb.Exists(context.Background(), key).Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s still there after 5s, PTTL %v", key, rdb.PTTL(context.Background(), key).Val())
		}
		time.Sleep(10 * time.Millisecond) // polling a real Redis
	}
}

// roundTripFunc is an http.RoundTripper from a function: the policy host of
// a Client that the test holds up.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
