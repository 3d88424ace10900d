package cache

import (
	"context"
	"errors"
	"time"

	"github.com/mtasts-go/mtasts"
)

// call is one running update of a domain, which concurrent callers share.
type call struct {
	done chan struct{}
	res  Result
	// lookup is the number of the update's TXT lookup, counted by
	// Cache.lookups when it began; 0 when the update looked nothing up.
	lookup uint64

	domain mtasts.Domain
	kind   kind
	env    callEnv   // the resolver and logger of the call that started it
	queued time.Time // when the call was asked for

	// The rest is guarded by Cache.callMu.
	state   callState
	waiters int       // Gets and Rechecks waiting on done
	started time.Time // when the update began to run
	cancel  context.CancelCauseFunc
	gaveWay bool // canceled to give its slot away
}

// Get returns the policy to apply to mail for domain now (RFC 8461 5.1).
//
// A valid policy in memory is returned at once; if its TXT record was last
// checked more than CheckInterval ago, a check starts in the background. A
// domain in use is answered without allocating: memory keeps an idle
// domain's policy in a compact form, which the first Get after a fetch, or
// after a round of Run without use, decodes once for the Gets that follow. A domain known to have no policy, or whose last attempt
// failed less than Backoff ago, is answered from memory too: no policy, and
// the failure if there was one. Otherwise Get waits for the one lookup and
// fetch that all concurrent callers for domain share, or for ctx: when ctx
// ends first, the Result has no policy and ctx's error, and the shared work
// goes on for the others. Get never fails for a store's sake. Before
// permanently failing a message because of an enforce policy, call Recheck.
//
// After Close, Get still answers from memory as above, but starts no lookup,
// fetch or store call: a domain that would need one gets a Result with
// ErrClosed and no policy. A closed cache thus never drops a valid policy it
// holds, which would deliver mail as if the domain had none.
//
// The updates that Get starts use the resolver and logger of ctx, if set
// with WithResolver and WithLogger; a Get that joins a running update shares
// that update's.
func (c *Cache) Get(ctx context.Context, domain mtasts.Domain) (r Result) {
	if c.opts.CheckEveryGet {
		if res, ok := c.getChecked(ctx, domain); ok {
			return res
		}
	}
	now := time.Now()
	if it := c.items.get(domain.ASCII); it != nil {
		sec := c.clock(now)
		it.touch(sec)
		s := it.snap.Load()
		if s.valid(now) {
			c.metrics.hits.Inc()
			// RFC 8461 5.1 asks for the record to be checked; do it at
			// most once per CheckInterval, off the caller's path. The
			// caller that moves checkedAt starts the check.
			if last := it.checkedAt.Load(); sec-min(last, sec) >= c.checkEvery && it.checkedAt.CompareAndSwap(last, sec) {
				if c.tryBackground() {
					// The item's own name: the caller's
					// was not validated on this path.
					c.start(c.envOf(ctx), it.domain(), kindCheck)
				} else {
					// All background slots busy: leave
					// the check to a later Get.
					it.checkedAt.CompareAndSwap(sec, last)
				}
			}
			c.fillResult(&r, it, s, now, fromMemory, true)
			return r
		}
		if c.backingOff(it, s, now) {
			// Known to have no policy, or backing off after a
			// failure (RFC 8461 3.3). An expired policy is not
			// applied, back-off or not (RFC 8461 5.1).
			c.metrics.hits.Inc()
			c.fillResult(&r, it, s, now, fromMemory, true)
			return r
		}
	}
	c.metrics.misses.Inc()
	if err := domain.Validate(); err != nil {
		// Checked on a miss only: no item is made for a name that is
		// not a host name, so none can be hit.
		return Result{Err: err}
	}
	cl := c.start(c.envOf(ctx), domain, kindGet)
	select {
	case <-cl.done:
		return cl.res
	case <-ctx.Done():
		c.leave(cl)
		return Result{Err: ctx.Err()}
	}
}

// getChecked is Get with Options.CheckEveryGet: it waits for a lookup of
// the domain's record that runs now, its own or a concurrent call's, and the
// fetch of a changed id (RFC 8461 5.1). After Close it reports false, and
// Get answers from memory.
func (c *Cache) getChecked(ctx context.Context, domain mtasts.Domain) (Result, bool) {
	if err := domain.Validate(); err != nil {
		c.metrics.misses.Inc()
		return Result{Err: err}, true
	}
	cl := c.start(c.envOf(ctx), domain, kindRecheck)
	select {
	case <-cl.done:
		if errors.Is(cl.res.Err, ErrClosed) {
			return Result{}, false // Get counts what it answers
		}
	case <-ctx.Done():
		c.leave(cl)
		c.metrics.misses.Inc()
		return Result{Err: ctx.Err()}, true
	}
	c.metrics.misses.Inc()
	return cl.res, true
}

