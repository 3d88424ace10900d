package cache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
)

// hangingWorld is a world where every domain whose name starts with "hang"
// publishes a record and then hangs its policy fetch until the fetch's
// context ends, as a policy host that finishes TLS and never answers does.
func hangingWorld(n int) *world {
	w := newWorld()
	for i := range n {
		w.resolver.SetTXT(fmt.Sprintf("_mta-sts.hang%d.example", i), "v=STSv1; id=1")
	}
	w.publish("healthy.example", "1", policyText("enforce", 86400))
	return w
}

// fetchHanging is w.fetch, but a fetch of a "hang" domain waits for its
// context, then fails as FetchPolicy does.
func (w *world) fetchHanging(ctx context.Context, d mtasts.Domain) (*mtasts.Policy, string, error) {
	if strings.HasPrefix(d.ASCII, "hang") {
		<-ctx.Done()
		return nil, "", fmt.Errorf("%w: %w", mtasts.ErrPolicyFetch, context.Cause(ctx))
	}
	return w.fetch(ctx, d)
}

// TestHealthyBehindHangingHosts: a Get for a healthy, uncached domain made 3
// seconds after N Gets of domains whose policy hosts hang gets its policy
// within 10 seconds, whether the earlier callers wait for ever or give up.
// The clock is synctest's, so the bound is exact, not a timing.
func TestHealthyBehindHangingHosts(t *testing.T) {
	for _, n := range []int{300, 10_000} {
		for _, patience := range []time.Duration{0, 10 * time.Second} {
			name := fmt.Sprintf("%d/patient", n)
			if patience != 0 {
				name = fmt.Sprintf("%d/leave-after-%v", n, patience)
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { healthyBehindHanging(t, n, patience) })
			})
		}
	}
}

func healthyBehindHanging(t *testing.T, n int, patience time.Duration) {
	w := hangingWorld(n)
	c := w.newCache(t, cache.Fake(cache.Options{}, nil, w.fetchHanging))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range n {
		wg.Go(func() {
			ctx := ctx
			if patience != 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, patience)
				defer cancel()
			}
			c.Get(ctx, domain(t, fmt.Sprintf("hang%d.example", i)))
		})
	}
	time.Sleep(3 * time.Second)
	start := time.Now()
	r := c.Get(t.Context(), domain(t, "healthy.example"))
	took := time.Since(start)
	if r.Policy == nil || r.Err != nil {
		t.Fatalf("healthy Get = %+v; want its policy", r)
	}
	if took > 10*time.Second {
		t.Errorf("healthy Get behind %d hanging domains took %v, want at most 10s", n, took)
	}
}

// TestAbandonedUpdateGivesWay: an update whose callers have all left gives its
// slot at once to a call that waits for one, and leaves no failure behind:
// its host was not given the time to answer.
func TestAbandonedUpdateGivesWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := hangingWorld(1)
		c := w.newCache(t, cache.Fake(cache.Options{MaxNetwork: 1}, nil, w.fetchHanging))
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		r := c.Get(ctx, domain(t, "hang0.example"))
		cancel()
		if !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Fatalf("hanging Get = %+v; want its context's deadline", r)
		}
		start := time.Now()
		r = c.Get(t.Context(), domain(t, "healthy.example"))
		if r.Policy == nil || time.Since(start) != 0 {
			t.Fatalf("healthy Get after %v = %+v; want its policy at once", time.Since(start), r)
		}
		// The abandoned update recorded nothing: the next Get of the
		// hanging domain tries again rather than backing off.
		ctx, cancel = context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		r = c.Get(ctx, domain(t, "hang0.example"))
		if r.Remembered || !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Errorf("second hanging Get = %+v; want a new attempt, not a remembered failure", r)
		}
	})
}

