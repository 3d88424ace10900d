package tlsrpt_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
	"github.com/prometheus/client_golang/prometheus"
)

// sending records what a Reporter sends, and answers with fail's error
// (nil: delivered).
type sending struct {
	mu   sync.Mutex
	sent []sentReport
	fail func(ctx context.Context, r *tlsrpt.Report) error
}

type sentReport struct {
	at     time.Time
	report tlsrpt.Report
}

func (s *sending) send(ctx context.Context, r *tlsrpt.Report) ([]tlsrpt.Delivery, error) {
	s.mu.Lock()
	s.sent = append(s.sent, sentReport{time.Now(), *r})
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return nil, fail(ctx, r)
	}
	return nil, nil
}

func (s *sending) all() []sentReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// half is a Reporter's random duration for tests: n/2, in the middle of
// the delay and spread.
func half(n time.Duration) time.Duration { return n / 2 }

func domainOf(r *tlsrpt.Report) string { return r.Policies[0].Policy.PolicyDomain }

var info = tlsrpt.ReportInfo{OrganizationName: "Sender Org", ContactInfo: "tlsrpt@sender.example"}

// startReporter runs a Reporter of opts until the returned stop is called,
// which returns Run's error.
func startReporter(t *testing.T, opts tlsrpt.ReporterOptions) (stop func() error) {
	t.Helper()
	if opts.Info.ContactInfo == "" {
		opts.Info = info
	}
	rep, err := tlsrpt.NewReporter(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rep.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

// closes returns when day is closed, for the default CloseDelay.
func closes(day time.Time) time.Time { return afterDay(day) }

// RFC 8460 4.1: reports go out after the day, 00:00-24:00 UTC, closes, and
// a delay. With the delay and the spread at half their maximum, both
// reports leave at exactly that time, none before.
func TestReporterDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		day := time.Now().UTC().Truncate(24 * time.Hour)
		rec, _ := newRecorder(t, tlsrpt.RecorderOptions{})
		defer rec.Close()
		must(t, rec.Success(sts("a.example", "enforce")))
		must(t, rec.Success(sts("b.example", "testing")))
		must(t, rec.Failure(sts("b.example", "testing"), row(expired, "b.example", 1, 0)))

		var s sending
		stop := startReporter(t, tlsrpt.WithTestRand(tlsrpt.WithTestSend(tlsrpt.ReporterOptions{
			Recorder: rec, MaxDelay: 4 * time.Hour, Spread: 30 * time.Minute,
		}, s.send), half))
		want := closes(day).Add(2*time.Hour + 15*time.Minute)
		time.Sleep(time.Until(want) - time.Nanosecond)
		synctest.Wait()
		if got := s.all(); len(got) != 0 {
			t.Fatalf("%d reports sent at %v, before the day closed and the delay passed (%v)", len(got), got[0].at, want)
		}
		time.Sleep(2 * 24 * time.Hour)
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
		got := s.all()
		if len(got) != 2 {
			t.Fatalf("%d reports sent, want 2, one per policy domain", len(got))
		}
		// Started at the same instant, they run at once, in any order.
		slices.SortFunc(got, func(a, b sentReport) int { return strings.Compare(domainOf(&a.report), domainOf(&b.report)) })
		ids := map[string]bool{}
		for i, sr := range got {
			r := sr.report
			if !sr.at.Equal(want) {
				t.Errorf("report of %s sent at %v, want %v", domainOf(&r), sr.at, want)
			}
			if d := domainOf(&r); d != []string{"a.example", "b.example"}[i] {
				t.Errorf("report %d is of %s", i, d)
			}
			if !r.DateRange.Start.Equal(day) || r.OrganizationName != info.OrganizationName || r.ContactInfo != info.ContactInfo {
				t.Errorf("report of %s: %+v", domainOf(&r), r)
			}
			if err := r.Validate(); err != nil {
				t.Error(err)
			}
			if r.ReportID == "" || ids[r.ReportID] {
				t.Errorf("report-id %q empty or not unique", r.ReportID)
			}
			ids[r.ReportID] = true
		}
		if got[1].report.Policies[0].Summary.TotalFailureSessionCount != 1 {
			t.Errorf("b.example's report: %+v", got[1].report.Policies[0])
		}
	})
}

