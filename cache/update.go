package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mtasts-go/mtasts"
)

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
