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
// fakes of the lookup and the fetch (or an in-memory Resolver) standing in
// for the network, whose I/O a bubble cannot wait for; a real TLS
// server is used where time does not matter, as for coalescing.
package cache

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtasts-go/mtasts"
)

// Options configure a Cache. Only Resolver is required.
type Options struct {
	// Resolver looks up _mta-sts TXT records, e.g. &adns.Resolver{}.
	// A call may bring its own (see WithResolver).
	Resolver mtasts.Resolver

	// Store keeps policies beyond the cache's memory: across restarts
	// (OpenFileStore) or a fleet (a store in Redis). Default: none; the
	// cache's memory holds each policy once, and a policy dropped from
	// memory (see MaxEntries) is fetched again when next needed.
	Store Store

	// MaxEntries bounds the domains held in memory. To make room, the
	// cache drops domains without a valid policy first, then the least
	// recently used. Default 10000.
	MaxEntries int

	// CheckInterval is how often, at most, the TXT record of a domain
	// with a cached policy is looked up to see whether its id changed
	// (RFC 8461 5.1). The check runs in the background: the cached
	// policy is returned at once. Counted in whole seconds, at least one.
	// Default 1 hour.
	CheckInterval time.Duration

	// CheckEveryGet makes every Get look the TXT record up before it
	// answers, as RFC 8461 5.1 allows ("Sending MTAs may unconditionally
	// check for a new policy at this step"), and fetch the policy when the
	// record's id changed: a new policy is seen at the next delivery,
	// at the price of a DNS round trip in front of each. Concurrent Gets
	// of a domain share one lookup. The back-off of a failed fetch holds
	// (RFC 8461 3.3). Default: off; a cached policy is answered from
	// memory and its record checked once per CheckInterval.
	CheckEveryGet bool

	// RefreshAge is the age after which Run fetches a policy still in use
	// again, before it expires (RFC 8461 3.3, "proactively refresh ...
	// once per day"); at most half the policy's lifetime. Default 24
	// hours.
	RefreshAge time.Duration

	// Backoff is how long, after a failed fetch, the cache makes no new
	// attempt for the domain (RFC 8461 3.3: "five minutes or longer"), how
	// long it remembers that a domain has no policy (that one counted in
	// whole seconds, rounded up), and how soon after a fetch a policy that
	// has already expired (max_age 0, say) is fetched again: meanwhile the
	// domain has none to apply. Default 5 minutes.
	Backoff time.Duration

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

	// MaxNetwork bounds the updates of domains (a TXT lookup and, when
	// needed, a policy fetch; a store load for a domain not in memory)
	// that run at once, over all domains. An update beyond it waits,
	// without a goroutine, for a slot; the callers waiting for it wait on
	// their own contexts. This bounds the memory, goroutines and
	// connections that many hostile or hanging domains can take (see
	// docs/security.md for what 10,000 of them cost). The wait is exported as
	// the histogram mtastsgo_cache_network_wait_seconds. Default 256.
	//
	// When no slot is free, the update asked for last runs first; one
	// whose callers have all left no longer waits, and one that runs
	// gives its slot to a waiting update (see PreemptAfter).
	MaxNetwork int

	// PreemptAfter is how long an update may hold one of the MaxNetwork
	// slots while others wait for one. Past it, the update that has run
	// longest gives way: it ends as a fetch that timed out, and the
	// domain backs off (see Backoff). So policy hosts that accept
	// connections and never answer delay a healthy domain's first Get by
	// about PreemptAfter, however many there are. While slots are free, an
	// update runs until Timeout. Default 5 seconds.
	PreemptAfter time.Duration

	// StoreTimeout bounds each call to the Store (and its Locker), so
	// that a hung store delays a miss by no more per call (a load, a
	// lock, a save), and never a hit: past it, the cache goes on as
	// without the store. Default 5 seconds.
	StoreTimeout time.Duration

	// Timeout bounds one TXT lookup and policy fetch. Default 90 seconds:
	// the one minute of mtasts.FetchTimeout and time for DNS.
	Timeout time.Duration

	// Logger receives warnings about failed refreshes of policies not in
	// mode none (RFC 8461 3.3, 10.2) and about failing stores. A call may
	// bring its own (see WithLogger). Default: nothing is logged.
	Logger *slog.Logger

	// Client looks up records (with Resolver) and fetches policies, with
	// its HTTPClient and Logger, e.g. to trust other roots or to log each
	// lookup and fetch at debug level. Default (nil): as the package
	// functions mtasts.LookupRecord and mtasts.FetchPolicy do, with
	// mtasts.HTTPClient as it is at the time of each fetch, logging
	// nothing.
	Client *mtasts.Client

	// lookupRecord and fetchPolicy, when set, stand in for Client's
	// methods: the package's tests set them (export_test.go) to stand in
	// for the network.
	lookupRecord func(ctx context.Context, resolver mtasts.Resolver, domain mtasts.Domain) (*mtasts.Record, string, error)
	fetchPolicy  func(ctx context.Context, domain mtasts.Domain) (*mtasts.Policy, string, error)
}

