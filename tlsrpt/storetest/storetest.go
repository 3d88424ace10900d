// Package storetest checks that a tlsrpt.Store keeps the promises of its
// documentation: counts that add up, the cap on failure-detail rows, days
// handed out exactly once in two steps (Take, then Release), late counts
// refused. RunOutbox does the same for a tlsrpt.Outbox. The stores and
// outboxes of this repository run them, and so can others.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
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
func Run(t *testing.T, open func(t *testing.T) tlsrpt.Store) {
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
}

// RunResume checks that a claim survives a restart: reopen closes s (as a
// crash would leave it) and returns a store value on the same storage that
// counts as the same claimant, as the MTA restarted. The stores that keep
// their counts across a restart run it.
func RunResume(t *testing.T, open func(t *testing.T) tlsrpt.Store, reopen func(t *testing.T, s tlsrpt.Store) tlsrpt.Store) {
	ctx := context.Background()
	s := open(t)
	p := STS("a.example", "enforce")
	want := Canonical([]tlsrpt.PolicyResult{Result(p, 4, 1, Row(mtasts.ResultCertificateExpired, "a.example", 1, 1))})
	add(t, s, Day1, 0, Result(p, 4, 1, Row(mtasts.ResultCertificateExpired, "a.example", 1, 1)))
	add(t, s, Day2, 0, Result(p, 1, 0))
	if got := Canonical(take(t, s, Day1)); got != want {
		t.Fatalf("Take:\n%s\nwant:\n%s", got, want)
	}
	// The MTA dies before its reports are kept: the restarted one takes
	// the same counts again.
	s = reopen(t, s)
	if got := Canonical(take(t, s, Day1)); got != want {
		t.Fatalf("Take after a restart:\n%s\nwant:\n%s", got, want)
	}
	if err := s.Release(ctx, Day1); err != nil {
		t.Fatalf("Release: %v", err)
	}
	s = reopen(t, s)
	if r := take(t, s, Day1); len(r) != 0 {
		t.Errorf("Take after Release and a restart = %v, want nothing", r)
	}
	_, err := s.Add(ctx, tlsrpt.Batch{Day: Day1, Results: []tlsrpt.PolicyResult{Result(p, 1, 0)}})
	if !errors.Is(err, tlsrpt.ErrDayTaken) {
		t.Errorf("Add after Release and a restart: %v, want ErrDayTaken", err)
	}
	days, err := s.Days(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Time{Day2}; !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Errorf("Days after a restart = %v, want %v", days, want)
	}
	if got, want := Canonical(take(t, s, Day2)), Canonical([]tlsrpt.PolicyResult{Result(p, 1, 0)}); got != want {
		t.Errorf("Take(Day2) after restarts:\n%s\nwant:\n%s", got, want)
	}
}

// Day1 and Day2 are the days the checks use.
var (
	Day1 = time.Date(2016, 4, 1, 0, 0, 0, 0, time.UTC)
	Day2 = Day1.AddDate(0, 0, 1)
)

// STS returns an MTA-STS policy of domain, of the given mode.
func STS(domain, mode string) tlsrpt.Policy {
	return tlsrpt.Policy{
		PolicyType:   tlsrpt.PolicyTypeSTS,
		PolicyString: []string{"version: STSv1", "mode: " + mode, "mx: *.mail." + domain, "max_age: 604800"},
		PolicyDomain: domain,
		MXHost:       []string{"*.mail." + domain},
	}
}

// Row returns a failure-detail row of count sessions, with the MX host
// mx.<domain> and the receiving IP 192.0.2.<n>.
func Row(rt mtasts.ResultType, domain string, n byte, count int64) tlsrpt.FailureDetail {
	return tlsrpt.FailureDetail{
		ResultType:          rt,
		SendingMTAIP:        netip.MustParseAddr("2001:db8::25"),
		ReceivingMXHostname: "mx." + domain,
		ReceivingIP:         netip.AddrFrom4([4]byte{192, 0, 2, n}),
		FailedSessionCount:  count,
		FailureReasonCode:   "X509_V_ERR_CERT_HAS_EXPIRED",
	}
}

