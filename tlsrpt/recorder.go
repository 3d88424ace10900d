package tlsrpt

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/bits"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/logname"
	"github.com/mtasts-go/mtasts/internal/quoted"
)

// RecorderOptions configure a Recorder. The zero value is usable.
type RecorderOptions struct {
	// Store keeps the counts, flushed to it every FlushInterval. Nil
	// means a store in memory, whose counts end with the process.
	Store Store

	// FlushInterval is how often Run gives the counts to the Store. With
	// a durable store (OpenFileStore, Redis) it is the most a crash loses:
	// the sessions recorded since the last flush. Default 1 second.
	FlushInterval time.Duration

	// CloseDelay is how long after the end of a UTC day (RFC 8460 4.1)
	// the day is closed: from then on a Reporter takes it. It leaves time
	// for the last flushes of a day, of every MTA of a fleet, to reach the
	// store, and must exceed FlushInterval. Default 5 minutes.
	CloseDelay time.Duration

	// MaxDetailRows caps the distinct failure-detail rows kept per policy
	// domain and day. Past it, failures still count in the summary (RFC
	// 8460 4.2.2), but their detail is dropped and counted in the metric
	// mtastsgo_tlsrpt_failure_details_dropped_total. Stores hold the same
	// cap over all the recorders that add to them. Default 1000.
	MaxDetailRows int

	// StoreTimeout bounds each flush of Run and Close. Default 30
	// seconds.
	StoreTimeout time.Duration

	// Logger receives warnings about failed flushes. Default: nothing is
	// logged.
	Logger *slog.Logger

	// now, set by the tests, returns the current time, read on every
	// call that records; nil means the real clock, read by the midnight
	// timer and by flush only.
	now func() time.Time
}

// Recorder counts the outcome of each TLS session attempt of a sending MTA,
// per policy domain, policy and UTC day (RFC 8460 4.1), the input of the
// daily reports. Delivery code calls Success or Failure once per session
// attempt; Run gives the counts to the Store every second; and once a day
// has closed, a Reporter takes it from the store (one Reporter of those
// sharing the store gets it) and makes its reports.
//
// Recording a success for a policy already seen that day takes no lock and
// allocates nothing, and scales across cores. The Recorder is safe for
// concurrent use.
//
// No clock is read when recording (a clock read costs more than the rest of
// a Success on some virtual machines): the recorder moves to a new UTC day
// by a timer at 00:00 UTC, checked against time.Now by every flush, so that
// a session recorded within an instant of midnight may count for the day
// before, and, should the system clock be stepped, within a FlushInterval
// of it.
type Recorder struct {
	opts    RecorderOptions
	store   Store
	log     *slog.Logger
	now     func() time.Time // opts.Now or time.Now
	clock   func() time.Time // opts.now: read when recording; or nil
	seed    maphash.Seed
	stripes int
	metrics *recorderMetrics

	// cur is the day being recorded, the latest one seen; days holds it
	// and the days before it that have counts not yet flushed or are
	// not yet closed.
	cur  atomic.Pointer[dayState]
	mu   sync.Mutex
	days map[int64]*dayState

	flushMu sync.Mutex // one flush at a time

	// source and seq identify the batches given to the store.
	source string
	seq    atomic.Int64

	done      chan struct{} // closed by Close, ends Run
	closeOnce sync.Once

	// midnight, without opts.now, moves cur to the new day at 00:00 UTC;
	// Close stops it. Both are guarded by mu.
	midnight *time.Timer
	stopped  bool
}

