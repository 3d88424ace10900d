package tlsrpt

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// ReporterOptions configure a Reporter. The zero value of each field but
// Recorder and Sender (or Send) means its default.
type ReporterOptions struct {
	// Recorder holds the counts of the days to report. Required.
	Recorder *Recorder

	// Sender delivers each report to the rua URIs of its policy domain's
	// TLSRPT record (Sender.Send). Required unless Send is set.
	Sender *Sender

	// Send, when set, delivers a report in place of Sender.Send, with
	// the same contract: for tests, or to wrap the Sender.
	Send func(ctx context.Context, report *Report) ([]Delivery, error)

	// Outbox keeps the reports taken until they are delivered. Default:
	// a NewMemoryOutbox, whose reports end with the process; a
	// FileOutbox keeps them across restarts.
	Outbox Outbox

	// Info says who sends the reports: organization-name and
	// contact-info (RFC 8460 4.4). Info.ReportID defaults to
	// NewReportID, a random id per report.
	Info ReportInfo

	// MaxDelay bounds the random delay after a day closes (see
	// RecorderOptions.CloseDelay) before its reports are taken and sent:
	// RFC 8460 4.1, "the reports should be delivered after some delay,
	// perhaps several hours", which also spreads the reports of many
	// senders over time. Default 4 hours; a negative delay means none.
	MaxDelay time.Duration

	// Spread is the time over which the sends of one pass are spread:
	// each report starts at a random time within it, in order, rather
	// than all at once. Default 30 minutes; a negative spread means none.
	Spread time.Duration

	// RetryInterval is the wait before another pass when taking a day
	// from the store failed. Default 5 minutes.
	RetryInterval time.Duration

	// Logger receives an Info record per pass that took reports, Warn
	// records for failures. Default: nothing is logged.
	Logger *slog.Logger

	// Rand returns a random duration in [0, n), n > 0, for the delay and
	// the spread. Default: math/rand/v2. For tests.
	Rand func(n time.Duration) time.Duration
}

// Reporter sends the daily reports (RFC 8460 4.1, 5): after each UTC day
// closes and a random delay, it takes the day from its Recorder, makes one
// report per policy domain, puts them in its Outbox, and delivers each,
// spread over time. A policy domain without a TLSRPT record gets nothing,
// and its report is dropped.
//
// What is sent, across crashes:
//   - A report gets its report-id before it is put in the outbox, and keeps
//     it on every send of it.
//   - It is marked done in the outbox once its delivery ended (delivered,
//     given up on after the Sender's retries, or no TLSRPT record). A report
//     still pending at a restart, such as one whose delivery was cut short,
//     is delivered by the next Run: at least once, with a stable report-id
//     that lets the receiver drop a duplicate.
//   - Between taking a day from the store and putting its reports in the
//     outbox lie two local calls; a crash between them loses that day's
//     reports.
//
// In a fleet sharing one store, such as the Redis store of package
// cache/redisstore, each closed day is taken by one member: each policy
// domain's report is built and sent by one member only.
type Reporter struct {
	opts ReporterOptions
	rec  *Recorder
	send func(ctx context.Context, report *Report) ([]Delivery, error)
	box  Outbox
	log  *slog.Logger
	rand func(n time.Duration) time.Duration

	mu       sync.Mutex
	inFlight map[string]bool // report-ids being delivered
}

