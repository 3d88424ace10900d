// Package storetest checks that a tlsrpt.Store keeps the promises of its
// documentation: counts that add up, the cap on failure-detail rows, days
// handed out exactly once in two steps (Take, then Release), late counts
// refused. RunOutbox does the same for a tlsrpt.Outbox. The stores and
// outboxes of this repository run them, and so can others.
package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// Run runs the checks as subtests of t. open returns a new, empty store for
// each subtest; called again with the same t, it returns a second value
// sharing the first's storage (as two MTAs of a fleet share one Redis), or
// nil when the store cannot be shared.
//
// reopen, when not nil, closes s (as a crash would leave it) and returns a
// store value on the same storage that counts as the same claimant, as the
// MTA restarted: the check "Resume" then checks that a claim survives a
// restart. Stores that keep their counts across a restart pass one.
func Run(t *testing.T, open func(t *testing.T) tlsrpt.Store, reopen func(t *testing.T, s tlsrpt.Store) tlsrpt.Store) {
	t.Run("AddUp", func(t *testing.T) { testAddUp(t, open(t)) })
	t.Run("Recipients", func(t *testing.T) { testRecipients(t, open(t)) })
	t.Run("CountOnly", func(t *testing.T) { testCountOnly(t, open(t)) })
	t.Run("ResultsDelete", func(t *testing.T) { testResultsDelete(t, open(t)) })
	t.Run("TakeOnce", func(t *testing.T) { testTakeOnce(t, open(t)) })
	t.Run("TakeAgain", func(t *testing.T) { testTakeAgain(t, open(t)) })
	t.Run("TakeEmptyDay", func(t *testing.T) { testTakeEmptyDay(t, open(t)) })
	t.Run("Cap", func(t *testing.T) { testCap(t, open(t)) })
	t.Run("ConcurrentAdds", func(t *testing.T) { testConcurrentAdds(t, open(t)) })
	t.Run("Shared", func(t *testing.T) {
		a := open(t)
		b := open(t)
		if b == nil {
			t.Skip("store cannot be shared")
		}
		testShared(t, a, b)
	})
	t.Run("Claimed", func(t *testing.T) {
		a := open(t)
		b := open(t)
		if b == nil {
			t.Skip("store cannot be shared")
		}
		testClaimed(t, a, b)
	})
	t.Run("Resume", func(t *testing.T) {
		if reopen == nil {
			t.Skip("store does not survive a restart")
		}
		testResume(t, open(t), reopen)
	})
}

// testResume checks that a claim survives a restart: the restarted store
// takes the same counts again, and a day released stays taken.
func testResume(t *testing.T, s tlsrpt.Store, reopen func(t *testing.T, s tlsrpt.Store) tlsrpt.Store) {
	ctx := context.Background()
	p := storefixture.STS("a.example", "enforce")
	want := storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(p, 4, 1, storefixture.Row(mtasts.ResultCertificateExpired, "a.example", 1, 1))})
	add(t, s, storefixture.DayOne, 0, storefixture.Result(p, 4, 1, storefixture.Row(mtasts.ResultCertificateExpired, "a.example", 1, 1)))
	add(t, s, storefixture.DayTwo, 0, storefixture.Result(p, 1, 0))
	if got := storefixture.Canonical(take(t, s, storefixture.DayOne)); got != want {
		t.Fatalf("Take:\n%s\nwant:\n%s", got, want)
	}
	// The MTA dies before its reports are kept: the restarted one takes
	// the same counts again.
	s = reopen(t, s)
	if got := storefixture.Canonical(take(t, s, storefixture.DayOne)); got != want {
		t.Fatalf("Take after a restart:\n%s\nwant:\n%s", got, want)
	}
	if err := s.Release(ctx, storefixture.DayOne); err != nil {
		t.Fatalf("Release: %v", err)
	}
	s = reopen(t, s)
	if r := take(t, s, storefixture.DayOne); len(r) != 0 {
		t.Errorf("Take after Release and a restart = %v, want nothing", r)
	}
	_, err := s.Add(ctx, tlsrpt.Batch{Day: storefixture.DayOne, Results: []tlsrpt.PolicyResult{storefixture.Result(p, 1, 0)}})
	if !errors.Is(err, tlsrpt.ErrDayTaken) {
		t.Errorf("Add after Release and a restart: %v, want ErrDayTaken", err)
	}
	days, err := s.Days(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Time{storefixture.DayTwo}; !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Errorf("Days after a restart = %v, want %v", days, want)
	}
	if got, want := storefixture.Canonical(take(t, s, storefixture.DayTwo)), storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(p, 1, 0)}); got != want {
		t.Errorf("Take(storefixture.DayTwo) after restarts:\n%s\nwant:\n%s", got, want)
	}
}

