// Package cache keeps MTA-STS policies as RFC 8461 section 5 requires, so
// that outbound delivery code asks one question per message, "which policy
// applies to this domain now?", and gets the answer from memory in well under
// a microsecond.
//
// A valid cached policy is applied until it expires, whatever happens to the
// TXT record or the policy host meanwhile: an attacker who strips the record
// or blocks the fetch cannot turn a cached enforce policy off (RFC 8461 5.1,
// 10). Concurrent requests for a domain share one TXT lookup and at most one
// HTTPS fetch. Policies persist beyond the process through a Store: a file
// store is included, and a fleet can plug in its own.
//
// # When the TXT record is checked
//
// RFC 8461 5.1 step 1 uses a cached policy "whose time-since-fetch has not
// exceeded its max_age" and makes a check for a new one optional: "Sending
// MTAs may unconditionally check for a new policy at this step". Checking on
// every delivery would put a DNS round trip in front of each message, so Get
// answers from memory and checks a domain's record at most once per
// Options.CheckInterval (default one hour), in the background: a changed id
// (RFC 8461 3: "the sender need only check the TXT record's version 'id'
// against the cached value") is seen within that interval. Step 3 does
// require a check before a message is permanently failed: that is Recheck,
// which looks the record up at once. Independently of the record, Run fetches
// each policy in use again once it is Options.RefreshAge old (RFC 8461 3.3
// and 10.2: refresh before expiry, "regardless of the state of the
// '_mta-sts' TXT record").
//
// # Time in tests
//
// Expiry, back-off and refresh are tested in testing/synctest bubbles, with
// Options.LookupRecord and Options.FetchPolicy (or an in-memory Resolver)
// standing in for the network, whose I/O a bubble cannot wait for; a real TLS
// server is used where time does not matter, as for coalescing.
package cache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtasts-go/mtasts"
)

// Options configure a Cache. Only Resolver is required.
type Options struct {
	// Resolver looks up _mta-sts TXT records, e.g. &adns.Resolver{}.
	Resolver mtasts.Resolver

	// Store keeps policies beyond the cache's memory. Default: a
	// MemoryStore of MaxEntries entries.
	Store Store

	// MaxEntries bounds the domains held in memory; the least recently
	// used is dropped to make room. Default 10000.
	MaxEntries int

	// CheckInterval is how often, at most, the TXT record of a domain
	// with a cached policy is looked up to see whether its id changed
	// (RFC 8461 5.1). The check runs in the background: the cached
	// policy is returned at once. Default 1 hour.
	CheckInterval time.Duration

	// RefreshAge is the age after which Run fetches a policy still in use
	// again, before it expires (RFC 8461 3.3, "proactively refresh ...
	// once per day"); at most half the policy's lifetime. Default 24
	// hours.
	RefreshAge time.Duration

	// Backoff is how long, after a failed fetch, the cache makes no new
	// attempt for the domain (RFC 8461 3.3: "five minutes or longer"), and
	// how long it remembers that a domain has no policy. Default 5
	// minutes.
	Backoff time.Duration

	// RunInterval is how often Run looks for policies to refresh and
	// entries to drop. Default 1 minute.
	RunInterval time.Duration

	// LockWait is how long a cache waits for another cache of the fleet
	// that holds the fetch lock of a domain (see Locker) to save the
	// policy, before fetching it itself. Default 10 seconds.
	LockWait time.Duration

	// MaxBackground bounds the record checks and refreshes that run in
	// the background at once, so that many domains due together (after a
	// restart, say) do not become a burst of lookups and fetches. Checks
	// beyond it wait for a later Get, refreshes for a free slot. Default
	// 16.
	MaxBackground int

	// StoreTimeout bounds each call to the Store (and its Locker), so
	// that a hung store delays a miss by no more per call (a load, a
	// lock, a save), and never a hit: past it, the cache goes on as
	// without the store. Default 5 seconds.
	StoreTimeout time.Duration

	// Timeout bounds one TXT lookup and policy fetch. Default 90 seconds:
	// the one minute of mtasts.FetchTimeout and time for DNS.
	Timeout time.Duration

	// Logger receives warnings about failed refreshes of policies not in
	// mode none (RFC 8461 3.3, 10.2) and about failing stores. Default:
	// nothing is logged.
	Logger *slog.Logger

	// LookupRecord and FetchPolicy replace mtasts.LookupRecord and
	// mtasts.FetchPolicy, e.g. in tests. Default: those functions.
	LookupRecord func(ctx context.Context, resolver mtasts.Resolver, domain mtasts.Domain) (*mtasts.Record, string, error)
	FetchPolicy  func(ctx context.Context, domain mtasts.Domain) (*mtasts.Policy, string, error)
}

