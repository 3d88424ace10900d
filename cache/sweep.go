package cache

import (
	"context"
	"time"
)

// runInterval is how often Run looks for policies to refresh and entries
// to drop.
const runInterval = time.Minute

// Run refreshes policies in use before they expire, and drops domains not
// used for longer than their policy's lifetime, once a minute until ctx
// ends or the cache is closed. It returns ctx's error, or nil after Close.
//
// A policy is fetched again once it is RefreshAge old (at most half its
// lifetime), whether or not its id changed, so a domain that gets mail daily
// never lapses (RFC 8461 3.3, 10.2). A domain not used for a round keeps its
// policy in a compact form only, which its next Get decodes again. A store
// that is a Pruner is pruned once an hour. The refreshes use the resolver and logger of ctx, if set with
// WithResolver and WithLogger.
//
// Run recovers no panic, and neither do the updates it starts. Bad input
// from the network makes errors, never panics (the parsers are fuzzed), so
// a panic is a bug: of the cache, or of the Resolver, Store or Client it
// calls. Recovered, it would leave the update's state half-made: callers
// waiting on it until their deadline, one of the MaxNetwork slots or a
// fleet lock held for good, a domain with no answer. Deliveries would then
// go on without the domain's policy, quietly, the downgrade MTA-STS exists
// to prevent. Recovering in Run alone would not even help: updates run in
// goroutines of their own, as those of Get do. A process that crashes is
// restarted, its policies in the Store and its mail in its queue.
func (c *Cache) Run(ctx context.Context) error {
	ticker := time.NewTicker(runInterval)
	defer ticker.Stop()
	pruning := newPruning(time.Now())
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.ctx.Done():
			return nil
		case now := <-ticker.C:
			c.sweep(ctx, now)
			c.prune(ctx, now, pruning)
		}
	}
}

// sweep is one round of Run. Besides refreshes and drops, it drops the
// decoded policy of each domain not used since the previous round, so that
// an idle domain costs memory its compact form alone (see snapshot.policy);
// its next hit decodes the policy again.
func (c *Cache) sweep(ctx context.Context, now time.Time) {
	var drop, refresh []*item
	e := c.envOf(ctx)
	nowSec := c.clock(now)
	prev := c.swept.Swap(nowSec)
	c.items.each(func(it *item) {
		s := it.snap.Load()
		if s == nil {
			return
		}
		lifetime := c.opts.Backoff
		if s.hasPolicy() {
			lifetime = time.Duration(s.expires - s.fetched)
		}
		used := it.lastUsed.Load()
		if used < prev {
			s.dropPolicy()
		}
		idle := time.Duration(nowSec-min(used, nowSec)) * time.Second
		switch {
		case idle > lifetime:
			drop = append(drop, it)
		case s.valid(now) && now.Sub(time.Unix(0, s.fetched)) >= min(c.opts.RefreshAge, lifetime/2) && s.retryDue(now):
			refresh = append(refresh, it)
		}
	})

	// At most MaxBackground refreshes at once: wait for a slot for each.
	for _, it := range refresh {
		select {
		case c.background <- struct{}{}:
			c.start(e, it.domain(), kindRefresh)
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