// With random delays, each day's reports leave within MaxDelay and Spread
// of the day's close, never before it, one per policy domain and day.
func TestReporterRandomDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		day1 := time.Now().UTC().Truncate(24 * time.Hour)
		rec, _ := newRecorder(t, tlsrpt.RecorderOptions{})
		defer rec.Close()
		const maxDelay, spread = 3 * time.Hour, 20 * time.Minute
		var s sending
		stop := startReporter(t, tlsrpt.WithTestSend(tlsrpt.ReporterOptions{Recorder: rec, MaxDelay: maxDelay, Spread: spread}, s.send))
		const days = 5
		domains := []string{"a.example", "b.example", "c.example", "d.example"}
		for d := range days {
			time.Sleep(time.Until(day1.AddDate(0, 0, d).Add(12 * time.Hour)))
			for _, dom := range domains {
				must(t, rec.Success(sts(dom, "enforce")))
			}
		}
		time.Sleep(time.Until(day1.AddDate(0, 0, days+1)))
		stop()
		got := s.all()
		if len(got) != days*len(domains) {
			t.Fatalf("%d reports sent, want %d", len(got), days*len(domains))
		}
		seen := map[string]bool{}
		for _, sr := range got {
			day := sr.report.DateRange.Start
			from, to := closes(day), closes(day).Add(maxDelay+spread)
			if sr.at.Before(from) || !sr.at.Before(to) {
				t.Errorf("report of %s for %s sent at %v, not within [%v, %v)", domainOf(&sr.report), day, sr.at, from, to)
			}
			key := day.String() + domainOf(&sr.report)
			if seen[key] {
				t.Errorf("two reports of %s", key)
			}
			seen[key] = true
		}
	})
}

// A crash after a report was delivered but before it was marked done, and
// one during a delivery: after the restart, the report not marked done is
// sent again with its report-id; the one marked done is not.
func TestReporterCrash(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		day := time.Now().UTC().Truncate(24 * time.Hour)
		rec, _ := newRecorder(t, tlsrpt.RecorderOptions{})
		defer rec.Close()
		for _, dom := range []string{"a.example", "b.example"} {
			must(t, rec.Success(sts(dom, "enforce")))
		}
		box, err := tlsrpt.OpenFileOutbox(dir)
		if err != nil {
			t.Fatal(err)
		}
		ctx, crash := context.WithCancel(context.Background())
		var s sending
		s.fail = func(c context.Context, r *tlsrpt.Report) error {
			if domainOf(r) == "b.example" {
				crash() // b.example is delivered, the process dies
				<-c.Done()
				return c.Err()
			}
			return nil
		}
		rep, err := tlsrpt.NewReporter(tlsrpt.WithTestSend(tlsrpt.ReporterOptions{Recorder: rec, Outbox: box, Info: info}, s.send))
		if err != nil {
			t.Fatal(err)
		}
		if err := rep.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
		first := s.all()
		if len(first) != 2 {
			t.Fatalf("%d reports sent before the crash, want 2", len(first))
		}
		idB := first[1].report.ReportID
		if domainOf(&first[1].report) != "b.example" {
			idB = first[0].report.ReportID
		}

		// The restart: a new outbox on the directory, a new recorder.
		box2, err := tlsrpt.OpenFileOutbox(dir)
		if err != nil {
			t.Fatal(err)
		}
		pending, err := box2.Pending(context.Background())
		if err != nil || len(pending) != 1 || pending[0].Report.ReportID != idB || !pending[0].Report.DateRange.Start.Equal(day) {
			t.Fatalf("pending after the crash: %v, %+v; want b.example's report %s", err, pending, idB)
		}
		rec2, _ := newRecorder(t, tlsrpt.RecorderOptions{})
		defer rec2.Close()
		var s2 sending
		stop := startReporter(t, tlsrpt.WithTestSend(tlsrpt.ReporterOptions{Recorder: rec2, Outbox: box2, Spread: time.Minute}, s2.send))
		time.Sleep(time.Minute)
		synctest.Wait()
		again := s2.all()
		if len(again) != 1 || again[0].report.ReportID != idB || domainOf(&again[0].report) != "b.example" {
			t.Fatalf("sent after the restart: %+v, want b.example's report %s alone", again, idB)
		}
		synctest.Wait()
		if pending, err := box2.Pending(context.Background()); err != nil || len(pending) != 0 {
			t.Errorf("pending after the resend: %v, %+v", err, pending)
		}
		time.Sleep(3 * 24 * time.Hour)
		stop()
		if n := len(s2.all()); n != 1 {
			t.Errorf("%d reports sent after the restart, want 1", n)
		}
	})
}