func add(t *testing.T, s tlsrpt.Store, day time.Time, maxRows int, results ...tlsrpt.PolicyResult) int64 {
	t.Helper()
	dropped, err := s.Add(context.Background(), tlsrpt.Batch{Day: day, Results: results, MaxDetailRows: maxRows})
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	return dropped
}

func take(t *testing.T, s tlsrpt.Store, day time.Time) []tlsrpt.PolicyResult {
	t.Helper()
	results, err := s.Take(context.Background(), day)
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	return results
}

// takeAll takes day and releases it, returning its counts.
func takeAll(t *testing.T, s tlsrpt.Store, day time.Time) []tlsrpt.PolicyResult {
	t.Helper()
	results := take(t, s, day)
	if err := s.Release(context.Background(), day); err != nil {
		t.Fatalf("Release: %v", err)
	}
	return results
}

func testAddUp(t *testing.T, s tlsrpt.Store) {
	a, b := storefixture.STS("a.example", "enforce"), storefixture.STS("b.example", "testing")
	a2 := storefixture.STS("a.example", "testing") // the policy changed during the day
	add(t, s, storefixture.DayOne, 0,
		storefixture.Result(a, 10, 2, storefixture.Row(mtasts.ResultCertificateExpired, "a.example", 1, 2)),
		storefixture.Result(b, 5, 0))
	add(t, s, storefixture.DayOne, 0,
		storefixture.Result(a, 1, 3, storefixture.Row(mtasts.ResultCertificateExpired, "a.example", 1, 1), storefixture.Row(mtasts.ResultSTARTTLSNotSupported, "a.example", 2, 2)),
		storefixture.Result(a2, 7, 0))
	add(t, s, storefixture.DayTwo, 0, storefixture.Result(b, 1, 0))

	days, err := s.Days(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Time{storefixture.DayOne, storefixture.DayTwo}; !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Errorf("Days = %v, want %v", days, want)
	}
	got := storefixture.Canonical(take(t, s, storefixture.DayOne))
	days, _ = s.Days(context.Background())
	if want := []time.Time{storefixture.DayOne, storefixture.DayTwo}; !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Errorf("Days after Take, before Release = %v, want %v", days, want)
	}
	if err := s.Release(context.Background(), storefixture.DayOne); err != nil {
		t.Fatalf("Release: %v", err)
	}
	want := storefixture.Canonical([]tlsrpt.PolicyResult{
		storefixture.Result(a, 11, 5, storefixture.Row(mtasts.ResultCertificateExpired, "a.example", 1, 3), storefixture.Row(mtasts.ResultSTARTTLSNotSupported, "a.example", 2, 2)),
		storefixture.Result(a2, 7, 0),
		storefixture.Result(b, 5, 0),
	})
	if got != want {
		t.Errorf("Take(storefixture.DayOne):\n%s\nwant:\n%s", got, want)
	}
	days, _ = s.Days(context.Background())
	if want := []time.Time{storefixture.DayTwo}; !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Errorf("Days after Release = %v, want %v", days, want)
	}
	if got, want := storefixture.Canonical(takeAll(t, s, storefixture.DayTwo)), storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(b, 1, 0)}); got != want {
		t.Errorf("Take(storefixture.DayTwo):\n%s\nwant:\n%s", got, want)
	}
}