// TestPreemptedUpdateTimesOut: with every slot held by hanging hosts and a
// Get waiting, the longest-running update gives way after PreemptAfter. Its
// patient caller gets a fetch timeout, reported as RFC 8460 4.3 classes it,
// and the domain backs off as after any failed fetch (RFC 8461 3.3).
func TestPreemptedUpdateTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := hangingWorld(1)
		c := w.newCache(t, cache.Fake(cache.Options{MaxNetwork: 1, PreemptAfter: 4 * time.Second}, nil, w.fetchHanging))
		hang := make(chan cache.Result, 1)
		go func() { hang <- c.Get(t.Context(), domain(t, "hang0.example")) }()
		synctest.Wait()
		start := time.Now()
		r := c.Get(t.Context(), domain(t, "healthy.example"))
		if r.Policy == nil || time.Since(start) != 4*time.Second {
			t.Fatalf("healthy Get after %v = %+v; want its policy after 4s", time.Since(start), r)
		}
		r = <-hang
		if r.Policy != nil || !errors.Is(r.Err, mtasts.ErrPolicyFetch) || !errors.Is(r.Err, context.DeadlineExceeded) ||
			mtasts.TLSReportResultType(r.Err) != mtasts.ResultSTSPolicyFetchError || r.RetryAt.IsZero() {
			t.Fatalf("preempted Get = %+v; want a fetch timeout with a back-off", r)
		}
		if !strings.Contains(r.Err.Error(), "gave way") {
			t.Errorf("preempted Get's error %q does not say why", r.Err)
		}
		r = c.Get(t.Context(), domain(t, "hang0.example"))
		if !r.Remembered {
			t.Errorf("Get during the back-off = %+v; want the remembered failure", r)
		}
	})
}

// TestNewestCallFirst: when a slot frees, the call asked for last gets it:
// its caller is the likeliest to be waiting still, and a burst of earlier
// calls cannot hold a later domain back.
func TestNewestCallFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := hangingWorld(100)
		c := w.newCache(t, cache.Fake(cache.Options{MaxNetwork: 1, PreemptAfter: time.Hour}, nil, w.fetchHanging))
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		for i := range 100 {
			wg.Go(func() { c.Get(ctx, domain(t, fmt.Sprintf("hang%d.example", i))) })
			synctest.Wait()
		}
		healthy := make(chan cache.Result, 1)
		go func() { healthy <- c.Get(t.Context(), domain(t, "healthy.example")) }()
		synctest.Wait()
		// The running update (hang0) times out after Timeout; the next
		// to run is healthy.example, asked last.
		start := time.Now()
		r := <-healthy
		if r.Policy == nil || time.Since(start) != 90*time.Second {
			t.Errorf("healthy Get after %v = %+v; want its policy when the first hanging update timed out (90s)", time.Since(start), r)
		}
	})
}

// TestGetAfterAbandonedUpdate: a Get that comes while an update whose callers
// left is ending, after giving way, does not get that update's result, which
// says nothing of the domain, but an attempt of its own.
func TestGetAfterAbandonedUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := hangingWorld(1)
		var fetches sync.Map
		slowToEnd := func(ctx context.Context, d mtasts.Domain) (*mtasts.Policy, string, error) {
			n, _ := fetches.LoadOrStore(d.ASCII, new(int))
			*n.(*int)++
			if d.ASCII == "hang0.example" && *n.(*int) == 1 {
				<-ctx.Done()
				time.Sleep(time.Second) // ending takes time
				return nil, "", fmt.Errorf("%w: %w", mtasts.ErrPolicyFetch, context.Cause(ctx))
			}
			w.publish(d.ASCII, "1", policyText("enforce", 86400))
			return w.fetch(ctx, d)
		}
		c := w.newCache(t, cache.Fake(cache.Options{MaxNetwork: 1}, nil, slowToEnd))
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		c.Get(ctx, domain(t, "hang0.example"))
		cancel()
		healthy := make(chan cache.Result, 1)
		go func() { healthy <- c.Get(t.Context(), domain(t, "healthy.example")) }()
		synctest.Wait() // hang0's update gave way and is ending
		r := c.Get(t.Context(), domain(t, "hang0.example"))
		if r.Policy == nil || r.Err != nil {
			t.Errorf("Get while the abandoned update ends = %+v; want a fetch of its own", r)
		}
		if r := <-healthy; r.Policy == nil {
			t.Errorf("healthy Get = %+v", r)
		}
	})
}
