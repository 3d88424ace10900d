package cache

import (
	"context"
	"time"
)

// pruneInterval is how often Run has a Pruner store remove its expired
// entries. Expired entries do no harm (a loaded entry is checked for
// validity), they only take room, so once an hour is plenty, and it keeps a
// large file store from being read through every minute.
const pruneInterval = time.Hour

// pruning is Run's state of pruning the store.
type pruning struct {
	last    time.Time     // when the last Prune started
	running chan struct{} // holds a token while a Prune runs
}

func newPruning(now time.Time) *pruning {
	return &pruning{last: now, running: make(chan struct{}, 1)}
}

// prune starts the store's Prune when it is a Pruner, pruneInterval has
// passed since the last one, and that one has returned. Prune runs in a
// goroutine of its own, so that a long one (a large directory) or a hung one
// delays no sweep; its context ends with ctx or at Close, and carries the
// logger of ctx or the cache's (see WithLogger). Its error is logged and
// counted.
func (c *Cache) prune(ctx context.Context, now time.Time, p *pruning) {
	pruner, ok := c.opts.Store.(Pruner)
	if !ok || now.Sub(p.last) < pruneInterval {
		return
	}
	select {
	case p.running <- struct{}{}:
	default:
		return // the last one still runs
	}
	// As in start: no goroutine is added once Close waits for them.
	c.callMu.Lock()
	defer c.callMu.Unlock()
	if c.closed {
		<-p.running
		return
	}
	p.last = now
	log := c.envOf(ctx).log
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() { <-p.running }()
		// The store may log to it too, as the file store does.
		ctx, cancel := context.WithCancel(WithLogger(ctx, log))
		defer cancel()
		stop := context.AfterFunc(c.ctx, cancel)
		defer stop()
		if err := pruner.Prune(ctx, now); err != nil && ctx.Err() == nil {
			c.metrics.storeErrors.WithLabelValues("prune").Inc()
			log.Warn("mta-sts: policy store failed to prune expired entries", "err", err)
		}
	}()
}
