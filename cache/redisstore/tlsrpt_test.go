package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts/cache/redisstore"
	"github.com/mtasts-go/mtasts/tlsrpt"
	"github.com/mtasts-go/mtasts/tlsrpt/storetest"
)

// TestTLSRPTStore runs the store checks against a real redis-server, each
// with keys of its own prefix; a second store of a check is another client
// with the same prefix, as a second MTA of a fleet.
func TestTLSRPTStore(t *testing.T) {
	srv := startRedis(t, "")
	storetest.Run(t, func(t *testing.T) tlsrpt.Store {
		return redisstore.NewTLSRPTStore(srv.client(), redisstore.TLSRPTOptions{Prefix: t.Name() + ":"})
	})
}

// The same through a Redis Cluster: the scripts touch several keys, which
// share a hash tag.
func TestTLSRPTStoreCluster(t *testing.T) {
	srv := startCluster(t)
	storetest.Run(t, func(t *testing.T) tlsrpt.Store {
		rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.addr()}})
		t.Cleanup(func() { rdb.Close() })
		return redisstore.NewTLSRPTStore(rdb, redisstore.TLSRPTOptions{Prefix: t.Name() + ":"})
	})
}

// A fleet of MTAs, each with its recorder, adds to the same counters; the
// MTAs all try to take the closed day, and one gets it: one report per
// policy domain, with every MTA's sessions.
func TestTLSRPTFleet(t *testing.T) {
	srv := startRedis(t, "")
	day := storetest.Day1
	var now atomic.Int64
	now.Store(day.Add(10 * time.Hour).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	const mtas = 3
	var recs []*tlsrpt.Recorder
	for range mtas {
		rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{
			Store: redisstore.NewTLSRPTStore(srv.client(), redisstore.TLSRPTOptions{}),
			Now:   clock,
		})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	a, b := storetest.STS("a.example", "enforce"), storetest.STS("b.example", "testing")
	exp := tlsrpt.ResultCertificateExpired
	var wg sync.WaitGroup
	for i, rec := range recs {
		wg.Go(func() {
			for range 100 {
				rec.Success(a)
				rec.Success(b)
			}
			rec.Failure(a, storetest.Row(exp, "a.example", byte(i), 0))
			if err := rec.Flush(context.Background()); err != nil {
				t.Error(err)
			}
			rec.Success(a)
		})
	}
	wg.Wait()
	// Each MTA's last second is flushed before the day closes, as Run
	// does every second, well within the close delay. (A Take flushes
	// its own recorder only: counts that another MTA flushes after the
	// day was taken are late, by design, and would make this test racy.)
	for _, rec := range recs {
		if err := rec.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	now.Store(day.AddDate(0, 0, 1).Add(5 * time.Minute).UnixNano())
	got := make([]tlsrpt.DayResults, mtas)
	for i, rec := range recs {
		wg.Go(func() {
			var err error
			if got[i], err = rec.Take(context.Background(), day); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var reports []tlsrpt.Report
	for _, d := range got {
		reports = append(reports, d.Reports(tlsrpt.ReportInfo{OrganizationName: "Fleet", ContactInfo: "tlsrpt@fleet.example"})...)
	}
	if len(reports) != 2 {
		t.Fatalf("%d reports, want one per policy domain from the whole fleet, 2", len(reports))
	}
	var all []tlsrpt.PolicyResult
	for _, r := range reports {
		if err := r.Validate(); err != nil {
			t.Errorf("report of %s: %v", r.Policies[0].Policy.PolicyDomain, err)
		}
		all = append(all, r.Policies...)
	}
	want := storetest.Canonical([]tlsrpt.PolicyResult{
		storetest.Result(a, 101*mtas, mtas, storetest.Row(exp, "a.example", 0, 1), storetest.Row(exp, "a.example", 1, 1), storetest.Row(exp, "a.example", 2, 1)),
		storetest.Result(b, 100*mtas, 0),
	})
	if c := storetest.Canonical(all); c != want {
		t.Errorf("fleet's reports:\n%s\nwant:\n%s", c, want)
	}
}

// A batch given again after a lost reply is added once.
func TestTLSRPTBatchOnce(t *testing.T) {
	srv := startRedis(t, "")
	s := redisstore.NewTLSRPTStore(srv.client(), redisstore.TLSRPTOptions{})
	ctx := context.Background()
	p := storetest.STS("a.example", "enforce")
	batch := func(seq int64) tlsrpt.Batch {
		return tlsrpt.Batch{Day: storetest.Day1, Source: "mta1", Seq: seq,
			Results: []tlsrpt.PolicyResult{storetest.Result(p, 1, 1, storetest.Row(tlsrpt.ResultCertificateExpired, "a.example", 1, 1))}}
	}
	for _, b := range []tlsrpt.Batch{batch(1), batch(1), batch(2), batch(1), batch(3)} {
		if _, err := s.Add(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	other := batch(1)
	other.Source = "mta2"
	if _, err := s.Add(ctx, other); err != nil {
		t.Fatal(err)
	}
	results, err := s.Take(ctx, storetest.Day1)
	if err != nil {
		t.Fatal(err)
	}
	want := storetest.Canonical([]tlsrpt.PolicyResult{storetest.Result(p, 4, 4, storetest.Row(tlsrpt.ResultCertificateExpired, "a.example", 1, 4))})
	if got := storetest.Canonical(results); got != want {
		t.Errorf("Take:\n%s\nwant batches 1, 2 and 3 of mta1 and 1 of mta2:\n%s", got, want)
	}
}

// A batch of several chunks given again after its second chunk failed adds
// the second chunk only.
func TestTLSRPTChunks(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	var failEval atomic.Int32
	rdb.AddHook(failNthEval{n: &failEval})
	s := redisstore.NewTLSRPTStore(rdb, redisstore.TLSRPTOptions{})
	ctx := context.Background()
	var results, want []tlsrpt.PolicyResult
	for i := range 2500 {
		p := storetest.STS(fmt.Sprintf("d%d.example", i), "enforce")
		results = append(results, storetest.Result(p, 1, 0))
		want = append(want, storetest.Result(p, 1, 0))
	}
	b := tlsrpt.Batch{Day: storetest.Day1, Source: "mta1", Seq: 7, Results: results}
	failEval.Store(2) // the second chunk's script fails
	if _, err := s.Add(ctx, b); err == nil {
		t.Fatal("Add with a failing chunk: no error")
	}
	if _, err := s.Add(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := s.Take(ctx, storetest.Day1)
	if err != nil {
		t.Fatal(err)
	}
	if storetest.Canonical(got) != storetest.Canonical(want) {
		t.Errorf("Take has %d policies, not each of the 2500 once", len(got))
	}
}

// failNthEval fails the n-th script run, counting down n.
type failNthEval struct{ n *atomic.Int32 }

func (h failNthEval) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h failNthEval) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h failNthEval) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); (name == "evalsha" || name == "eval") && h.n.Load() > 0 && h.n.Add(-1) == 0 {
			return errors.New("connection lost")
		}
		return next(ctx, cmd)
	}
}

// failHScan fails HSCAN while fail is set.
type failHScan struct{ fail *atomic.Bool }

func (h failHScan) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h failHScan) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h failHScan) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "hscan" && h.fail.Load() {
			return &net.OpError{Op: "read", Err: errors.New("connection reset")}
		}
		return next(ctx, cmd)
	}
}

