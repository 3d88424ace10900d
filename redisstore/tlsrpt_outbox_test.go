package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/redisstore"
	"github.com/mtasts-go/mtasts/tlsrpt"
	"github.com/mtasts-go/mtasts/tlsrpt/storetest"
)

// TestTLSRPTOutbox runs the outbox checks against a real redis-server, each
// with keys of its own prefix; reopen is a new client and outbox value of
// the same Owner, as the MTA restarted.
func TestTLSRPTOutbox(t *testing.T) {
	srv := startRedis(t, "")
	open := func(t *testing.T) tlsrpt.Outbox {
		return redisstore.NewOutbox(srv.client(), redisstore.Options{Prefix: t.Name() + ":", Owner: "mta1"})
	}
	storetest.RunOutbox(t, open, func(t *testing.T, _ tlsrpt.Outbox) tlsrpt.Outbox { return open(t) })
}

// The same through a Redis Cluster.
func TestTLSRPTOutboxCluster(t *testing.T) {
	srv := startCluster(t)
	open := func(t *testing.T) tlsrpt.Outbox {
		rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.addr()}})
		t.Cleanup(func() { rdb.Close() })
		return redisstore.NewOutbox(rdb, redisstore.Options{Prefix: t.Name() + ":", Owner: "mta1"})
	}
	storetest.RunOutbox(t, open, func(t *testing.T, _ tlsrpt.Outbox) tlsrpt.Outbox { return open(t) })
}

func pendingIDs(t *testing.T, o tlsrpt.Outbox) []string {
	t.Helper()
	p, err := o.Pending(context.Background())
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	var ids []string
	for _, r := range p {
		ids = append(ids, r.Report.ReportID)
	}
	return ids
}

func wantIDs(t *testing.T, o tlsrpt.Outbox, who string, want ...string) {
	t.Helper()
	if got := pendingIDs(t, o); !slices.Equal(got, want) {
		t.Errorf("Pending of %s = %q, want %q", who, got, want)
	}
}

// Two members of a fleet share the outbox: a report is handed to the one
// that got it first until its lease lapses; then the other gets it. Done by
// either is seen by both.
func TestTLSRPTOutboxLease(t *testing.T) {
	srv := startRedis(t, "")
	ctx := context.Background()
	clk := newClock(storefixture.DayTwo.Add(time.Hour))
	open := func(owner string) tlsrpt.Outbox {
		return redisstore.NewOutbox(srv.client(), redisstore.WithNow(redisstore.Options{Owner: owner}, clk.now))
	}
	a, b := open("a"), open("b")
	r1, r2 := storefixture.Report(storefixture.DayOne, "a.example", "r1", 1), storefixture.Report(storefixture.DayOne, "b.example", "r2", 1)
	if err := a.Put(ctx, []tlsrpt.Report{r1}); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, a, "a", "r1")
	wantIDs(t, b, "b")
	if err := b.Put(ctx, []tlsrpt.Report{r2}); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, b, "b", "r2")
	clk.advance(time.Hour - time.Millisecond) // the outbox's default Lease
	wantIDs(t, a, "a, its lease renewed", "r1")
	clk.advance(time.Millisecond) // b's lease of r2 lapses; a renewed r1's
	wantIDs(t, a, "a, once b's lease lapsed", "r1", "r2")
	wantIDs(t, b, "b")
	if err := b.Delivered(ctx, &r1, "mailto:tlsrpt@a.example"); err != nil {
		t.Fatal(err)
	}
	if err := b.Done(ctx, &r2); err != nil {
		t.Fatal(err)
	}
	clk.advance(2 * time.Hour) // every lease lapsed
	p, err := b.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 1 || p[0].Report.ReportID != "r1" || !slices.Equal(p[0].Delivered, []string{"mailto:tlsrpt@a.example"}) {
		t.Errorf("Pending of b after a's lease lapsed = %+v, want r1 delivered by b", p)
	}
	if err := b.Put(ctx, []tlsrpt.Report{storefixture.Report(storefixture.DayOne, "b.example", "r2-again", 1)}); err != nil {
		t.Fatal(err)
	}
	clk.advance(27 * time.Hour)
	wantIDs(t, a, "a after b's Done and a Put of the same key", "r1")
}

