package tlsrpt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
)

// ReporterOptions configure a Reporter. The zero value of each field but
// Recorder and Sender means its default.
type ReporterOptions struct {
	// Recorder holds the counts of the days to report. Required.
	Recorder *Recorder

	// Sender delivers each report to the rua URIs of its policy domain's
	// TLSRPT record (Sender.Send). Required. How the Sender delivers, by
	// mail or HTTPS, is set in its SenderOptions: SenderOptions.Submit
	// hands report messages to the MTA.
	//
	// The Reporter delivers a report in rounds: one attempt per rua URI
	// not yet delivered to, each bounded by SenderOptions.AttemptTimeout.
	// A round that leaves a URI to retry leaves the report pending, and a
	// later pass makes the next round, after the Sender's FirstRetry,
	// doubling up to its MaxRetryDelay, for up to its RetryWindow after
	// the first round (RFC 8460 5.5): a report waiting for its retry
	// holds no goroutine, nor one of MaxDeliveries. The Sender's options
	// set the retries of a delivery; the Reporter has none of its own.
	Sender *Sender

	// MaxDeliveries is the most reports delivered at once: each builds
	// its payload when it starts, and makes one round of attempts. The
	// reports beyond wait their turn, without a goroutine; in a pass,
	// those not tried yet go before the retries. Default 16, which with
	// the Sender's default AttemptTimeout lets 16 reports a minute
	// through collectors that never answer.
	MaxDeliveries int

	// Outbox keeps the reports taken until they are delivered. Nil means
	// one in memory, whose reports end with the process; that of
	// OpenFileOutbox keeps them across restarts, and that of redisstore
	// across a fleet.
	Outbox Outbox

	// Info says who sends the reports: organization-name and
	// contact-info (RFC 8460 4.4). Info.ReportID defaults to
	// a random id per report: 26 lower-case letters and digits.
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

	// RetryInterval is the time between passes: each delivers the
	// reports pending in the outbox, such as one whose TLSRPT record
	// could not be looked up, and takes again a day left behind (taking
	// it, putting its reports in the outbox or releasing it failed, or
	// another member of a fleet held it). Default 5 minutes. It retries
	// the Reporter's own steps; a delivery's next round waits for the
	// Sender's FirstRetry instead (see Sender), in a pass made for it.
	// An outbox shared by a fleet renews its lease on a report at each
	// pass, so its lease must be longer.
	RetryInterval time.Duration

	// Logger receives an Info record per pass that took reports, Warn
	// records for failures. Default: nothing is logged.
	Logger *slog.Logger

	// send, set by tests alone, delivers a report in place of Sender, in
	// one round, not learning which rua URIs took it before a restart.
	send func(ctx context.Context, report *Report) ([]Delivery, error)
	// rand, set by tests alone, returns a random duration in [0, n), n >
	// 0, for the delay and the spread. Default: math/rand/v2.
	rand func(n time.Duration) time.Duration
}