// Result is the cache's answer for a domain.
type Result struct {
	// Policy is the policy to apply; nil means the domain has no usable
	// policy and mail is delivered as without MTA-STS (RFC 8461 5.1).
	// A policy in mode none is returned as such.
	Policy *mtasts.Policy
	// Text is the policy as fetched, and RecordID the id of the TXT
	// record that announced it.
	Text     string
	RecordID string
	// Fetched is when the policy was fetched, and Expires Fetched plus
	// its max_age: the last instant at which it applies (RFC 8461 5.1,
	// "time-since-fetch has not exceeded its max_age").
	Fetched time.Time
	Expires time.Time
	// Fresh is set when the policy was fetched from the network for this
	// call, or for a call it waited for; clear when it came from memory or
	// the store.
	Fresh bool

	// Err is the latest failure to discover or fetch the domain's policy,
	// also when a cached Policy still applies; nil when the last attempt
	// succeeded, when the domain simply publishes no policy, and when the
	// cached policy is in mode none (RFC 8461 6). ResultType and
	// FailureReason describe Err for a TLS report (RFC 8460 4.3):
	// mtasts.TLSReportResultType and mtasts.TLSReportFailureReason.
	Err           error
	ResultType    string
	FailureReason string
}

// snapshot is what the cache knows of a domain at one time. It is never
// changed once published; a new one replaces it.
type snapshot struct {
	policy   *mtasts.Policy // nil: no usable policy
	text, id string
	fetched  time.Time
	expires  time.Time

	err        error // latest failure, with its report fields
	resultType string
	reason     string
	retryAt    time.Time // no network attempt before this time
	failedID   string    // the record id whose fetch failed
}

// valid reports whether s holds a policy that has not expired at now. RFC
// 8461 5.1: a cached policy "whose time-since-fetch has not exceeded its
// max_age" applies, so it is still valid at the very instant it expires.
func (s *snapshot) valid(now time.Time) bool {
	return s != nil && s.policy != nil && !now.After(s.expires)
}

func (s *snapshot) result(fresh bool) Result {
	return Result{
		Policy: s.policy, Text: s.text, RecordID: s.id, Fetched: s.fetched, Expires: s.expires, Fresh: fresh,
		Err: s.err, ResultType: s.resultType, FailureReason: s.reason,
	}
}

// none reports whether s holds a policy in mode none.
func (s *snapshot) none() bool {
	return s.policy != nil && s.policy.Mode == mtasts.ModeNone
}

// withErr returns a copy of s that reports err. A domain whose cached policy
// is in mode none has turned MTA-STS off, and its failures are not reported:
// RFC 8461 6 makes reportable "policy fetch failures of any kind when a valid
// policy exists in the policy cache, except if that policy's mode is
// 'none'", and RFC 8461 3.3 and 10.2 ask for no alerts in that case.
func (s *snapshot) withErr(err error) *snapshot {
	n := *s
	if n.none() {
		err = nil
	}
	n.err, n.resultType, n.reason = err, mtasts.TLSReportResultType(err), mtasts.TLSReportFailureReason(err)
	return &n
}

// item holds one domain in memory.
type item struct {
	domain    mtasts.Domain
	snap      atomic.Pointer[snapshot]
	lastUsed  atomic.Int64 // unix nanoseconds
	checkedAt atomic.Int64 // unix nanoseconds of the last TXT lookup
}

// call is one running update of a domain, which concurrent callers share.
type call struct {
	done chan struct{}
	res  Result
}

// errClosed is the error of results from a closed cache.
var errClosed = errors.New("cache: closed")

