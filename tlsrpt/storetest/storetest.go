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
	p := stsOf("a.example", "enforce")
	want := canonical([]tlsrpt.PolicyResult{resultOf(p, 4, 1, rowOf(mtasts.ResultCertificateExpired, "a.example", 1, 1))})
	add(t, s, dayOne, 0, resultOf(p, 4, 1, rowOf(mtasts.ResultCertificateExpired, "a.example", 1, 1)))
	add(t, s, dayTwo, 0, resultOf(p, 1, 0))
	if got := canonical(take(t, s, dayOne)); got != want {
		t.Fatalf("Take:\n%s\nwant:\n%s", got, want)
	}
	// The MTA dies before its reports are kept: the restarted one takes
	// the same counts again.
	s = reopen(t, s)
	if got := canonical(take(t, s, dayOne)); got != want {
		t.Fatalf("Take after a restart:\n%s\nwant:\n%s", got, want)
	}
	if err := s.Release(ctx, dayOne); err != nil {
		t.Fatalf("Release: %v", err)
	}
	s = reopen(t, s)
	if r := take(t, s, dayOne); len(r) != 0 {
		t.Errorf("Take after Release and a restart = %v, want nothing", r)
	}
	_, err := s.Add(ctx, tlsrpt.Batch{Day: dayOne, Results: []tlsrpt.PolicyResult{resultOf(p, 1, 0)}})
	if !errors.Is(err, tlsrpt.ErrDayTaken) {
		t.Errorf("Add after Release and a restart: %v, want ErrDayTaken", err)
	}
	days, err := s.Days(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Time{dayTwo}; !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Errorf("Days after a restart = %v, want %v", days, want)
	}
	if got, want := canonical(take(t, s, dayTwo)), canonical([]tlsrpt.PolicyResult{resultOf(p, 1, 0)}); got != want {
		t.Errorf("Take(dayTwo) after restarts:\n%s\nwant:\n%s", got, want)
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
	a, b := stsOf("a.example", "enforce"), stsOf("b.example", "testing")
	a2 := stsOf("a.example", "testing") // the policy changed during the day
	add(t, s, dayOne, 0,
		resultOf(a, 10, 2, rowOf(mtasts.ResultCertificateExpired, "a.example", 1, 2)),
		resultOf(b, 5, 0))
	add(t, s, dayOne, 0,
		resultOf(a, 1, 3, rowOf(mtasts.ResultCertificateExpired, "a.example", 1, 1), rowOf(mtasts.ResultSTARTTLSNotSupported, "a.example", 2, 2)),
		resultOf(a2, 7, 0))
	add(t, s, dayTwo, 0, resultOf(b, 1, 0))

	days, err := s.Days(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Time{dayOne, dayTwo}; !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Errorf("Days = %v, want %v", days, want)
	}
	got := canonical(take(t, s, dayOne))
	days, _ = s.Days(context.Background())
	if want := []time.Time{dayOne, dayTwo}; !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Errorf("Days after Take, before Release = %v, want %v", days, want)
	}
	if err := s.Release(context.Background(), dayOne); err != nil {
		t.Fatalf("Release: %v", err)
	}
	want := canonical([]tlsrpt.PolicyResult{
		resultOf(a, 11, 5, rowOf(mtasts.ResultCertificateExpired, "a.example", 1, 3), rowOf(mtasts.ResultSTARTTLSNotSupported, "a.example", 2, 2)),
		resultOf(a2, 7, 0),
		resultOf(b, 5, 0),
	})
	if got != want {
		t.Errorf("Take(dayOne):\n%s\nwant:\n%s", got, want)
	}
	days, _ = s.Days(context.Background())
	if want := []time.Time{dayTwo}; !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Errorf("Days after Release = %v, want %v", days, want)
	}
	if got, want := canonical(takeAll(t, s, dayTwo)), canonical([]tlsrpt.PolicyResult{resultOf(b, 1, 0)}); got != want {
		t.Errorf("Take(dayTwo):\n%s\nwant:\n%s", got, want)
	}
}