// testRecipients checks that the results of one policy for several
// recipient domains (a DANE MX host's, RFC 8460 1.1), and for none, are
// kept apart, each with its counts, and that the cap on rows counts per
// policy domain over them all.
func testRecipients(t *testing.T, s tlsrpt.Store) {
	a, b, none := storefixture.TLSA("mx.host.example", "a.example"), storefixture.TLSA("mx.host.example", "b.example"), storefixture.TLSA("mx.host.example", "")
	sts := storefixture.STS("a.example", "enforce")
	sts.RecipientDomain = "a.example"
	add(t, s, storefixture.DayOne, 0,
		storefixture.Result(a, 3, 1, storefixture.Row(mtasts.ResultTLSAInvalid, "host.example", 1, 1)),
		storefixture.Result(b, 2, 0),
		storefixture.Result(sts, 5, 0))
	add(t, s, storefixture.DayOne, 0,
		storefixture.Result(a, 1, 2, storefixture.Row(mtasts.ResultTLSAInvalid, "host.example", 1, 1), storefixture.Row(mtasts.ResultDNSSECInvalid, "host.example", 2, 1)),
		storefixture.Result(b, 0, 1, storefixture.Row(mtasts.ResultDANERequired, "host.example", 3, 1)),
		storefixture.Result(none, 7, 0))
	// The cap: mx.host.example holds 3 distinct rows of 3 allowed, over
	// its recipient domains; a fourth is dropped, its session counted.
	if dropped := add(t, s, storefixture.DayOne, 3, storefixture.Result(b, 0, 1, storefixture.Row(mtasts.ResultTLSAInvalid, "host.example", 4, 1))); dropped != 1 {
		t.Errorf("Add past the cap dropped %d sessions, want 1", dropped)
	}
	got := storefixture.Canonical(takeAll(t, s, storefixture.DayOne))
	want := storefixture.Canonical([]tlsrpt.PolicyResult{
		storefixture.Result(a, 4, 3, storefixture.Row(mtasts.ResultTLSAInvalid, "host.example", 1, 2), storefixture.Row(mtasts.ResultDNSSECInvalid, "host.example", 2, 1)),
		storefixture.Result(b, 2, 2, storefixture.Row(mtasts.ResultDANERequired, "host.example", 3, 1)),
		storefixture.Result(none, 7, 0),
		storefixture.Result(sts, 5, 0),
	})
	if got != want {
		t.Errorf("Take:\n%s\nwant:\n%s", got, want)
	}
}

// testCountOnly checks that a result stays CountOnly while every batch that
// added to it had it so, whatever their order.
func testCountOnly(t *testing.T, s tlsrpt.Store) {
	quiet := func(pr tlsrpt.PolicyResult) tlsrpt.PolicyResult { pr.CountOnly = true; return pr }
	a, b, c := storefixture.STS("a.example", "enforce"), storefixture.STS("b.example", "enforce"), storefixture.TLSA("mx.c.example", "c.example")
	add(t, s, storefixture.DayOne, 0, quiet(storefixture.Result(a, 1, 0)), quiet(storefixture.Result(b, 1, 0)), storefixture.Result(c, 1, 0))
	add(t, s, storefixture.DayOne, 0, storefixture.Result(a, 1, 0), quiet(storefixture.Result(b, 0, 1)), quiet(storefixture.Result(c, 1, 0)))
	got := storefixture.Canonical(takeAll(t, s, storefixture.DayOne))
	want := storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(a, 2, 0), quiet(storefixture.Result(b, 1, 1)), storefixture.Result(c, 2, 0)})
	if got != want {
		t.Errorf("Take:\n%s\nwant:\n%s", got, want)
	}
}