// A Take that fails while reading the day it took resumes on the same
// store; no other store gets the day.
func TestTLSRPTTakeResumes(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	var fail atomic.Bool
	rdb.AddHook(failHScan{&fail})
	s := redisstore.NewTLSRPTStore(rdb, redisstore.TLSRPTOptions{})
	other := redisstore.NewTLSRPTStore(srv.client(), redisstore.TLSRPTOptions{})
	ctx := context.Background()
	p := storetest.STS("a.example", "enforce")
	if _, err := s.Add(ctx, tlsrpt.Batch{Day: storetest.Day1, Results: []tlsrpt.PolicyResult{storetest.Result(p, 5, 0)}}); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	if _, err := s.Take(ctx, storetest.Day1); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("Take with HSCAN failing: %v", err)
	}
	if r, err := other.Take(ctx, storetest.Day1); err != nil || len(r) != 0 {
		t.Fatalf("another store's Take = %v, %v; want nothing", r, err)
	}
	fail.Store(false)
	r, err := s.Take(ctx, storetest.Day1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := storetest.Canonical(r), storetest.Canonical([]tlsrpt.PolicyResult{storetest.Result(p, 5, 0)}); got != want {
		t.Errorf("resumed Take:\n%s\nwant:\n%s", got, want)
	}
	if r, _ := s.Take(ctx, storetest.Day1); len(r) != 0 {
		t.Errorf("Take after the resumed one = %v, want nothing", r)
	}
}

