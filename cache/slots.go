package cache

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// This file holds the MaxNetwork slots: which updates run, which wait, and
// which give way.
//
// A hostile domain's policy host can accept a connection and never answer;
// its update then holds a slot until Timeout. A few hundred such domains,
// asked for first, would hold every slot and make a healthy domain's Get wait
// for minutes, so that a caller with a deadline delivers without MTA-STS: a
// downgrade an attacker could cause at will. Three rules keep slots for work
// someone waits for:
//
//   - The call asked for last runs first. Its callers are the likeliest to
//     be waiting still, and an earlier burst cannot hold it back.
//   - A call whose callers have all left, still waiting for a slot, is
//     dropped; one that runs gives its slot to the next waiting call at once.
//     Background work (checks and refreshes) has no callers and is kept.
//   - While calls wait, an update that has run PreemptAfter gives way to
//     one of them: the longest-running first. It ends as a fetch that timed
//     out (RFC 8461 3.3 lets senders bound a fetch), and the domain backs off
//     like any other, so each hanging domain costs at most PreemptAfter of
//     one slot per Backoff while others wait.

// callState is where a call stands with the slots.
type callState uint8

const (
	callIdle    callState = iota // not scheduled, dropped or ended
	callQueued                   // waiting for a slot, in Cache.queue
	callRunning                  // holding a slot, in Cache.active
)

// gaveWay is the cause with which an update is canceled so that a waiting
// call can have its slot.
type gaveWay struct {
	ran time.Duration
	// overdue is set for an update that ran PreemptAfter or longer: it
	// ends as a fetch that timed out. An update whose callers left sooner
	// ends without a result.
	overdue bool
}

func (g *gaveWay) Error() string {
	if g.overdue {
		return fmt.Sprintf("cache: gave way after %v to a call waiting for one of the MaxNetwork slots", g.ran.Round(time.Millisecond))
	}
	return fmt.Sprintf("cache: gave way after %v, its callers gone, to a call waiting for one of the MaxNetwork slots", g.ran.Round(time.Millisecond))
}

// Unwrap makes an overdue update's error a deadline, as a fetch that timed
// out has; FetchPolicy then reports a timeout.
func (g *gaveWay) Unwrap() error {
	if g.overdue {
		return context.DeadlineExceeded
	}
	return context.Canceled
}

// Timeout reports whether the update ended as one that timed out.
func (g *gaveWay) Timeout() bool { return g.overdue }

// gaveWayCause returns why ctx, an update's context, ended when it gave way;
// nil otherwise.
func gaveWayCause(ctx context.Context) *gaveWay {
	g, _ := context.Cause(ctx).(*gaveWay)
	return g
}

// waiting returns how many callers wait on a new call of kind k: a Get or
// a Recheck waits on its own; background work has no one.
func waiting(k kind) int {
	if k <= kindRecheck {
		return 1
	}
	return 0
}

// scheduleLocked runs cl when a slot is free, or queues it.
func (c *Cache) scheduleLocked(cl *call) {
	if len(c.active) < c.opts.MaxNetwork {
		c.launchLocked(cl)
		return
	}
	cl.state = callQueued
	c.queue = append(c.queue, cl)
	c.queued++
	c.preemptLocked(time.Now())
}

// nextLocked takes the call to run next off the queue: the one asked for
// last that is still wanted. It returns nil when none waits.
func (c *Cache) nextLocked() *call {
	for n := len(c.queue); n > 0; n = len(c.queue) {
		cl := c.queue[n-1]
		c.queue[n-1] = nil
		c.queue = c.queue[:n-1]
		if cl.state == callQueued {
			c.queued--
			return cl
		}
	}
	return nil
}