// testRecipients checks that the results of one policy for several
// recipient domains (a DANE MX host's, RFC 8460 1.1), and for none, are
// kept apart, each with its counts, and that the cap on rows counts per
// policy domain over them all.
func testRecipients(t *testing.T, s tlsrpt.Store) {
	a, b, none := tlsaOf("mx.host.example", "a.example"), tlsaOf("mx.host.example", "b.example"), tlsaOf("mx.host.example", "")
	sts := stsOf("a.example", "enforce")
	sts.RecipientDomain = "a.example"
	add(t, s, dayOne, 0,
		resultOf(a, 3, 1, rowOf(mtasts.ResultTLSAInvalid, "host.example", 1, 1)),
		resultOf(b, 2, 0),
		resultOf(sts, 5, 0))
	add(t, s, dayOne, 0,
		resultOf(a, 1, 2, rowOf(mtasts.ResultTLSAInvalid, "host.example", 1, 1), rowOf(mtasts.ResultDNSSECInvalid, "host.example", 2, 1)),
		resultOf(b, 0, 1, rowOf(mtasts.ResultDANERequired, "host.example", 3, 1)),
		resultOf(none, 7, 0))
	// The cap: mx.host.example holds 3 distinct rows of 3 allowed, over
	// its recipient domains; a fourth is dropped, its session counted.
	if dropped := add(t, s, dayOne, 3, resultOf(b, 0, 1, rowOf(mtasts.ResultTLSAInvalid, "host.example", 4, 1))); dropped != 1 {
		t.Errorf("Add past the cap dropped %d sessions, want 1", dropped)
	}
	got := canonical(takeAll(t, s, dayOne))
	want := canonical([]tlsrpt.PolicyResult{
		resultOf(a, 4, 3, rowOf(mtasts.ResultTLSAInvalid, "host.example", 1, 2), rowOf(mtasts.ResultDNSSECInvalid, "host.example", 2, 1)),
		resultOf(b, 2, 2, rowOf(mtasts.ResultDANERequired, "host.example", 3, 1)),
		resultOf(none, 7, 0),
		resultOf(sts, 5, 0),
	})
	if got != want {
		t.Errorf("Take:\n%s\nwant:\n%s", got, want)
	}
}

// testCountOnly checks that a result stays CountOnly while every batch that
// added to it had it so, whatever their order.
func testCountOnly(t *testing.T, s tlsrpt.Store) {
	quiet := func(pr tlsrpt.PolicyResult) tlsrpt.PolicyResult { pr.CountOnly = true; return pr }
	a, b, c := stsOf("a.example", "enforce"), stsOf("b.example", "enforce"), tlsaOf("mx.c.example", "c.example")
	add(t, s, dayOne, 0, quiet(resultOf(a, 1, 0)), quiet(resultOf(b, 1, 0)), resultOf(c, 1, 0))
	add(t, s, dayOne, 0, resultOf(a, 1, 0), quiet(resultOf(b, 0, 1)), quiet(resultOf(c, 1, 0)))
	got := canonical(takeAll(t, s, dayOne))
	want := canonical([]tlsrpt.PolicyResult{resultOf(a, 2, 0), quiet(resultOf(b, 1, 1)), resultOf(c, 2, 0)})
	if got != want {
		t.Errorf("Take:\n%s\nwant:\n%s", got, want)
	}
}