// Cache holds MTA-STS policies. It is safe for concurrent use. Create it
// with New, run Run in a goroutine for proactive refreshes, and Close it when
// done.
type Cache struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics

	ctx    context.Context // canceled by Close; the parent of all network work
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// items holds an *item per A-label domain. A sync.Map: hits, the
	// common case by far, read it without a lock or a shared write, so
	// they scale across cores; additions, rare, are serialized by mu.
	items  sync.Map
	mu     sync.Mutex
	nitems int

	callMu sync.Mutex
	calls  map[string]*call
	closed bool // set by Close; no new background work after it

	// background holds a token per background check or refresh running.
	background chan struct{}

	lockMu sync.Mutex
	locked map[string]bool // fleet locks held, by domain
}

// New returns a Cache with opts; it returns an error when opts.Resolver is
// nil.
func New(opts Options) (*Cache, error) {
	if opts.Resolver == nil {
		return nil, errors.New("cache: Options.Resolver is required")
	}
	setDefault(&opts.MaxEntries, 10000)
	setDefault(&opts.CheckInterval, time.Hour)
	setDefault(&opts.RefreshAge, 24*time.Hour)
	setDefault(&opts.Backoff, 5*time.Minute)
	setDefault(&opts.RunInterval, time.Minute)
	setDefault(&opts.Timeout, mtasts.FetchTimeout+30*time.Second)
	setDefault(&opts.LockWait, 10*time.Second)
	setDefault(&opts.MaxBackground, 16)
	setDefault(&opts.StoreTimeout, 5*time.Second)
	if opts.Store == nil {
		opts.Store = NewMemoryStore(opts.MaxEntries)
	}
	if opts.LookupRecord == nil {
		opts.LookupRecord = mtasts.LookupRecord
	}
	if opts.FetchPolicy == nil {
		opts.FetchPolicy = mtasts.FetchPolicy
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{
		opts:   opts,
		log:    log,
		calls:  map[string]*call{},
		locked: map[string]bool{},

		background: make(chan struct{}, opts.MaxBackground),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.metrics = newMetrics(c)
	return c, nil
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Get returns the policy to apply to mail for domain now (RFC 8461 5.1).
//
// A valid policy in memory is returned at once, without allocating; if its
// TXT record was last checked more than CheckInterval ago, a check starts in
// the background. Otherwise Get waits for the one lookup and fetch that all
// concurrent callers for domain share, or for ctx: when ctx ends first, the
// Result has no policy and ctx's error, and the shared work goes on for the
// others. Get never fails for a store's sake. Before permanently failing a
// message because of an enforce policy, call Recheck.
func (c *Cache) Get(ctx context.Context, domain mtasts.Domain) Result {
	now := time.Now()
	if v, ok := c.items.Load(domain.ASCII); ok {
		it := v.(*item)
		it.touch(now)
		s := it.snap.Load()
		if s.valid(now) {
			c.metrics.hits.Inc()
			// RFC 8461 5.1 asks for the record to be checked; do it at
			// most once per CheckInterval, off the caller's path. The
			// caller that moves checkedAt starts the check.
			if last := it.checkedAt.Load(); now.UnixNano()-last >= int64(c.opts.CheckInterval) && it.checkedAt.CompareAndSwap(last, now.UnixNano()) {
				if c.tryBackground() {
					c.start(domain, false, true)
				} else {
					// All background slots busy: leave
					// the check to a later Get.
					it.checkedAt.CompareAndSwap(now.UnixNano(), last)
				}
			}
			return s.result(false)
		}
		if s != nil && s.policy == nil && now.Before(s.retryAt) {
			// Known to have no policy, or backing off after a
			// failure (RFC 8461 3.3).
			c.metrics.hits.Inc()
			return s.result(false)
		}
	}
	c.metrics.misses.Inc()
	cl := c.start(domain, false, false)
	select {
	case <-cl.done:
		return cl.res
	case <-ctx.Done():
		return Result{Err: ctx.Err()}
	}
}

// Recheck looks up the TXT record of domain now, fetches the policy when the
// record's id differs from the cached one, and returns the result as Get
// does. Call it before permanently failing a message because of an enforce
// policy: RFC 8461 5 and 5.1 step 3 say a delivery "MUST NOT be permanently
// failed until the sender has first checked for the presence of a new policy
// (as indicated by the 'id' field in the '_mta-sts' TXT record)".
//
// Concurrent Gets and Rechecks of domain share the work, but Recheck returns
// only the outcome of a lookup that started after it was called. A valid
// cached policy stays when the lookup or fetch fails, and a record id whose
// fetch failed is not fetched again before Backoff (RFC 8461 3.3). When ctx
// ends first, the Result has no policy and ctx's error.
func (c *Cache) Recheck(ctx context.Context, domain mtasts.Domain) Result {
	called := time.Now().UnixNano()
	var res Result
	// A running update may have looked the record up before this call;
	// then wait for it and run another.
	for range 2 {
		cl := c.start(domain, false, false)
		select {
		case <-cl.done:
		case <-ctx.Done():
			return Result{Err: ctx.Err()}
		}
		res = cl.res
		if v, ok := c.items.Load(domain.ASCII); ok && v.(*item).checkedAt.Load() >= called {
			break
		}
	}
	return res
}

// touch records a use of the item; it writes at most once a second, so that
// parallel hits on one domain do not fight over its cache line.
func (it *item) touch(now time.Time) {
	n := now.UnixNano()
	if n-it.lastUsed.Load() > int64(time.Second) {
		it.lastUsed.Store(n)
	}
}

// tryBackground takes a background slot if one is free.
func (c *Cache) tryBackground() bool {
	select {
	case c.background <- struct{}{}:
		return true
	default:
		return false
	}
}

// start returns the running update of domain, starting one if none runs. A
// full update fetches the policy even when the record's id is unchanged. With
// slot set, the caller holds a background slot, which the update releases
// when it ends, or start at once when it starts none.
func (c *Cache) start(domain mtasts.Domain, full, slot bool) *call {
	c.callMu.Lock()
	defer c.callMu.Unlock()
	release := func() {
		if slot {
			<-c.background
		}
	}
	if cl := c.calls[domain.ASCII]; cl != nil {
		release()
		return cl
	}
	cl := &call{done: make(chan struct{})}
	if c.closed {
		// Closed: no new background work. Close sets closed under
		// callMu before it waits, so no goroutine starts after Close
		// has begun waiting for them.
		cl.res = Result{Err: errClosed, ResultType: mtasts.TLSReportResultType(errClosed)}
		close(cl.done)
		release()
		return cl
	}
	c.calls[domain.ASCII] = cl
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		res, checkNext, after := c.update(domain, full)
		// Saved before the waiting callers have their answer, so that
		// a store shared by a fleet holds a policy once a Get has
		// returned it; StoreTimeout bounds the delay.
		if after != nil {
			after()
		}
		release()
		cl.res = res
		c.callMu.Lock()
		delete(c.calls, domain.ASCII)
		c.callMu.Unlock()
		close(cl.done)
		if checkNext && c.tryBackground() {
			// A policy loaded from the store: check its record now,
			// in the background. Without a free slot, the next Get
			// does, as the policy was never checked.
			c.start(domain, false, true)
		}
	}()
	return cl
}

// item returns the item of domain, adding it, and making room for it, when
// it is not in memory.
func (c *Cache) item(domain mtasts.Domain, now time.Time) *item {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.items.Load(domain.ASCII); ok {
		return v.(*item)
	}
	if c.nitems >= c.opts.MaxEntries {
		c.evictLocked()
	}
	it := &item{domain: domain}
	it.lastUsed.Store(now.UnixNano())
	c.items.Store(domain.ASCII, it)
	c.nitems++
	return it
}

// removeLocked drops it from memory, if it is still there.
func (c *Cache) removeLocked(it *item) {
	if c.items.CompareAndDelete(it.domain.ASCII, it) {
		c.nitems--
	}
}

// evictLocked makes room by dropping the least recently used items: the
// oldest 1/64 of MaxEntries, at least one. Hits keep no ordered list, which
// would make them write shared memory, so finding the oldest takes a scan;
// dropping a batch per scan keeps the cost per added domain small however
// large MaxEntries is. A dropped policy is still in the store.
func (c *Cache) evictLocked() {
	type aged struct {
		used int64
		it   *item
	}
	all := make([]aged, 0, c.nitems)
	c.items.Range(func(_, v any) bool {
		it := v.(*item)
		all = append(all, aged{it.lastUsed.Load(), it})
		return true
	})
	n := max(1, c.opts.MaxEntries/64)
	if n < len(all) {
		slices.SortFunc(all, func(a, b aged) int { return cmp.Compare(a.used, b.used) })
	}
	for _, a := range all[:min(n, len(all))] {
		c.removeLocked(a.it)
	}
}

// update brings the cache's knowledge of domain up to date: the store when
// the domain is not in memory, then the TXT record, then, when the record
// announces a policy the cache does not have (or for a full refresh), the
// policy. It returns the new result, whether a policy loaded from the store
// wants its record checked, and what is left to do with the store before
// waiting callers have the result (saving the policy, releasing a fleet lock),
// or nil.
func (c *Cache) update(domain mtasts.Domain, full bool) (_ Result, checkNext bool, after func()) {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.Timeout)
	defer cancel()
	now := time.Now()
	it := c.item(domain, now)
	s := it.snap.Load()

	if s == nil {
		if ls := c.load(ctx, domain, now); ls != nil {
			it.snap.Store(ls)
			return ls.result(false), true, nil
		}
	}

	// RFC 8461 3 and 5.1: look the TXT record up; a new id means a new
	// policy, the same id that the cached policy is current.
	record, _, lookupErr := c.opts.LookupRecord(ctx, c.opts.Resolver, domain)
	it.checkedAt.Store(now.UnixNano())
	var id string
	switch {
	case lookupErr == nil:
		id = record.ID
	case full && s.valid(now):
		// RFC 8461 10.2: refresh by "fetching the current live policy
		// in a background task ... regardless of the state of the
		// '_mta-sts' TXT record", so that an attacker who blocks DNS
		// must do so for a policy's whole lifetime. The cached id
		// stays, the record's failure is reported.
		id = s.id
	default:
		// RFC 8461 3.1, 5.1: no usable record removes no cached policy.
		return c.failed(it, s, "", lookupErr, now), false, nil
	}
	if s.valid(now) && id == s.id && !full {
		if s.err != nil || !s.retryAt.IsZero() {
			s = s.withErr(nil)
			s.failedID, s.retryAt = "", time.Time{}
			it.snap.Store(s)
		}
		return s.result(false), false, nil
	}
	if s != nil && s.failedID == id && now.Before(s.retryAt) {
		// RFC 8461 3.3: after a failed fetch, "limit further attempts
		// to a period of five minutes or longer per version ID".
		return s.result(false), false, nil
	}

	// A store shared by a fleet may hold the lock on this fetch: another
	// cache is fetching, and saves what it gets.
	if ls := c.waitForFleet(ctx, it, domain, id, full, now); ls != nil {
		return ls.result(false), false, nil
	}

	policy, text, err := c.opts.FetchPolicy(ctx, domain)
	c.metrics.fetches.WithLabelValues(mtasts.ResultLabel(err)).Inc()
	if full {
		c.metrics.refreshes.WithLabelValues(mtasts.ResultLabel(err)).Inc()
	}
	if err != nil {
		return c.failed(it, s, id, err, now), false, func() { c.unlockFleet(domain) }
	}
	// RFC 8461 3.2: the policy is valid for max_age (capped by
	// Policy.MaxAge at 31557600 seconds) from the fetch.
	ns := &snapshot{policy: policy, text: text, id: id, fetched: now, expires: now.Add(policy.MaxAge())}
	if lookupErr != nil {
		ns = ns.withErr(lookupErr)
	}
	it.snap.Store(ns)
	e := Entry{Domain: domain.ASCII, RecordID: id, Policy: text, Fetched: now, Expires: ns.expires}
	return ns.result(true), false, func() {
		ctx, cancel := c.storeContext()
		defer cancel()
		if err := c.opts.Store.Save(ctx, e); err != nil {
			c.storeError("save", domain, err)
		}
		c.unlockFleet(domain)
	}
}

// storeContext returns the context of one call to the store.
func (c *Cache) storeContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.opts.StoreTimeout)
}

