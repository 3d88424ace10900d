package redisstore_test

import (
	"context"
	"errors"
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
)

// passOutbox is an outbox that says on passes when its Pending is
// called: a Reporter's pass calls it after taking the closed days.
type passOutbox struct {
	tlsrpt.Outbox
	passes chan<- struct{}
}

func (o passOutbox) Pending(ctx context.Context) ([]tlsrpt.PendingReport, error) {
	o.passes <- struct{}{}
	return o.Outbox.Pending(ctx)
}

// fileOutbox returns an outbox of its own to a test.
func fileOutbox(t *testing.T) tlsrpt.Outbox {
	t.Helper()
	o, err := tlsrpt.OpenFileOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// A fleet of three MTAs on one Redis, each with its recorder and reporter,
// records sessions for the same policy domains; after the day closes, each
// domain's report is sent once by the whole fleet, with the fleet's counts.
func TestTLSRPTReporterFleet(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	synctest.Test(t, func(t *testing.T) { testTLSRPTReporterFleet(t, rdb) })
}

func testTLSRPTReporterFleet(t *testing.T, rdb *redis.Client) {
	day := time.Now().UTC().Truncate(24 * time.Hour)
	time.Sleep(time.Until(day.Add(10 * time.Hour)))
	const mtas = 3
	a, b := storefixture.STS("a.example", "enforce"), storefixture.STS("b.example", "testing")
	exp := mtasts.ResultCertificateExpired
	var recs []*tlsrpt.Recorder
	for i := range mtas {
		rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{
			Store: redisstore.NewReportStore(rdb, redisstore.Options{}),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Close()
		recs = append(recs, rec)
		for range 10 * (i + 1) {
			rec.Success(a)
			rec.Success(b)
		}
		if err := rec.Failure(a, storefixture.Row(exp, "a.example", byte(i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	// Each MTA's Recorder.Run flushes every second, well before the day
	// closes (RecorderOptions.CloseDelay) and any member takes it.
	runs, stopRuns := context.WithCancel(context.Background())
	var running sync.WaitGroup
	for _, rec := range recs {
		running.Go(func() { rec.Run(runs) })
	}
	time.Sleep(1500 * time.Millisecond) // a flush after a second
	stopRuns()
	running.Wait()
	time.Sleep(time.Until(day.AddDate(0, 0, 1).Add(6 * time.Minute))) // the day closed

	type sent struct {
		mta    int
		report tlsrpt.Report
	}
	var mu sync.Mutex
	var reports []sent
	sends := make(chan struct{}, 100)
	passes := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i, rec := range recs {
		rep, err := tlsrpt.NewReporter(tlsrpt.ReporterOptions{
			Recorder: rec,
			Sender: mailSender(t, func(_ context.Context, r *tlsrpt.Report) error {
				mu.Lock()
				reports = append(reports, sent{i, *r})
				mu.Unlock()
				sends <- struct{}{}
				return nil
			}),
			Outbox:   passOutbox{fileOutbox(t), passes},
			Info:     tlsrpt.ReportInfo{OrganizationName: "Fleet", ContactInfo: "tlsrpt@fleet.example"},
			MaxDelay: -1, // at once
			Spread:   -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := rep.Run(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("Run of MTA %d: %v", i, err)
			}
		})
	}
	// Every reporter makes its first pass, taking the day or finding it
	// taken; the one that took it sends its two reports.
	timeout := time.After(30 * time.Second)
	for p, s := 0, 0; p < mtas || s < 2; {
		select {
		case <-passes:
			p++
		case <-sends:
			s++
		case <-timeout:
			t.Fatalf("%d passes and %d sends after 30s, want %d and 2", p, s, mtas)
		}
	}
	cancel()
	wg.Wait()

	if len(reports) != 2 {
		t.Fatalf("%d reports sent by the fleet, want one per policy domain, 2", len(reports))
	}
	var all []tlsrpt.PolicyResult
	for _, s := range reports {
		if s.mta != reports[0].mta {
			t.Errorf("reports sent by MTAs %d and %d, want one member to send the day's", reports[0].mta, s.mta)
		}
		all = append(all, s.report.Policies...)
	}
	if reports[0].report.ReportID == reports[1].report.ReportID {
		t.Errorf("two reports with report-id %s", reports[0].report.ReportID)
	}
	want := storefixture.Canonical([]tlsrpt.PolicyResult{
		storefixture.Result(a, 60, mtas, storefixture.Row(exp, "a.example", 0, 1), storefixture.Row(exp, "a.example", 1, 1), storefixture.Row(exp, "a.example", 2, 1)),
		storefixture.Result(b, 60, 0),
	})
	if c := storefixture.Canonical(all); c != want {
		t.Errorf("fleet's reports:\n%s\nwant:\n%s", c, want)
	}
}

// staleOutbox is an outbox whose second Pending reads the reports while the
// first pass's delivery is under way, and returns what it read only after
// that delivery's Done: Pending's read raced with the marks.
type staleOutbox struct {
	tlsrpt.Outbox
	calls    atomic.Int32
	read     chan struct{} // closed once the second Pending read the outbox
	done     chan struct{} // closed once a Done returned
	doneOnce sync.Once
}

func (o *staleOutbox) Pending(ctx context.Context) ([]tlsrpt.PendingReport, error) {
	if o.calls.Add(1) != 2 {
		return o.Outbox.Pending(ctx)
	}
	pending, err := o.Outbox.Pending(ctx)
	close(o.read)
	<-o.done
	// Within synctest's bubble: the delivery's goroutine ends before this
	// returns.
	time.Sleep(time.Second)
	return pending, err
}

func (o *staleOutbox) Done(ctx context.Context, r *tlsrpt.Report) error {
	err := o.Outbox.Done(ctx, r)
	o.doneOnce.Do(func() { close(o.done) })
	return err
}

// A Pending of the Redis outbox that read a report before its delivery was
// marked done, and returns after, does not have it sent again: one report,
// one send.
func TestTLSRPTReporterStalePending(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	synctest.Test(t, func(t *testing.T) {
		day := time.Now().UTC().Truncate(24 * time.Hour)
		rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Close()
		if err := rec.Success(storefixture.STS("a.example", "enforce")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(day.AddDate(0, 0, 1).Add(time.Hour)))
		box := redisstore.NewOutbox(rdb, redisstore.Options{Prefix: t.Name() + ":", Owner: "mta1"})
		stale := &staleOutbox{Outbox: box, read: make(chan struct{}), done: make(chan struct{})}
		var sends atomic.Int32
		rep, err := tlsrpt.NewReporter(tlsrpt.ReporterOptions{
			Recorder: rec,
			Sender: mailSender(t, func(context.Context, *tlsrpt.Report) error {
				if sends.Add(1) == 1 {
					<-stale.read // the next pass reads the outbox meanwhile
				}
				return nil
			}),
			Outbox:   stale,
			Info:     tlsrpt.ReportInfo{OrganizationName: "MTA", ContactInfo: "tlsrpt@mta.example"},
			MaxDelay: -1,
			Spread:   -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ended := make(chan error, 1)
		go func() { ended <- rep.Run(ctx) }()
		time.Sleep(time.Hour)
		cancel()
		<-ended
		if n := sends.Load(); n != 1 {
			t.Errorf("the report was sent %d times, want once", n)
		}
		if n := stale.calls.Load(); n < 3 {
			t.Errorf("%d passes, want the stale one and more", n)
		}
		if p, err := box.Pending(context.Background()); err != nil || len(p) != 0 {
			t.Errorf("pending: %+v, %v; want none", p, err)
		}
	})
}
