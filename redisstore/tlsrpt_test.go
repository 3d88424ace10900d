package redisstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/redisstore"
	"github.com/mtasts-go/mtasts/tlsrpt"
	"github.com/mtasts-go/mtasts/tlsrpt/storetest"
)

// TestTLSRPTStore runs the store checks against a real redis-server, each
// with keys of its own prefix; a second store of a check is another client
// with the same prefix and another Owner, as a second MTA of a fleet. A
// claim survives a restart: the MTA restarted, a new store value of the
// same Owner on a new client, takes the same counts again.
func TestTLSRPTStore(t *testing.T) {
	srv := startRedis(t, "")
	opened := map[string]int{}
	opts := func(t *testing.T, n int) redisstore.Options {
		return redisstore.Options{Prefix: t.Name() + ":", Owner: fmt.Sprintf("mta%d", n)}
	}
	storetest.Run(t, func(t *testing.T) tlsrpt.Store {
		opened[t.Name()]++
		return redisstore.NewReportStore(srv.client(), opts(t, opened[t.Name()]))
	}, func(t *testing.T, _ tlsrpt.Store) tlsrpt.Store {
		return redisstore.NewReportStore(srv.client(), opts(t, 1))
	})
}

// The same through a Redis Cluster: the scripts touch several keys, which
// share a hash tag. The Owner is left to its default, random per store, so
// that a restarted store is another claimant.
func TestTLSRPTStoreCluster(t *testing.T) {
	srv := startCluster(t)
	storetest.Run(t, func(t *testing.T) tlsrpt.Store {
		rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.addr()}})
		t.Cleanup(func() { rdb.Close() })
		return redisstore.NewReportStore(rdb, redisstore.Options{Prefix: t.Name() + ":"})
	}, nil)
}

// clock is a time that tests move.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func takeWant(t *testing.T, s tlsrpt.Store, want string) {
	t.Helper()
	r, err := s.Take(context.Background(), storefixture.DayOne)
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	if got := storefixture.Canonical(r); got != want {
		t.Fatalf("Take:\n%s\nwant:\n%s", got, want)
	}
}

func takeClaimed(t *testing.T, s tlsrpt.Store) {
	t.Helper()
	if r, err := s.Take(context.Background(), storefixture.DayOne); !errors.Is(err, tlsrpt.ErrDayClaimed) || len(r) != 0 {
		t.Fatalf("Take = %v, %v; want ErrDayClaimed", r, err)
	}
}

// A claim not released within its Lease lapses: another owner takes the
// day over with the same counts. The first owner's late Release then leaves
// them to the new claimant, whose Release deletes them.
func TestTLSRPTClaimLapse(t *testing.T) {
	srv := startRedis(t, "")
	ctx := context.Background()
	clk := newClock(storefixture.DayTwo.Add(time.Hour))
	open := func(owner string) tlsrpt.Store {
		return redisstore.NewReportStore(srv.client(), redisstore.WithNow(redisstore.Options{Owner: owner, Lease: 10 * time.Minute}, clk.now))
	}
	a, b := open("a"), open("b")
	p := storefixture.STS("a.example", "enforce")
	if _, err := a.Add(ctx, tlsrpt.Batch{Day: storefixture.DayOne, Results: []tlsrpt.PolicyResult{storefixture.Result(p, 3, 0)}}); err != nil {
		t.Fatal(err)
	}
	want := storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(p, 3, 0)})
	takeWant(t, a, want)
	clk.advance(10*time.Minute - time.Millisecond)
	takeClaimed(t, b)
	// a's Take renews its claim.
	takeWant(t, a, want)
	clk.advance(10*time.Minute - time.Millisecond)
	takeClaimed(t, b)
	clk.advance(time.Millisecond) // a's claim lapses
	takeWant(t, b, want)
	takeClaimed(t, a)
	// a's late Release: the claim is b's now, the counts stay.
	if err := a.Release(ctx, storefixture.DayOne); err != nil {
		t.Fatal(err)
	}
	takeWant(t, b, want)
	if days, _ := b.Days(ctx); len(days) != 1 {
		t.Errorf("Days after the late Release = %v, want the day", days)
	}
	if err := b.Release(ctx, storefixture.DayOne); err != nil {
		t.Fatal(err)
	}
	if r, err := a.Take(ctx, storefixture.DayOne); err != nil || len(r) != 0 {
		t.Errorf("Take after b's Release = %v, %v; want nothing", r, err)
	}
	if days, _ := b.Days(ctx); len(days) != 0 {
		t.Errorf("Days after Release = %v, want none", days)
	}
}