// waitForFleet takes the fleet-wide fetch lock of domain when the store is a
// Locker. When another cache holds it, it waits, up to LockWait, for that
// cache to save a policy with the record's id, and returns it; nil means
// "fetch it yourself": the lock is held, the store has no lock, or the holder
// was too slow. A failing lock is a reason to fetch, never to fail.
func (c *Cache) waitForFleet(ctx context.Context, it *item, domain mtasts.Domain, id string, full bool, now time.Time) *snapshot {
	locker, ok := c.opts.Store.(Locker)
	if !ok || c.lockFleet(locker, domain) {
		return nil
	}
	deadline := time.NewTimer(c.opts.LockWait)
	defer deadline.Stop()
	poll := time.NewTicker(max(c.opts.LockWait/20, time.Millisecond))
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-deadline.C:
			return nil
		case <-poll.C:
		}
		ls := c.load(ctx, domain, time.Now())
		if ls != nil && ls.id == id && (!full || ls.fetched.After(now.Add(-c.opts.LockWait))) {
			it.snap.Store(ls)
			return ls
		}
		// A holder that failed, or died and let the lock expire, saves
		// nothing: take the lock and fetch instead of waiting out
		// LockWait.
		if c.lockFleet(locker, domain) {
			return nil
		}
	}
}