// NewReporter returns a Reporter with opts. It returns an error when
// opts.Recorder is nil, or both opts.Sender and opts.Send are.
func NewReporter(opts ReporterOptions) (*Reporter, error) {
	if opts.Recorder == nil {
		return nil, errors.New("tlsrpt: ReporterOptions.Recorder is not set")
	}
	r := &Reporter{opts: opts, rec: opts.Recorder, send: opts.Send, box: opts.Outbox, log: opts.Logger,
		rand: opts.Rand, inFlight: map[string]bool{}}
	if r.send == nil {
		if opts.Sender == nil {
			return nil, errors.New("tlsrpt: neither ReporterOptions.Sender nor Send is set")
		}
		r.send = opts.Sender.Send
	}
	if r.box == nil {
		r.box = NewMemoryOutbox()
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.rand == nil {
		r.rand = func(n time.Duration) time.Duration { return rand.N(n) }
	}
	if r.opts.Info.ReportID == nil {
		r.opts.Info.ReportID = func(time.Time, string) string { return NewReportID() }
	}
	if r.opts.MaxDelay == 0 {
		r.opts.MaxDelay = 4 * time.Hour
	}
	if r.opts.Spread == 0 {
		r.opts.Spread = 30 * time.Minute
	}
	setDefault(&r.opts.RetryInterval, 5*time.Minute)
	return r, nil
}

// random returns a random duration in [0, n), or 0 when n is not positive.
func (r *Reporter) random(n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	return r.rand(n)
}

// Run sends the daily reports until ctx ends, then waits for the
// deliveries under way to stop, and returns ctx's error. Run one Run per
// Reporter, beside the Recorder's Run.
//
// It starts with a pass, then makes one per day, a random delay of up to
// MaxDelay after the day closed (RFC 8460 4.1). A pass takes the closed
// days from the recorder, puts their reports in the outbox, then delivers
// every report pending there, those of earlier passes and of before a
// restart included, spread over Spread. The first pass takes the days
// that closed before Run started at once, unless the last of them is
// still within its delay.
func (r *Reporter) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	delay := r.random(r.opts.MaxDelay)
	const none = int64(-1 << 62)
	reported := none // the last closed day of the last pass that took
	for first := true; ; first = false {
		now := r.rec.now()
		// The last closed day: its close (RecorderOptions.CloseDelay)
		// is past.
		last := dayOf(now.Add(-r.rec.opts.CloseDelay)) - 1
		next := last + 1
		if last > reported {
			next = last
		}
		// RFC 8460 4.1: "after some delay, perhaps several hours".
		due := !r.rec.closesAt(next).Add(delay).After(now)
		if !due && !first {
			if !sleep(ctx, r.rec.closesAt(next).Add(delay).Sub(now)) {
				return ctx.Err()
			}
			continue // the clock may have been stepped: look again
		}
		// The first pass delivers what a restart left in the outbox
		// at once, and takes the closed days if they are due.
		if err := r.pass(ctx, &wg, due); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.log.LogAttrs(ctx, slog.LevelWarn, "tlsrpt: taking the closed days failed, will retry",
				slog.Duration("retry_in", r.opts.RetryInterval), slog.Any("err", err))
			if !sleep(ctx, r.opts.RetryInterval) {
				return ctx.Err()
			}
			continue
		}
		if due {
			reported = max(next, reported)
			delay = r.random(r.opts.MaxDelay)
		}
	}
}

// sleep waits d, and reports whether it did, false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// pass takes the closed days when take is set, puts their reports in the
// outbox, and delivers every pending report, spread over time. It returns an error
// when the days could not be taken; the days taken before the failure
// are delivered.
func (r *Reporter) pass(ctx context.Context, wg *sync.WaitGroup, take bool) error {
	var takeErr error
	if take {
		takeErr = r.takeClosed(ctx, wg)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	pending, err := r.box.Pending(ctx)
	if err != nil {
		r.log.LogAttrs(ctx, slog.LevelWarn, "tlsrpt: reading the outbox", slog.Any("err", err))
	}
	reports := make([]Report, len(pending))
	for i := range pending {
		reports[i] = pending[i].Report
	}
	r.dispatch(ctx, wg, reports)
	return takeErr
}

// takeClosed takes each closed day from the recorder, and puts its reports
// in the outbox. When the outbox fails, the day's reports are delivered from
// memory, on goroutines of wg, and lost should the process stop first.
func (r *Reporter) takeClosed(ctx context.Context, wg *sync.WaitGroup) error {
	days, err := r.rec.ClosedDays(ctx)
	if err != nil {
		return err
	}
	for _, day := range days {
		results, err := r.rec.Take(ctx, day)
		if err != nil {
			return err
		}
		// The report-ids are made here, before the reports are put in
		// the outbox: a report sent again after a restart carries the
		// same one.
		reports := results.Reports(r.opts.Info)
		if len(reports) == 0 {
			continue // empty, or taken by another member of a fleet
		}
		r.log.LogAttrs(ctx, slog.LevelInfo, "tlsrpt: day taken for reporting",
			slog.String("day", day.Format(time.DateOnly)), slog.Int("reports", len(reports)))
		// The window the Outbox godoc names: a crash right here loses
		// the day's reports.
		if err := r.box.Put(ctx, reports); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.log.LogAttrs(ctx, slog.LevelWarn, "tlsrpt: outbox failed, sending the reports without it",
				slog.String("day", day.Format(time.DateOnly)), slog.Any("err", err))
			for i := range reports {
				wg.Go(func() { r.deliver(ctx, &reports[i], false) })
			}
		}
	}
	return nil
}

