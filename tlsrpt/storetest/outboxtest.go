package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// RunOutbox runs the checks of a tlsrpt.Outbox as subtests of t. open
// returns a new, empty outbox for each subtest. reopen, when not nil,
// returns a value on the storage of o as the next process after a crash
// would open it; outboxes that keep their reports across a restart pass
// one.
func RunOutbox(t *testing.T, open func(t *testing.T) tlsrpt.Outbox, reopen func(t *testing.T, o tlsrpt.Outbox) tlsrpt.Outbox) {
	t.Run("PutPending", func(t *testing.T) { testPutPending(t, open(t)) })
	t.Run("PutKeepsFirst", func(t *testing.T) { testPutKeepsFirst(t, open(t)) })
	t.Run("Delivered", func(t *testing.T) { testDelivered(t, open(t)) })
	t.Run("Done", func(t *testing.T) { testDone(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { testOutboxConcurrent(t, open(t)) })
	t.Run("Kinds", func(t *testing.T) { testOutboxKinds(t, open(t), reopen) })
	t.Run("Sent", func(t *testing.T) { testSent(t, open(t), reopen) })
	t.Run("Reopen", func(t *testing.T) {
		if reopen == nil {
			t.Skip("outbox does not survive a restart")
		}
		testOutboxReopen(t, open(t), func(o tlsrpt.Outbox) tlsrpt.Outbox { return reopen(t, o) })
	})
}

// describe returns the reports in a form to compare: each report's JSON and
// the URIs it was delivered to.
func describe(t *testing.T, pending []tlsrpt.PendingReport) string {
	t.Helper()
	var s string
	for _, p := range pending {
		js, err := json.Marshal(&p.Report)
		if err != nil {
			t.Fatal(err)
		}
		s += fmt.Sprintf("%s to %q delivered %q\n", js, p.Report.Domain, p.Delivered)
	}
	return s
}

func want(t *testing.T, reports ...tlsrpt.PendingReport) string {
	t.Helper()
	return describe(t, reports)
}

func pending(t *testing.T, o tlsrpt.Outbox) []tlsrpt.PendingReport {
	t.Helper()
	p, err := o.Pending(context.Background())
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	return p
}

func put(t *testing.T, o tlsrpt.Outbox, reports ...tlsrpt.Report) {
	t.Helper()
	if err := o.Put(context.Background(), reports); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

func testPutPending(t *testing.T, o tlsrpt.Outbox) {
	if p := pending(t, o); len(p) != 0 {
		t.Errorf("Pending of an empty outbox = %v", p)
	}
	b1, a1, a2 := storefixture.Report(storefixture.DayOne, "b.example", "id-b1", 1), storefixture.Report(storefixture.DayOne, "a.example", "id-a1", 2), storefixture.Report(storefixture.DayTwo, "a.example", "id-a2", 3)
	put(t, o, b1, a2)
	put(t, o, a1)
	got := describe(t, pending(t, o))
	if w := want(t, tlsrpt.PendingReport{Report: a1}, tlsrpt.PendingReport{Report: b1}, tlsrpt.PendingReport{Report: a2}); got != w {
		t.Errorf("Pending:\n%s\nwant, by day then domain:\n%s", got, w)
	}
}

// testPutKeepsFirst checks that a report made again, as after a crash
// between Put and Store.Release, keeps the report-id of the first.
func testPutKeepsFirst(t *testing.T, o tlsrpt.Outbox) {
	first := storefixture.Report(storefixture.DayOne, "a.example", "first", 1)
	put(t, o, first)
	put(t, o, storefixture.Report(storefixture.DayOne, "a.example", "again", 1), storefixture.Report(storefixture.DayOne, "b.example", "b", 1))
	got := describe(t, pending(t, o))
	if w := want(t, tlsrpt.PendingReport{Report: first}, tlsrpt.PendingReport{Report: storefixture.Report(storefixture.DayOne, "b.example", "b", 1)}); got != w {
		t.Errorf("Pending:\n%s\nwant:\n%s", got, w)
	}
}

func testDelivered(t *testing.T, o tlsrpt.Outbox) {
	ctx := context.Background()
	a, b := storefixture.Report(storefixture.DayOne, "a.example", "a", 1), storefixture.Report(storefixture.DayOne, "b.example", "b", 1)
	put(t, o, a, b)
	for _, uri := range []string{"https://tlsrpt.a.example/v1", "mailto:tlsrpt@a.example", "https://tlsrpt.a.example/v1"} {
		if err := o.Delivered(ctx, &a, uri); err != nil {
			t.Fatalf("Delivered: %v", err)
		}
	}
	stranger := storefixture.Report(storefixture.DayTwo, "c.example", "c", 1)
	if err := o.Delivered(ctx, &stranger, "mailto:x@c.example"); err != nil {
		t.Errorf("Delivered of a report not put: %v", err)
	}
	got := describe(t, pending(t, o))
	w := want(t, tlsrpt.PendingReport{Report: a, Delivered: []string{"https://tlsrpt.a.example/v1", "mailto:tlsrpt@a.example"}},
		tlsrpt.PendingReport{Report: b})
	if got != w {
		t.Errorf("Pending:\n%s\nwant:\n%s", got, w)
	}
}

func testDone(t *testing.T, o tlsrpt.Outbox) {
	ctx := context.Background()
	a, b := storefixture.Report(storefixture.DayOne, "a.example", "a", 1), storefixture.Report(storefixture.DayOne, "b.example", "b", 1)
	put(t, o, a, b)
	for range 2 {
		if err := o.Done(ctx, &a); err != nil {
			t.Fatalf("Done: %v", err)
		}
	}
	stranger := storefixture.Report(storefixture.DayTwo, "c.example", "c", 1)
	if err := o.Done(ctx, &stranger); err != nil {
		t.Errorf("Done of a report not put: %v", err)
	}
	// Made again, as after a crash before Store.Release: not sent again.
	put(t, o, storefixture.Report(storefixture.DayOne, "a.example", "a-again", 1))
	if got, w := describe(t, pending(t, o)), want(t, tlsrpt.PendingReport{Report: b}); got != w {
		t.Errorf("Pending after Done and a Put of the same key:\n%s\nwant:\n%s", got, w)
	}
	if err := o.Delivered(ctx, &a, "mailto:late@a.example"); err != nil {
		t.Errorf("Delivered of a report done: %v", err)
	}
	if got, w := describe(t, pending(t, o)), want(t, tlsrpt.PendingReport{Report: b}); got != w {
		t.Errorf("Pending after Delivered of a report done:\n%s\nwant:\n%s", got, w)
	}
}

func testOutboxConcurrent(t *testing.T, o tlsrpt.Outbox) {
	ctx := context.Background()
	const workers, each = 4, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				r := storefixture.Report(storefixture.DayOne, fmt.Sprintf("d%d-%d.example", w, i), fmt.Sprintf("id-%d-%d", w, i), 1)
				if err := o.Put(ctx, []tlsrpt.Report{r}); err != nil {
					t.Error(err)
					return
				}
				if err := o.Delivered(ctx, &r, "mailto:x@example.com"); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					if err := o.Done(ctx, &r); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	var ids []string
	for _, p := range pending(t, o) {
		ids = append(ids, p.Report.ReportID)
		if !slices.Equal(p.Delivered, []string{"mailto:x@example.com"}) {
			t.Errorf("%s delivered to %q", p.Report.ReportID, p.Delivered)
		}
	}
	slices.Sort(ids)
	var wantIDs []string
	for w := range workers {
		for i := 1; i < each; i += 2 {
			wantIDs = append(wantIDs, fmt.Sprintf("id-%d-%d", w, i))
		}
	}
	slices.Sort(wantIDs)
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("pending %v, want %v", ids, wantIDs)
	}
}

// testOutboxKinds checks the reports of one day to one domain, of the
// kinds of tlsrpt.ReportInfo: to it as a policy domain or recipient domain,
// and to it as an MX host. They are two reports (Report.Key), each kept with
// its Domain, across a restart too, and each done on its own.
func testOutboxKinds(t *testing.T, o tlsrpt.Outbox, reopen func(t *testing.T, o tlsrpt.Outbox) tlsrpt.Outbox) {
	ctx := context.Background()
	rcpt := storefixture.Report(storefixture.DayOne, "mx.example", "as-recipient", 1)
	rcpt.Domain = "mx.example"
	host := storefixture.Report(storefixture.DayOne, "a.example", "as-host", 2)
	host.Domain = "mx.example"
	host.Policies[0].Policy.MXHost = []string{"mx.example"}
	put(t, o, rcpt, host)
	put(t, o, storefixture.Report(storefixture.DayOne, "mx.example", "as-recipient-again", 1)) // the same key as rcpt: skipped
	w := want(t, tlsrpt.PendingReport{Report: host}, tlsrpt.PendingReport{Report: rcpt})
	got := describe(t, pending(t, o))
	if got != w {
		// Pending orders by domain, then report-id.
		w = want(t, tlsrpt.PendingReport{Report: rcpt}, tlsrpt.PendingReport{Report: host})
	}
	if got != w {
		t.Errorf("Pending:\n%s\nwant:\n%s", got, w)
	}
	if reopen != nil {
		o = reopen(t, o)
		if got := describe(t, pending(t, o)); got != w {
			t.Errorf("Pending after a restart:\n%s\nwant:\n%s", got, w)
		}
	}
	if err := o.Done(ctx, &host); err != nil {
		t.Fatal(err)
	}
	if got, w := describe(t, pending(t, o)), want(t, tlsrpt.PendingReport{Report: rcpt}); got != w {
		t.Errorf("Pending after the host's report is done:\n%s\nwant:\n%s", got, w)
	}
}

// testSent checks that Sent lists the Keys of the reports done, in order,
// across a restart too, and not those pending.
func testSent(t *testing.T, o tlsrpt.Outbox, reopen func(t *testing.T, o tlsrpt.Outbox) tlsrpt.Outbox) {
	ctx := context.Background()
	a, b, c := storefixture.Report(storefixture.DayTwo, "a.example", "a", 1), storefixture.Report(storefixture.DayOne, "b.example", "b", 1), storefixture.Report(storefixture.DayOne, "c.example", "c", 1)
	host := storefixture.Report(storefixture.DayOne, "a.example", "host", 2)
	host.Domain = "mx.example"
	host.Policies[0].Policy.MXHost = []string{"mx.example"}
	put(t, o, a, b, c, host)
	for _, r := range []*tlsrpt.Report{&a, &c, &host} {
		if err := o.Done(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"2016-04-01 c.example", "2016-04-01 mx.example mx-host", "2016-04-02 a.example"}
	sent, err := o.Sent(ctx)
	if err != nil || !slices.Equal(sent, want) {
		t.Errorf("Sent = %q, %v; want %q", sent, err, want)
	}
	if reopen != nil {
		o = reopen(t, o)
		if sent, err := o.Sent(ctx); err != nil || !slices.Equal(sent, want) {
			t.Errorf("Sent after a restart = %q, %v; want %q", sent, err, want)
		}
	}
}

// testOutboxReopen checks what a restart finds: the reports pending, with
// their deliveries, and no report done.
func testOutboxReopen(t *testing.T, o tlsrpt.Outbox, reopen func(tlsrpt.Outbox) tlsrpt.Outbox) {
	ctx := context.Background()
	a, b, c := storefixture.Report(storefixture.DayOne, "a.example", "a", 1), storefixture.Report(storefixture.DayOne, "b.example", "b", 2), storefixture.Report(storefixture.DayTwo, "c.example", "c", 3)
	put(t, o, a, b, c)
	if err := o.Delivered(ctx, &a, "https://tlsrpt.a.example/v1"); err != nil {
		t.Fatal(err)
	}
	if err := o.Done(ctx, &b); err != nil {
		t.Fatal(err)
	}
	o = reopen(o)
	w := want(t, tlsrpt.PendingReport{Report: a, Delivered: []string{"https://tlsrpt.a.example/v1"}}, tlsrpt.PendingReport{Report: c})
	if got := describe(t, pending(t, o)); got != w {
		t.Errorf("Pending after a restart:\n%s\nwant:\n%s", got, w)
	}
	put(t, o, storefixture.Report(storefixture.DayOne, "b.example", "b-again", 2), storefixture.Report(storefixture.DayOne, "a.example", "a-again", 1))
	if got := describe(t, pending(t, o)); got != w {
		t.Errorf("Pending after a restart and the day's reports made again:\n%s\nwant:\n%s", got, w)
	}
}