// lockFleet tries to take the fleet-wide fetch lock of domain. It reports
// whether this cache should fetch: it holds the lock now, or the lock failed,
// which is no reason to wait.
func (c *Cache) lockFleet(locker Locker, domain mtasts.Domain) bool {
	ctx, cancel := c.storeContext()
	held, err := locker.Lock(ctx, domain.ASCII)
	cancel()
	if err != nil {
		c.storeError("lock", domain, err)
		return true
	}
	if held {
		c.lockMu.Lock()
		c.locked[domain.ASCII] = true
		c.lockMu.Unlock()
	}
	return held
}

// unlockFleet releases the fleet-wide fetch lock of domain, if this cache
// holds it.
func (c *Cache) unlockFleet(domain mtasts.Domain) {
	c.lockMu.Lock()
	held := c.locked[domain.ASCII]
	delete(c.locked, domain.ASCII)
	c.lockMu.Unlock()
	if !held {
		return
	}
	ctx, cancel := c.storeContext()
	defer cancel()
	if err := c.opts.Store.(Locker).Unlock(ctx, domain.ASCII); err != nil {
		c.storeError("unlock", domain, err)
	}
}

// failed records a failed lookup or fetch. A valid cached policy stays, and
// reports the failure (RFC 8461 3.3, 5.1: "if no live policy can be
// discovered ... but a valid (non-expired) policy exists in the sender's
// cache, the sender MUST apply that cached policy"). Without one, the domain
// has no policy until the back-off ends. A domain without a record simply has
// none: that is not reported as a failure.
//
// Either way no new attempt is made for Backoff: for the failed record id
// (RFC 8461 3.3, "limit further attempts to a period of five minutes or longer
// per version ID"), or, when the record itself could not be had, for the
// domain, so that neither Run nor the id checks hammer a failing DNS or
// policy host.
func (c *Cache) failed(it *item, s *snapshot, id string, err error, now time.Time) Result {
	if s.valid(now) {
		// RFC 8461 3.3, 10.2: alert administrators when a refresh
		// fails, "unless the cached policy mode is 'none'".
		level := slog.LevelWarn
		if s.none() {
			level = slog.LevelDebug
		}
		c.log.Log(c.ctx, level, "mta-sts: refreshing cached policy failed, keeping it", "domain", it.domain.LogString(), "mode", s.policy.Mode, "expires", s.expires, "err", err)
		ns := s.withErr(err)
		ns.failedID, ns.retryAt = id, now.Add(c.opts.Backoff)
		it.snap.Store(ns)
		return ns.result(false)
	}
	ns := &snapshot{retryAt: now.Add(c.opts.Backoff), failedID: id}
	if !errors.Is(err, mtasts.ErrNoRecord) {
		ns.err, ns.resultType, ns.reason = err, mtasts.TLSReportResultType(err), mtasts.TLSReportFailureReason(err)
	}
	it.snap.Store(ns)
	return ns.result(false)
}