// Cancelling ctx ends Run while a delivery is under way: Run waits for it,
// and the report stays in the outbox for the next Run.
func TestReporterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec, _ := newRecorder(t, tlsrpt.RecorderOptions{})
		defer rec.Close()
		must(t, rec.Success(sts("a.example", "enforce")))
		box := tlsrpt.NewMemoryOutbox()
		var s sending
		started := make(chan struct{})
		s.fail = func(ctx context.Context, r *tlsrpt.Report) error {
			close(started)
			<-ctx.Done()
			return fmt.Errorf("%w: %w", tlsrpt.ErrNotDelivered, ctx.Err())
		}
		stop := startReporter(t, tlsrpt.WithTestSend(tlsrpt.ReporterOptions{Recorder: rec, Outbox: box}, s.send))
		<-started
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
		if pending, _ := box.Pending(context.Background()); len(pending) != 1 {
			t.Errorf("%d reports pending, want the one cut short", len(pending))
		}
		// A Run waiting for the next day ends too.
		stop = startReporter(t, tlsrpt.WithTestSend(tlsrpt.ReporterOptions{Recorder: rec}, func(context.Context, *tlsrpt.Report) ([]tlsrpt.Delivery, error) {
			return nil, nil
		}))
		time.Sleep(time.Hour)
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
}

// RFC 8460 3: a policy domain without a TLSRPT record gets no report, and
// none is kept; a lookup that failed is tried again every RetryInterval,
// with the same report-id, and given up a day after the report was due
// (RFC 8460 5.5).
func TestReporterNoRecord(t *testing.T) {
	for _, mend := range []bool{true, false} {
		t.Run(fmt.Sprintf("mended=%v", mend), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testReporterNoRecord(t, mend) })
		})
	}
}

