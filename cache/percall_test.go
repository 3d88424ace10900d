package cache_test

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// TestPerCallResolverAndLogger: a Get, Recheck or Run whose ctx carries a
// resolver and a logger (cache.WithResolver, cache.WithLogger) has the
// lookups it starts use that resolver, and their warnings go to that logger;
// a Get that joins a running update shares the resolver of the update.
func TestPerCallResolverAndLogger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		w.publish("held.example", "1", policyText("testing", 86400))
		base := mtaststest.NewResolver() // knows no domain
		cacheLogs := &logRecorder{}
		c, err := cache.New(cache.Fake(cache.Options{Resolver: base, Logger: slog.New(cacheLogs),
			CheckInterval: time.Hour, RefreshAge: 2 * time.Hour}, nil, w.fetch))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		d := domain(t, "example.com")

		// A miss looks the record up with the caller's resolver.
		ctx := cache.WithResolver(t.Context(), w.resolver)
		if r := c.Get(ctx, d); r.Policy == nil || r.Err != nil {
			t.Fatalf("Get with its own resolver = %+v; want the policy", r)
		}
		if n := base.Lookups("_mta-sts.example.com"); n != 0 || w.lookupCount("example.com") != 1 {
			t.Fatalf("lookups: cache's resolver %d, caller's %d; want 0 and 1", n, w.lookupCount("example.com"))
		}

		// The background check that a hit starts uses the hitting
		// Get's resolver.
		other := mtaststest.NewResolver()
		other.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
		time.Sleep(61 * time.Minute)
		if r := c.Get(cache.WithResolver(t.Context(), other), d); r.Policy == nil {
			t.Fatalf("hit = %+v; want the policy", r)
		}
		synctest.Wait()
		if n := other.Lookups("_mta-sts.example.com"); n != 1 || base.Lookups("_mta-sts.example.com") != 0 {
			t.Fatalf("check started by a hit: %d lookups by its resolver, %d by the cache's; want 1 and 0", n, base.Lookups("_mta-sts.example.com"))
		}

		// A Recheck whose fetch fails warns its own logger, not the
		// cache's.
		w.publish("example.com", "2", policyText("enforce", 86400))
		w.breakFetch("example.com", errFetch)
		callLogs := &logRecorder{}
		rctx := cache.WithLogger(cache.WithResolver(t.Context(), w.resolver), slog.New(callLogs))
		if r := c.Recheck(rctx, d); r.Policy == nil || r.Err == nil {
			t.Fatalf("Recheck with a failing fetch = %+v; want the cached policy and the failure", r)
		}
		if callLogs.warnings() != 1 || cacheLogs.warnings() != 0 {
			t.Fatalf("warnings: caller's logger %d, cache's %d; want 1 and 0", callLogs.warnings(), cacheLogs.warnings())
		}

		// A Get that joins a running update shares its resolver.
		held := domain(t, "held.example")
		release := w.resolver.Hold("_mta-sts.held.example")
		first := make(chan cache.Result)
		go func() { first <- c.Get(ctx, held) }()
		synctest.Wait() // the first Get's lookup is held
		second := make(chan cache.Result)
		go func() { second <- c.Get(cache.WithResolver(t.Context(), other), held) }()
		synctest.Wait()
		release()
		for _, ch := range []chan cache.Result{first, second} {
			if r := <-ch; r.Policy == nil || r.Policy.Mode != mtasts.ModeTesting {
				t.Fatalf("Get of a shared update = %+v; want the testing policy", r)
			}
		}
		if n := other.Lookups("_mta-sts.held.example"); n != 0 {
			t.Fatalf("joining Get: its own resolver made %d lookups; want 0, it shares the update's", n)
		}

		// Run's refreshes use the resolver of Run's ctx.
		runRes := mtaststest.NewResolver()
		runRes.SetTXT("_mta-sts.held.example", "v=STSv1; id=1")
		runCtx, stop := context.WithCancel(cache.WithResolver(t.Context(), runRes))
		defer stop()
		go c.Run(runCtx)
		time.Sleep(2*time.Hour + 2*time.Minute)
		synctest.Wait()
		if n := runRes.Lookups("_mta-sts.held.example"); n == 0 || base.Lookups("_mta-sts.held.example") != 0 {
			t.Fatalf("Run's refresh: %d lookups by Run's resolver, %d by the cache's; want some and 0", n, base.Lookups("_mta-sts.held.example"))
		}
		stop()
		synctest.Wait()
	})
}