// Result returns a PolicyResult of p with the given counts and rows.
func Result(p tlsrpt.Policy, ok, failed int64, rows ...tlsrpt.FailureDetail) tlsrpt.PolicyResult {
	return tlsrpt.PolicyResult{
		Policy:         p,
		Summary:        tlsrpt.Summary{TotalSuccessfulSessionCount: ok, TotalFailureSessionCount: failed},
		FailureDetails: rows,
	}
}

// Canonical returns results in one order, each row list in one order, and
// with no empty row list, for comparing; it does not change results.
func Canonical(results []tlsrpt.PolicyResult) string {
	lines := make([]string, 0, len(results))
	for _, pr := range results {
		rows := make([]string, 0, len(pr.FailureDetails))
		for _, fd := range pr.FailureDetails {
			rows = append(rows, fmt.Sprintf("\n    %s %s %s %s %s %q %q = %d", fd.ResultType, fd.SendingMTAIP, fd.ReceivingMXHostname,
				fd.ReceivingMXHelo, fd.ReceivingIP, fd.FailureReasonCode, fd.AdditionalInformation, fd.FailedSessionCount))
		}
		slices.Sort(rows)
		rcpt := ""
		if pr.Policy.RecipientDomain != "" {
			rcpt = " for " + pr.Policy.RecipientDomain
		}
		if pr.CountOnly {
			rcpt += " (count only)"
		}
		lines = append(lines, fmt.Sprintf("%s %s %q %q%s: %d ok, %d failed%s", pr.Policy.PolicyDomain, pr.Policy.PolicyType,
			pr.Policy.PolicyString, pr.Policy.MXHost, rcpt, pr.Summary.TotalSuccessfulSessionCount, pr.Summary.TotalFailureSessionCount,
			strings.Join(rows, "")))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
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
	a, b := STS("a.example", "enforce"), STS("b.example", "testing")
	a2 := STS("a.example", "testing") // the policy changed during the day
	add(t, s, Day1, 0,
		Result(a, 10, 2, Row(mtasts.ResultCertificateExpired, "a.example", 1, 2)),
		Result(b, 5, 0))
	add(t, s, Day1, 0,
		Result(a, 1, 3, Row(mtasts.ResultCertificateExpired, "a.example", 1, 1), Row(mtasts.ResultSTARTTLSNotSupported, "a.example", 2, 2)),
		Result(a2, 7, 0))
	add(t, s, Day2, 0, Result(b, 1, 0))

	days, err := s.Days(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Time{Day1, Day2}; !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Errorf("Days = %v, want %v", days, want)
	}
	got := Canonical(take(t, s, Day1))
	days, _ = s.Days(context.Background())
	if want := []time.Time{Day1, Day2}; !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Errorf("Days after Take, before Release = %v, want %v", days, want)
	}
	if err := s.Release(context.Background(), Day1); err != nil {
		t.Fatalf("Release: %v", err)
	}
	want := Canonical([]tlsrpt.PolicyResult{
		Result(a, 11, 5, Row(mtasts.ResultCertificateExpired, "a.example", 1, 3), Row(mtasts.ResultSTARTTLSNotSupported, "a.example", 2, 2)),
		Result(a2, 7, 0),
		Result(b, 5, 0),
	})
	if got != want {
		t.Errorf("Take(Day1):\n%s\nwant:\n%s", got, want)
	}
	days, _ = s.Days(context.Background())
	if want := []time.Time{Day2}; !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Errorf("Days after Release = %v, want %v", days, want)
	}
	if got, want := Canonical(takeAll(t, s, Day2)), Canonical([]tlsrpt.PolicyResult{Result(b, 1, 0)}); got != want {
		t.Errorf("Take(Day2):\n%s\nwant:\n%s", got, want)
	}
}

// TLSA returns a DANE policy of the MX host mx, one TLSA record, for
// deliveries to recipient ("" for none), as Target.TLSA makes it.
func TLSA(mx, recipient string) tlsrpt.Policy {
	return tlsrpt.Policy{
		PolicyType:      tlsrpt.PolicyTypeTLSA,
		PolicyString:    []string{"3 1 1 " + strings.Repeat("AB", 32)},
		PolicyDomain:    mx,
		MXHost:          []string{mx},
		RecipientDomain: recipient,
	}
}