// Reporter sends the daily reports (RFC 8460 4.1, 5): after each UTC day
// closes and a random delay, it takes the day from its Recorder, makes one
// report per policy domain, puts them in its Outbox, releases the day, and
// delivers each report, spread over time. A policy domain without a TLSRPT
// record gets nothing, and its report is dropped.
//
// What is sent, across crashes, with a store and an outbox that survive
// them (OpenFileStore and OpenFileOutbox, or those of redisstore):
//   - A day's counts leave the store (Store.Release) only once its
//     reports are in the outbox. A crash before makes the next Run take
//     the day again; the outbox keeps the reports it holds, or held, of
//     the same day and domain, so the day gives no second report.
//   - A report gets its report-id before it is put in the outbox, and
//     keeps it on every send of it.
//   - Each rua URI that takes the report is marked in the outbox as it
//     does. A report still pending at a restart, such as one whose
//     delivery was cut short, is delivered by the next Run to the URIs not
//     marked. Only a crash between a URI taking a report and its mark
//     sends it to that URI again, with the same report-id, which lets the
//     receiver drop the duplicate.
//   - A mark (Outbox.Delivered), and Done, that fail are tried again for
//     up to 30 seconds, waiting 100 ms, then twice as long each time up
//     to 5 seconds, until Run's ctx ends: marks are idempotent. An outbox
//     that stays down longer, or fails as Run stops, leaves the URI
//     unmarked, or the report pending, and the next pass, or the fleet's
//     member that takes the report over, sends it again, with its
//     report-id.
//   - A Reporter delivers at most MaxDeliveries reports at once, each
//     once at a time, and not again from a read of the outbox
//     (Outbox.Pending) that began before its delivery ended: such a read
//     may predate the marks.
//   - A report is marked done once its delivery ended: delivered, given up
//     on after the Sender's retries, or no TLSRPT record. The retries are
//     rounds that later passes make (see ReporterOptions.Sender); a
//     restart begins their RetryWindow again. A report whose record could
//     not be looked up (ErrDNS) stays pending and is retried every
//     RetryInterval, for up to a day after its first due time (RFC 8460
//     5.5).
//
// In a fleet sharing one store, such as the Redis store of package
// redisstore, each closed day is taken by one member: each policy
// domain's report is built once. With the fleet's shared outbox too, each
// report is delivered by one member at a time, and a member that dies
// leaves its days and reports to the others.
type Reporter struct {
	opts    ReporterOptions
	rec     *Recorder
	send    func(ctx context.Context, report *Report, done []string, delivered func(uri string), last bool) ([]Delivery, error)
	sender  *Sender       // opts.Sender; nil with opts.send, in tests
	slots   chan struct{} // one per delivery under way, MaxDeliveries
	wake    chan struct{} // wakes Run for a round left for a retry
	box     Outbox
	log     *slog.Logger
	rand    func(n time.Duration) time.Duration
	metrics *reporterMetrics

	mu       sync.Mutex
	inFlight map[string]bool // keys of the reports being delivered
	// ended holds the keys of the reports whose delivery ended since
	// the pass's Pending began: what that Pending returned of them may
	// predate their marks, and is not delivered again.
	ended map[string]bool
	// retries holds the rounds of the reports left for a retry, by key.
	retries map[string]*retryState
}

// retryState is the rounds of delivery of a report, with a Sender.
type retryState struct {
	first time.Time     // the first round's start
	next  time.Time     // when the next round is due
	wait  time.Duration // the wait after the next round, should it fail
}