// Recheck looks up the TXT record of domain now, fetches the policy when the
// record's id differs from the cached one, and returns the result as Get
// does. Call it before permanently failing a message because of an enforce
// policy: RFC 8461 5 and 5.1 step 3 say a delivery "MUST NOT be permanently
// failed until the sender has first checked for the presence of a new policy
// (as indicated by the 'id' field in the '_mta-sts' TXT record)".
//
// Concurrent Gets and Rechecks of domain share the work, but Recheck returns
// only the outcome of a lookup that began after it was called, and of the
// fetch of the record's id when that differs from the cached one. A valid
// cached policy stays when the lookup or fetch fails, and a record id whose
// fetch failed is not fetched again before Backoff (RFC 8461 3.3). When ctx
// ends first, the Result has no policy and ctx's error; after Close, the
// Result has ErrClosed. Its lookups use the resolver and logger of ctx, as
// Get's do.
func (c *Cache) Recheck(ctx context.Context, domain mtasts.Domain) Result {
	if err := domain.Validate(); err != nil {
		return Result{Err: err}
	}
	mark := c.lookups.Load()
	e := c.envOf(ctx)
	for {
		// A running update may have looked the record up before
		// this call, or have loaded the policy from the store
		// without a lookup; then wait for it and run another.
		cl := c.start(e, domain, kindRecheck)
		select {
		case <-cl.done:
		case <-ctx.Done():
			c.leave(cl)
			return Result{Err: ctx.Err()}
		}
		if cl.lookup > mark || errors.Is(cl.res.Err, ErrClosed) {
			return cl.res
		}
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

// kind is why an update of a domain runs.
type kind uint8

const (
	// kindGet: a Get found nothing usable in memory. An answer published
	// since by an update that just ended serves it.
	kindGet kind = iota
	// kindRecheck: a Recheck, which wants a lookup of its own.
	kindRecheck
	// kindCheck: a background check of a cached policy's record id; the
	// caller holds a background slot.
	kindCheck
	// kindRefresh: Run's refresh, which fetches the policy even when the
	// record's id is unchanged; the caller holds a background slot.
	kindRefresh
)

// start returns the running update of domain, starting one if none runs.
// For kindCheck and kindRefresh, the caller holds a background slot, which
// the update releases when it ends, or start at once when it starts none.
//
// At most MaxNetwork updates run at once. One beyond waits in c.queue, as a
// call without a goroutine, until a slot is free (see slots.go); its callers
// wait on their own contexts, and a Get or Recheck that stops waiting calls
// leave.
func (c *Cache) start(e callEnv, domain mtasts.Domain, k kind) *call {
	c.callMu.Lock()
	defer c.callMu.Unlock()
	if cl := c.calls[domain.ASCII]; cl != nil {
		c.releaseBackground(k)
		cl.waiters += waiting(k)
		return cl
	}
	if k == kindGet {
		// An update that ended after this Get looked at memory has
		// published its answer before leaving calls: that answer serves
		// this Get too, without another lookup.
		if it := c.items.get(domain.ASCII); it != nil {
			now := time.Now()
			if s := it.snap.Load(); s.valid(now) || c.backingOff(it, s, now) {
				return doneCall(c.result(it, s, now, fromMemory))
			}
		}
	}
	if c.closed {
		// Closed: no new background work. Close sets closed under
		// callMu before it waits, so no goroutine starts after Close
		// has begun waiting for them.
		c.releaseBackground(k)
		return doneCall(closedResult)
	}
	cl := &call{done: make(chan struct{}), domain: domain, kind: k, env: e, queued: time.Now(), waiters: waiting(k)}
	c.calls[domain.ASCII] = cl
	c.scheduleLocked(cl)
	return cl
}

// closedResult is the result of work asked of a closed cache.
var closedResult = Result{Err: ErrClosed}

// releaseBackground gives back the background slot that a background check
// or refresh holds.
func (c *Cache) releaseBackground(k kind) {
	if k >= kindCheck {
		<-c.background
	}
}

// launchLocked runs the update of cl in a goroutine, in one of the
// MaxNetwork slots. When it ends, the slot passes to the next call (see
// endLocked).
func (c *Cache) launchLocked(cl *call) {
	now := time.Now()
	c.metrics.networkWait.Observe(now.Sub(cl.queued).Seconds())
	ctx, cancel := context.WithCancelCause(c.ctx)
	cl.state, cl.started, cl.cancel = callRunning, now, cancel
	c.active = append(c.active, cl)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		res, lookup, checkNext, after := c.update(ctx, cl.domain, cl.kind == kindRefresh, cl.env)
		// Saved before the waiting callers have their answer, so that
		// a store shared by a fleet holds a policy once a Get has
		// returned it; StoreTimeout bounds the delay.
		if after != nil {
			after()
		}
		cancel(nil)
		c.releaseBackground(cl.kind)
		cl.res, cl.lookup = res, lookup
		c.callMu.Lock()
		c.endLocked(cl)
		c.callMu.Unlock()
		close(cl.done)
		if checkNext && c.tryBackground() {
			// A policy loaded from the store: check its record now,
			// in the background. Without a free slot, the next Get
			// does, as the policy was never checked.
			c.start(cl.env, cl.domain, kindCheck)
		}
	}()
}

// doneCall returns a call that has ended with res.
func doneCall(res Result) *call {
	cl := &call{done: make(chan struct{}), res: res}
	close(cl.done)
	return cl
}