// endLocked takes cl, whose update has ended, off the slots, and gives its
// slot to the next call.
func (c *Cache) endLocked(cl *call) {
	cl.state = callIdle
	if i := slices.Index(c.active, cl); i >= 0 {
		c.active = slices.Delete(c.active, i, i+1)
	}
	if cl.gaveWay {
		c.givingWay--
	}
	if c.calls[cl.domain.ASCII] == cl {
		delete(c.calls, cl.domain.ASCII)
	}
	if c.closed {
		return
	}
	if next := c.nextLocked(); next != nil {
		c.launchLocked(next)
	}
	c.preemptLocked(time.Now())
}

// leave is called by a caller of cl that stopped waiting. When it was the
// last, a Get's or Recheck's call that waits for a slot is dropped, and one
// that runs may give its slot away.
func (c *Cache) leave(cl *call) {
	c.callMu.Lock()
	defer c.callMu.Unlock()
	if cl.state == callIdle {
		return // ended meanwhile, or a call that was done at once
	}
	cl.waiters--
	if cl.waiters > 0 || cl.kind > kindRecheck {
		return
	}
	switch cl.state {
	case callQueued:
		cl.state = callIdle
		c.queued--
		if c.calls[cl.domain.ASCII] == cl {
			delete(c.calls, cl.domain.ASCII)
		}
		cl.res = Result{Err: context.Canceled}
		close(cl.done)
		// Dropped calls stay in the queue until taken off it; keep
		// them from outgrowing the calls still wanted.
		if len(c.queue) > 64 && len(c.queue) > 2*c.queued {
			c.queue = slices.DeleteFunc(c.queue, func(q *call) bool { return q.state != callQueued })
		}
	case callRunning:
		c.preemptLocked(time.Now())
	}
}

// preemptLocked makes as many running updates give way as calls wait for
// a slot, as far as some may: those whose callers have all left, then
// those that have run PreemptAfter, the longest-running first. When calls
// still wait, it sets the timer for the next update to become overdue.
func (c *Cache) preemptLocked(now time.Time) {
	for c.queued > c.givingWay {
		v := c.victimLocked(now)
		if v == nil {
			break
		}
		ran := now.Sub(v.started)
		v.gaveWay = true
		c.givingWay++
		g := &gaveWay{ran: ran, overdue: ran >= c.opts.PreemptAfter}
		v.cancel(g)
		reason := "overdue"
		if !g.overdue {
			reason = "abandoned"
			// Its result says nothing of the domain: a Get that
			// comes while it ends must not share it, but start
			// a call of its own.
			if c.calls[v.domain.ASCII] == v {
				delete(c.calls, v.domain.ASCII)
			}
		}
		c.metrics.gaveWay.WithLabelValues(reason).Inc()
	}
	if c.queued <= c.givingWay {
		if c.preemptTimer != nil {
			c.preemptTimer.Stop()
		}
		return
	}
	// c.active is in the order the updates started: the first that has
	// not given way is the next to become overdue.
	for _, cl := range c.active {
		if cl.gaveWay {
			continue
		}
		d := cl.started.Add(c.opts.PreemptAfter).Sub(now)
		if c.preemptTimer == nil {
			c.preemptTimer = time.AfterFunc(d, c.preemptNow)
		} else {
			c.preemptTimer.Reset(d)
		}
		return
	}
}

// victimLocked returns the running update to give way next, or nil.
func (c *Cache) victimLocked(now time.Time) *call {
	for _, cl := range c.active {
		if !cl.gaveWay && cl.waiters == 0 && cl.kind <= kindRecheck {
			return cl
		}
	}
	for _, cl := range c.active {
		if !cl.gaveWay {
			if now.Sub(cl.started) >= c.opts.PreemptAfter {
				return cl
			}
			return nil // the rest started later
		}
	}
	return nil
}

// preemptNow runs when the oldest running update becomes overdue.
func (c *Cache) preemptNow() {
	c.callMu.Lock()
	defer c.callMu.Unlock()
	if !c.closed {
		c.preemptLocked(time.Now())
	}
}
