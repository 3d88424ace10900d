package cache

import (
	"context"
	"log/slog"
	"time"

	"github.com/mtasts-go/mtasts"
)

// waitForFleet takes the fleet-wide fetch lock of domain when the store is a
// Locker. When another cache holds it, it waits, up to LockWait, for that
// cache to save a policy with the record's id, and returns it; nil means
// "fetch it yourself": the lock is held, the store has no lock, or the holder
// was too slow. A failing lock is a reason to fetch, never to fail.
func (c *Cache) waitForFleet(ctx context.Context, log *slog.Logger, it *item, domain mtasts.Domain, id string, full bool, now time.Time) *snapshot {
	locker, ok := c.opts.Store.(Locker)
	if !ok || c.lockFleet(log, locker, domain) {
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
		if ls := c.loadSaved(ctx, log, domain, id, full, now); ls != nil {
			it.snap.Store(ls)
			return ls
		}
		// A holder that failed, or died and let the lock expire, saves
		// nothing: take the lock and fetch instead of waiting out
		// LockWait.
		if c.lockFleet(log, locker, domain) {
			// The holder may have saved and released the lock
			// between the load above and this lock.
			if ls := c.loadSaved(ctx, log, domain, id, full, now); ls != nil {
				c.unlockFleet(log, domain)
				it.snap.Store(ls)
				return ls
			}
			return nil
		}
	}
}

// loadSaved returns the policy that another cache of the fleet saved for
// record id, or nil: one saved since the refresh began (now) for a full
// refresh.
func (c *Cache) loadSaved(ctx context.Context, log *slog.Logger, domain mtasts.Domain, id string, full bool, now time.Time) *snapshot {
	ls := c.load(ctx, log, domain, time.Now())
	if ls != nil && ls.id() == id && (!full || ls.fetched > now.Add(-c.opts.LockWait).UnixNano()) {
		return ls
	}
	return nil
}

// lockFleet tries to take the fleet-wide fetch lock of domain. It reports
// whether this cache should fetch: it holds the lock now, or the lock failed,
// which is no reason to wait. The lock's token is kept in c.locked for
// unlockFleet.
func (c *Cache) lockFleet(log *slog.Logger, locker Locker, domain mtasts.Domain) bool {
	var (
		token string
		held  bool
	)
	err := c.storeCall(c.ctx, func(ctx context.Context) (err error) {
		token, held, err = locker.Lock(ctx, domain.ASCII)
		return err
	})
	if err != nil {
		c.storeError(log, "lock", domain, err)
		return true
	}
	if held {
		c.lockMu.Lock()
		c.locked[domain.ASCII] = token
		c.lockMu.Unlock()
	}
	return held
}

// unlockFleet releases the fleet-wide fetch lock of domain, if this cache
// holds it, with the token of the Lock that took it.
func (c *Cache) unlockFleet(log *slog.Logger, domain mtasts.Domain) {
	c.lockMu.Lock()
	token, held := c.locked[domain.ASCII]
	delete(c.locked, domain.ASCII)
	c.lockMu.Unlock()
	if !held {
		return
	}
	if err := c.storeCall(c.ctx, func(ctx context.Context) error {
		return c.opts.Store.(Locker).Unlock(ctx, domain.ASCII, token)
	}); err != nil {
		c.storeError(log, "unlock", domain, err)
	}
}
