package cache_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/internal/testkit"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// world is the DNS and web of a test, in memory, so that tests run inside a
// synctest bubble with a fake clock: TXT records in a fake resolver, policies
// served by a fake fetch.
type world struct {
	resolver *mtaststest.Resolver

	mu       sync.Mutex
	policies map[string]string
	errs     map[string]error
	fetches  map[string]int
}

func newWorld() *world {
	return &world{resolver: mtaststest.NewResolver(), policies: map[string]string{}, errs: map[string]error{}, fetches: map[string]int{}}
}

// publish sets domain's record id and policy.
func (w *world) publish(domain, id, policy string) {
	w.resolver.SetTXT("_mta-sts."+domain, "v=STSv1; id="+id)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.policies[domain] = policy
	delete(w.errs, domain)
}

// breakFetch makes fetches of domain's policy fail with err.
func (w *world) breakFetch(domain string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs[domain] = err
}

func (w *world) fetch(ctx context.Context, d mtasts.Domain) (*mtasts.Policy, string, error) {
	w.mu.Lock()
	w.fetches[d.ASCII]++
	text, err := w.policies[d.ASCII], w.errs[d.ASCII]
	w.mu.Unlock()
	if err != nil {
		return nil, "", err
	}
	p, err := mtasts.ParsePolicy(text)
	return p, text, err
}

func (w *world) fetchCount(domain string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fetches[domain]
}

func (w *world) lookupCount(domain string) int {
	return w.resolver.Lookups("_mta-sts." + domain)
}

func (w *world) newCache(t *testing.T, opts cache.Options) *cache.Cache {
	t.Helper()
	opts.Resolver = w.resolver
	if !cache.HasFakeFetch(opts) {
		opts = cache.Fake(opts, nil, w.fetch)
	}
	c, err := cache.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func policyText(mode string, maxAge int) string {
	return fmt.Sprintf("version: STSv1\nmode: %s\nmx: mx.example.com\nmax_age: %d\n", mode, maxAge)
}

func domain(t testing.TB, s string) mtasts.Domain {
	t.Helper()
	d, err := mtasts.ParseDomain(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var errFetch = fmt.Errorf("%w: connection refused", mtasts.ErrPolicyFetch)

func TestFirstFetchAndHit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		c := w.newCache(t, cache.Options{})
		d := domain(t, "example.com")

		r := c.Get(t.Context(), d)
		if r.Policy == nil || r.Policy.Mode != mtasts.ModeEnforce || !r.Fresh || r.RecordID != "1" || r.Err != nil {
			t.Fatalf("first Get = %+v; want a fresh enforce policy", r)
		}
		want, _ := mtasts.ParsePolicy(policyText("enforce", 86400))
		if r.Expires.Sub(r.Fetched) != 24*time.Hour || r.Policy.String() != want.String() {
			t.Errorf("first Get: fetched %v, expires %v, policy %q", r.Fetched, r.Expires, r.Policy)
		}
		// Hits share the policy that memory holds decoded; the fetch's
		// caller had one equal to it (see Result.Policy).
		var held *mtasts.Policy
		for range 3 {
			r2 := c.Get(t.Context(), d)
			if !reflect.DeepEqual(r2.Policy, r.Policy) || held != nil && r2.Policy != held || r2.Fresh || r2.Err != nil {
				t.Fatalf("cached Get = %+v; want the same policy, not fresh", r2)
			}
			held = r2.Policy
		}
		if w.lookupCount("example.com") != 1 || w.fetchCount("example.com") != 1 {
			t.Errorf("lookups %d, fetches %d; want 1 and 1", w.lookupCount("example.com"), w.fetchCount("example.com"))
		}
	})
}

func TestIDChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("testing", 7*86400))
		c := w.newCache(t, cache.Options{CheckInterval: time.Hour})
		d := domain(t, "example.com")
		c.Get(t.Context(), d)

		// A new id: the cached policy is returned at once, the check
		// runs in the background and fetches the new policy.
		w.publish("example.com", "2", policyText("enforce", 7*86400))
		time.Sleep(30 * time.Minute)
		if r := c.Get(t.Context(), d); r.Policy.Mode != mtasts.ModeTesting || w.lookupCount("example.com") != 1 {
			t.Fatalf("Get before CheckInterval = %+v, %d lookups; want the cached policy and no lookup", r, w.lookupCount("example.com"))
		}
		time.Sleep(31 * time.Minute)
		if r := c.Get(t.Context(), d); r.Policy.Mode != mtasts.ModeTesting || r.RecordID != "1" {
			t.Fatalf("Get after CheckInterval = %+v; want the cached policy at once", r)
		}
		synctest.Wait()
		r := c.Get(t.Context(), d)
		if r.Policy.Mode != mtasts.ModeEnforce || r.RecordID != "2" || r.Err != nil || w.fetchCount("example.com") != 2 {
			t.Fatalf("Get after the check = %+v, %d fetches; want the new policy", r, w.fetchCount("example.com"))
		}

		// A new id whose policy cannot be fetched: the cached policy
		// stays, and the failure is reported.
		w.publish("example.com", "3", policyText("none", 60))
		w.breakFetch("example.com", errFetch)
		time.Sleep(time.Hour)
		c.Get(t.Context(), d)
		synctest.Wait()
		r = c.Get(t.Context(), d)
		if r.Policy == nil || r.Policy.Mode != mtasts.ModeEnforce || r.RecordID != "2" || !errors.Is(r.Err, mtasts.ErrPolicyFetch) ||
			mtasts.TLSReportResultType(r.Err) != mtasts.ResultSTSPolicyFetchError || mtasts.TLSReportFailureReason(r.Err) != "mta-sts-policy-fetch-error" {
			t.Fatalf("Get after a failed refetch = %+v; want the cached enforce policy and the failure", r)
		}
	})
}

func TestRecordRemovedWhileCached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 7*86400))
		c := w.newCache(t, cache.Options{CheckInterval: time.Hour})
		d := domain(t, "example.com")
		c.Get(t.Context(), d)

		for _, strip := range []func(){
			func() { w.resolver.Remove("_mta-sts.example.com") },
			func() { w.resolver.ServFail("_mta-sts.example.com") },
			func() { w.resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=1", "v=STSv1; id=2") },
			func() { w.resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=bad-id") },
		} {
			strip()
			time.Sleep(time.Hour)
			c.Get(t.Context(), d)
			synctest.Wait()
			r := c.Get(t.Context(), d)
			if r.Policy == nil || r.Policy.Mode != mtasts.ModeEnforce || r.Err == nil || mtasts.TLSReportResultType(r.Err) == "" {
				t.Fatalf("Get with the record attacked = %+v; want the cached policy, failure reported", r)
			}
		}
		if w.fetchCount("example.com") != 1 {
			t.Errorf("%d fetches, want 1", w.fetchCount("example.com"))
		}
	})
}

func TestFetchFailureWithNothingCached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		w.breakFetch("example.com", errFetch)
		c := w.newCache(t, cache.Options{Backoff: 5 * time.Minute})
		d := domain(t, "example.com")

		r := c.Get(t.Context(), d)
		if r.Policy != nil || !errors.Is(r.Err, mtasts.ErrPolicyFetch) || mtasts.TLSReportResultType(r.Err) != mtasts.ResultSTSPolicyFetchError {
			t.Fatalf("Get = %+v; want no policy and the failure", r)
		}
		// Backing off: no new attempt for five minutes.
		time.Sleep(4 * time.Minute)
		if r := c.Get(t.Context(), d); r.Policy != nil || r.Err == nil || w.fetchCount("example.com") != 1 || w.lookupCount("example.com") != 1 {
			t.Fatalf("Get during back-off = %+v, %d fetches; want no new fetch", r, w.fetchCount("example.com"))
		}
		// After the back-off, a new attempt, which now succeeds.
		w.publish("example.com", "1", policyText("enforce", 86400))
		time.Sleep(2 * time.Minute)
		if r := c.Get(t.Context(), d); r.Policy == nil || !r.Fresh || r.Err != nil || w.fetchCount("example.com") != 2 {
			t.Fatalf("Get after back-off = %+v, %d fetches; want a fresh policy", r, w.fetchCount("example.com"))
		}
	})
}

func TestNoRecordIsNoPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		c := w.newCache(t, cache.Options{Backoff: 5 * time.Minute})
		d := domain(t, "plain.example")
		for range 3 {
			if r := c.Get(t.Context(), d); r.Policy != nil || r.Err != nil {
				t.Fatalf("Get = %+v; want no policy and nothing to report", r)
			}
		}
		if w.lookupCount("plain.example") != 1 || w.fetchCount("plain.example") != 0 {
			t.Errorf("%d lookups, %d fetches; want 1 and 0", w.lookupCount("plain.example"), w.fetchCount("plain.example"))
		}
		time.Sleep(6 * time.Minute)
		c.Get(t.Context(), d)
		if w.lookupCount("plain.example") != 2 {
			t.Errorf("%d lookups after the negative entry's lifetime, want 2", w.lookupCount("plain.example"))
		}
	})
}

func TestExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 600))
		c := w.newCache(t, cache.Options{CheckInterval: time.Hour})
		d := domain(t, "example.com")
		c.Get(t.Context(), d)

		// The host goes away; the policy is used until it expires,
		// then not at all. RFC 8461 5.1: a policy "whose
		// time-since-fetch has not exceeded its max_age" applies, so
		// at exactly max_age it still does, a second later not.
		w.breakFetch("example.com", errFetch)
		time.Sleep(600 * time.Second)
		if r := c.Get(t.Context(), d); r.Policy == nil {
			t.Fatalf("Get at max_age = %+v; want the cached policy", r)
		}
		time.Sleep(time.Second)
		r := c.Get(t.Context(), d)
		if r.Policy != nil || !errors.Is(r.Err, mtasts.ErrPolicyFetch) {
			t.Fatalf("Get after expiry = %+v; want no policy, the fetch failure", r)
		}
		if w.fetchCount("example.com") != 2 {
			t.Errorf("%d fetches, want 2: one at first, one after expiry", w.fetchCount("example.com"))
		}
	})
}

func TestMaxAgeCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 9999999999))
		c := w.newCache(t, cache.Options{})
		r := c.Get(t.Context(), domain(t, "example.com"))
		if got := r.Expires.Sub(r.Fetched); got != mtasts.MaxAgeLimit*time.Second {
			t.Fatalf("lifetime %v, want %v", got, mtasts.MaxAgeLimit*time.Second)
		}
	})
}

func TestModeNoneCached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", "version: STSv1\nmode: none\nmax_age: 86400\n")
		c := w.newCache(t, cache.Options{})
		d := domain(t, "example.com")
		for range 3 {
			if r := c.Get(t.Context(), d); r.Policy == nil || r.Policy.Mode != mtasts.ModeNone {
				t.Fatalf("Get = %+v; want the mode none policy", r)
			}
		}
		// Even with the record gone, the domain is known to have
		// turned MTA-STS off until the policy expires.
		w.resolver.Remove("_mta-sts.example.com")
		time.Sleep(2 * time.Hour)
		c.Get(t.Context(), d)
		synctest.Wait()
		if r := c.Get(t.Context(), d); r.Policy == nil || r.Policy.Mode != mtasts.ModeNone {
			t.Fatalf("Get = %+v; want the mode none policy", r)
		}
		if w.fetchCount("example.com") != 1 {
			t.Errorf("%d fetches, want 1", w.fetchCount("example.com"))
		}
	})
}

func TestProactiveRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 7*86400))
		c := w.newCache(t, cache.Options{RefreshAge: 24 * time.Hour, CheckInterval: 6 * time.Hour})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- c.Run(ctx) }()
		d := domain(t, "example.com")
		first := c.Get(ctx, d)

		// Mail every day for twenty days: the policy never lapses, and
		// is fetched again about daily.
		for day := 1; day <= 20; day++ {
			time.Sleep(24 * time.Hour)
			r := c.Get(ctx, d)
			if r.Policy == nil || r.Fresh {
				t.Fatalf("day %d: Get = %+v; want a cached policy", day, r)
			}
			if time.Until(r.Expires) < 5*24*time.Hour {
				t.Fatalf("day %d: policy expires in %v; it was not refreshed", day, time.Until(r.Expires))
			}
		}
		if n := w.fetchCount("example.com"); n < 20 || n > 22 {
			t.Errorf("%d fetches over 20 days, want about one a day", n)
		}
		if first.Expires.After(time.Now()) {
			t.Errorf("the first policy has not expired yet; the test proves nothing")
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
}

func TestUnusedDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 3600))
		store := cache.NewMemoryStore(10)
		c := w.newCache(t, cache.Options{Store: store})
		go c.Run(t.Context())
		c.Get(t.Context(), domain(t, "example.com"))
		if c.Len() != 1 || store.Len() != 1 {
			t.Fatalf("Len %d, store %d; want 1 and 1", c.Len(), store.Len())
		}
		// Refreshed at half its life while unused, then dropped once
		// unused for longer than its lifetime.
		time.Sleep(3*time.Hour + 2*time.Minute)
		synctest.Wait()
		// The store keeps its copy: a fleet may share it, and it expires
		// there by itself.
		if c.Len() != 0 || store.Len() != 1 {
			t.Fatalf("after 3 hours unused: Len %d, store %d; want 0 and 1", c.Len(), store.Len())
		}
	})
}

func TestEviction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		for _, name := range []string{"a.example", "b.example", "c.example"} {
			w.publish(name, "1", policyText("enforce", 86400))
		}
		store := &countingStore{Store: cache.NewMemoryStore(2)}
		c := w.newCache(t, cache.Options{MaxEntries: 2, Store: store})
		c.Get(t.Context(), domain(t, "a.example"))
		time.Sleep(2 * time.Second)
		c.Get(t.Context(), domain(t, "b.example"))
		time.Sleep(2 * time.Second)
		c.Get(t.Context(), domain(t, "a.example")) // b is now the least recently used
		time.Sleep(2 * time.Second)
		c.Get(t.Context(), domain(t, "c.example"))
		if c.Len() != 2 {
			t.Fatalf("Len = %d, want 2", c.Len())
		}
		// a and c are in memory, b is not: it comes back from the store
		// (which, with its own LRU order, dropped a instead).
		store.mu.Lock()
		loads := store.loads
		store.mu.Unlock()
		c.Get(t.Context(), domain(t, "a.example"))
		c.Get(t.Context(), domain(t, "c.example"))
		r := c.Get(t.Context(), domain(t, "b.example"))
		store.mu.Lock()
		loads = store.loads - loads
		store.mu.Unlock()
		if loads != 1 || r.Policy == nil || r.Fresh || c.Len() != 2 {
			t.Errorf("%d store loads, Get(b) = %+v, Len %d; want b alone loaded from the store", loads, r, c.Len())
		}
		for _, name := range []string{"a.example", "b.example", "c.example"} {
			if n := w.fetchCount(name); n != 1 {
				t.Errorf("%s fetched %d times, want 1", name, n)
			}
		}
	})
}

func TestMemoryStoreLRU(t *testing.T) {
	s := cache.NewMemoryStore(2)
	ctx := context.Background()
	for _, d := range []string{"a", "b"} {
		s.Save(ctx, cache.Entry{Domain: d})
	}
	s.Load(ctx, "a")
	s.Save(ctx, cache.Entry{Domain: "c"})
	if _, ok, _ := s.Load(ctx, "b"); ok {
		t.Error("b, the least recently used, was not evicted")
	}
	for _, d := range []string{"a", "c"} {
		if _, ok, _ := s.Load(ctx, d); !ok {
			t.Errorf("%s was evicted", d)
		}
	}
	s.Delete(ctx, "a")
	if _, ok, _ := s.Load(ctx, "a"); ok || s.Len() != 1 {
		t.Errorf("a still there after Delete, Len %d", s.Len())
	}
}