// ErrClosed is the error of a Result that a closed cache could only have
// answered with a lookup, a fetch or a call to its store.
var ErrClosed = errors.New("cache: closed")

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

	// items holds an *item per A-label domain. Hits, the common case by
	// far, read it without a lock or a shared write, so they scale across
	// cores; additions and evictions, rare, are serialized by mu.
	items *table
	mu    sync.Mutex

	// epoch is the time from which items count seconds; it lies
	// CheckInterval before New, so that an item's zero checkedAt means a
	// check is due.
	epoch time.Time
	// checkEvery is CheckInterval in seconds, at least one.
	checkEvery uint32
	// backoffSeconds is Backoff in seconds, rounded up.
	backoffSeconds uint32
	// swept is when Run's last round began, in seconds since epoch.
	swept atomic.Uint32

	// lookups counts the TXT lookups begun, so that Recheck can tell
	// one that began after it was called.
	lookups atomic.Uint64

	// The MaxNetwork slots (see slots.go), guarded by callMu.
	callMu       sync.Mutex
	calls        map[string]*call // the call of each domain queued or running
	active       []*call          // updates running, oldest first; at most MaxNetwork
	queue        []*call          // calls waiting for a slot; the last runs first
	queued       int              // calls in queue still wanted
	givingWay    int              // updates in active canceled to give way, not yet ended
	preemptTimer *time.Timer      // fires when the oldest update becomes overdue
	closed       bool             // set by Close; no new background work after it

	// background holds a token per background check or refresh running.
	background chan struct{}
	// storeCalls holds a token per call to the store running.
	storeCalls chan struct{}

	lockMu sync.Mutex
	locked map[string]string // tokens of the fleet locks held, by domain
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
	setDefault(&opts.Timeout, mtasts.FetchTimeout+30*time.Second)
	setDefault(&opts.LockWait, 10*time.Second)
	setDefault(&opts.MaxBackground, 16)
	setDefault(&opts.StoreTimeout, 5*time.Second)
	setDefault(&opts.MaxNetwork, 256)
	setDefault(&opts.PreemptAfter, 5*time.Second)
	if opts.Store == nil {
		opts.Store = noStore{}
	}
	// A nil *mtasts.Client's methods are the package functions.
	if opts.lookupRecord == nil {
		opts.lookupRecord = opts.Client.LookupRecord
	}
	if opts.fetchPolicy == nil {
		opts.fetchPolicy = opts.Client.FetchPolicy
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{
		opts:   opts,
		log:    log,
		calls:  map[string]*call{},
		locked: map[string]string{},

		items:          newTable(),
		epoch:          time.Now().Add(-opts.CheckInterval - time.Second),
		checkEvery:     uint32(max(opts.CheckInterval/time.Second, 1)),
		backoffSeconds: uint32((opts.Backoff + time.Second - 1) / time.Second),
		background:     make(chan struct{}, opts.MaxBackground),
		storeCalls:     make(chan struct{}, maxStoreCalls),
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

// Close stops Run and the cache's background work, and waits for it to end.
// Get after Close still answers from memory, a valid policy included, and
// starts no lookup, fetch or store call: where it would need one, its
// Result has ErrClosed and no policy (see Get). Recheck after Close returns
// ErrClosed.
func (c *Cache) Close() error {
	c.callMu.Lock()
	c.closed = true
	if c.preemptTimer != nil {
		c.preemptTimer.Stop()
	}
	queued := c.queue
	c.queue, c.queued = nil, 0
	for _, cl := range queued {
		if cl.state != callQueued {
			continue // dropped: its callers left
		}
		cl.state = callIdle
		delete(c.calls, cl.domain.ASCII)
		c.releaseBackground(cl.kind)
		cl.res = closedResult
		close(cl.done)
	}
	c.callMu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}