// testResultsDelete checks that Results lists a day's counts without taking
// it, and that Delete removes a domain's results, as policy domain or as
// recipient domain, from the days not taken, and its rows from the cap.
func testResultsDelete(t *testing.T, s tlsrpt.Store) {
	ctx := context.Background()
	a, c := storefixture.STS("a.example", "enforce"), storefixture.STS("c.example", "enforce")
	a.RecipientDomain = "a.example"
	hostA, hostB := storefixture.TLSA("mx.host.example", "a.example"), storefixture.TLSA("mx.host.example", "b.example")
	day1 := []tlsrpt.PolicyResult{
		storefixture.Result(a, 1, 1, storefixture.Row(mtasts.ResultCertificateExpired, "a.example", 1, 1)),
		storefixture.Result(hostA, 2, 1, storefixture.Row(mtasts.ResultTLSAInvalid, "host.example", 1, 1)),
		storefixture.Result(hostB, 3, 1, storefixture.Row(mtasts.ResultTLSAInvalid, "host.example", 2, 1)),
		storefixture.Result(c, 4, 0),
	}
	add(t, s, storefixture.DayOne, 0, day1...)
	add(t, s, storefixture.DayTwo, 0, storefixture.Result(a, 5, 0))
	results, err := s.Results(ctx, storefixture.DayOne)
	if err != nil {
		t.Fatalf("Results: %v", err)
	}
	if got, want := storefixture.Canonical(results), storefixture.Canonical(day1); got != want {
		t.Errorf("Results(storefixture.DayOne):\n%s\nwant:\n%s", got, want)
	}
	if results, err := s.Results(ctx, storefixture.DayOne.AddDate(0, 0, 5)); err != nil || len(results) != 0 {
		t.Errorf("Results of a day without counts: %v, %v", results, err)
	}
	take(t, s, storefixture.DayTwo) // claimed: keeps a.example's results
	if err := s.Delete(ctx, "a.example"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	want := storefixture.Canonical([]tlsrpt.PolicyResult{day1[2], day1[3]})
	if results, _ := s.Results(ctx, storefixture.DayOne); storefixture.Canonical(results) != want {
		t.Errorf("Results(storefixture.DayOne) after Delete:\n%s\nwant:\n%s", storefixture.Canonical(results), want)
	}
	if results, _ := s.Results(ctx, storefixture.DayTwo); storefixture.Canonical(results) != storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(a, 5, 0)}) {
		t.Errorf("Results(storefixture.DayTwo), claimed before Delete: %s", storefixture.Canonical(results))
	}
	// mx.host.example holds one row now: a second fits under a cap of 2.
	if dropped := add(t, s, storefixture.DayOne, 2, storefixture.Result(hostB, 0, 1, storefixture.Row(mtasts.ResultDANERequired, "host.example", 3, 1))); dropped != 0 {
		t.Errorf("Add after Delete dropped %d, want 0: the deleted rows no longer count", dropped)
	}
	if got, want := storefixture.Canonical(take(t, s, storefixture.DayOne)), storefixture.Canonical([]tlsrpt.PolicyResult{
		storefixture.Result(hostB, 3, 2, storefixture.Row(mtasts.ResultTLSAInvalid, "host.example", 2, 1), storefixture.Row(mtasts.ResultDANERequired, "host.example", 3, 1)),
		day1[3],
	}); got != want {
		t.Errorf("Take(storefixture.DayOne):\n%s\nwant:\n%s", got, want)
	}
}

// testTakeOnce checks a day handed out once: concurrent Takes of one store
// value, its claimant, all get the same counts; after Release, none.
func testTakeOnce(t *testing.T, s tlsrpt.Store) {
	p := storefixture.STS("a.example", "enforce")
	add(t, s, storefixture.DayOne, 0, storefixture.Result(p, 3, 1, storefixture.Row(mtasts.ResultCertificateExpired, "a.example", 1, 1)))
	want := storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(p, 3, 1, storefixture.Row(mtasts.ResultCertificateExpired, "a.example", 1, 1))})
	const takers = 8
	var wg sync.WaitGroup
	got := make([][]tlsrpt.PolicyResult, takers)
	errs := make([]error, takers)
	for i := range takers {
		wg.Go(func() { got[i], errs[i] = s.Take(context.Background(), storefixture.DayOne) })
	}
	wg.Wait()
	for i := range takers {
		if errs[i] != nil {
			t.Errorf("Take: %v", errs[i])
		}
		if c := storefixture.Canonical(got[i]); c != want {
			t.Errorf("Take %d of the claimant:\n%s\nwant:\n%s", i, c, want)
		}
	}
	if err := s.Release(context.Background(), storefixture.DayOne); err != nil {
		t.Fatalf("Release: %v", err)
	}
	_, err := s.Add(context.Background(), tlsrpt.Batch{Day: storefixture.DayOne, Results: []tlsrpt.PolicyResult{storefixture.Result(p, 1, 0)}})
	if !errors.Is(err, tlsrpt.ErrDayTaken) {
		t.Errorf("Add after Take: %v, want ErrDayTaken", err)
	}
	if r := take(t, s, storefixture.DayOne); len(r) != 0 {
		t.Errorf("Take after Release = %v, want nothing", r)
	}
}

