package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/logname"
	"github.com/mtasts-go/mtasts/internal/metriclabel"
	"github.com/mtasts-go/mtasts/internal/quoted"
)

// update brings the cache's knowledge of domain up to date: the store when
// the domain is not in memory, then the TXT record, then, when the record
// announces a policy the cache does not have (or for a full refresh), the
// policy. It returns the new result, the number of its TXT lookup (0 for
// none), whether a policy loaded from the store wants its record checked, and
// what is left to do with the store before waiting callers have the result
// (saving the policy, releasing a fleet lock), or nil.
//
// Every result passes through Cache.result, which leaves out a policy that
// has expired: no early return can apply one (RFC 8461 5.1). Validity is
// judged at the time each network step ended, so that a lookup or fetch
// that hangs until after a cached policy expired does not return it.
//
// ctx ends when the cache closes or the update gives way to another (see
// slots.go). env is the resolver of its lookup and the logger of its warnings.
func (c *Cache) update(ctx context.Context, domain mtasts.Domain, full bool, env callEnv) (_ Result, lookup uint64, checkNext bool, after func()) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	now := time.Now()
	it := c.item(domain, now)
	s := it.snap.Load()

	if s == nil {
		if ls := c.load(ctx, env.log, domain, now); ls != nil {
			it.snap.Store(ls)
			return c.result(it, ls, now, fromMemory), 0, true, nil
		}
	}

	// RFC 8461 3 and 5.1: look the TXT record up; a new id means a new
	// policy, the same id that the cached policy is current.
	lookup = c.lookups.Add(1)
	record, _, lookupErr := c.opts.lookupRecord(ctx, env.resolver, domain)
	it.checkedAt.Store(c.clock(now))
	now = time.Now()
	if lookupErr != nil {
		if g := gaveWayCause(ctx); g != nil {
			if !g.overdue {
				return Result{Err: g}, lookup, false, nil
			}
			lookupErr = fmt.Errorf("%w: _mta-sts.%s: %w", mtasts.ErrDNS, domain.ASCII, g)
		}
	}
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
		id = s.id()
	default:
		// RFC 8461 3.1, 5.1: no usable record removes no cached policy.
		return c.failed(env.log, domain, it, s, newFailure(lookupErr, "", now.Add(c.opts.Backoff)), now), lookup, false, nil
	}
	if s.failedFor(id, now) {
		// RFC 8461 3.3: after a failed fetch, "limit further attempts
		// to a period of five minutes or longer per version ID". A
		// record check that shows the same id again changes nothing:
		// the fetch of that id still failed, and still waits.
		return c.result(it, s, now, fromMemory), lookup, false, nil
	}
	if s.fetchedRecently(id, now, c.opts.Backoff) && !full {
		// RFC 8461 3.3: "Senders may wish to rate-limit the frequency
		// of attempts to fetch the HTTPS endpoint even if a valid TXT
		// record for the recipient domain exists". A policy of this id
		// that expired sooner than Backoff after its fetch (max_age 0,
		// say) is not fetched again before then: its domain cannot
		// make us fetch for every delivery.
		return c.result(it, s, now, fromMemory), lookup, false, nil
	}
	if s.valid(now) && id == s.id() && !full {
		// The cached policy is current. A failure of another id, or
		// of the record itself, is over.
		if s.fail != nil {
			s = s.withFailure(nil)
			it.snap.Store(s)
		}
		return c.result(it, s, now, fromMemory), lookup, false, nil
	}

	// A store shared by a fleet may hold the lock on this fetch: another
	// cache is fetching, and saves what it gets.
	if ls := c.waitForFleet(ctx, env.log, it, domain, id, full, now); ls != nil {
		return c.result(it, ls, now, fromMemory), lookup, false, nil
	}

	fetched := time.Now()
	policy, text, err := c.opts.fetchPolicy(ctx, domain)
	now = time.Now()
	c.metrics.fetches.WithLabelValues(metriclabel.Result(err)).Inc()
	if full {
		c.metrics.refreshes.WithLabelValues(metriclabel.Result(err)).Inc()
	}
	if err != nil {
		if g := gaveWayCause(ctx); g != nil {
			if !g.overdue {
				return Result{Err: g}, lookup, false, func() { c.unlockFleet(env.log, domain) }
			}
			if !errors.Is(err, g) {
				err = fmt.Errorf("%w (%w)", err, g)
			}
		}
		f := newFailure(err, id, now.Add(c.opts.Backoff))
		f.keepText(text)
		return c.failed(env.log, domain, it, s, f, now), lookup, false, func() { c.unlockFleet(env.log, domain) }
	}
	// RFC 8461 3.2: the policy is valid for max_age (capped by
	// Policy.MaxAge at 31557600 seconds) from the fetch, counted from
	// when it began.
	expires := fetched.Add(policy.MaxAge())
	ns := newSnapshot(policy, id, fetched, expires)
	if lookupErr != nil {
		ns = ns.withFailure(newFailure(lookupErr, "", time.Time{}))
	}
	it.snap.Store(ns)
	e := Entry{Domain: domain.ASCII, RecordID: id, Policy: text, Fetched: fetched, Expires: expires}
	// The policy held when it was fetched: the calls that waited for
	// this fetch apply it, even when its max_age (0, say) has run out
	// by now. Later calls judge it at their own time (RFC 8461 5.1).
	return c.result(it, ns, fetched, fetchedNow), lookup, false, func() {
		if err := c.storeCall(c.ctx, func(ctx context.Context) error { return c.opts.Store.Save(ctx, e) }); err != nil {
			c.storeError(env.log, "save", domain, err)
		}
		c.unlockFleet(env.log, domain)
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
func (c *Cache) failed(log *slog.Logger, domain mtasts.Domain, it *item, s *snapshot, f *failure, now time.Time) Result {
	if s.valid(now) {
		// RFC 8461 3.3, 10.2: alert administrators when a refresh
		// fails, "unless the cached policy mode is 'none'".
		level := slog.LevelWarn
		if s.none() {
			level = slog.LevelDebug
		}
		log.Log(c.ctx, level, "mta-sts: refreshing cached policy failed, keeping it", "domain", logname.Domain(domain.ASCII, domain.Unicode), "mode", compactMode(s.compact), "expires", time.Unix(0, s.expires), "err", f.err)
		ns := s.withFailure(f)
		it.snap.Store(ns)
		return c.result(it, ns, now, triedNow)
	}
	ns := noRecord // it was looked up now; see backingOff
	if !errors.Is(f.err, mtasts.ErrNoRecord) {
		ns = &snapshot{fail: f}
	}
	it.snap.Store(ns)
	return c.result(it, ns, now, triedNow)
}

// load returns the domain's policy from the store, or nil when the store has
// none that is valid.
func (c *Cache) load(ctx context.Context, log *slog.Logger, domain mtasts.Domain, now time.Time) *snapshot {
	var (
		e  Entry
		ok bool
	)
	err := c.storeCall(ctx, func(ctx context.Context) (err error) {
		e, ok, err = c.opts.Store.Load(ctx, domain.ASCII)
		return err
	})
	if err != nil {
		c.storeError(log, "load", domain, err)
		return nil
	}
	if !ok || now.After(e.Expires) {
		return nil
	}
	if e.Domain != domain.ASCII {
		c.storeError(log, "load", domain, fmt.Errorf("cache: store returned the entry of %s", quoted.String(e.Domain)))
		return nil
	}
	policy, err := mtasts.ParsePolicy(e.Policy)
	if err != nil {
		c.storeError(log, "load", domain, err)
		return nil
	}
	fetched := e.Fetched
	if fetched.After(now) {
		// A fetch time ahead of now comes from a clock that was
		// wrong: a fleet member's, or a restored machine's. Trusted,
		// it would keep the policy past its max_age from the real
		// fetch and keep it from being refreshed (RFC 8461 3.3, 5.1).
		// Take it as fetched now, so that it lives at most max_age
		// (at most MaxAgeLimit) from now.
		c.storeInvalid(log, domain, fmt.Errorf("cache: store entry fetched at %v, after now (%v): taken as fetched now", e.Fetched, now))
		fetched = now
	}
	// The stored expiry stands, but never beyond what the policy allows
	// (RFC 8461 3.2: max_age from the fetch).
	expires := e.Expires
	if limit := fetched.Add(policy.MaxAge()); limit.Before(expires) {
		expires = limit
	}
	if now.After(expires) {
		return nil
	}
	// A store that keeps times to the second or millisecond may give an
	// expiry a little past the limit; that is no cause for a write on
	// every load.
	if !fetched.Equal(e.Fetched) || e.Expires.Sub(expires) > time.Second {
		c.rewriteLoaded(ctx, log, domain, e, fetched, expires)
	}
	return newSnapshot(policy, e.RecordID, fetched, expires)
}

// rewriteLoaded saves the entry e, just loaded, with the fetch and expiry
// times that load corrected.
//
// Corrected only in memory, a fetch time in the future would be taken as
// now again by every restart and every member of a fleet, each giving the
// policy a new max_age: while fetches fail, it would apply for ever, and a
// store that keeps entries until Expires (Redis's TTL) would keep it for
// as long as the wrong clock said. Saved, the correction is what they all
// load: the policy applies until max_age after the first load, at most
// MaxAgeLimit, and not after (RFC 8461 3.2, 5.1).
//
// The entry is rewritten, not deleted: deleted, it would be lost to the
// fleet and to restarts at once, while it may be the only policy they have
// when fetches fail, the case a cached policy is for (RFC 8461 5.1). A save
// may overwrite an entry that another fleet member saved since the load;
// that entry's policy comes back with the next fetch, and the one written
// here lasts at most its max_age.
func (c *Cache) rewriteLoaded(ctx context.Context, log *slog.Logger, domain mtasts.Domain, e Entry, fetched, expires time.Time) {
	e.Fetched, e.Expires = fetched, expires
	if err := c.storeCall(ctx, func(ctx context.Context) error { return c.opts.Store.Save(ctx, e) }); err != nil {
		c.storeError(log, "save", domain, err)
	}
}
