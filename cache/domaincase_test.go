package cache_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
)

// TestDomainCasingsShareOneFetch checks that one domain written in four
// casings is fetched at most once: a Domain holds its ASCII form in lower
// case, and Get, Recheck and CheckEveryGet refuse any other with
// ErrInvalidDomain, rather than keeping an entry, and fetching, per
// casing. A Unicode form with a control character is refused too.
func TestDomainCasingsShareOneFetch(t *testing.T) {
	for _, every := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld()
			w.publish("example.com", "1", policyText("enforce", 86400))
			var fetches atomic.Int32
			c := w.newCache(t, cache.Fake(cache.Options{
				CheckEveryGet: every,
			}, nil, func(ctx context.Context, d mtasts.Domain) (*mtasts.Policy, string, error) {
				fetches.Add(1)
				// Names compare case-insensitively (RFC 4343):
				// serve every casing.
				return w.fetch(ctx, mtasts.Domain{ASCII: strings.ToLower(d.ASCII)})
			}))
			for _, name := range []string{"example.com", "EXAMPLE.COM", "Example.Com", "eXample.com"} {
				d := mtasts.Domain{ASCII: name}
				for _, get := range []func(context.Context, mtasts.Domain) cache.Result{c.Get, c.Recheck} {
					r := get(t.Context(), d)
					if r.Policy == nil && !errors.Is(r.Err, mtasts.ErrInvalidDomain) {
						t.Errorf("%q (CheckEveryGet %v): %+v; want the policy or ErrInvalidDomain", name, every, r)
					}
				}
			}
			if n := fetches.Load(); n > 1 {
				t.Errorf("CheckEveryGet %v: %d fetches for 4 casings of one name, want at most 1", every, n)
			}

			esc := mtasts.Domain{ASCII: "xn--bcher-kva.example", Unicode: "b\x1b]0;x\x07ücher.example"}
			if r := c.Get(t.Context(), esc); !errors.Is(r.Err, mtasts.ErrInvalidDomain) || strings.ContainsRune(r.Err.Error(), 0x1b) {
				t.Errorf("Get of a Unicode form with ESC: %v, want ErrInvalidDomain, escaped", r.Err)
			}
		})
	}
}

// TestHitCheckUsesOwnName: the background record check that a hit starts
// names the domain as the cache holds it, not as the caller gave it: on a
// hit the caller's Domain is not validated, and its Unicode form could carry
// control characters into the logs.
func TestHitCheckUsesOwnName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		var logs bytes.Buffer
		c := w.newCache(t, cache.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if r := c.Get(t.Context(), domain(t, "example.com")); r.Policy == nil {
			t.Fatalf("Get = %+v", r)
		}
		w.resolver.ServFail("_mta-sts.example.com") // the check fails, and is logged
		time.Sleep(2 * time.Hour)
		c.Get(t.Context(), mtasts.Domain{ASCII: "example.com", Unicode: "ex\x1bample.com"})
		synctest.Wait()
		if !strings.Contains(logs.String(), "refreshing cached policy failed") {
			t.Fatalf("no warning logged for the failed check: %q", logs.String())
		}
		if strings.Contains(logs.String(), "ex\x1bample") || strings.Contains(logs.String(), `ex\x1bample`) {
			t.Errorf("the check logged the caller's Unicode form: %q", logs.String())
		}
	})
}