// The keys are those documented, and none lives for ever.
func TestTLSRPTKeys(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	s := redisstore.NewTLSRPTStore(rdb, redisstore.TLSRPTOptions{Prefix: "x:", Retention: time.Hour})
	ctx := context.Background()
	p := storetest.STS("a.example", "enforce")
	if _, err := s.Add(ctx, tlsrpt.Batch{Day: storetest.Day1, Source: "m", Seq: 1, MaxDetailRows: 5, Results: []tlsrpt.PolicyResult{
		storetest.Result(p, 5, 1, storetest.Row(tlsrpt.ResultCertificateExpired, "a.example", 1, 1)),
	}}); err != nil {
		t.Fatal(err)
	}
	keys, _ := rdb.Keys(ctx, "*").Result()
	if got := strings.Join(sortedStrings(keys), " "); got != "x:{tlsrpt}:day:2016-04-01 x:{tlsrpt}:days" {
		t.Errorf("keys: %s", got)
	}
	fields, _ := rdb.HKeys(ctx, "x:{tlsrpt}:day:2016-04-01").Result()
	var kinds []string
	for _, f := range fields {
		kind, rest, _ := strings.Cut(f, ":")
		if kind == "n" || kind == "q" {
			kinds = append(kinds, f)
		} else {
			kinds = append(kinds, kind+":"+rest[:min(len(rest), 33)])
		}
	}
	for _, want := range []string{"n:a.example", "q:m"} {
		if !strings.Contains(strings.Join(kinds, " "), want) {
			t.Errorf("fields %v lack %s", kinds, want)
		}
	}
	if len(fields) != 6 {
		t.Errorf("%d fields, want p, s, f, r, n and q", len(fields))
	}
	for _, k := range keys {
		if ttl := rdb.TTL(ctx, k).Val(); ttl <= 0 || ttl > time.Hour {
			t.Errorf("TTL of %s = %v, want Retention", k, ttl)
		}
	}
	if _, err := s.Take(ctx, storetest.Day1); err != nil {
		t.Fatal(err)
	}
	keys, _ = rdb.Keys(ctx, "*").Result()
	if got := strings.Join(sortedStrings(keys), " "); got != "x:{tlsrpt}:days x:{tlsrpt}:taken:2016-04-01" && got != "x:{tlsrpt}:taken:2016-04-01" {
		t.Errorf("keys after Take: %s", got)
	}
	if ttl := rdb.TTL(ctx, "x:{tlsrpt}:taken:2016-04-01").Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("TTL of the taken mark = %v, want Retention", ttl)
	}
}

func sortedStrings(l []string) []string {
	out := append([]string(nil), l...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// BenchmarkTLSRPTTake100k reads a closed day of 100,000 policy domains,
// added by a recorder, from a real redis-server into reports.
func BenchmarkTLSRPTTake100k(b *testing.B) {
	srv := startRedis(b, "")
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer rdb.Close()
	const domains = 100000
	day := storetest.Day1
	var now atomic.Int64
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	policies := make([]tlsrpt.Policy, domains)
	for i := range policies {
		policies[i] = storetest.STS(fmt.Sprintf("domain%d.example", i), "enforce")
	}
	info := tlsrpt.ReportInfo{OrganizationName: "Example", ContactInfo: "tlsrpt@example.net"}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		now.Store(day.UnixNano())
		rdb.FlushAll(context.Background())
		rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{Now: clock, Store: redisstore.NewTLSRPTStore(rdb, redisstore.TLSRPTOptions{})})
		if err != nil {
			b.Fatal(err)
		}
		for i, p := range policies {
			rec.Success(p)
			if i%10 == 0 {
				rec.Failure(p, storetest.Row(tlsrpt.ResultCertificateExpired, p.PolicyDomain, 1, 0))
			}
		}
		if err := rec.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		now.Store(day.AddDate(0, 0, 1).Add(5 * time.Minute).UnixNano())
		b.StartTimer()

		d, err := rec.Take(context.Background(), day)
		if err != nil {
			b.Fatal(err)
		}
		if n := len(d.Reports(info)); n != domains {
			b.Fatalf("%d reports, want %d", n, domains)
		}
	}
}