// NewReporter returns a Reporter with opts. It returns an error when
// opts.Recorder or opts.Sender is nil.
func NewReporter(opts ReporterOptions) (*Reporter, error) {
	if opts.Recorder == nil {
		return nil, errors.New("tlsrpt: ReporterOptions.Recorder is not set")
	}
	r := &Reporter{opts: opts, rec: opts.Recorder, box: opts.Outbox, log: opts.Logger,
		rand: opts.rand, metrics: newReporterMetrics(), inFlight: map[string]bool{}, ended: map[string]bool{},
		retries: map[string]*retryState{}, wake: make(chan struct{}, 1)}
	switch {
	case opts.send != nil:
		r.send = func(ctx context.Context, report *Report, _ []string, _ func(string), _ bool) ([]Delivery, error) {
			return opts.send(ctx, report)
		}
	case opts.Sender != nil:
		r.send, r.sender = opts.Sender.round, opts.Sender
	default:
		return nil, errors.New("tlsrpt: ReporterOptions.Sender is not set")
	}
	if r.box == nil {
		r.box = newMemoryOutbox()
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.rand == nil {
		r.rand = func(n time.Duration) time.Duration { return rand.N(n) }
	}
	if r.opts.Info.ReportID == nil {
		r.opts.Info.ReportID = func(time.Time, string) string { return newReportID() }
	}
	if r.opts.MaxDelay == 0 {
		r.opts.MaxDelay = 4 * time.Hour
	}
	if r.opts.Spread == 0 {
		r.opts.Spread = 30 * time.Minute
	}
	setDefault(&r.opts.RetryInterval, 5*time.Minute)
	setDefault(&r.opts.MaxDeliveries, 16)
	r.slots = make(chan struct{}, r.opts.MaxDeliveries)
	return r, nil
}

// random returns a random duration in [0, n), or 0 when n is not positive.
func (r *Reporter) random(n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	return r.rand(n)
}

// none is a day number before any day.
const none = int64(-1 << 62)

// Run sends the daily reports until ctx ends, then waits for the
// deliveries under way to stop, and returns ctx's error. Run one Run per
// Reporter, beside the Recorder's Run.
//
// It makes a pass at once, then one every RetryInterval. A pass delivers
// every report pending in the outbox that is not being delivered already:
// those of earlier passes, of before a restart, and, with an outbox shared
// by a fleet, those of a member that died. Once a day, a random delay of up
// to MaxDelay after the day closed (RFC 8460 4.1), and at each pass after
// one that left a day behind, a pass first takes the closed days that are
// due from the recorder, puts their reports in the outbox and releases
// the days. The first pass takes the days that closed before Run started,
// unless the last of them is still within its delay.
func (r *Reporter) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	delay := r.random(r.opts.MaxDelay)
	due := none // the days up to this one are due
	retry := false
	for first := true; ; first = false {
		now := r.rec.now()
		// The last closed day: its close (RecorderOptions.CloseDelay)
		// is past.
		last := dayOf(now.Add(-r.rec.opts.CloseDelay)) - 1
		// RFC 8460 4.1: "after some delay, perhaps several hours".
		newDay := last > due && !r.rec.closesAt(last).Add(delay).After(now)
		if newDay {
			due = last
			delay = r.random(r.opts.MaxDelay)
		}
		started := time.Now()
		retry = r.pass(ctx, &wg, due, first || newDay || retry)
		// Wait for the next pass; a round left for a retry wakes the
		// wait, to be made when it is due.
		for woke := true; woke; {
			wait := min(r.rec.closesAt(max(due+1, last)).Add(delay).Sub(now), r.opts.RetryInterval) - r.rec.now().Sub(now)
			if next, ok := r.nextRound(); ok && next < wait {
				// A pass reads the whole outbox: the passes for
				// rounds stay minPassGap apart.
				wait = max(next, min(wait, minPassGap-time.Since(started)))
			}
			var ok bool
			if woke, ok = r.sleep(ctx, wait); !ok {
				return ctx.Err()
			}
		}
	}
}