// countingStore counts loads, and fails when told to.
type countingStore struct {
	cache.Store
	mu    sync.Mutex
	loads int
	fail  error
}

func (s *countingStore) Load(ctx context.Context, domain string) (cache.Entry, bool, error) {
	s.mu.Lock()
	s.loads++
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return cache.Entry{}, false, fail
	}
	return s.Store.Load(ctx, domain)
}

func (s *countingStore) Save(ctx context.Context, e cache.Entry) error {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return fail
	}
	return s.Store.Save(ctx, e)
}

func TestFileStorePersistence(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		fs, err := cache.OpenFileStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		store := &countingStore{Store: fs}
		c := w.newCache(t, cache.Options{Store: store})
		d := domain(t, "example.com")
		c.Get(t.Context(), d)
		for range 100 {
			c.Get(t.Context(), d)
		}
		if store.loads != 1 {
			t.Errorf("%d store loads for 101 Gets, want 1: hits must not read the disk", store.loads)
		}
		c.Close()

		// A new cache, as after a restart: the policy comes from the
		// file, without a fetch, while the host is unreachable.
		w.breakFetch("example.com", errFetch)
		fs2, err := cache.OpenFileStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		c2 := w.newCache(t, cache.Options{Store: fs2})
		r := c2.Get(t.Context(), d)
		if r.Policy == nil || r.Policy.Mode != mtasts.ModeEnforce || r.Fresh || r.RecordID != "1" {
			t.Fatalf("Get after restart = %+v; want the stored policy", r)
		}
		synctest.Wait() // the background record check
		if w.fetchCount("example.com") != 1 {
			t.Errorf("%d fetches, want 1", w.fetchCount("example.com"))
		}
	})
	// Only the one entry file: no temporary file left behind.
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	hidden, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(names) != 1 || filepath.Base(names[0]) != "example.com.json" || len(hidden) != 0 {
		t.Errorf("files in the store: %v %v", names, hidden)
	}
}

func TestFileStoreCorrupt(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	fs, err := cache.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := cache.Entry{Domain: "example.com", RecordID: "1", Policy: policyText("enforce", 86400), Fetched: now, Expires: now.Add(24 * time.Hour)}
	if err := fs.Save(ctx, good); err != nil {
		t.Fatal(err)
	}
	e, ok, err := fs.Load(ctx, "example.com")
	if err != nil || !ok || e.Policy != good.Policy || !e.Expires.Equal(good.Expires) {
		t.Fatalf("Load = %+v, %v, %v", e, ok, err)
	}

	path := filepath.Join(dir, "example.com.json")
	for name, content := range map[string]string{
		"truncated":     `{"version":1,"domain":"exam`,
		"not json":      "\x00\x01garbage",
		"other version": `{"version":2,"domain":"example.com"}`,
		"other domain":  `{"version":1,"domain":"example.org"}`,
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := fs.Load(ctx, "example.com"); ok || err == nil {
			t.Errorf("%s: Load = %v, %v; want an error", name, ok, err)
		}
	}

	// The cache treats a corrupt entry as absent: it fetches, counts the
	// store error, and replaces the file.
	w := newWorld()
	w.publish("example.com", "2", policyText("testing", 86400))
	c := w.newCache(t, cache.Options{Store: fs})
	reg := prometheus.NewPedanticRegistry()
	if err := c.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	r := c.Get(ctx, domain(t, "example.com"))
	if r.Policy == nil || r.Policy.Mode != mtasts.ModeTesting || !r.Fresh {
		t.Fatalf("Get with a corrupt file = %+v; want a fresh policy", r)
	}
	if n := counterValue(t, reg, "mtastsgo_cache_store_errors_total"); n != 1 {
		t.Errorf("store errors counted: %v, want 1", n)
	}
	if e, ok, err := fs.Load(ctx, "example.com"); err != nil || !ok || e.RecordID != "2" {
		t.Errorf("after the fetch, Load = %+v, %v, %v; want the new entry", e, ok, err)
	}
}