// Members asking at once each get their own reports: every report goes to
// exactly one.
func TestTLSRPTOutboxConcurrentLease(t *testing.T) {
	srv := startRedis(t, "")
	ctx := context.Background()
	const members, reports = 5, 50
	var all []tlsrpt.Report
	for i := range reports {
		all = append(all, storefixture.Report(storefixture.DayOne, fmt.Sprintf("d%02d.example", i), fmt.Sprintf("id%02d", i), 1))
	}
	if err := redisstore.NewOutbox(srv.client(), redisstore.Options{}).Put(ctx, all); err != nil {
		t.Fatal(err)
	}
	got := make([][]string, members)
	var wg sync.WaitGroup
	for i := range members {
		o := redisstore.NewOutbox(srv.client(), redisstore.Options{Owner: fmt.Sprintf("mta%d", i)})
		wg.Go(func() {
			p, err := o.Pending(ctx)
			if err != nil {
				t.Error(err)
			}
			for _, r := range p {
				got[i] = append(got[i], r.Report.ReportID)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for i, ids := range got {
		for _, id := range ids {
			if j, ok := seen[id]; ok {
				t.Errorf("report %s handed to mta%d and mta%d", id, j, i)
			}
			seen[id] = i
		}
	}
	if len(seen) != reports {
		t.Errorf("%d reports handed out, want %d", len(seen), reports)
	}
}

// A report that does not decode is named in Pending's error, with the
// others returned; it stays, leased to no one, for an operator to look at.
func TestTLSRPTOutboxBadReport(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	ctx := context.Background()
	a := redisstore.NewOutbox(rdb, redisstore.Options{Owner: "a"})
	b := redisstore.NewOutbox(rdb, redisstore.Options{Owner: "b"})
	good := storefixture.Report(storefixture.DayOne, "a.example", "good", 1)
	if err := a.Put(ctx, []tlsrpt.Report{good}); err != nil {
		t.Fatal(err)
	}
	const bad = "2016-04-01 bad.example"
	if err := rdb.HSet(ctx, "mtasts:{tlsrpt}:outbox:reports", bad, `{"organization-name":`).Err(); err != nil {
		t.Fatal(err)
	}
	for i, o := range []tlsrpt.Outbox{a, b, a} {
		p, err := o.Pending(ctx)
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Pending %d: error %v, want one naming %q", i, err, bad)
		}
		if want := []string{"good"}; i == 0 && (len(p) != 1 || p[0].Report.ReportID != "good") {
			t.Errorf("Pending %d = %+v, want %q", i, p, want)
		}
	}
	if n, _ := rdb.HExists(ctx, "mtasts:{tlsrpt}:outbox:reports", bad).Result(); !n {
		t.Errorf("the report that does not decode was removed")
	}
}

// The keys are those documented; a done mark is forgotten once a report 31
// days younger is put.
func TestTLSRPTOutboxKeys(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	ctx := context.Background()
	clk := newClock(storefixture.DayTwo.Add(time.Hour))
	o := redisstore.NewOutbox(rdb, redisstore.WithNow(redisstore.Options{Prefix: "x:", Owner: "mta 1", Lease: time.Hour}, clk.now))
	a, b := storefixture.Report(storefixture.DayOne, "a.example", "a", 1), storefixture.Report(storefixture.DayOne, "b.example", "b", 1)
	if err := o.Put(ctx, []tlsrpt.Report{a, b}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Pending(ctx); err != nil {
		t.Fatal(err)
	}
	if err := o.Delivered(ctx, &a, "mailto:x@a.example"); err != nil {
		t.Fatal(err)
	}
	keys, _ := rdb.Keys(ctx, "*").Result()
	want := "x:{tlsrpt}:outbox:delivered:2016-04-01 a.example x:{tlsrpt}:outbox:leases x:{tlsrpt}:outbox:reports"
	if got := strings.Join(sortedStrings(keys), " "); got != want {
		t.Errorf("keys:\n%s\nwant:\n%s", got, want)
	}
	lease := fmt.Sprintf("%d mta 1", clk.now().Add(time.Hour).UnixMilli())
	if got := rdb.HGet(ctx, "x:{tlsrpt}:outbox:leases", a.Key()).Val(); got != lease {
		t.Errorf("lease = %q, want %q", got, lease)
	}
	if err := o.Done(ctx, &a); err != nil {
		t.Fatal(err)
	}
	if err := o.Done(ctx, &b); err != nil {
		t.Fatal(err)
	}
	keys, _ = rdb.Keys(ctx, "*").Result()
	if got := strings.Join(sortedStrings(keys), " "); got != "x:{tlsrpt}:outbox:done" {
		t.Errorf("keys after Done: %s", got)
	}
	if got := rdb.ZScore(ctx, "x:{tlsrpt}:outbox:done", a.Key()).Val(); got != float64(storefixture.DayOne.Unix()) {
		t.Errorf("done mark of a = %v, want its day", got)
	}
	// 31 days on, a's mark is kept; 32 days on, it is forgotten.
	for _, days := range []int{31, 32} {
		if err := o.Put(ctx, []tlsrpt.Report{storefixture.Report(storefixture.DayOne.AddDate(0, 0, days), "c.example", "c", 1)}); err != nil {
			t.Fatal(err)
		}
		_, err := rdb.ZScore(ctx, "x:{tlsrpt}:outbox:done", a.Key()).Result()
		if kept := err == nil; kept != (days == 31) {
			t.Errorf("done mark of a kept %v after a report %d days younger", kept, days)
		}
	}
}

// Many reports are put and leased in chunks, each once.
func TestTLSRPTOutboxChunks(t *testing.T) {
	srv := startRedis(t, "")
	ctx := context.Background()
	o := redisstore.NewOutbox(srv.client(), redisstore.Options{})
	var all []tlsrpt.Report
	var want []string
	for _, day := range []time.Time{storefixture.DayOne, storefixture.DayTwo} {
		for i := range 600 {
			id := fmt.Sprintf("%s-%04d", day.Format(time.DateOnly), i)
			all = append(all, storefixture.Report(day, fmt.Sprintf("d%04d.example", i), id, 1))
			want = append(want, id)
		}
	}
	// Put in reverse, twice: Pending orders them, and keeps the first.
	rev := slices.Clone(all)
	slices.Reverse(rev)
	for range 2 {
		if err := o.Put(ctx, rev); err != nil {
			t.Fatal(err)
		}
	}
	if got := pendingIDs(t, o); !slices.Equal(got, want) {
		t.Errorf("Pending returned %d reports, want the %d in order", len(got), len(want))
	}
}

// A member takes a day, puts its reports in the fleet's outbox and dies
// before it releases the day. Once its claim lapses another member takes
// the day over and makes its reports again: the outbox keeps the first,
// which are sent once, with their report-ids, once the first member's
// lease lapses.
func TestTLSRPTTakeOver(t *testing.T) {
	srv := startRedis(t, "")
	ctx := context.Background()
	clk := newClock(storefixture.DayTwo.Add(time.Hour))
	type member struct {
		store  tlsrpt.Store
		outbox tlsrpt.Outbox
	}
	open := func(owner string) member {
		return member{
			redisstore.NewReportStore(srv.client(), redisstore.WithNow(redisstore.Options{Owner: owner}, clk.now)),
			redisstore.NewOutbox(srv.client(), redisstore.WithNow(redisstore.Options{Owner: owner}, clk.now)),
		}
	}
	a, b := open("a"), open("b")
	pa, pb := storefixture.STS("a.example", "enforce"), storefixture.STS("b.example", "testing")
	if _, err := a.store.Add(ctx, tlsrpt.Batch{Day: storefixture.DayOne, Results: []tlsrpt.PolicyResult{
		storefixture.Result(pa, 3, 0), storefixture.Result(pb, 2, 0),
	}}); err != nil {
		t.Fatal(err)
	}
	makeReports := func(m member, owner string) []tlsrpt.Report {
		t.Helper()
		results, err := m.store.Take(ctx, storefixture.DayOne)
		if err != nil {
			t.Fatalf("Take: %v", err)
		}
		slices.SortFunc(results, func(x, y tlsrpt.PolicyResult) int {
			return strings.Compare(x.Policy.PolicyDomain, y.Policy.PolicyDomain)
		})
		// A report per policy domain, as a Reporter makes them.
		var reports []tlsrpt.Report
		for _, pr := range results {
			reports = append(reports, tlsrpt.Report{
				OrganizationName: "Fleet", ContactInfo: "tlsrpt@fleet.example",
				DateRange: tlsrpt.DateRange{Start: storefixture.DayOne, End: storefixture.DayOne.Add(24*time.Hour - time.Second)},
				ReportID:  owner + "-" + pr.Policy.PolicyDomain,
				Policies:  []tlsrpt.PolicyResult{pr},
			})
		}
		return reports
	}
	first := makeReports(a, "a")
	if len(first) != 2 {
		t.Fatalf("%d reports, want 2", len(first))
	}
	if err := a.outbox.Put(ctx, first); err != nil {
		t.Fatal(err)
	}
	if _, err := a.outbox.Pending(ctx); err != nil { // a starts delivering, and dies
		t.Fatal(err)
	}
	takeClaimed(t, b.store)
	clk.advance(30 * time.Minute) // a's claim lapses (15 minutes), not its leases (1 hour)
	again := makeReports(b, "b")
	if len(again) != 2 || again[0].ReportID == first[0].ReportID {
		t.Fatalf("reports made again: %+v", again)
	}
	if err := b.outbox.Put(ctx, again); err != nil {
		t.Fatal(err)
	}
	if err := b.store.Release(ctx, storefixture.DayOne); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, b.outbox, "b while a's leases hold")
	clk.advance(time.Hour)
	wantIDs(t, b.outbox, "b once a's leases lapsed", first[0].ReportID, first[1].ReportID)
	if r, err := a.store.Take(ctx, storefixture.DayOne); err != nil || len(r) != 0 {
		t.Errorf("Take of the day released by b = %v, %v; want nothing", r, err)
	}
}