// NewRecorder returns a Recorder with opts. It returns an error when
// CloseDelay is not longer than FlushInterval.
func NewRecorder(opts RecorderOptions) (*Recorder, error) {
	setDefault(&opts.FlushInterval, time.Second)
	setDefault(&opts.CloseDelay, 5*time.Minute)
	setDefault(&opts.MaxDetailRows, 1000)
	setDefault(&opts.StoreTimeout, 30*time.Second)
	if opts.CloseDelay <= opts.FlushInterval {
		return nil, fmt.Errorf("tlsrpt: RecorderOptions.CloseDelay %v is not longer than FlushInterval %v: the last flush of a day would come after it closed",
			opts.CloseDelay, opts.FlushInterval)
	}
	if opts.Store == nil {
		opts.Store = newMemoryStore()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{
		opts:    opts,
		store:   opts.Store,
		log:     log,
		now:     opts.now,
		clock:   opts.now,
		seed:    maphash.MakeSeed(),
		stripes: stripeCount(runtime.GOMAXPROCS(0)),
		metrics: newRecorderMetrics(),
		days:    map[int64]*dayState{},
		done:    make(chan struct{}),
		source:  rand.Text(),
	}
	if r.now == nil {
		r.now = time.Now
	}
	now := r.now()
	day := dayOf(now)
	ds := newDayState(day, r.seed, r.stripes)
	r.days[day] = ds
	r.cur.Store(ds)
	if r.clock == nil {
		r.mu.Lock() // atMidnight reads r.midnight under mu
		r.midnight = time.AfterFunc(dayStart(day+1).Sub(now), r.atMidnight)
		r.mu.Unlock()
	}
	return r, nil
}

// atMidnight moves the recorder to the new UTC day, and sets the timer for
// the next. A timer that fired early, the clock having been stepped back,
// is set again for the rest of the day.
func (r *Recorder) atMidnight() {
	now := r.now()
	r.roll(now)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped {
		r.midnight.Reset(dayStart(dayOf(now) + 1).Sub(now))
	}
}

// roll moves the recorder to the UTC day of now, if that is later than
// the current one.
func (r *Recorder) roll(now time.Time) {
	if day := dayOf(now); day > r.cur.Load().day {
		r.dayState(day)
	}
}

// today returns the state of the day to record for.
func (r *Recorder) today() *dayState {
	ds := r.cur.Load()
	if r.clock == nil {
		return ds
	}
	if day := dayOf(r.clock()); day != ds.day {
		return r.dayState(day)
	}
	return ds
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// stripeCount returns the number of success stripes for procs cores: twice
// as many, so that two cores seldom share one, a power of two from 2 to 32.
func stripeCount(procs int) int {
	n := 1 << bits.Len(uint(max(procs, 1)))
	return min(max(n, 2), 32)
}

// dayState returns the state of day number day, adding it when missing.
func (r *Recorder) dayState(day int64) *dayState {
	r.mu.Lock()
	defer r.mu.Unlock()
	ds := r.days[day]
	if ds == nil {
		ds = newDayState(day, r.seed, r.stripes)
		r.days[day] = ds
	}
	if day > r.cur.Load().day {
		r.cur.Store(ds)
	}
	return ds
}

// policyDay returns the counts of p, of hash h, on the day of ds, adding
// them when p is new that day; it returns an error when p is not a valid
// policy of a report.
func (r *Recorder) policyDay(ds *dayState, p *Policy, h uint64) (*policyDay, error) {
	if pd := ds.get(h, p); pd != nil {
		return pd, nil
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return ds.add(h, p), nil
}

// Success records a session with the policy domain of p that negotiated a
// policy-compliant TLS connection (RFC 8460 4.2.1), on the current UTC day
// (see Recorder).
// It returns a *ReportError, recording nothing, when p is not a valid policy
// of a report, as Report.Validate checks the policies of a report: the
// policy type is "sts", "tlsa" or "no-policy-found" (RFC 8460 4.4), the
// policy domain and mx-host patterns are A-label names, and the
// policy-string is at most mtasts.MaxPolicySize bytes of lines without
// control characters. A Policy built by a Target with a zero Recipient
// fails: its policy domain is empty.
//
// For a policy already seen that day it allocates nothing and takes no lock.
// The slices of p are copied when p is new that day, and may be reused
// after.
func (r *Recorder) Success(p Policy) error {
	pd, err := r.policyDay(r.today(), &p, hashPolicy(r.seed, &p))
	if err != nil {
		return err
	}
	pd.trigger()
	pd.addSuccesses(1)
	pd.markDirty()
	return nil
}

// Failure records a session with the policy domain of p that could not
// negotiate a policy-compliant TLS connection (RFC 8460 4.2.2), on the
// current UTC day, and its failure-detail row (RFC 8460 4.4): the result type,
// the sending MTA's IP, the receiving MX host name and HELO, the receiving
// IP, the failure reason code and additional information, as the caller
// knows them. fd.FailedSessionCount is ignored: the call counts one session.
//
// Sessions with equal details add up in one row. Past
// RecorderOptions.MaxDetailRows distinct rows for the policy domain that
// day, the session counts in the summary only, and in the metric
// mtastsgo_tlsrpt_failure_details_dropped_total.
//
// It returns an error, recording nothing, when p is not a valid policy of a
// report (see Success: e.g. a policy type other than "sts", "tlsa" and
// "no-policy-found"), or fd not a valid row: no result type, or one
// that RFC 8460 4.3 does not define (use mtasts.ResultValidationFailure, "a
// general failure for a reason not matching a category above", with a
// failure-reason-code), an address with a zone, an MX host name that is not
// a domain name. Such errors are the caller's.
//
// The text the receiving MX chose, or that comes from the network, is not
// refused, so that a hostile MX cannot keep its failures out of the report:
// ReceivingMXHelo is cut at 255 bytes, FailureReasonCode and
// AdditionalInformation at 2048, and a value holding control characters
// (C0 but tab, DEL, C1) is escaped as Go escapes strings, its first bytes
// kept ("\x1b[2J..."). A value cut ends in "...(N bytes)". A row thus
// always passes Report.Validate. Clean values cost no allocation.
func (r *Recorder) Failure(p Policy, fd FailureDetail) error {
	pd, err := r.policyDay(r.today(), &p, hashPolicy(r.seed, &p))
	if err != nil {
		return err
	}
	return r.failure(pd, fd)
}

func (r *Recorder) failure(pd *policyDay, fd FailureDetail) error {
	k := cleanRow(fd)
	dom := pd.dom
	dom.mu.Lock()
	if _, ok := pd.rows[k]; !ok {
		// A new row: checked once, equal ones are then valid too.
		if err := validRow("failure-detail", &k); err != nil {
			dom.mu.Unlock()
			return err
		}
	}
	pd.trigger()
	r.addRow(pd, k, 1)
	pd.failures++
	dom.mu.Unlock()
	pd.markDirty()
	return nil
}

// cleanRow returns the row key of fd with the text the receiving MX or the
// network chose bounded and escaped: RFC 8460 4.4, the HELO string "from
// the banner", the reason and the URI are taken, not refused.
func cleanRow(fd FailureDetail) FailureDetail {
	fd.ReceivingMXHelo = cleanText(fd.ReceivingMXHelo, maxHelo)
	fd.FailureReasonCode = cleanText(fd.FailureReasonCode, maxRowText)
	fd.AdditionalInformation = cleanText(fd.AdditionalInformation, maxRowText)
	return rowKey(fd)
}

// addRow adds n sessions to the row k of pd, valid, under pd.dom.mu: to a
// known row, to a new one while the policy domain has fewer than
// MaxDetailRows, else to the sessions whose detail is dropped.
func (r *Recorder) addRow(pd *policyDay, k FailureDetail, n int64) {
	dom := pd.dom
	if m, ok := pd.rows[k]; ok {
		pd.rows[k] = m + n
		return
	}
	if dom.rows >= r.opts.MaxDetailRows {
		r.metrics.dropped.Add(float64(n))
		return
	}
	if pd.rows == nil {
		pd.rows = map[FailureDetail]int64{}
	}
	pd.rows[k] = n
	dom.rows++
}

// Record records, in one call, sessions of any shape with the policy domain
// of pr.Policy on the current UTC day: pr.Summary's successful and failed
// sessions (RFC 8460 4.2), and the failure-detail rows of
// pr.FailureDetails (4.4), each with its FailedSessionCount, 0 counting as
// 1. RFC 8460 4: the failure types are "non-exclusive", so rows and the
// summary are counted apart, as the caller gives them:
//
//   - a successful session that still carries a failure-detail row, as
//     opportunistic TLS that went on despite an untrusted certificate:
//     one success and the row;
//   - rows with no session counted, as TLSA records found unusable and
//     ignored: the rows alone;
//   - failed sessions with no row: the failure count alone;
//   - the sessions of a batch: their counts and rows.
//
// Rows are taken as Failure takes them (their text bounded and escaped),
// and count towards RecorderOptions.MaxDetailRows. With pr.CountOnly, the
// sessions count but cause no report by themselves, as those of the
// deliveries of reports may (mox does so); Success and Failure always may. It returns an error,
// recording nothing, when the policy or a row is not valid (see Failure),
// or a count is negative. Success remains the call for a plain success: it
// allocates nothing.
func (r *Recorder) Record(pr PolicyResult) error {
	s := pr.Summary
	if s.TotalSuccessfulSessionCount < 0 || s.TotalFailureSessionCount < 0 {
		return &SyntaxError{Kind: ErrInvalidReport, Field: "summary", Msg: fmt.Sprintf("session counts %d and %d, expected counts of 0 or more",
			s.TotalSuccessfulSessionCount, s.TotalFailureSessionCount)}
	}
	rows := make([]FailureDetail, len(pr.FailureDetails))
	counts := make([]int64, len(pr.FailureDetails))
	for i, fd := range pr.FailureDetails {
		path := "failure-details[" + strconv.Itoa(i) + "]"
		if fd.FailedSessionCount < 0 {
			return &SyntaxError{Kind: ErrInvalidReport, Field: path + ".failed-session-count", Msg: fmt.Sprintf("%d, expected a count of 0 or more", fd.FailedSessionCount)}
		}
		rows[i], counts[i] = cleanRow(fd), max(fd.FailedSessionCount, 1)
		if err := validRow(path, &rows[i]); err != nil {
			return err
		}
	}
	pd, err := r.policyDay(r.today(), &pr.Policy, hashPolicy(r.seed, &pr.Policy))
	if err != nil {
		return err
	}
	if !pr.CountOnly {
		pd.trigger()
	}
	if n := s.TotalSuccessfulSessionCount; n > 0 {
		pd.addSuccesses(n)
	}
	if s.TotalFailureSessionCount > 0 || len(rows) > 0 {
		pd.dom.mu.Lock()
		pd.failures += s.TotalFailureSessionCount
		for i, k := range rows {
			r.addRow(pd, k, counts[i])
		}
		pd.dom.mu.Unlock()
	}
	if s != (Summary{}) || len(rows) > 0 {
		pd.markDirty()
	}
	return nil
}

// validRow checks a failure-detail row to record: as Report.Validate does,
// and with a result type that RFC 8460 defines. Reports read may carry types
// registered later (RFC 8460 4.3: the list "is expected to grow over
// time"); those a Recorder makes carry only the types of this package. It
// returns a *SyntaxError whose Field starts at path, or nil.
func validRow(path string, fd *FailureDetail) error {
	v := validator{}
	v.failureDetail(path, fd)
	if v.err == nil && !knownResultType(fd.ResultType) {
		v.fail(path+".result-type", "%s, expected a result type of RFC 8460 4.3, such as \"validation-failure\" for a failure of another kind",
			quoted.String(string(fd.ResultType)))
	}
	return v.err
}

// knownResultType reports whether t is in the registry of RFC 8460 6.6.
func knownResultType(t mtasts.ResultType) bool {
	switch t {
	case mtasts.ResultSTARTTLSNotSupported, mtasts.ResultCertificateHostMismatch, mtasts.ResultCertificateExpired,
		mtasts.ResultTLSAInvalid, mtasts.ResultDNSSECInvalid, mtasts.ResultDANERequired, mtasts.ResultCertificateNotTrusted,
		mtasts.ResultSTSPolicyInvalid, mtasts.ResultSTSWebPKIInvalid, mtasts.ResultValidationFailure, mtasts.ResultSTSPolicyFetchError:
		return true
	}
	return false
}

// flush gives the counts recorded since the last flush to the store. Run
// calls it every FlushInterval, and Close once more. When the store fails,
// the counts are kept for the next flush, given again as they were, and
// flush returns the store's error. Counts for a day the store says was taken are dropped and counted
// in mtastsgo_tlsrpt_sessions_late_total. Flushes run one at a time.
func (r *Recorder) flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	now := r.now()
	r.roll(now)
	r.mu.Lock()
	states := make([]*dayState, 0, len(r.days))
	for _, ds := range r.days {
		states = append(states, ds)
	}
	r.mu.Unlock()
	slices.SortFunc(states, func(a, b *dayState) int { return cmp.Compare(a.day, b.day) })

	var errs []error
	for _, ds := range states {
		if err := r.flushDay(ctx, ds); err != nil {
			errs = append(errs, err)
			continue
		}
		if !r.closed(ds.day, now) || ds == r.cur.Load() || ds.pending != nil {
			continue
		}
		// A closed day, flushed: no more counts are expected for it.
		// One recorded in the last instant is flushed here; one later
		// still goes to a new state, and the store refuses it once
		// the day is taken.
		r.mu.Lock()
		delete(r.days, ds.day)
		r.mu.Unlock()
		if err := r.flushDay(ctx, ds); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// flushDay gives the store the counts of ds not yet flushed. When the
// store fails, the batch is kept as it is, and given again, before any
// newer counts of the day, by the next flush: a store whose reply was lost
// after it added the batch then knows it by its Source and Seq, and adds it
// once. Meanwhile the newer counts wait in ds, so that a store down for
// hours costs the memory of one batch per day.
func (r *Recorder) flushDay(ctx context.Context, ds *dayState) error {
	if ds.pending != nil {
		if err := r.add(ctx, ds.pending); err != nil {
			return err
		}
		ds.pending = nil
	}
	dirty := ds.takeDirty()
	if len(dirty) == 0 {
		return nil
	}
	results := make([]PolicyResult, 0, len(dirty))
	for _, pd := range dirty {
		// Clear the mark first: a count added from here on marks the
		// policy again, for the next flush.
		pd.dirty.Store(false)
		pr := PolicyResult{Policy: pd.policy}
		pr.Summary.TotalSuccessfulSessionCount = pd.takeSuccesses()
		pd.dom.mu.Lock()
		pr.Summary.TotalFailureSessionCount = pd.failures
		pd.failures = 0
		for k, n := range pd.rows {
			if n > 0 {
				k.FailedSessionCount = n
				pr.FailureDetails = append(pr.FailureDetails, k)
				pd.rows[rowKey(k)] = 0
			}
		}
		pd.dom.mu.Unlock()
		if pr.Summary == (Summary{}) && len(pr.FailureDetails) == 0 {
			continue
		}
		// Read after the counts: see policyDay.triggers.
		pr.CountOnly = !pd.triggers.Load()
		results = append(results, pr)
	}
	if len(results) == 0 {
		return nil
	}
	b := &Batch{
		Day:           dayStart(ds.day),
		Results:       results,
		MaxDetailRows: r.opts.MaxDetailRows,
		Source:        r.source,
		Seq:           r.seq.Add(1),
	}
	if err := r.add(ctx, b); err != nil {
		ds.pending = b
		return err
	}
	return nil
}

// add gives b to the store. Counts for a day already taken are dropped,
// counted and logged, and no error.
func (r *Recorder) add(ctx context.Context, b *Batch) error {
	dropped, err := r.store.Add(ctx, *b)
	if errors.Is(err, ErrDayTaken) {
		var n int64
		for _, pr := range b.Results {
			n += pr.Summary.TotalSuccessfulSessionCount + pr.Summary.TotalFailureSessionCount
		}
		r.metrics.late.Add(float64(n))
		r.log.Warn("tls reporting: sessions recorded after their day was taken for reporting",
			"day", b.Day.Format(time.DateOnly), "sessions", n)
		return nil
	}
	if err != nil {
		r.metrics.storeErrors.WithLabelValues("add").Inc()
		return fmt.Errorf("tlsrpt: flushing the counts of %s: %w", b.Day.Format(time.DateOnly), err)
	}
	r.metrics.dropped.Add(float64(dropped))
	return nil
}

// closed reports whether day number day is closed at now: CloseDelay past
// its end (RFC 8460 4.1: "00:00-24:00 UTC").
func (r *Recorder) closed(day int64, now time.Time) bool {
	return !now.Before(r.closesAt(day))
}

func (r *Recorder) closesAt(day int64) time.Time {
	return dayStart(day + 1).Add(r.opts.CloseDelay)
}

// Run flushes the counts to the store every FlushInterval, each flush
// bounded by StoreTimeout, logging failures, until ctx ends (it then
// returns ctx's error) or Close is called (nil). It does not flush when
// ctx ends: Close does, so that the counts since the last flush survive a
// planned stop. Run one Run per Recorder.
func (r *Recorder) Run(ctx context.Context) error {
	t := time.NewTicker(r.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			return nil
		case <-t.C:
			fctx, cancel := context.WithTimeout(ctx, r.opts.StoreTimeout)
			if err := r.flush(fctx); err != nil {
				r.log.Warn("tls reporting: flush failed, counts kept for the next", "err", err)
			}
			cancel()
		}
	}
}

// Close stops Run and the midnight timer, and flushes the counts to the
// store, bounded by StoreTimeout, and returns the flush's error. Sessions
// recorded after it are kept in memory until Close is called again.
func (r *Recorder) Close() error {
	r.closeOnce.Do(func() {
		close(r.done)
		r.mu.Lock()
		r.stopped = true
		if r.midnight != nil {
			r.midnight.Stop()
		}
		r.mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.StoreTimeout)
	defer cancel()
	return r.flush(ctx)
}

// closedDays flushes the counts and returns the closed days (see
// RecorderOptions.CloseDelay) that the store holds counts of, as 00:00
// UTC, oldest first: those to take. It returns an error when the flush or
// the store fails.
func (r *Recorder) closedDays(ctx context.Context) ([]time.Time, error) {
	if err := r.flush(ctx); err != nil {
		return nil, err
	}
	days, err := r.store.Days(ctx)
	if err != nil {
		r.metrics.storeErrors.WithLabelValues("days").Inc()
		return nil, fmt.Errorf("tlsrpt: listing the days in the store: %w", err)
	}
	now := r.now()
	return slices.DeleteFunc(days, func(d time.Time) bool { return !r.closed(dayOf(d), now) }), nil
}

// dayResults are the counts of a closed UTC day, taken from the store by
// Recorder.take, the input of the day's reports.
type dayResults struct {
	// Day is the day, as 00:00 UTC.
	Day time.Time
	// Results holds one PolicyResult per policy and recipient domain
	// (Policy.RecipientDomain), in order of policy domain, policy type,
	// policy and recipient domain, the rows of each in order of
	// decreasing count. It is empty when there was nothing to report,
	// or the day was taken before.
	Results []PolicyResult
}

// take flushes the counts, then takes those of the UTC day of day from the
// store (Store.Take): of all the Takes of a day, by this recorder or by any
// other sharing the store, one claims it and gets its counts. They stay in
// the store until release, and a take by the claimant returns them again,
// so that a failure between taking a day and keeping its reports loses
// nothing. Counts for the day recorded after it are dropped, see flush.
//
// It returns an error wrapping errDayOpen when the day has not closed yet
// (see RecorderOptions.CloseDelay), one wrapping ErrDayClaimed when another
// member of a fleet holds the day, and an error when the flush or the store
// fails.
func (r *Recorder) take(ctx context.Context, day time.Time) (dayResults, error) {
	n := dayOf(day)
	if !r.closed(n, r.now()) {
		return dayResults{}, fmt.Errorf("%w: %s closes at %s", errDayOpen, dayName(n), r.closesAt(n).Format(time.RFC3339))
	}
	if err := r.flush(ctx); err != nil {
		return dayResults{}, err
	}
	results, err := r.store.Take(ctx, dayStart(n))
	if errors.Is(err, ErrDayClaimed) {
		return dayResults{}, err
	}
	if err != nil {
		r.metrics.storeErrors.WithLabelValues("take").Inc()
		return dayResults{}, fmt.Errorf("tlsrpt: taking %s from the store: %w", dayName(n), err)
	}
	sortResults(results)
	return dayResults{Day: dayStart(n), Results: results}, nil
}

// release deletes the counts of day, taken by take, from the store
// (Store.Release): call it once the day's reports are kept elsewhere, an
// Outbox. It returns an error when the store fails.
func (r *Recorder) release(ctx context.Context, day time.Time) error {
	n := dayOf(day)
	if err := r.store.Release(ctx, dayStart(n)); err != nil {
		r.metrics.storeErrors.WithLabelValues("release").Inc()
		return fmt.Errorf("tlsrpt: releasing %s in the store: %w", dayName(n), err)
	}
	return nil
}

// Results flushes the counts and returns those of the UTC day of day that
// the store holds, without claiming the day (Store.Results), for an admin
// page: a day still open, closed, or claimed and not yet released. It
// returns one PolicyResult per policy and recipient domain
// (Policy.RecipientDomain), in order of policy domain, policy type, policy
// and recipient domain, the rows of each in order of decreasing count; filter
// them by Policy.PolicyDomain or Policy.RecipientDomain for a domain's. It
// returns an error when the flush or the store fails.
func (r *Recorder) Results(ctx context.Context, day time.Time) ([]PolicyResult, error) {
	n := dayOf(day)
	if err := r.flush(ctx); err != nil {
		return nil, err
	}
	results, err := r.store.Results(ctx, dayStart(n))
	if err != nil {
		r.metrics.storeErrors.WithLabelValues("results").Inc()
		return nil, fmt.Errorf("tlsrpt: reading %s from the store: %w", dayName(n), err)
	}
	sortResults(results)
	return results, nil
}

// Forget flushes the counts and deletes, from the days not taken, the
// results whose policy domain or recipient domain is domain (Store.Delete),
// as when an admin stops reporting to it. Sessions recorded for it from
// then on count anew. It returns an error when the flush or the store
// fails.
func (r *Recorder) Forget(ctx context.Context, domain mtasts.Domain) error {
	if err := r.flush(ctx); err != nil {
		return err
	}
	if err := r.store.Delete(ctx, domain.ASCII); err != nil {
		r.metrics.storeErrors.WithLabelValues("delete").Inc()
		return fmt.Errorf("tlsrpt: deleting the results of %s from the store: %w", logname.Domain(domain.ASCII, domain.Unicode), err)
	}
	return nil
}

// sortResults puts results in the order of dayResults.
func sortResults(results []PolicyResult) {
	slices.SortFunc(results, func(a, b PolicyResult) int { return compareResults(&a, &b) })
	for i := range results {
		slices.SortFunc(results[i].FailureDetails, compareRows)
	}
}

// compareRows orders failure-detail rows by decreasing count, then by their
// fields.
func compareRows(a, b FailureDetail) int {
	return cmp.Or(
		cmp.Compare(b.FailedSessionCount, a.FailedSessionCount),
		strings.Compare(string(a.ResultType), string(b.ResultType)),
		strings.Compare(a.ReceivingMXHostname, b.ReceivingMXHostname),
		a.ReceivingIP.Compare(b.ReceivingIP),
		a.SendingMTAIP.Compare(b.SendingMTAIP),
		strings.Compare(a.ReceivingMXHelo, b.ReceivingMXHelo),
		strings.Compare(a.FailureReasonCode, b.FailureReasonCode),
		strings.Compare(a.AdditionalInformation, b.AdditionalInformation),
	)
}

// ReportInfo is what a report says of its sender (RFC 8460 4.4), and which
// reports a Reporter makes of a day (ReporterOptions.Info).
type ReportInfo struct {
	// OrganizationName is "the name of the organization responsible for
	// the report".
	OrganizationName string
	// ContactInfo is the e-mail address of the party responsible for the
	// report.
	ContactInfo string
	// ReportID returns the report-id of the report for domain on day: the
	// policy domain, or the recipient domain or MX host the report is sent
	// to. Default: the day and the domain, e.g.
	// "2016-04-01_company-y.example", with "_mx-host" after it for a
	// report to an MX host, unique since a day has one report of each kind
	// per domain.
	ReportID func(day time.Time, domain string) string

	// Recipients and MXHosts choose the reports made of a day's results.
	// With neither set, each policy domain gets one report of its results
	// (RFC 8460 4), whatever their recipient domain (Policy.RecipientDomain):
	// the DANE results of an MX host go to the host's TLSRPT record.
	//
	// Recipients makes one report per recipient domain, with Domain set to
	// it, holding the results of its deliveries: its MTA-STS (or
	// no-policy-found) results, and the DANE results of the MX hosts that
	// its deliveries used, under their own policy domains. A result with
	// no RecipientDomain counts as its policy domain's.
	//
	// MXHosts makes one report per MX host that has DANE results (a policy
	// domain other than the recipient domain of the result), with Domain
	// set to the host: its results, each with the recipient domain as
	// policy-domain and the host as mx-host, so that the host's operator
	// sees the recipient domains concerned. With Recipients set too, a
	// Reporter with a Sender leaves out, when it sends the report, the
	// recipient domains whose TLSRPT record has the rua URIs of the
	// host's, which have the results in their own report, and sends
	// nothing when none is left.
	//
	// Both set make the two kinds of report that mox makes.
	Recipients, MXHosts bool

	// FailuresOnly, when set, makes a report only when it has a failed
	// session or a failure-detail row: a domain whose sessions all
	// succeeded gets none. By default every report is made, so that it
	// also tells a domain that its TLS works (RFC 8460 4.2.1).
	FailuresOnly bool
}

// reports returns the day's reports, each covering the whole UTC day (RFC
// 8460 4.1), from 00:00:00Z to 23:59:59Z as RFC 8460 Appendix B does: by
// default one per policy domain (RFC 8460 4: "policies" holds each policy
// applied for the domain); per recipient domain and per MX host as
// info.Recipients and info.MXHosts say. Results of one policy for several
// recipient domains are added up where a report holds them together. A
// report whose every result is CountOnly is not made, nor, with
// info.FailuresOnly, one without failures. The
// reports are in order of Key; to whom to send them is in the TLSRPT
// record (LookupRecord) of each report's domain (Report.Domain, or its
// policy domain). Their policies carry no RecipientDomain.
func (d dayResults) reports(info ReportInfo) []Report {
	id := info.ReportID
	if id == nil {
		id = func(day time.Time, domain string) string { return day.Format(time.DateOnly) + "_" + domain }
	}
	dr := DateRange{Start: d.Day, End: d.Day.Add(secondsPerDay*time.Second - time.Second)}
	byResult := func(a, b PolicyResult) int { return compareResults(&a, &b) }
	results := d.Results
	if !slices.IsSortedFunc(results, byResult) {
		results = slices.Clone(results)
		slices.SortFunc(results, byResult)
	}
	// The policies of all the reports share one array; a report's rows
	// are those of d.Results, but where results are added up.
	var buf []PolicyResult
	var reports []Report
	// emit makes the report to domain of group, results in order whose
	// equal policies (but for their recipient domain) are adjacent.
	emit := func(domain string, host bool, group []PolicyResult) {
		if !reportable(group, info.FailuresOnly) {
			return
		}
		if buf == nil {
			buf = make([]PolicyResult, 0, len(results))
		}
		start := len(buf)
		// The rows of the last in buf, by rowKey, once it is its own.
		var index map[FailureDetail]int
		var merged []int // in buf, those added up
		for _, pr := range group {
			pr.Policy.RecipientDomain, pr.CountOnly = "", false
			n := len(buf)
			if n == start || !policyEqual(&buf[n-1].Policy, &pr.Policy) {
				buf = append(buf, pr)
				index = nil
				continue
			}
			last := &buf[n-1]
			if index == nil {
				last.FailureDetails = slices.Clone(last.FailureDetails)
				index = make(map[FailureDetail]int, len(last.FailureDetails))
				for i, fd := range last.FailureDetails {
					index[rowKey(fd)] = i
				}
				merged = append(merged, n-1)
			}
			last.Summary.TotalSuccessfulSessionCount += pr.Summary.TotalSuccessfulSessionCount
			last.Summary.TotalFailureSessionCount += pr.Summary.TotalFailureSessionCount
			for _, fd := range pr.FailureDetails {
				if i, ok := index[rowKey(fd)]; ok {
					last.FailureDetails[i].FailedSessionCount += fd.FailedSessionCount
					continue
				}
				index[rowKey(fd)] = len(last.FailureDetails)
				last.FailureDetails = append(last.FailureDetails, fd)
			}
		}
		for _, i := range merged {
			slices.SortFunc(buf[i].FailureDetails, compareRows)
		}
		rid := domain
		if host && info.ReportID == nil {
			rid += "_mx-host"
		}
		r := Report{
			OrganizationName: info.OrganizationName,
			DateRange:        dr,
			ContactInfo:      info.ContactInfo,
			ReportID:         id(d.Day, rid),
			Policies:         buf[start:len(buf):len(buf)],
		}
		if info.Recipients || info.MXHosts {
			r.Domain = domain
		}
		reports = append(reports, r)
	}
	// eachRun calls emit for each run of group of one key.
	eachRun := func(group []PolicyResult, key func(*PolicyResult) string, host bool) {
		for i := 0; i < len(group); {
			k := key(&group[i])
			j := i + 1
			for j < len(group) && key(&group[j]) == k {
				j++
			}
			emit(k, host, group[i:j])
			i = j
		}
	}
	if !info.Recipients && !info.MXHosts {
		// RFC 8460 4: a report per policy domain.
		n := 0
		for i := range results {
			if i == 0 || results[i].Policy.PolicyDomain != results[i-1].Policy.PolicyDomain {
				n++
			}
		}
		reports = make([]Report, 0, n)
		eachRun(results, func(pr *PolicyResult) string { return pr.Policy.PolicyDomain }, false)
		return reports
	}
	if info.Recipients {
		byRecipient := slices.Clone(results)
		slices.SortStableFunc(byRecipient, func(a, b PolicyResult) int {
			return strings.Compare(recipientOf(&a.Policy), recipientOf(&b.Policy))
		})
		eachRun(byRecipient, func(pr *PolicyResult) string { return recipientOf(&pr.Policy) }, false)
	}
	if info.MXHosts {
		// An MX host's results: a policy domain other than the
		// recipient domain (RFC 8460 1.1). As mox does, the recipient
		// domain becomes the policy-domain and the host the mx-host.
		var hosts []PolicyResult
		for _, pr := range results {
			if p := &pr.Policy; p.RecipientDomain != "" && p.RecipientDomain != p.PolicyDomain {
				p.PolicyDomain, p.MXHost = p.RecipientDomain, []string{p.PolicyDomain}
				hosts = append(hosts, pr)
			}
		}
		slices.SortFunc(hosts, func(a, b PolicyResult) int {
			return cmp.Or(strings.Compare(a.Policy.MXHost[0], b.Policy.MXHost[0]), compareResults(&a, &b))
		})
		eachRun(hosts, func(pr *PolicyResult) string { return pr.Policy.MXHost[0] }, true)
	}
	slices.SortFunc(reports, func(a, b Report) int { return strings.Compare(keyDomain(&a), keyDomain(&b)) })
	return reports
}

// reportable reports whether results make a report: one of them, at least,
// is not CountOnly, and, with failuresOnly, one has a failure.
func reportable(results []PolicyResult, failuresOnly bool) bool {
	trigger, failed := false, false
	for i := range results {
		pr := &results[i]
		trigger = trigger || !pr.CountOnly
		failed = failed || pr.Summary.TotalFailureSessionCount > 0 || len(pr.FailureDetails) > 0
	}
	return trigger && (failed || !failuresOnly)
}

// recipientOf returns the recipient domain of p's results: RecipientDomain,
// or its policy domain.
func recipientOf(p *Policy) string {
	if p.RecipientDomain != "" {
		return p.RecipientDomain
	}
	return p.PolicyDomain
}

// recorderMetrics are a Recorder's Prometheus collectors; nothing is
// registered until the user calls RegisterMetrics.
type recorderMetrics struct {
	dropped     prometheus.Counter
	late        prometheus.Counter
	storeErrors *prometheus.CounterVec
}

func newRecorderMetrics() *recorderMetrics {
	return &recorderMetrics{
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mtastsgo_tlsrpt_failure_details_dropped_total",
			Help: "Failed TLS sessions counted in their report's summary whose failure detail was dropped, past the cap of rows per policy domain and day.",
		}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mtastsgo_tlsrpt_sessions_late_total",
			Help: "TLS sessions recorded for a day already taken for reporting, and so not reported.",
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtastsgo_tlsrpt_store_errors_total",
			Help: "Failed operations of the TLS reporting store, by operation (add, days, take, release, results, delete).",
		}, []string{"op"}),
	}
}

// RegisterMetrics registers the recorder's Prometheus collectors with reg:
// mtastsgo_tlsrpt_failure_details_dropped_total,
// mtastsgo_tlsrpt_sessions_late_total and mtastsgo_tlsrpt_store_errors_total
// by operation. Register one recorder per registry, or give each its own
// constant labels.
//
// The options are those of mtasts.RegisterMetrics: mtasts.MetricsNamespace
// puts a namespace before every name, mtasts.MetricsConstLabels adds labels
// to every metric. It returns an error for a namespace that is not a metric
// name prefix, for labels Prometheus rejects ("op" is taken), or when reg
// already holds the metrics.
func (r *Recorder) RegisterMetrics(reg prometheus.Registerer, opts ...mtasts.MetricsOption) error {
	reg, err := mtasts.MetricsRegisterer(reg, opts...)
	if err != nil {
		return err
	}
	m := r.metrics
	return errors.Join(reg.Register(m.dropped), reg.Register(m.late), reg.Register(m.storeErrors))
}