func TestFileStoreHostileNames(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "store")
	fs, err := cache.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	names := []string{"../escape", "..", ".", "a/b", "/etc/passwd", "a\x00b", "UPPER.example", "x..y", "", string(make([]byte, 300))}
	for _, name := range names {
		e := cache.Entry{Domain: name, RecordID: "1", Policy: "p"}
		if err := fs.Save(ctx, e); err != nil {
			t.Errorf("Save(%q): %v", name, err)
			continue
		}
		if got, ok, err := fs.Load(ctx, name); err != nil || !ok || got.Domain != name {
			t.Errorf("Load(%q) = %+v, %v, %v", name, got, ok, err)
		}
	}
	// Everything is inside the store's directory, one file per name.
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 1 || entries[0].Name() != "store" {
		t.Fatalf("files beside the store: %v, %v", entries, err)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != len(names) {
		t.Errorf("%d files for %d names", len(files), len(names))
	}
	for _, name := range names {
		if err := fs.Delete(ctx, name); err != nil {
			t.Errorf("Delete(%q): %v", name, err)
		}
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Errorf("%d files left after Delete", len(files))
	}
}

func TestFailingStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		store := &countingStore{Store: cache.NewMemoryStore(10), fail: errors.New("store down")}
		c := w.newCache(t, cache.Options{Store: store})
		if r := c.Get(t.Context(), domain(t, "example.com")); r.Policy == nil || r.Err != nil {
			t.Fatalf("Get with a failing store = %+v; want the policy", r)
		}
	})
}

func TestWaitingCallerCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.resolver.Hold("_mta-sts.slow.example") // never released: lookups hang until their context ends
		c := w.newCache(t, cache.Options{Timeout: time.Hour})
		d := domain(t, "slow.example")

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		r := c.Get(ctx, d)
		if r.Policy != nil || !errors.Is(r.Err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("Get = %+v after %v; want the deadline's error after 1s", r, time.Since(start))
		}
		// A caller with time to wait gets the shared result when the
		// lookup gives up.
		r = c.Get(t.Context(), d)
		if r.Policy != nil || !errors.Is(r.Err, mtasts.ErrDNS) {
			t.Fatalf("Get = %+v; want the DNS failure", r)
		}
		if w.lookupCount("slow.example") != 1 {
			t.Errorf("%d lookups, want 1", w.lookupCount("slow.example"))
		}
	})
}

func TestCloseStopsBackgroundWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.resolver.Hold("_mta-sts.slow.example") // never released: lookups hang until their context ends
		c, err := cache.New(cache.Fake(cache.Options{Resolver: w.resolver}, nil, w.fetch))
		if err != nil {
			t.Fatal(err)
		}
		runDone := make(chan error)
		go func() { runDone <- c.Run(context.Background()) }()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		c.Get(ctx, domain(t, "slow.example")) // leaves a blocked lookup behind
		c.Close()
		if err := <-runDone; err != nil {
			t.Errorf("Run after Close returned %v, want nil", err)
		}
		if r := c.Get(t.Context(), domain(t, "other.example")); r.Err == nil {
			t.Errorf("Get after Close = %+v, want an error", r)
		}
		// synctest.Test fails if any goroutine of the bubble is left.
	})
}