// testRecipients checks that the results of one policy for several
// recipient domains (a DANE MX host's, RFC 8460 1.1), and for none, are
// kept apart, each with its counts, and that the cap on rows counts per
// policy domain over them all.
func testRecipients(t *testing.T, s tlsrpt.Store) {
	a, b, none := TLSA("mx.host.example", "a.example"), TLSA("mx.host.example", "b.example"), TLSA("mx.host.example", "")
	sts := STS("a.example", "enforce")
	sts.RecipientDomain = "a.example"
	add(t, s, Day1, 0,
		Result(a, 3, 1, Row(mtasts.ResultTLSAInvalid, "host.example", 1, 1)),
		Result(b, 2, 0),
		Result(sts, 5, 0))
	add(t, s, Day1, 0,
		Result(a, 1, 2, Row(mtasts.ResultTLSAInvalid, "host.example", 1, 1), Row(mtasts.ResultDNSSECInvalid, "host.example", 2, 1)),
		Result(b, 0, 1, Row(mtasts.ResultDANERequired, "host.example", 3, 1)),
		Result(none, 7, 0))
	// The cap: mx.host.example holds 3 distinct rows of 3 allowed, over
	// its recipient domains; a fourth is dropped, its session counted.
	if dropped := add(t, s, Day1, 3, Result(b, 0, 1, Row(mtasts.ResultTLSAInvalid, "host.example", 4, 1))); dropped != 1 {
		t.Errorf("Add past the cap dropped %d sessions, want 1", dropped)
	}
	got := Canonical(takeAll(t, s, Day1))
	want := Canonical([]tlsrpt.PolicyResult{
		Result(a, 4, 3, Row(mtasts.ResultTLSAInvalid, "host.example", 1, 2), Row(mtasts.ResultDNSSECInvalid, "host.example", 2, 1)),
		Result(b, 2, 2, Row(mtasts.ResultDANERequired, "host.example", 3, 1)),
		Result(none, 7, 0),
		Result(sts, 5, 0),
	})
	if got != want {
		t.Errorf("Take:\n%s\nwant:\n%s", got, want)
	}
}

// testCountOnly checks that a result stays CountOnly while every batch that
// added to it had it so, whatever their order.
func testCountOnly(t *testing.T, s tlsrpt.Store) {
	quiet := func(pr tlsrpt.PolicyResult) tlsrpt.PolicyResult { pr.CountOnly = true; return pr }
	a, b, c := STS("a.example", "enforce"), STS("b.example", "enforce"), TLSA("mx.c.example", "c.example")
	add(t, s, Day1, 0, quiet(Result(a, 1, 0)), quiet(Result(b, 1, 0)), Result(c, 1, 0))
	add(t, s, Day1, 0, Result(a, 1, 0), quiet(Result(b, 0, 1)), quiet(Result(c, 1, 0)))
	got := Canonical(takeAll(t, s, Day1))
	want := Canonical([]tlsrpt.PolicyResult{Result(a, 2, 0), quiet(Result(b, 1, 1)), Result(c, 2, 0)})
	if got != want {
		t.Errorf("Take:\n%s\nwant:\n%s", got, want)
	}
}