// The claimant whose claim lapsed and was not taken over still releases its
// day, and may take it again.
func TestTLSRPTClaimLapsedOwn(t *testing.T) {
	srv := startRedis(t, "")
	ctx := context.Background()
	clk := newClock(storefixture.DayTwo.Add(time.Hour))
	a := redisstore.NewReportStore(srv.client(), redisstore.WithNow(redisstore.Options{Owner: "a"}, clk.now))
	p := storefixture.STS("a.example", "enforce")
	for _, day := range []time.Time{storefixture.DayOne, storefixture.DayTwo} {
		if _, err := a.Add(ctx, tlsrpt.Batch{Day: day, Results: []tlsrpt.PolicyResult{storefixture.Result(p, 3, 0)}}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Take(ctx, day); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(time.Hour) // past the report store's default Lease, 15 minutes
	takeWant(t, a, storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(p, 3, 0)}))
	for _, day := range []time.Time{storefixture.DayOne, storefixture.DayTwo} {
		if err := a.Release(ctx, day); err != nil {
			t.Fatal(err)
		}
	}
	b := redisstore.NewReportStore(srv.client(), redisstore.WithNow(redisstore.Options{Owner: "b"}, clk.now))
	for _, day := range []time.Time{storefixture.DayOne, storefixture.DayTwo} {
		if r, err := b.Take(ctx, day); err != nil || len(r) != 0 {
			t.Errorf("Take of %s released after its claim lapsed = %v, %v; want nothing", day, r, err)
		}
	}
}

// A claimant that reads its day while its claim lapses and another owner
// takes the day over gets ErrDayClaimed, not the counts it read: the day
// is the other's now.
func TestTLSRPTClaimLostWhileReading(t *testing.T) {
	srv := startRedis(t, "")
	ctx := context.Background()
	clk := newClock(storefixture.DayTwo.Add(time.Hour))
	rdb := srv.client()
	b := redisstore.NewReportStore(srv.client(), redisstore.WithNow(redisstore.Options{Owner: "b"}, clk.now))
	var once sync.Once
	rdb.AddHook(onHScan{func() {
		once.Do(func() {
			clk.advance(time.Hour)
			if _, err := b.Take(ctx, storefixture.DayOne); err != nil {
				t.Errorf("b's Take: %v", err)
			}
		})
	}})
	a := redisstore.NewReportStore(rdb, redisstore.WithNow(redisstore.Options{Owner: "a"}, clk.now))
	p := storefixture.STS("a.example", "enforce")
	if _, err := a.Add(ctx, tlsrpt.Batch{Day: storefixture.DayOne, Results: []tlsrpt.PolicyResult{storefixture.Result(p, 3, 0)}}); err != nil {
		t.Fatal(err)
	}
	takeClaimed(t, a)
	// Taken over and released while a read: nothing, the day was reported.
	once = sync.Once{}
	rdb2 := srv.client()
	c := redisstore.NewReportStore(srv.client(), redisstore.WithNow(redisstore.Options{Owner: "c"}, clk.now))
	rdb2.AddHook(onHScan{func() {
		once.Do(func() {
			clk.advance(time.Hour)
			if _, err := c.Take(ctx, storefixture.DayOne); err != nil {
				t.Errorf("c's Take: %v", err)
			}
			if err := c.Release(ctx, storefixture.DayOne); err != nil {
				t.Errorf("c's Release: %v", err)
			}
		})
	}})
	clk.advance(time.Hour) // b's claim lapses: d takes the day over
	d := redisstore.NewReportStore(rdb2, redisstore.WithNow(redisstore.Options{Owner: "d"}, clk.now))
	if r, err := d.Take(ctx, storefixture.DayOne); err != nil || len(r) != 0 {
		t.Errorf("Take of a day released while reading = %v, %v; want nothing", r, err)
	}
}

