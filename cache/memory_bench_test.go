package cache_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// nopStore keeps nothing: with it, a benchmark measures the cache's memory
// alone.
type nopStore struct{}

func (nopStore) Load(context.Context, string) (cache.Entry, bool, error) {
	return cache.Entry{}, false, nil
}
func (nopStore) Save(context.Context, cache.Entry) error { return nil }
func (nopStore) Delete(context.Context, string) error    { return nil }

// typicalPolicy is a policy as most domains publish it: enforce, their own
// mail host, a week.
func typicalPolicy(domain string) string {
	return "version: STSv1\r\nmode: enforce\r\nmx: mail." + domain + "\r\nmax_age: 604800\r\n"
}

// twoMXPolicy is a policy with a second, wildcard, mx line.
func twoMXPolicy(domain string) string {
	return "version: STSv1\r\nmode: enforce\r\nmx: mail." + domain + "\r\nmx: *.mx." + domain + "\r\nmax_age: 604800\r\n"
}

// BenchmarkMemoryPerDomain reports the heap that the cache holds per domain
// in memory, for domains without a policy and with a typical one, with the
// default store and without one, and for domains in use: hit once more after
// their fetch, so that memory holds their policy decoded as well. Records and policies are made for each
// lookup and fetch, as the network would, so that what the cache keeps of
// them counts and nothing else does.
func BenchmarkMemoryPerDomain(b *testing.B) {
	lookup := func(hasPolicy bool) func(ctx context.Context, r mtasts.Resolver, d mtasts.Domain) (*mtasts.Record, string, error) {
		return func(ctx context.Context, r mtasts.Resolver, d mtasts.Domain) (*mtasts.Record, string, error) {
			if !hasPolicy {
				return nil, "", fmt.Errorf("%w: no record", mtasts.ErrNoRecord)
			}
			txt := fmt.Sprintf("v=STSv1; id=%d", 20240101000000+len(d.ASCII))
			rec, _, err := mtasts.ParseRecord(txt)
			return rec, txt, err
		}
	}
	fetch := func(policy func(string) string) func(ctx context.Context, d mtasts.Domain) (*mtasts.Policy, string, error) {
		return func(ctx context.Context, d mtasts.Domain) (*mtasts.Policy, string, error) {
			text := policy(d.ASCII)
			p, err := mtasts.ParsePolicy(text)
			return p, text, err
		}
	}
	for _, n := range []int{100_000, 1_000_000} {
		for _, tc := range []struct {
			name      string
			hasPolicy bool
			policy    func(string) string
			store     cache.Store
			inUse     bool
		}{
			{"none", false, nil, nopStore{}, false},
			{"typical", true, typicalPolicy, nopStore{}, false},
			{"typical/defaultstore", true, typicalPolicy, nil, false},
			{"twomx", true, twoMXPolicy, nopStore{}, false},
			{"typical/inuse", true, typicalPolicy, nopStore{}, true},
			{"twomx/inuse", true, twoMXPolicy, nopStore{}, true},
		} {
			b.Run(fmt.Sprintf("%s/%d", tc.name, n), func(b *testing.B) {
				var perDomain float64
				for b.Loop() {
					c, err := cache.New(cache.Fake(cache.Options{Resolver: mtaststest.NewResolver(), Store: tc.store, MaxEntries: n}, lookup(tc.hasPolicy), fetch(tc.policy)))
					if err != nil {
						b.Fatal(err)
					}
					before := heapInUse()
					for i := range n {
						// A name made for each Get, as a
						// delivery's would be: what the cache
						// keeps of it counts.
						d := mtasts.Domain{ASCII: fmt.Sprintf("d%07d.example", i)}
						if r := c.Get(context.Background(), d); (r.Policy != nil) != tc.hasPolicy {
							b.Fatalf("Get(%s) = %+v", d.ASCII, r)
						}
						if tc.inUse {
							c.Get(context.Background(), d)
						}
					}
					perDomain = float64(heapInUse()-before) / float64(n)
					runtime.KeepAlive(c)
					c.Close()
				}
				b.ReportMetric(perDomain, "bytes/domain")
			})
		}
	}
}

// heapInUse returns the bytes of live heap objects after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