// dispatch delivers the reports not already being delivered, each in a
// goroutine of wg, starting at random times within Spread, in order. It
// returns when the last has started, or ctx ended.
func (r *Reporter) dispatch(ctx context.Context, wg *sync.WaitGroup, reports []Report) {
	r.mu.Lock()
	reports = slices.DeleteFunc(reports, func(rep Report) bool { return r.inFlight[rep.ReportID] })
	for _, rep := range reports {
		r.inFlight[rep.ReportID] = true
	}
	r.mu.Unlock()
	offsets := make([]time.Duration, len(reports))
	for i := range offsets {
		offsets[i] = r.random(r.opts.Spread)
	}
	slices.Sort(offsets)
	start := time.Now()
	for i := range reports {
		rep := &reports[i]
		if !sleep(ctx, offsets[i]-time.Since(start)) {
			r.mu.Lock()
			for _, rep := range reports[i:] {
				delete(r.inFlight, rep.ReportID)
			}
			r.mu.Unlock()
			return
		}
		wg.Go(func() {
			r.deliver(ctx, rep, true)
			r.mu.Lock()
			delete(r.inFlight, rep.ReportID)
			r.mu.Unlock()
		})
	}
}

// noRecord reports whether err says the policy domain does not implement
// TLSRPT (RFC 8460 3).
func noRecord(err error) bool {
	return errors.Is(err, ErrNoRecord) || errors.Is(err, ErrMultipleRecords) || errors.Is(err, ErrRecordSyntax)
}

// doneTimeout bounds marking a report done, which happens even when ctx
// ended: the delivery did.
const doneTimeout = 30 * time.Second

// deliver sends rep, then, when it is in the outbox, marks it done unless
// its delivery was cut short by ctx, or its TLSRPT record could not be
// looked up: it is then left for the next pass or Run.
func (r *Reporter) deliver(ctx context.Context, rep *Report, boxed bool) {
	log := r.log.With(slog.String("domain", reportDomain(rep)), slog.String("report_id", rep.ReportID))
	_, err := r.send(ctx, rep)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		log.LogAttrs(ctx, slog.LevelInfo, "tlsrpt: report delivery stopped, left in the outbox", slog.Any("err", err))
		return
	case noRecord(err):
		// RFC 8460 3: the domain does not implement TLSRPT; nothing is
		// sent, and nothing kept.
		log.LogAttrs(ctx, slog.LevelDebug, "tlsrpt: no tlsrpt record, report dropped", slog.Any("err", err))
	case errors.Is(err, ErrDNS) && boxed:
		log.LogAttrs(ctx, slog.LevelWarn, "tlsrpt: tlsrpt record lookup failed, report left for the next pass", slog.Any("err", err))
		return
	default:
		log.LogAttrs(ctx, slog.LevelWarn, "tlsrpt: report not delivered, dropped", slog.Any("err", err))
	}
	if !boxed {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), doneTimeout)
	defer cancel()
	if err := r.box.Done(dctx, rep); err != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "tlsrpt: marking a report done failed: it will be sent again", slog.Any("err", err))
	}
}