// onHScan calls f before each HSCAN.
type onHScan struct{ f func() }

func (h onHScan) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h onHScan) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h onHScan) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "hscan" {
			h.f()
		}
		return next(ctx, cmd)
	}
}

// A fleet of MTAs, each with its recorder, adds to the same counters; the
// MTAs all try to take the closed day, and one gets it: one result per
// policy, with every MTA's sessions.
func TestTLSRPTFleet(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	synctest.Test(t, func(t *testing.T) {
		day := time.Now().UTC().Truncate(24 * time.Hour)
		const mtas = 3
		var recs []*tlsrpt.Recorder
		var stores []tlsrpt.Store
		for range mtas {
			store := redisstore.NewReportStore(rdb, redisstore.Options{})
			rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{Store: store})
			if err != nil {
				t.Fatal(err)
			}
			defer rec.Close()
			recs = append(recs, rec)
			stores = append(stores, store)
		}
		// Each MTA's Recorder.Run flushes every second.
		runs, stopRuns := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, rec := range recs {
			wg.Go(func() { rec.Run(runs) })
		}
		a, b := storefixture.STS("a.example", "enforce"), storefixture.STS("b.example", "testing")
		exp := mtasts.ResultCertificateExpired
		var recording sync.WaitGroup
		for i, rec := range recs {
			recording.Go(func() {
				for range 100 {
					rec.Success(a)
					rec.Success(b)
				}
				rec.Failure(a, storefixture.Row(exp, "a.example", byte(i), 0))
				time.Sleep(time.Second) // a flush, at about the same time
				rec.Success(a)
			})
		}
		recording.Wait()
		// Each MTA's last second is flushed before the day closes, well
		// within the close delay. (Counts that another MTA flushes after
		// the day was taken are late, by design, and would make this test
		// racy.) Run flushes at the next full second, before this
		// sleep ends.
		time.Sleep(1500 * time.Millisecond)
		stopRuns()
		wg.Wait()

		time.Sleep(time.Until(day.AddDate(0, 0, 1).Add(5 * time.Minute)))
		got := make([][]tlsrpt.PolicyResult, mtas)
		for i, s := range stores {
			wg.Go(func() {
				var err error
				if got[i], err = s.Take(context.Background(), day); err != nil && !errors.Is(err, tlsrpt.ErrDayClaimed) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		var all []tlsrpt.PolicyResult
		takers := 0
		for _, results := range got {
			if len(results) > 0 {
				takers++
			}
			all = append(all, results...)
		}
		if takers != 1 {
			t.Fatalf("%d members took the day, want 1", takers)
		}
		want := storefixture.Canonical([]tlsrpt.PolicyResult{
			storefixture.Result(a, 101*mtas, mtas, storefixture.Row(exp, "a.example", 0, 1), storefixture.Row(exp, "a.example", 1, 1), storefixture.Row(exp, "a.example", 2, 1)),
			storefixture.Result(b, 100*mtas, 0),
		})
		if c := storefixture.Canonical(all); c != want {
			t.Errorf("fleet's results:\n%s\nwant:\n%s", c, want)
		}
	})
}

// A batch given again after a lost reply is added once.
func TestTLSRPTBatchOnce(t *testing.T) {
	srv := startRedis(t, "")
	s := redisstore.NewReportStore(srv.client(), redisstore.Options{})
	ctx := context.Background()
	p := storefixture.STS("a.example", "enforce")
	batch := func(seq int64) tlsrpt.Batch {
		return tlsrpt.Batch{Day: storefixture.DayOne, Source: "mta1", Seq: seq,
			Results: []tlsrpt.PolicyResult{storefixture.Result(p, 1, 1, storefixture.Row(mtasts.ResultCertificateExpired, "a.example", 1, 1))}}
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
	results, err := s.Take(ctx, storefixture.DayOne)
	if err != nil {
		t.Fatal(err)
	}
	want := storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(p, 4, 4, storefixture.Row(mtasts.ResultCertificateExpired, "a.example", 1, 4))})
	if got := storefixture.Canonical(results); got != want {
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
	s := redisstore.NewReportStore(rdb, redisstore.Options{})
	ctx := context.Background()
	var results, want []tlsrpt.PolicyResult
	for i := range 2500 {
		p := storefixture.STS(fmt.Sprintf("d%d.example", i), "enforce")
		results = append(results, storefixture.Result(p, 1, 0))
		want = append(want, storefixture.Result(p, 1, 0))
	}
	b := tlsrpt.Batch{Day: storefixture.DayOne, Source: "mta1", Seq: 7, Results: results}
	failEval.Store(2) // the second chunk's script fails
	if _, err := s.Add(ctx, b); err == nil {
		t.Fatal("Add with a failing chunk: no error")
	}
	if _, err := s.Add(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := s.Take(ctx, storefixture.DayOne)
	if err != nil {
		t.Fatal(err)
	}
	if storefixture.Canonical(got) != storefixture.Canonical(want) {
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
// store; another store gets ErrDayClaimed meanwhile.
func TestTLSRPTTakeResumes(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	var fail atomic.Bool
	rdb.AddHook(failHScan{&fail})
	s := redisstore.NewReportStore(rdb, redisstore.Options{})
	other := redisstore.NewReportStore(srv.client(), redisstore.Options{})
	ctx := context.Background()
	p := storefixture.STS("a.example", "enforce")
	if _, err := s.Add(ctx, tlsrpt.Batch{Day: storefixture.DayOne, Results: []tlsrpt.PolicyResult{storefixture.Result(p, 5, 0)}}); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	if _, err := s.Take(ctx, storefixture.DayOne); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("Take with HSCAN failing: %v", err)
	}
	takeClaimed(t, other)
	fail.Store(false)
	want := storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(p, 5, 0)})
	takeWant(t, s, want)
	takeWant(t, s, want)
	if err := s.Release(ctx, storefixture.DayOne); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Take(ctx, storefixture.DayOne); err != nil || len(r) != 0 {
		t.Errorf("Take after Release = %v, %v; want nothing", r, err)
	}
}

// The keys are those documented, and none lives for ever.
func TestTLSRPTKeys(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	clk := newClock(storefixture.DayTwo.Add(time.Hour))
	s := redisstore.NewReportStore(rdb, redisstore.WithNow(redisstore.Options{Prefix: "x:", Retention: time.Hour, Owner: "mta 1"}, clk.now))
	ctx := context.Background()
	p := storefixture.STS("a.example", "enforce")
	if _, err := s.Add(ctx, tlsrpt.Batch{Day: storefixture.DayOne, Source: "m", Seq: 1, MaxDetailRows: 5, Results: []tlsrpt.PolicyResult{
		storefixture.Result(p, 5, 1, storefixture.Row(mtasts.ResultCertificateExpired, "a.example", 1, 1)),
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
	if _, err := s.Take(ctx, storefixture.DayOne); err != nil {
		t.Fatal(err)
	}
	keys, _ = rdb.Keys(ctx, "*").Result()
	if got := strings.Join(sortedStrings(keys), " "); got != "x:{tlsrpt}:days x:{tlsrpt}:taken:2016-04-01 x:{tlsrpt}:taking:2016-04-01" {
		t.Errorf("keys after Take: %s", got)
	}
	if n, _ := rdb.HLen(ctx, "x:{tlsrpt}:taking:2016-04-01").Result(); n != 6 {
		t.Errorf("the claimed day's hash has %d fields, want the 6 of the day", n)
	}
	lapse := clk.now().Add(15 * time.Minute).UnixMilli()
	if got, want := rdb.Get(ctx, "x:{tlsrpt}:taken:2016-04-01").Val(), fmt.Sprintf("claimed %d mta 1", lapse); got != want {
		t.Errorf("taken mark after Take = %q, want %q", got, want)
	}
	for _, k := range keys {
		if ttl := rdb.TTL(ctx, k).Val(); ttl <= 0 || ttl > time.Hour {
			t.Errorf("TTL of %s after Take = %v, want Retention", k, ttl)
		}
	}
	if err := s.Release(ctx, storefixture.DayOne); err != nil {
		t.Fatal(err)
	}
	keys, _ = rdb.Keys(ctx, "*").Result()
	if got := strings.Join(sortedStrings(keys), " "); got != "x:{tlsrpt}:taken:2016-04-01" {
		t.Errorf("keys after Release: %s", got)
	}
	if got := rdb.Get(ctx, "x:{tlsrpt}:taken:2016-04-01").Val(); got != "released" {
		t.Errorf("taken mark after Release = %q", got)
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

// BenchmarkTLSRPTTake100k takes a day of 100,000 policy domains, added by
// a recorder, from a real redis-server.
func BenchmarkTLSRPTTake100k(b *testing.B) {
	srv := startRedis(b, "")
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer rdb.Close()
	const domains = 100000
	policies := make([]tlsrpt.Policy, domains)
	for i := range policies {
		policies[i] = storefixture.STS(fmt.Sprintf("domain%d.example", i), "enforce")
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		rdb.FlushAll(context.Background())
		store := redisstore.NewReportStore(rdb, redisstore.Options{})
		rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{Store: store})
		if err != nil {
			b.Fatal(err)
		}
		day := time.Now()
		for i, p := range policies {
			rec.Success(p)
			if i%10 == 0 {
				rec.Failure(p, storefixture.Row(mtasts.ResultCertificateExpired, p.PolicyDomain, 1, 0))
			}
		}
		if err := rec.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		results, err := store.Take(context.Background(), day)
		if err != nil {
			b.Fatal(err)
		}
		if n := len(results); n != domains {
			b.Fatalf("%d results, want %d", n, domains)
		}
	}
}

// A day written before recipient domains were kept (the fields p, s, f, r
// and n of a policy, id the hash of its JSON alone) reads as results of no
// recipient domain, and a result of no recipient domain added now counts
// with it: the layout is the same, a recipient domain's results come in
// fields of their own.
func TestTLSRPTStoreEarlierLayout(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	ctx := context.Background()
	p := storefixture.TLSA("mx.host.example", "")
	pj, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pj)
	pid := hex.EncodeToString(sum[:16])
	if err := rdb.HSet(ctx, "old:{tlsrpt}:day:2016-04-01", "p:"+pid, string(pj), "s:"+pid, "4", "f:"+pid, "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.SAdd(ctx, "old:{tlsrpt}:days", "2016-04-01").Err(); err != nil {
		t.Fatal(err)
	}
	s := redisstore.NewReportStore(rdb, redisstore.Options{Prefix: "old:"})
	withRecipient := storefixture.TLSA("mx.host.example", "a.example")
	if _, err := s.Add(ctx, tlsrpt.Batch{Day: storefixture.DayOne, Results: []tlsrpt.PolicyResult{
		storefixture.Result(p, 1, 0), storefixture.Result(withRecipient, 2, 0),
	}}); err != nil {
		t.Fatal(err)
	}
	results, err := s.Take(ctx, storefixture.DayOne)
	if err != nil {
		t.Fatal(err)
	}
	want := storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(p, 5, 0), storefixture.Result(withRecipient, 2, 0)})
	if got := storefixture.Canonical(results); got != want {
		t.Errorf("Take:\n%s\nwant:\n%s", got, want)
	}
}