// testResultsDelete checks that Results lists a day's counts without taking
// it, and that Delete removes a domain's results, as policy domain or as
// recipient domain, from the days not taken, and its rows from the cap.
func testResultsDelete(t *testing.T, s tlsrpt.Store) {
	ctx := context.Background()
	a, c := stsOf("a.example", "enforce"), stsOf("c.example", "enforce")
	a.RecipientDomain = "a.example"
	hostA, hostB := tlsaOf("mx.host.example", "a.example"), tlsaOf("mx.host.example", "b.example")
	day1 := []tlsrpt.PolicyResult{
		resultOf(a, 1, 1, rowOf(mtasts.ResultCertificateExpired, "a.example", 1, 1)),
		resultOf(hostA, 2, 1, rowOf(mtasts.ResultTLSAInvalid, "host.example", 1, 1)),
		resultOf(hostB, 3, 1, rowOf(mtasts.ResultTLSAInvalid, "host.example", 2, 1)),
		resultOf(c, 4, 0),
	}
	add(t, s, dayOne, 0, day1...)
	add(t, s, dayTwo, 0, resultOf(a, 5, 0))
	results, err := s.Results(ctx, dayOne)
	if err != nil {
		t.Fatalf("Results: %v", err)
	}
	if got, want := canonical(results), canonical(day1); got != want {
		t.Errorf("Results(dayOne):\n%s\nwant:\n%s", got, want)
	}
	if results, err := s.Results(ctx, dayOne.AddDate(0, 0, 5)); err != nil || len(results) != 0 {
		t.Errorf("Results of a day without counts: %v, %v", results, err)
	}
	take(t, s, dayTwo) // claimed: keeps a.example's results
	if err := s.Delete(ctx, "a.example"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	want := canonical([]tlsrpt.PolicyResult{day1[2], day1[3]})
	if results, _ := s.Results(ctx, dayOne); canonical(results) != want {
		t.Errorf("Results(dayOne) after Delete:\n%s\nwant:\n%s", canonical(results), want)
	}
	if results, _ := s.Results(ctx, dayTwo); canonical(results) != canonical([]tlsrpt.PolicyResult{resultOf(a, 5, 0)}) {
		t.Errorf("Results(dayTwo), claimed before Delete: %s", canonical(results))
	}
	// mx.host.example holds one row now: a second fits under a cap of 2.
	if dropped := add(t, s, dayOne, 2, resultOf(hostB, 0, 1, rowOf(mtasts.ResultDANERequired, "host.example", 3, 1))); dropped != 0 {
		t.Errorf("Add after Delete dropped %d, want 0: the deleted rows no longer count", dropped)
	}
	if got, want := canonical(take(t, s, dayOne)), canonical([]tlsrpt.PolicyResult{
		resultOf(hostB, 3, 2, rowOf(mtasts.ResultTLSAInvalid, "host.example", 2, 1), rowOf(mtasts.ResultDANERequired, "host.example", 3, 1)),
		day1[3],
	}); got != want {
		t.Errorf("Take(dayOne):\n%s\nwant:\n%s", got, want)
	}
}

// testTakeOnce checks a day handed out once: concurrent Takes of one store
// value, its claimant, all get the same counts; after Release, none.
func testTakeOnce(t *testing.T, s tlsrpt.Store) {
	p := stsOf("a.example", "enforce")
	add(t, s, dayOne, 0, resultOf(p, 3, 1, rowOf(mtasts.ResultCertificateExpired, "a.example", 1, 1)))
	want := canonical([]tlsrpt.PolicyResult{resultOf(p, 3, 1, rowOf(mtasts.ResultCertificateExpired, "a.example", 1, 1))})
	const takers = 8
	var wg sync.WaitGroup
	got := make([][]tlsrpt.PolicyResult, takers)
	errs := make([]error, takers)
	for i := range takers {
		wg.Go(func() { got[i], errs[i] = s.Take(context.Background(), dayOne) })
	}
	wg.Wait()
	for i := range takers {
		if errs[i] != nil {
			t.Errorf("Take: %v", errs[i])
		}
		if c := canonical(got[i]); c != want {
			t.Errorf("Take %d of the claimant:\n%s\nwant:\n%s", i, c, want)
		}
	}
	if err := s.Release(context.Background(), dayOne); err != nil {
		t.Fatalf("Release: %v", err)
	}
	_, err := s.Add(context.Background(), tlsrpt.Batch{Day: dayOne, Results: []tlsrpt.PolicyResult{resultOf(p, 1, 0)}})
	if !errors.Is(err, tlsrpt.ErrDayTaken) {
		t.Errorf("Add after Take: %v, want ErrDayTaken", err)
	}
	if r := take(t, s, dayOne); len(r) != 0 {
		t.Errorf("Take after Release = %v, want nothing", r)
	}
}

// testTakeAgain checks that the counts of a day taken stay, and the day in
// Days, until Release; and that a second Release is no error.
func testTakeAgain(t *testing.T, s tlsrpt.Store) {
	ctx := context.Background()
	p := stsOf("a.example", "enforce")
	add(t, s, dayOne, 0, resultOf(p, 2, 0))
	want := canonical([]tlsrpt.PolicyResult{resultOf(p, 2, 0)})
	for i := range 2 {
		if got := canonical(take(t, s, dayOne)); got != want {
			t.Errorf("Take %d:\n%s\nwant:\n%s", i+1, got, want)
		}
	}
	if _, err := s.Add(ctx, tlsrpt.Batch{Day: dayOne, Results: []tlsrpt.PolicyResult{resultOf(p, 1, 0)}}); !errors.Is(err, tlsrpt.ErrDayTaken) {
		t.Errorf("Add to a claimed day: %v, want ErrDayTaken", err)
	}
	if got := canonical(take(t, s, dayOne)); got != want {
		t.Errorf("Take after a late Add:\n%s\nwant:\n%s", got, want)
	}
	days, err := s.Days(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Time{dayOne}; !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Errorf("Days of a day taken, not released = %v, want %v", days, want)
	}
	for range 2 {
		if err := s.Release(ctx, dayOne); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}
	if days, _ := s.Days(ctx); len(days) != 0 {
		t.Errorf("Days after Release = %v, want none", days)
	}
	if r := take(t, s, dayOne); len(r) != 0 {
		t.Errorf("Take after Release = %v, want nothing", r)
	}
	// Releasing a day never taken does nothing.
	if err := s.Release(ctx, dayTwo); err != nil {
		t.Errorf("Release of a day not taken: %v", err)
	}
	add(t, s, dayTwo, 0, resultOf(p, 1, 0))
	if got, want := canonical(take(t, s, dayTwo)), canonical([]tlsrpt.PolicyResult{resultOf(p, 1, 0)}); got != want {
		t.Errorf("Take(dayTwo) after its early Release:\n%s\nwant:\n%s", got, want)
	}
}

func testTakeEmptyDay(t *testing.T, s tlsrpt.Store) {
	if r := take(t, s, dayOne); len(r) != 0 {
		t.Errorf("Take of an empty day = %v", r)
	}
	// Once taken, even empty, the day refuses late counts.
	_, err := s.Add(context.Background(), tlsrpt.Batch{Day: dayOne, Results: []tlsrpt.PolicyResult{resultOf(stsOf("a.example", "enforce"), 1, 0)}})
	if !errors.Is(err, tlsrpt.ErrDayTaken) {
		t.Errorf("Add after Take: %v, want ErrDayTaken", err)
	}
}

func testCap(t *testing.T, s tlsrpt.Store) {
	a, a2, b := stsOf("a.example", "enforce"), stsOf("a.example", "testing"), stsOf("b.example", "enforce")
	exp := mtasts.ResultCertificateExpired
	// Two rows for a.example.
	if d := add(t, s, dayOne, 3, resultOf(a, 0, 2, rowOf(exp, "a.example", 1, 1), rowOf(exp, "a.example", 2, 1))); d != 0 {
		t.Errorf("dropped %d, want 0", d)
	}
	// A third row, of another policy of the domain, fits; the fourth and
	// fifth do not; a known row still adds; b.example has its own cap.
	d := add(t, s, dayOne, 3,
		resultOf(a2, 0, 3, rowOf(exp, "a.example", 3, 1), rowOf(exp, "a.example", 4, 2)),
		resultOf(a, 0, 7, rowOf(exp, "a.example", 5, 3), rowOf(exp, "a.example", 1, 4)),
		resultOf(b, 0, 3, rowOf(exp, "b.example", 1, 1), rowOf(exp, "b.example", 2, 1), rowOf(exp, "b.example", 3, 1)))
	if d != 5 {
		t.Errorf("dropped %d sessions, want 5", d)
	}
	got := canonical(take(t, s, dayOne))
	want := canonical([]tlsrpt.PolicyResult{
		resultOf(a, 0, 9, rowOf(exp, "a.example", 1, 5), rowOf(exp, "a.example", 2, 1)),
		resultOf(a2, 0, 3, rowOf(exp, "a.example", 3, 1)),
		resultOf(b, 0, 3, rowOf(exp, "b.example", 1, 1), rowOf(exp, "b.example", 2, 1), rowOf(exp, "b.example", 3, 1)),
	})
	if got != want {
		t.Errorf("Take:\n%s\nwant:\n%s", got, want)
	}
}

func testConcurrentAdds(t *testing.T, s tlsrpt.Store) {
	p := stsOf("a.example", "enforce")
	const adders, batches = 4, 25
	var wg sync.WaitGroup
	for range adders {
		wg.Go(func() {
			for range batches {
				_, err := s.Add(context.Background(), tlsrpt.Batch{Day: dayOne, MaxDetailRows: 10,
					Results: []tlsrpt.PolicyResult{resultOf(p, 2, 1, rowOf(mtasts.ResultValidationFailure, "a.example", 1, 1))}})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := canonical(take(t, s, dayOne))
	if want := canonical([]tlsrpt.PolicyResult{resultOf(p, 2*adders*batches, adders*batches,
		rowOf(mtasts.ResultValidationFailure, "a.example", 1, adders*batches))}); got != want {
		t.Errorf("Take:\n%s\nwant:\n%s", got, want)
	}
}

// testShared checks two store values sharing storage, as a fleet's MTAs
// do: counts add up in one day, the cap holds over both, and one of them
// takes the day.
func testShared(t *testing.T, a, b tlsrpt.Store) {
	p := stsOf("a.example", "enforce")
	exp := mtasts.ResultCertificateExpired
	add(t, a, dayOne, 2, resultOf(p, 5, 1, rowOf(exp, "a.example", 1, 1)))
	if d := add(t, b, dayOne, 2, resultOf(p, 6, 3, rowOf(exp, "a.example", 1, 1), rowOf(exp, "a.example", 2, 1), rowOf(exp, "a.example", 3, 1))); d != 1 {
		t.Errorf("dropped %d, want 1: the cap holds over the fleet", d)
	}
	var got [2][]tlsrpt.PolicyResult
	var errs [2]error
	var wg sync.WaitGroup
	for i, s := range []tlsrpt.Store{a, b} {
		wg.Go(func() { got[i], errs[i] = s.Take(context.Background(), dayOne) })
	}
	wg.Wait()
	won := 0 // the store value that got the day
	if len(got[1]) > 0 {
		won = 1
	}
	if len(got[won]) == 0 || errs[won] != nil || len(got[1-won]) > 0 || !errors.Is(errs[1-won], tlsrpt.ErrDayClaimed) {
		t.Fatalf("Takes got %v (%v) and %v (%v), want the day once and ErrDayClaimed", got[0], errs[0], got[1], errs[1])
	}
	want := canonical([]tlsrpt.PolicyResult{resultOf(p, 11, 4, rowOf(exp, "a.example", 1, 2), rowOf(exp, "a.example", 2, 1))})
	if c := canonical(got[won]); c != want {
		t.Errorf("Take:\n%s\nwant:\n%s", c, want)
	}
}

// testClaimed checks a claim between two store values sharing storage: the
// other's Take gets ErrDayClaimed and its Release changes nothing, until
// the claimant releases the day.
func testClaimed(t *testing.T, a, b tlsrpt.Store) {
	ctx := context.Background()
	p := stsOf("a.example", "enforce")
	add(t, a, dayOne, 0, resultOf(p, 1, 0))
	want := canonical([]tlsrpt.PolicyResult{resultOf(p, 1, 0)})
	if got := canonical(take(t, a, dayOne)); got != want {
		t.Fatalf("Take:\n%s\nwant:\n%s", got, want)
	}
	if r, err := b.Take(ctx, dayOne); !errors.Is(err, tlsrpt.ErrDayClaimed) || len(r) != 0 {
		t.Errorf("Take of a day claimed by another = %v, %v; want ErrDayClaimed", r, err)
	}
	if err := b.Release(ctx, dayOne); err != nil {
		t.Errorf("Release of a day claimed by another: %v", err)
	}
	if got := canonical(take(t, a, dayOne)); got != want {
		t.Errorf("Take after another's Release:\n%s\nwant:\n%s", got, want)
	}
	if err := a.Release(ctx, dayOne); err != nil {
		t.Fatal(err)
	}
	if r, err := b.Take(ctx, dayOne); err != nil || len(r) != 0 {
		t.Errorf("Take of a day released by another = %v, %v; want nothing", r, err)
	}
}