// TestCoalescing runs 1,000 concurrent Gets for an uncached domain against a
// real TLS policy server and a counting resolver.
func TestCoalescing(t *testing.T) {
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
	server := testkit.PolicyServer(t)
	server.SetResponse("example.com", mtaststest.Response{Body: policyText("enforce", 86400), Delay: 50 * time.Millisecond})
	t.Cleanup(server.Install())
	c, err := cache.New(cache.Options{Resolver: resolver})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d := domain(t, "example.com")

	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]cache.Result, 1000)
	for i := range results {
		wg.Go(func() {
			<-start
			results[i] = c.Get(context.Background(), d)
		})
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		if r.Policy == nil || r.Err != nil {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	if n := server.Requests("example.com"); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
	if n := resolver.Lookups("_mta-sts.example.com"); n != 1 {
		t.Errorf("%d TXT lookups, want 1", n)
	}
}

func TestNewNeedsResolver(t *testing.T) {
	if _, err := cache.New(cache.Options{}); err == nil {
		t.Error("New without a resolver did not fail")
	}
}

// counterValue returns the sum of the counter name's series in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range families {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// sharedStore is a store that several caches share, with a fetch lock, as a
// fleet's Redis would be.
type sharedStore struct {
	*cache.MemoryStore
	mu     sync.Mutex
	locks  map[string]sharedLock // by domain
	ttl    time.Duration
	tokens int // tokens handed out
}

// sharedLock is a lock held in a sharedStore.
type sharedLock struct {
	token   string
	expires time.Time
}

func newSharedStore(ttl time.Duration) *sharedStore {
	return &sharedStore{MemoryStore: cache.NewMemoryStore(100), locks: map[string]sharedLock{}, ttl: ttl}
}

func (s *sharedStore) Lock(ctx context.Context, domain string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.locks[domain]; ok && time.Now().Before(l.expires) {
		return "", false, nil
	}
	s.tokens++
	token := strconv.Itoa(s.tokens)
	s.locks[domain] = sharedLock{token, time.Now().Add(s.ttl)}
	return token, true, nil
}

func (s *sharedStore) Unlock(ctx context.Context, domain, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks[domain].token == token {
		delete(s.locks, domain)
	}
	return nil
}

func TestFleetLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld()
		w.publish("example.com", "1", policyText("enforce", 86400))
		store := newSharedStore(time.Minute)
		slowFetch := func(ctx context.Context, d mtasts.Domain) (*mtasts.Policy, string, error) {
			time.Sleep(2 * time.Second) // a slow policy host
			return w.fetch(ctx, d)
		}
		var caches []*cache.Cache
		for range 5 {
			c, err := cache.New(cache.Fake(cache.Options{Resolver: w.resolver, Store: store, LockWait: 10 * time.Second}, nil, slowFetch))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			caches = append(caches, c)
		}
		var wg sync.WaitGroup
		for _, c := range caches {
			wg.Go(func() {
				if r := c.Get(t.Context(), domain(t, "example.com")); r.Policy == nil {
					t.Errorf("Get = %+v, want the policy", r)
				}
			})
		}
		wg.Wait()
		if n := w.fetchCount("example.com"); n != 1 {
			t.Errorf("%d fetches by 5 caches, want 1", n)
		}

		// A holder whose fetch fails saves nothing and releases the
		// lock: a waiter takes it and fetches at its next poll, without
		// waiting out LockWait.
		w.publish("failing.example", "1", policyText("enforce", 86400))
		w.breakFetch("failing.example", errFetch)
		holderDone := make(chan struct{})
		go func() {
			caches[1].Get(t.Context(), domain(t, "failing.example"))
			close(holderDone)
		}()
		synctest.Wait() // the holder is fetching
		w.publish("failing.example", "1", policyText("enforce", 86400))
		start := time.Now()
		r := caches[2].Get(t.Context(), domain(t, "failing.example"))
		<-holderDone
		if r.Policy == nil || time.Since(start) >= 10*time.Second {
			t.Errorf("Get after the lock holder failed = %+v after %v; want a policy before LockWait", r, time.Since(start))
		}

		// A holder that died with the lock: the others wait LockWait,
		// then fetch themselves.
		w.publish("dead.example", "1", policyText("testing", 86400))
		store.Lock(t.Context(), "dead.example")
		start = time.Now()
		r = caches[0].Get(t.Context(), domain(t, "dead.example"))
		if r.Policy == nil || !r.Fresh || time.Since(start) != 10*time.Second+2*time.Second {
			t.Errorf("Get with a dead lock holder = %+v after %v; want a fresh policy after LockWait and the fetch", r, time.Since(start))
		}
	})
}