// load returns the domain's policy from the store, or nil when the store has
// none that is valid.
func (c *Cache) load(ctx context.Context, domain mtasts.Domain, now time.Time) *snapshot {
	ctx, cancel := context.WithTimeout(ctx, c.opts.StoreTimeout)
	defer cancel()
	e, ok, err := c.opts.Store.Load(ctx, domain.ASCII)
	if err != nil {
		c.storeError("load", domain, err)
		return nil
	}
	if !ok || now.After(e.Expires) {
		return nil
	}
	if e.Domain != domain.ASCII {
		c.storeError("load", domain, fmt.Errorf("cache: store returned the entry of %q", e.Domain))
		return nil
	}
	policy, err := mtasts.ParsePolicy(e.Policy)
	if err != nil {
		c.storeError("load", domain, err)
		return nil
	}
	// The stored expiry stands, but never beyond what the policy allows.
	expires := e.Expires
	if limit := e.Fetched.Add(policy.MaxAge()); limit.Before(expires) {
		expires = limit
	}
	if now.After(expires) {
		return nil
	}
	return &snapshot{policy: policy, text: e.Policy, id: e.RecordID, fetched: e.Fetched, expires: expires}
}

func (c *Cache) storeError(op string, domain mtasts.Domain, err error) {
	c.metrics.storeErrors.WithLabelValues(op).Inc()
	c.log.Warn("mta-sts: policy store failed, going on without it", "op", op, "domain", domain.LogString(), "err", err)
}