func testReporterNoRecord(t *testing.T, mend bool) {
	day := time.Now().UTC().Truncate(24 * time.Hour)
	rec, _ := newRecorder(t, tlsrpt.RecorderOptions{})
	defer rec.Close()
	must(t, rec.Success(sts("none.example", "enforce")))
	must(t, rec.Success(sts("servfail.example", "enforce")))
	resolver := mtaststest.NewResolver()
	resolver.ServFail("_smtp._tls.servfail.example")
	sender, err := tlsrpt.NewSender(tlsrpt.SenderOptions{Resolver: resolver})
	if err != nil {
		t.Fatal(err)
	}
	box := tlsrpt.NewMemoryOutbox()
	var s sending
	s.fail = func(ctx context.Context, r *tlsrpt.Report) error {
		_, err := sender.Send(ctx, r)
		return err
	}
	rep, err := tlsrpt.NewReporter(tlsrpt.WithTestRand(tlsrpt.WithTestSend(tlsrpt.ReporterOptions{Recorder: rec, Outbox: box, Info: info,
		MaxDelay: 4 * time.Hour, Spread: -1}, s.send), half))
	must(t, err)
	reg := prometheus.NewPedanticRegistry()
	must(t, rep.RegisterMetrics(reg))
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() { ended <- rep.Run(ctx) }()
	stop := func() { cancel(); <-ended }
	due := closes(day).Add(2 * time.Hour)
	time.Sleep(time.Until(due.Add(time.Hour)))
	synctest.Wait()
	pending, _ := box.Pending(context.Background())
	if len(pending) != 1 || domainOf(&pending[0].Report) != "servfail.example" {
		t.Fatalf("pending: %+v, want servfail.example's report alone", pending)
	}
	id := pending[0].Report.ReportID
	mended := time.Now()
	if mend {
		resolver.Remove("_smtp._tls.servfail.example")
	}
	time.Sleep(48 * time.Hour)
	stop()
	if pending, _ := box.Pending(context.Background()); len(pending) != 0 {
		t.Errorf("pending: %+v, want none", pending)
	}
	// Mended, the lookup finds no record either: the report is dropped,
	// and counted so; else it is given up on.
	noRecord, failed := 1.0, 1.0
	if mend {
		noRecord, failed = 2, 0
	}
	got := counters(t, reg)
	for name, want := range map[string]float64{
		"mtastsgo_tlsrpt_days_taken_total":                      1,
		"mtastsgo_tlsrpt_reports_done_total{outcome=no_record}": noRecord,
		"mtastsgo_tlsrpt_reports_done_total{outcome=failed}":    failed,
		"mtastsgo_tlsrpt_reports_done_total{outcome=delivered}": 0,
		"mtastsgo_tlsrpt_reporter_errors_total{op=take}":        0,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	var tries []time.Time
	for _, sr := range s.all() {
		if domainOf(&sr.report) == "servfail.example" {
			if sr.report.ReportID != id {
				t.Errorf("retried with report-id %s, want %s", sr.report.ReportID, id)
			}
			tries = append(tries, sr.at)
		}
	}
	last := tries[len(tries)-1]
	switch {
	case mend && (last.Before(mended) || last.Sub(mended) > 5*time.Minute):
		t.Errorf("last try at %v, want within 5 minutes (RetryInterval) of the lookup mended at %v", last, mended)
	case !mend && (last.Before(due.Add(24*time.Hour-5*time.Minute)) || last.After(due.Add(4*time.Hour+24*time.Hour))):
		t.Errorf("last try at %v, want a day after the report was due (%v)", last, due)
	case !mend && len(tries) > (2+24)*12+1:
		// From the report's due time to a day after the latest it could
		// have been due (MaxDelay after the close).
		t.Errorf("%d tries, want one every 5 minutes at most", len(tries))
	}
}

// failingOutbox is an outbox whose Put fails until ok is set.
type failingOutbox struct {
	*tlsrpt.MemoryOutbox
	ok atomic.Bool
}

func (o *failingOutbox) Put(ctx context.Context, reports []tlsrpt.Report) error {
	if !o.ok.Load() {
		return errors.New("disk full")
	}
	return o.MemoryOutbox.Put(ctx, reports)
}

// An outbox that fails to keep the reports keeps the day in the store: the
// reports are sent, once, when it works again, within RetryInterval.
func TestReporterOutboxFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		day := time.Now().UTC().Truncate(24 * time.Hour)
		store := tlsrpt.NewMemoryStore()
		rec, _ := newRecorder(t, tlsrpt.RecorderOptions{Store: store})
		defer rec.Close()
		must(t, rec.Success(sts("a.example", "enforce")))
		var s sending
		box := &failingOutbox{MemoryOutbox: tlsrpt.NewMemoryOutbox()}
		stop := startReporter(t, tlsrpt.WithTestSend(tlsrpt.ReporterOptions{Recorder: rec, Outbox: box, Spread: -1}, s.send))
		time.Sleep(2 * 24 * time.Hour)
		synctest.Wait()
		if got := s.all(); len(got) != 0 {
			t.Fatalf("sent %d reports without an outbox", len(got))
		}
		if days, err := store.Days(context.Background()); err != nil || len(days) != 1 || !days[0].Equal(day) {
			t.Errorf("store holds %v, %v; want the day kept", days, err)
		}
		box.ok.Store(true)
		mended := time.Now()
		time.Sleep(24 * time.Hour)
		stop()
		got := s.all()
		if len(got) != 1 || domainOf(&got[0].report) != "a.example" || got[0].at.Sub(mended) > 5*time.Minute {
			t.Errorf("sent: %+v, want a.example's report once, within 5 minutes of %v", got, mended)
		}
		if days, _ := store.Days(context.Background()); len(days) != 0 {
			t.Errorf("store holds %v, want the day released", days)
		}
	})
}

// A Reporter started within a closed day's delay still waits for it; one
// started after it takes the day at once.
func TestReporterStartsLate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start time.Duration // after the day closes
		want  time.Duration // the send, after the day closes
	}{
		{"within the delay", time.Minute, 2*time.Hour + 15*time.Minute},
		{"after the delay", 5 * time.Hour, 5*time.Hour + 15*time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				day := time.Now().UTC().Truncate(24 * time.Hour)
				rec, _ := newRecorder(t, tlsrpt.RecorderOptions{})
				defer rec.Close()
				must(t, rec.Success(sts("a.example", "enforce")))
				time.Sleep(time.Until(closes(day).Add(tc.start)))
				var s sending
				stop := startReporter(t, tlsrpt.WithTestRand(tlsrpt.WithTestSend(tlsrpt.ReporterOptions{
					Recorder: rec, MaxDelay: 4 * time.Hour, Spread: 30 * time.Minute,
				}, s.send), half))
				time.Sleep(24 * time.Hour)
				stop()
				got := s.all()
				if len(got) != 1 || !got[0].at.Equal(closes(day).Add(tc.want)) {
					t.Errorf("sent: %+v, want one report at %v", got, closes(day).Add(tc.want))
				}
			})
		})
	}
}