// testResultsDelete checks that Results lists a day's counts without taking
// it, and that Delete removes a domain's results, as policy domain or as
// recipient domain, from the days not taken, and its rows from the cap.
func testResultsDelete(t *testing.T, s tlsrpt.Store) {
	ctx := context.Background()
	a, c := STS("a.example", "enforce"), STS("c.example", "enforce")
	a.RecipientDomain = "a.example"
	hostA, hostB := TLSA("mx.host.example", "a.example"), TLSA("mx.host.example", "b.example")
	day1 := []tlsrpt.PolicyResult{
		Result(a, 1, 1, Row(mtasts.ResultCertificateExpired, "a.example", 1, 1)),
		Result(hostA, 2, 1, Row(mtasts.ResultTLSAInvalid, "host.example", 1, 1)),
		Result(hostB, 3, 1, Row(mtasts.ResultTLSAInvalid, "host.example", 2, 1)),
		Result(c, 4, 0),
	}
	add(t, s, Day1, 0, day1...)
	add(t, s, Day2, 0, Result(a, 5, 0))
	results, err := s.Results(ctx, Day1)
	if err != nil {
		t.Fatalf("Results: %v", err)
	}
	if got, want := Canonical(results), Canonical(day1); got != want {
		t.Errorf("Results(Day1):\n%s\nwant:\n%s", got, want)
	}
	if results, err := s.Results(ctx, Day1.AddDate(0, 0, 5)); err != nil || len(results) != 0 {
		t.Errorf("Results of a day without counts: %v, %v", results, err)
	}
	take(t, s, Day2) // claimed: keeps a.example's results
	if err := s.Delete(ctx, "a.example"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	want := Canonical([]tlsrpt.PolicyResult{day1[2], day1[3]})
	if results, _ := s.Results(ctx, Day1); Canonical(results) != want {
		t.Errorf("Results(Day1) after Delete:\n%s\nwant:\n%s", Canonical(results), want)
	}
	if results, _ := s.Results(ctx, Day2); Canonical(results) != Canonical([]tlsrpt.PolicyResult{Result(a, 5, 0)}) {
		t.Errorf("Results(Day2), claimed before Delete: %s", Canonical(results))
	}
	// mx.host.example holds one row now: a second fits under a cap of 2.
	if dropped := add(t, s, Day1, 2, Result(hostB, 0, 1, Row(mtasts.ResultDANERequired, "host.example", 3, 1))); dropped != 0 {
		t.Errorf("Add after Delete dropped %d, want 0: the deleted rows no longer count", dropped)
	}
	if got, want := Canonical(take(t, s, Day1)), Canonical([]tlsrpt.PolicyResult{
		Result(hostB, 3, 2, Row(mtasts.ResultTLSAInvalid, "host.example", 2, 1), Row(mtasts.ResultDANERequired, "host.example", 3, 1)),
		day1[3],
	}); got != want {
		t.Errorf("Take(Day1):\n%s\nwant:\n%s", got, want)
	}
}

// testTakeOnce checks a day handed out once: concurrent Takes of one store
// value, its claimant, all get the same counts; after Release, none.
func testTakeOnce(t *testing.T, s tlsrpt.Store) {
	p := STS("a.example", "enforce")
	add(t, s, Day1, 0, Result(p, 3, 1, Row(mtasts.ResultCertificateExpired, "a.example", 1, 1)))
	want := Canonical([]tlsrpt.PolicyResult{Result(p, 3, 1, Row(mtasts.ResultCertificateExpired, "a.example", 1, 1))})
	const takers = 8
	var wg sync.WaitGroup
	got := make([][]tlsrpt.PolicyResult, takers)
	errs := make([]error, takers)
	for i := range takers {
		wg.Go(func() { got[i], errs[i] = s.Take(context.Background(), Day1) })
	}
	wg.Wait()
	for i := range takers {
		if errs[i] != nil {
			t.Errorf("Take: %v", errs[i])
		}
		if c := Canonical(got[i]); c != want {
			t.Errorf("Take %d of the claimant:\n%s\nwant:\n%s", i, c, want)
		}
	}
	if err := s.Release(context.Background(), Day1); err != nil {
		t.Fatalf("Release: %v", err)
	}
	_, err := s.Add(context.Background(), tlsrpt.Batch{Day: Day1, Results: []tlsrpt.PolicyResult{Result(p, 1, 0)}})
	if !errors.Is(err, tlsrpt.ErrDayTaken) {
		t.Errorf("Add after Take: %v, want ErrDayTaken", err)
	}
	if r := take(t, s, Day1); len(r) != 0 {
		t.Errorf("Take after Release = %v, want nothing", r)
	}
}

// testTakeAgain checks that the counts of a day taken stay, and the day in
// Days, until Release; and that a second Release is no error.
func testTakeAgain(t *testing.T, s tlsrpt.Store) {
	ctx := context.Background()
	p := STS("a.example", "enforce")
	add(t, s, Day1, 0, Result(p, 2, 0))
	want := Canonical([]tlsrpt.PolicyResult{Result(p, 2, 0)})
	for i := range 2 {
		if got := Canonical(take(t, s, Day1)); got != want {
			t.Errorf("Take %d:\n%s\nwant:\n%s", i+1, got, want)
		}
	}
	if _, err := s.Add(ctx, tlsrpt.Batch{Day: Day1, Results: []tlsrpt.PolicyResult{Result(p, 1, 0)}}); !errors.Is(err, tlsrpt.ErrDayTaken) {
		t.Errorf("Add to a claimed day: %v, want ErrDayTaken", err)
	}
	if got := Canonical(take(t, s, Day1)); got != want {
		t.Errorf("Take after a late Add:\n%s\nwant:\n%s", got, want)
	}
	days, err := s.Days(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Time{Day1}; !slices.EqualFunc(days, want, time.Time.Equal) {
		t.Errorf("Days of a day taken, not released = %v, want %v", days, want)
	}
	for range 2 {
		if err := s.Release(ctx, Day1); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}
	if days, _ := s.Days(ctx); len(days) != 0 {
		t.Errorf("Days after Release = %v, want none", days)
	}
	if r := take(t, s, Day1); len(r) != 0 {
		t.Errorf("Take after Release = %v, want nothing", r)
	}
	// Releasing a day never taken does nothing.
	if err := s.Release(ctx, Day2); err != nil {
		t.Errorf("Release of a day not taken: %v", err)
	}
	add(t, s, Day2, 0, Result(p, 1, 0))
	if got, want := Canonical(take(t, s, Day2)), Canonical([]tlsrpt.PolicyResult{Result(p, 1, 0)}); got != want {
		t.Errorf("Take(Day2) after its early Release:\n%s\nwant:\n%s", got, want)
	}
}

func testTakeEmptyDay(t *testing.T, s tlsrpt.Store) {
	if r := take(t, s, Day1); len(r) != 0 {
		t.Errorf("Take of an empty day = %v", r)
	}
	// Once taken, even empty, the day refuses late counts.
	_, err := s.Add(context.Background(), tlsrpt.Batch{Day: Day1, Results: []tlsrpt.PolicyResult{Result(STS("a.example", "enforce"), 1, 0)}})
	if !errors.Is(err, tlsrpt.ErrDayTaken) {
		t.Errorf("Add after Take: %v, want ErrDayTaken", err)
	}
}

func testCap(t *testing.T, s tlsrpt.Store) {
	a, a2, b := STS("a.example", "enforce"), STS("a.example", "testing"), STS("b.example", "enforce")
	exp := mtasts.ResultCertificateExpired
	// Two rows for a.example.
	if d := add(t, s, Day1, 3, Result(a, 0, 2, Row(exp, "a.example", 1, 1), Row(exp, "a.example", 2, 1))); d != 0 {
		t.Errorf("dropped %d, want 0", d)
	}
	// A third row, of another policy of the domain, fits; the fourth and
	// fifth do not; a known row still adds; b.example has its own cap.
	d := add(t, s, Day1, 3,
		Result(a2, 0, 3, Row(exp, "a.example", 3, 1), Row(exp, "a.example", 4, 2)),
		Result(a, 0, 7, Row(exp, "a.example", 5, 3), Row(exp, "a.example", 1, 4)),
		Result(b, 0, 3, Row(exp, "b.example", 1, 1), Row(exp, "b.example", 2, 1), Row(exp, "b.example", 3, 1)))
	if d != 5 {
		t.Errorf("dropped %d sessions, want 5", d)
	}
	got := Canonical(take(t, s, Day1))
	want := Canonical([]tlsrpt.PolicyResult{
		Result(a, 0, 9, Row(exp, "a.example", 1, 5), Row(exp, "a.example", 2, 1)),
		Result(a2, 0, 3, Row(exp, "a.example", 3, 1)),
		Result(b, 0, 3, Row(exp, "b.example", 1, 1), Row(exp, "b.example", 2, 1), Row(exp, "b.example", 3, 1)),
	})
	if got != want {
		t.Errorf("Take:\n%s\nwant:\n%s", got, want)
	}
}

func testConcurrentAdds(t *testing.T, s tlsrpt.Store) {
	p := STS("a.example", "enforce")
	const adders, batches = 4, 25
	var wg sync.WaitGroup
	for range adders {
		wg.Go(func() {
			for range batches {
				_, err := s.Add(context.Background(), tlsrpt.Batch{Day: Day1, MaxDetailRows: 10,
					Results: []tlsrpt.PolicyResult{Result(p, 2, 1, Row(mtasts.ResultValidationFailure, "a.example", 1, 1))}})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := Canonical(take(t, s, Day1))
	if want := Canonical([]tlsrpt.PolicyResult{Result(p, 2*adders*batches, adders*batches,
		Row(mtasts.ResultValidationFailure, "a.example", 1, adders*batches))}); got != want {
		t.Errorf("Take:\n%s\nwant:\n%s", got, want)
	}
}

// testShared checks two store values sharing storage, as a fleet's MTAs
// do: counts add up in one day, the cap holds over both, and one of them
// takes the day.
func testShared(t *testing.T, a, b tlsrpt.Store) {
	p := STS("a.example", "enforce")
	exp := mtasts.ResultCertificateExpired
	add(t, a, Day1, 2, Result(p, 5, 1, Row(exp, "a.example", 1, 1)))
	if d := add(t, b, Day1, 2, Result(p, 6, 3, Row(exp, "a.example", 1, 1), Row(exp, "a.example", 2, 1), Row(exp, "a.example", 3, 1))); d != 1 {
		t.Errorf("dropped %d, want 1: the cap holds over the fleet", d)
	}
	var got [2][]tlsrpt.PolicyResult
	var errs [2]error
	var wg sync.WaitGroup
	for i, s := range []tlsrpt.Store{a, b} {
		wg.Go(func() { got[i], errs[i] = s.Take(context.Background(), Day1) })
	}
	wg.Wait()
	won := 0 // the store value that got the day
	if len(got[1]) > 0 {
		won = 1
	}
	if len(got[won]) == 0 || errs[won] != nil || len(got[1-won]) > 0 || !errors.Is(errs[1-won], tlsrpt.ErrDayClaimed) {
		t.Fatalf("Takes got %v (%v) and %v (%v), want the day once and ErrDayClaimed", got[0], errs[0], got[1], errs[1])
	}
	want := Canonical([]tlsrpt.PolicyResult{Result(p, 11, 4, Row(exp, "a.example", 1, 2), Row(exp, "a.example", 2, 1))})
	if c := Canonical(got[won]); c != want {
		t.Errorf("Take:\n%s\nwant:\n%s", c, want)
	}
}

// testClaimed checks a claim between two store values sharing storage: the
// other's Take gets ErrDayClaimed and its Release changes nothing, until
// the claimant releases the day.
func testClaimed(t *testing.T, a, b tlsrpt.Store) {
	ctx := context.Background()
	p := STS("a.example", "enforce")
	add(t, a, Day1, 0, Result(p, 1, 0))
	want := Canonical([]tlsrpt.PolicyResult{Result(p, 1, 0)})
	if got := Canonical(take(t, a, Day1)); got != want {
		t.Fatalf("Take:\n%s\nwant:\n%s", got, want)
	}
	if r, err := b.Take(ctx, Day1); !errors.Is(err, tlsrpt.ErrDayClaimed) || len(r) != 0 {
		t.Errorf("Take of a day claimed by another = %v, %v; want ErrDayClaimed", r, err)
	}
	if err := b.Release(ctx, Day1); err != nil {
		t.Errorf("Release of a day claimed by another: %v", err)
	}
	if got := Canonical(take(t, a, Day1)); got != want {
		t.Errorf("Take after another's Release:\n%s\nwant:\n%s", got, want)
	}
	if err := a.Release(ctx, Day1); err != nil {
		t.Fatal(err)
	}
	if r, err := b.Take(ctx, Day1); err != nil || len(r) != 0 {
		t.Errorf("Take of a day released by another = %v, %v; want nothing", r, err)
	}
}