// Run refreshes policies in use before they expire, and drops domains not
// used for longer than their policy's lifetime, every RunInterval until ctx
// ends or the cache is closed. It returns ctx's error, or nil after Close.
//
// A policy is fetched again once it is RefreshAge old (at most half its
// lifetime), whether or not its id changed, so a domain that gets mail daily
// never lapses (RFC 8461 3.3, 10.2).
func (c *Cache) Run(ctx context.Context) error {
	ticker := time.NewTicker(c.opts.RunInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.ctx.Done():
			return nil
		case now := <-ticker.C:
			c.sweep(ctx, now)
		}
	}
}

// sweep is one round of Run.
func (c *Cache) sweep(ctx context.Context, now time.Time) {
	var drop, refresh []*item
	c.items.Range(func(_, v any) bool {
		it := v.(*item)
		s := it.snap.Load()
		if s == nil {
			return true
		}
		lifetime := s.expires.Sub(s.fetched)
		if s.policy == nil {
			lifetime = c.opts.Backoff
		}
		idle := now.Sub(time.Unix(0, it.lastUsed.Load()))
		switch {
		case idle > lifetime:
			drop = append(drop, it)
		case s.valid(now) && now.Sub(s.fetched) >= min(c.opts.RefreshAge, lifetime/2) && !now.Before(s.retryAt):
			refresh = append(refresh, it)
		}
		return true
	})

	// At most MaxBackground refreshes at once: wait for a slot for each.
	for _, it := range refresh {
		select {
		case c.background <- struct{}{}:
			c.start(it.domain, true, true)
		case <-ctx.Done():
			return
		case <-c.ctx.Done():
			return
		}
	}

	// Dropped from memory only: the store keeps the entry until it
	// expires there, since a store shared by a fleet may hold a copy
	// another cache refreshed, and a later delivery is better protected
	// by a stored policy than by none (RFC 8461 10.2).
	for _, it := range drop {
		c.mu.Lock()
		c.removeLocked(it)
		c.mu.Unlock()
	}
}

// Close stops Run and the cache's background work, and waits for it to end.
// Get after Close returns results with an error.
func (c *Cache) Close() error {
	c.callMu.Lock()
	c.closed = true
	c.callMu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// Len returns the number of domains in memory.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nitems
}