// sleep waits d, or until a round left for a retry wakes it, and reports
// whether it was woken, and whether ctx went on: false when it ended first.
func (r *Reporter) sleep(ctx context.Context, d time.Duration) (woke, ok bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, false
	case <-t.C:
		return false, true
	case <-r.wake:
		return true, true
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

// pass takes the closed days up to due when take is set, puts their
// reports in the outbox, and delivers every pending report, spread over
// time. It reports whether a day was left to take at the next pass.
func (r *Reporter) pass(ctx context.Context, wg *sync.WaitGroup, due int64, take bool) (retry bool) {
	if take && due != none {
		retry = r.takeDays(ctx, due)
	}
	if ctx.Err() != nil {
		return false
	}
	// The deliveries that end from now on may have been read by Pending
	// before their marks: dispatch skips them.
	r.mu.Lock()
	clear(r.ended)
	r.mu.Unlock()
	pending, err := r.box.Pending(ctx)
	if err != nil {
		r.metrics.errors.WithLabelValues("pending").Inc()
		r.log.LogAttrs(ctx, slog.LevelWarn, "tlsrpt: reading the outbox", slog.Any("err", err))
	}
	r.metrics.pending.Set(float64(len(pending)))
	if err == nil {
		r.forget(pending)
	}
	r.dispatch(ctx, wg, pending)
	return retry
}

// minPassGap is the shortest time between passes made for the rounds of
// reports left for a retry.
const minPassGap = time.Minute

// nextRound returns the time until the next round of a report left for a
// retry is due, and whether one is due later than now.
func (r *Reporter) nextRound() (next time.Duration, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for _, st := range r.retries {
		if d := st.next.Sub(now); d > 0 && (!ok || d < next) {
			next, ok = d, true
		}
	}
	return next, ok
}

// forget drops the rounds of the reports no longer pending: done by
// another member of a fleet, or by hand.
func (r *Reporter) forget(pending []PendingReport) {
	keys := make(map[string]bool, len(pending))
	for i := range pending {
		keys[pending[i].Report.Key()] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.retries {
		if !keys[k] && !r.inFlight[k] {
			delete(r.retries, k)
		}
	}
}

// takeDays takes each closed day up to due from the recorder, puts its
// reports in the outbox, and releases it. It reports whether a day was
// left for a retry: held by another member of a fleet, or a step failed.
// A day left keeps its counts in the store, claimed by this Reporter's
// store when it was taken.
func (r *Reporter) takeDays(ctx context.Context, due int64) (retry bool) {
	days, err := r.rec.closedDays(ctx)
	if err != nil {
		r.metrics.errors.WithLabelValues("take").Inc()
		r.log.LogAttrs(ctx, slog.LevelWarn, "tlsrpt: listing the closed days failed, will retry",
			slog.Duration("retry_in", r.opts.RetryInterval), slog.Any("err", err))
		return true
	}
	for _, day := range days {
		if dayOf(day) > due || ctx.Err() != nil {
			break
		}
		if err := r.takeDay(ctx, day); err != nil {
			retry = true
			if errors.Is(err, ErrDayClaimed) {
				r.log.LogAttrs(ctx, slog.LevelDebug, "tlsrpt: day held by another member, will look again",
					slog.String("day", day.Format(time.DateOnly)))
				continue
			}
			r.log.LogAttrs(ctx, slog.LevelWarn, "tlsrpt: taking a closed day failed, will retry",
				slog.String("day", day.Format(time.DateOnly)), slog.Duration("retry_in", r.opts.RetryInterval), slog.Any("err", err))
		}
	}
	return retry
}

// takeDay takes day, puts its reports in the outbox and releases the day,
// in this order, so that a crash at any point loses nothing: the day stays
// in the store until its reports are in the outbox.
func (r *Reporter) takeDay(ctx context.Context, day time.Time) error {
	results, err := r.rec.take(ctx, day)
	if err != nil {
		if !errors.Is(err, ErrDayClaimed) {
			r.metrics.errors.WithLabelValues("take").Inc()
		}
		return err
	}
	// The report-ids are made here; a report made again after a crash
	// gets a new one, which the outbox drops for the first's.
	reports := results.reports(r.opts.Info)
	if len(reports) > 0 {
		if err := r.box.Put(ctx, reports); err != nil {
			r.metrics.errors.WithLabelValues("put").Inc()
			return fmt.Errorf("tlsrpt: putting the reports of %s in the outbox: %w", day.Format(time.DateOnly), err)
		}
	}
	if err := r.rec.release(ctx, day); err != nil {
		r.metrics.errors.WithLabelValues("release").Inc()
		return err
	}
	r.metrics.daysTaken.Inc()
	r.log.LogAttrs(ctx, slog.LevelInfo, "tlsrpt: day taken for reporting",
		slog.String("day", day.Format(time.DateOnly)), slog.Int("reports", len(reports)))
	return nil
}

// dispatch delivers the reports not already being delivered, each in a
// goroutine of wg, starting at random times within Spread, in order, those
// not tried yet first, at most MaxDeliveries at once. It returns when the
// last has started, or ctx ended.
//
// It skips the reports being delivered, and those whose delivery ended
// since Pending began: Pending may have read them before their marks and
// Done, and would have them sent again. A report so skipped that is still
// pending, its delivery left for a retry or its Done failed, is delivered
// by the next pass.
func (r *Reporter) dispatch(ctx context.Context, wg *sync.WaitGroup, pending []PendingReport) {
	now := time.Now()
	r.mu.Lock()
	pending = slices.DeleteFunc(pending, func(p PendingReport) bool {
		k := p.Report.Key()
		st := r.retries[k]
		return r.inFlight[k] || r.ended[k] || st != nil && st.next.After(now)
	})
	for _, p := range pending {
		r.inFlight[p.Report.Key()] = true
	}
	// The reports not tried yet go first: a collector that never
	// answers delays the others by no more than its attempts.
	slices.SortStableFunc(pending, func(a, b PendingReport) int {
		return cmp.Compare(btoi(r.retries[a.Report.Key()] != nil), btoi(r.retries[b.Report.Key()] != nil))
	})
	r.mu.Unlock()
	offsets := make([]time.Duration, len(pending))
	for i := range offsets {
		offsets[i] = r.random(r.opts.Spread)
	}
	slices.Sort(offsets)
	start := time.Now()
	for i := range pending {
		p := &pending[i]
		if !sleep(ctx, offsets[i]-time.Since(start)) || !r.acquire(ctx) {
			r.mu.Lock()
			for _, p := range pending[i:] {
				delete(r.inFlight, p.Report.Key())
			}
			r.mu.Unlock()
			return
		}
		wg.Go(func() {
			defer func() { <-r.slots }()
			r.deliver(ctx, p)
			r.mu.Lock()
			delete(r.inFlight, p.Report.Key())
			r.ended[p.Report.Key()] = true
			r.mu.Unlock()
		})
	}
}

// acquire takes one of the MaxDeliveries slots, waiting for one to be
// free, and reports whether it did, false when ctx ended first.
func (r *Reporter) acquire(ctx context.Context) bool {
	select {
	case r.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// btoi returns 1 for true, 0 for false.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// noRecord reports whether err says the policy domain does not implement
// TLSRPT (RFC 8460 3).
func noRecord(err error) bool {
	return errors.Is(err, ErrNoRecord) || errors.Is(err, ErrMultipleRecords) || errors.Is(err, ErrRecordSyntax)
}

// markTimeout bounds marking a report delivered to a URI, or done, with its
// retries: it is tried even when ctx ended, as the delivery did.
const markTimeout = 30 * time.Second

// The wait before the second try of a mark, and the longest: each wait is
// twice the one before.
const (
	markBackoff    = 100 * time.Millisecond
	markMaxBackoff = 5 * time.Second
)

// retryMark calls mark, a mark of the outbox, with mctx, until it succeeds,
// mctx ends, or ctx, Run's, ends: it waits markBackoff, then twice as long
// each time up to markMaxBackoff. A mark is idempotent, and one that
// failed during a short outage of the outbox would have the report sent
// again. A Run that is stopping makes one try. It returns the last error.
func retryMark(ctx, mctx context.Context, mark func(ctx context.Context) error) error {
	wctx, cancel := context.WithCancel(mctx)
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	wait := markBackoff
	for {
		err := mark(mctx)
		if err == nil || !sleep(wctx, wait) {
			return err
		}
		wait = min(2*wait, markMaxBackoff)
	}
}

// lookupRetryWindow is how long after a report is first due that a failed
// lookup of its TLSRPT record is retried: RFC 8460 5.5, "a sender SHOULD
// attempt redelivery for up to 24 hours after the initial attempt".
const lookupRetryWindow = 24 * time.Hour

// deliver sends the pending report p to the rua URIs that have not taken it
// yet, marking each that does, then marks it done unless its delivery was
// cut short by ctx, its TLSRPT record could not be looked up, or, with a
// Sender, a URI is left for a later round: it is then left for a later
// pass.
func (r *Reporter) deliver(ctx context.Context, p *PendingReport) {
	rep := &p.Report
	key := rep.Key()
	log := r.log.With(slog.String("domain", reportDomain(rep)), slog.String("report_id", rep.ReportID))
	mark := func(uri string) {
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
		defer cancel()
		if err := retryMark(ctx, mctx, func(ctx context.Context) error { return r.box.Delivered(ctx, rep, uri) }); err != nil {
			r.metrics.errors.WithLabelValues("delivered").Inc()
			log.LogAttrs(ctx, slog.LevelWarn, "tlsrpt: marking a report delivered failed, after retries: should the process stop before it is done, it is sent to the uri again",
				slog.String("uri", uri), slog.Any("err", err))
		}
	}
	st, last := r.round(key)
	toSend, covered, err := r.uncovered(ctx, rep)
	var deliveries []Delivery
	if err == nil && !covered {
		deliveries, err = r.send(ctx, toSend, p.Delivered, mark, last)
	}
	// RFC 8460 5.5: with a Sender, the URIs that failed and may take the
	// report at a retry get it in a later round.
	again := r.sender != nil && !last && slices.ContainsFunc(deliveries, func(d Delivery) bool { return retryable(d.Err) })
	outcome := "delivered"
	switch {
	case ctx.Err() != nil:
		log.LogAttrs(ctx, slog.LevelInfo, "tlsrpt: report delivery stopped, left in the outbox", slog.Any("err", err))
		return
	case covered:
		outcome = "covered"
		log.LogAttrs(ctx, slog.LevelDebug, "tlsrpt: report to an mx host covered by the reports to its recipient domains, dropped")
	case err == nil && !again:
	case noRecord(err):
		// RFC 8460 3: the domain does not implement TLSRPT; nothing is
		// sent, and nothing kept.
		outcome = "no_record"
		log.LogAttrs(ctx, slog.LevelDebug, "tlsrpt: no tlsrpt record, report dropped", slog.Any("err", err))
	case errors.Is(err, ErrDNS) && r.rec.now().Before(r.firstDue(rep).Add(lookupRetryWindow)):
		// Left pending: the next pass tries again.
		log.LogAttrs(ctx, slog.LevelWarn, "tlsrpt: tlsrpt record lookup failed, report left for a retry",
			slog.Duration("retry_in", r.opts.RetryInterval), slog.Any("err", err))
		return
	case again:
		r.mu.Lock()
		st.next = time.Now().Add(st.wait)
		retryIn := st.wait
		st.wait = min(2*st.wait, r.sender.opts.MaxRetryDelay)
		r.mu.Unlock()
		select {
		case r.wake <- struct{}{}:
		default: // Run is woken already
		}
		log.LogAttrs(ctx, slog.LevelInfo, "tlsrpt: report not delivered to every rua uri, left for a retry",
			slog.Duration("retry_in", retryIn), slog.Any("err", err))
		return
	case len(deliveries) > 0 && !slices.ContainsFunc(deliveries, func(d Delivery) bool { return !d.Skipped }):
		// Every rua URI left out by the MTA's choice (SenderOptions).
		outcome = "skipped"
		log.LogAttrs(ctx, slog.LevelInfo, "tlsrpt: every rua uri skipped, report dropped", slog.Any("err", err))
	default:
		outcome = "failed"
		log.LogAttrs(ctx, slog.LevelWarn, "tlsrpt: report not delivered, dropped", slog.Any("err", err))
	}
	r.mu.Lock()
	delete(r.retries, key)
	r.mu.Unlock()
	r.metrics.done.WithLabelValues(outcome).Inc()
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer cancel()
	if err := retryMark(ctx, mctx, func(ctx context.Context) error { return r.box.Done(ctx, rep) }); err != nil {
		r.metrics.errors.WithLabelValues("done").Inc()
		log.LogAttrs(ctx, slog.LevelWarn, "tlsrpt: marking a report done failed, after retries: it will be sent again", slog.Any("err", err))
	}
}

// uncovered returns the report to send of rep: with ReportInfo.Recipients
// and MXHosts set and a Sender, a report to an MX host without the policies
// of the recipient domains whose TLSRPT record names the rua URIs of the
// host's, which their own reports took (as mox does), and covered true when
// none is left. It returns an error wrapping ErrDNS when a lookup failed, to
// try again later; any other failure of the host's lookup is the Sender's to
// report, and the report is sent whole.
func (r *Reporter) uncovered(ctx context.Context, rep *Report) (send *Report, covered bool, err error) {
	if !r.opts.Info.Recipients || r.sender == nil || !hostReport(rep) {
		return rep, false, nil
	}
	ruaOf := func(name string) ([]string, error) {
		d, err := mtasts.ParseDomain(name)
		if err != nil {
			return nil, nil
		}
		rec, _, err := LookupRecord(ctx, r.sender.opts.Resolver, d)
		if err != nil {
			if errors.Is(err, ErrDNS) {
				return nil, err
			}
			return nil, nil
		}
		l := slices.Clone(rec.RUA)
		slices.Sort(l)
		return slices.Compact(l), nil
	}
	hostRUA, err := ruaOf(rep.Domain)
	if err != nil || hostRUA == nil {
		return rep, false, nil // the Sender looks it up, and tells
	}
	out := *rep
	out.Policies = nil
	same := map[string]bool{} // by recipient domain
	for _, pr := range rep.Policies {
		d := pr.Policy.PolicyDomain
		eq, ok := same[d]
		if !ok {
			rua, err := ruaOf(d)
			if err != nil {
				return nil, false, err
			}
			eq = slices.Equal(rua, hostRUA)
			same[d] = eq
		}
		if !eq {
			out.Policies = append(out.Policies, pr)
		}
	}
	if len(out.Policies) == 0 {
		return nil, true, nil
	}
	return &out, false, nil
}

// round returns the rounds of the report of key, starting them, and
// whether this one is the last: RFC 8460 5.5, "a sender SHOULD attempt
// redelivery for up to 24 hours after the initial attempt". Without a
// Sender, there is one round.
func (r *Reporter) round(key string) (st *retryState, last bool) {
	if r.sender == nil {
		return nil, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	st = r.retries[key]
	if st == nil {
		st = &retryState{first: now, wait: r.sender.opts.FirstRetry}
		r.retries[key] = st
	}
	window := r.sender.opts.RetryWindow
	return st, window < 0 || now.Sub(st.first)+st.wait > window
}

// firstDue returns the latest time the report could first be due: its day's
// close and the longest delay.
func (r *Reporter) firstDue(rep *Report) time.Time {
	return r.rec.closesAt(dayOf(rep.DateRange.Start)).Add(max(r.opts.MaxDelay, 0))
}

// reporterMetrics are a Reporter's Prometheus collectors; nothing is
// registered until the user calls RegisterMetrics.
type reporterMetrics struct {
	pending   prometheus.Gauge
	daysTaken prometheus.Counter
	done      *prometheus.CounterVec
	errors    *prometheus.CounterVec
}

func newReporterMetrics() *reporterMetrics {
	m := &reporterMetrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mtastsgo_tlsrpt_reports_pending",
			Help: "TLS reports in the outbox, not yet done, at the start of the Reporter's last pass.",
		}),
		daysTaken: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mtastsgo_tlsrpt_days_taken_total",
			Help: "Closed days whose reports the Reporter put in the outbox.",
		}),
		done: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtastsgo_tlsrpt_reports_done_total",
			Help: "TLS reports whose delivery ended, by outcome (delivered: to one rua URI at least; no_record: the domain has no TLSRPT record; skipped: every rua URI skipped by the Sender's options; covered: a report to an MX host whose every recipient domain has the host's rua URIs and its own report; failed: given up on).",
		}, []string{"outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtastsgo_tlsrpt_reporter_errors_total",
			Help: "Failed steps of the Reporter, by step (take, put, release, pending, delivered, done), each retried.",
		}, []string{"op"}),
	}
	for _, o := range []string{"delivered", "no_record", "skipped", "covered", "failed"} {
		m.done.WithLabelValues(o)
	}
	for _, op := range []string{"take", "put", "release", "pending", "delivered", "done"} {
		m.errors.WithLabelValues(op)
	}
	return m
}

// RegisterMetrics registers the reporter's Prometheus collectors with reg:
// mtastsgo_tlsrpt_reports_pending, mtastsgo_tlsrpt_days_taken_total,
// mtastsgo_tlsrpt_reports_done_total by outcome and
// mtastsgo_tlsrpt_reporter_errors_total by step. The Sender counts the
// deliveries to each rua URI (Sender.RegisterMetrics). Register one
// reporter per registry, or give each its own constant labels.
//
// The options are those of mtasts.RegisterMetrics. It returns an error for
// a namespace that is not a metric name prefix, for labels Prometheus
// rejects ("outcome" and "op" are taken), or when reg already holds the
// metrics.
func (r *Reporter) RegisterMetrics(reg prometheus.Registerer, opts ...mtasts.MetricsOption) error {
	reg, err := mtasts.MetricsRegisterer(reg, opts...)
	if err != nil {
		return err
	}
	m := r.metrics
	return errors.Join(reg.Register(m.pending), reg.Register(m.daysTaken), reg.Register(m.done), reg.Register(m.errors))
}
