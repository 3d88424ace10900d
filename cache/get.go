package cache

import (
	"context"
	"time"

	"github.com/mtasts-go/mtasts"
)

// call is one running update of a domain, which concurrent callers share.
type call struct {
	done chan struct{}
	res  Result
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