// testTakeAgain checks that the counts of a day taken stay, and the day in
// Days, until Release; and that a second Release is no error.
func testTakeAgain(t *testing.T, s tlsrpt.Store) {
	ctx := context.Background()
	p := storefixture.STS("a.example", "enforce")
	add(t, s, storefixture.DayOne, 0, storefixture.Result(p, 2, 0))
	want := storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(p, 2, 0)})
	for i := range 2 {
		if got := storefixture.Canonical(take(t, s, storefixture.DayOne)); got != want {
			t.Errorf("Take %d:\n%s\nwant:\n%s", i+1, got, want)
		}
	}
	if _, err := s.Add(ctx, tlsrpt.Batch{Day: storefixture.DayOne, Results: []tlsrpt.PolicyResult{storefixture.Result(p, 1, 0)}}); !errors.Is(err, tlsrpt.ErrDayTaken) {
		t.Errorf("Add to a claimed day: %v, want ErrDayTaken", err)
	}
	if got := storefixture.Canonical(take(t, s, storefixture.DayOne)); got != want {
		t.Errorf("Take after a late Add:\n%s\nwant:\n%s", got, want)
	}
	days, err := s.Days(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Time{storefixture.DayOne}; !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Errorf("Days of a day taken, not released = %v, want %v", days, want)
	}
	for range 2 {
		if err := s.Release(ctx, storefixture.DayOne); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}
	if days, _ := s.Days(ctx); len(days) != 0 {
		t.Errorf("Days after Release = %v, want none", days)
	}
	if r := take(t, s, storefixture.DayOne); len(r) != 0 {
		t.Errorf("Take after Release = %v, want nothing", r)
	}
	// Releasing a day never taken does nothing.
	if err := s.Release(ctx, storefixture.DayTwo); err != nil {
		t.Errorf("Release of a day not taken: %v", err)
	}
	add(t, s, storefixture.DayTwo, 0, storefixture.Result(p, 1, 0))
	if got, want := storefixture.Canonical(take(t, s, storefixture.DayTwo)), storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(p, 1, 0)}); got != want {
		t.Errorf("Take(storefixture.DayTwo) after its early Release:\n%s\nwant:\n%s", got, want)
	}
}

func testTakeEmptyDay(t *testing.T, s tlsrpt.Store) {
	if r := take(t, s, storefixture.DayOne); len(r) != 0 {
		t.Errorf("Take of an empty day = %v", r)
	}
	// Once taken, even empty, the day refuses late counts.
	_, err := s.Add(context.Background(), tlsrpt.Batch{Day: storefixture.DayOne, Results: []tlsrpt.PolicyResult{storefixture.Result(storefixture.STS("a.example", "enforce"), 1, 0)}})
	if !errors.Is(err, tlsrpt.ErrDayTaken) {
		t.Errorf("Add after Take: %v, want ErrDayTaken", err)
	}
}

func testCap(t *testing.T, s tlsrpt.Store) {
	a, a2, b := storefixture.STS("a.example", "enforce"), storefixture.STS("a.example", "testing"), storefixture.STS("b.example", "enforce")
	exp := mtasts.ResultCertificateExpired
	// Two rows for a.example.
	if d := add(t, s, storefixture.DayOne, 3, storefixture.Result(a, 0, 2, storefixture.Row(exp, "a.example", 1, 1), storefixture.Row(exp, "a.example", 2, 1))); d != 0 {
		t.Errorf("dropped %d, want 0", d)
	}
	// A third row, of another policy of the domain, fits; the fourth and
	// fifth do not; a known row still adds; b.example has its own cap.
	d := add(t, s, storefixture.DayOne, 3,
		storefixture.Result(a2, 0, 3, storefixture.Row(exp, "a.example", 3, 1), storefixture.Row(exp, "a.example", 4, 2)),
		storefixture.Result(a, 0, 7, storefixture.Row(exp, "a.example", 5, 3), storefixture.Row(exp, "a.example", 1, 4)),
		storefixture.Result(b, 0, 3, storefixture.Row(exp, "b.example", 1, 1), storefixture.Row(exp, "b.example", 2, 1), storefixture.Row(exp, "b.example", 3, 1)))
	if d != 5 {
		t.Errorf("dropped %d sessions, want 5", d)
	}
	got := storefixture.Canonical(take(t, s, storefixture.DayOne))
	want := storefixture.Canonical([]tlsrpt.PolicyResult{
		storefixture.Result(a, 0, 9, storefixture.Row(exp, "a.example", 1, 5), storefixture.Row(exp, "a.example", 2, 1)),
		storefixture.Result(a2, 0, 3, storefixture.Row(exp, "a.example", 3, 1)),
		storefixture.Result(b, 0, 3, storefixture.Row(exp, "b.example", 1, 1), storefixture.Row(exp, "b.example", 2, 1), storefixture.Row(exp, "b.example", 3, 1)),
	})
	if got != want {
		t.Errorf("Take:\n%s\nwant:\n%s", got, want)
	}
}

func testConcurrentAdds(t *testing.T, s tlsrpt.Store) {
	p := storefixture.STS("a.example", "enforce")
	const adders, batches = 4, 25
	var wg sync.WaitGroup
	for range adders {
		wg.Go(func() {
			for range batches {
				_, err := s.Add(context.Background(), tlsrpt.Batch{Day: storefixture.DayOne, MaxDetailRows: 10,
					Results: []tlsrpt.PolicyResult{storefixture.Result(p, 2, 1, storefixture.Row(mtasts.ResultValidationFailure, "a.example", 1, 1))}})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := storefixture.Canonical(take(t, s, storefixture.DayOne))
	if want := storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(p, 2*adders*batches, adders*batches,
		storefixture.Row(mtasts.ResultValidationFailure, "a.example", 1, adders*batches))}); got != want {
		t.Errorf("Take:\n%s\nwant:\n%s", got, want)
	}
}

// testShared checks two store values sharing storage, as a fleet's MTAs
// do: counts add up in one day, the cap holds over both, and one of them
// takes the day.
func testShared(t *testing.T, a, b tlsrpt.Store) {
	p := storefixture.STS("a.example", "enforce")
	exp := mtasts.ResultCertificateExpired
	add(t, a, storefixture.DayOne, 2, storefixture.Result(p, 5, 1, storefixture.Row(exp, "a.example", 1, 1)))
	if d := add(t, b, storefixture.DayOne, 2, storefixture.Result(p, 6, 3, storefixture.Row(exp, "a.example", 1, 1), storefixture.Row(exp, "a.example", 2, 1), storefixture.Row(exp, "a.example", 3, 1))); d != 1 {
		t.Errorf("dropped %d, want 1: the cap holds over the fleet", d)
	}
	var got [2][]tlsrpt.PolicyResult
	var errs [2]error
	var wg sync.WaitGroup
	for i, s := range []tlsrpt.Store{a, b} {
		wg.Go(func() { got[i], errs[i] = s.Take(context.Background(), storefixture.DayOne) })
	}
	wg.Wait()
	won := 0 // the store value that got the day
	if len(got[1]) > 0 {
		won = 1
	}
	if len(got[won]) == 0 || errs[won] != nil || len(got[1-won]) > 0 || !errors.Is(errs[1-won], tlsrpt.ErrDayClaimed) {
		t.Fatalf("Takes got %v (%v) and %v (%v), want the day once and ErrDayClaimed", got[0], errs[0], got[1], errs[1])
	}
	want := storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(p, 11, 4, storefixture.Row(exp, "a.example", 1, 2), storefixture.Row(exp, "a.example", 2, 1))})
	if c := storefixture.Canonical(got[won]); c != want {
		t.Errorf("Take:\n%s\nwant:\n%s", c, want)
	}
}

// testClaimed checks a claim between two store values sharing storage: the
// other's Take gets ErrDayClaimed and its Release changes nothing, until
// the claimant releases the day.
func testClaimed(t *testing.T, a, b tlsrpt.Store) {
	ctx := context.Background()
	p := storefixture.STS("a.example", "enforce")
	add(t, a, storefixture.DayOne, 0, storefixture.Result(p, 1, 0))
	want := storefixture.Canonical([]tlsrpt.PolicyResult{storefixture.Result(p, 1, 0)})
	if got := storefixture.Canonical(take(t, a, storefixture.DayOne)); got != want {
		t.Fatalf("Take:\n%s\nwant:\n%s", got, want)
	}
	if r, err := b.Take(ctx, storefixture.DayOne); !errors.Is(err, tlsrpt.ErrDayClaimed) || len(r) != 0 {
		t.Errorf("Take of a day claimed by another = %v, %v; want ErrDayClaimed", r, err)
	}
	if err := b.Release(ctx, storefixture.DayOne); err != nil {
		t.Errorf("Release of a day claimed by another: %v", err)
	}
	if got := storefixture.Canonical(take(t, a, storefixture.DayOne)); got != want {
		t.Errorf("Take after another's Release:\n%s\nwant:\n%s", got, want)
	}
	if err := a.Release(ctx, storefixture.DayOne); err != nil {
		t.Fatal(err)
	}
	if r, err := b.Take(ctx, storefixture.DayOne); err != nil || len(r) != 0 {
		t.Errorf("Take of a day released by another = %v, %v; want nothing", r, err)
	}
}
