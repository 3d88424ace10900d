package main

import (
	"context"
	"sync"
	"time"
)

// lazyTimeout is a context that ends timeout after it was made, as
// context.WithTimeout's does, but makes its timer only when asked for Done
// or Err: a lookup answered from memory never asks, and so costs no timer.
// Value and Deadline answer without one. stop releases the timer, as
// context.WithTimeout's cancel does.
type lazyTimeout struct {
	parent   context.Context
	deadline time.Time

	mu     sync.Mutex
	ctx    context.Context // made at the first Done or Err
	cancel context.CancelFunc
	done   bool // stopped: Done and Err then answer canceled
}

func newLazyTimeout(parent context.Context, timeout time.Duration) *lazyTimeout {
	return &lazyTimeout{parent: parent, deadline: time.Now().Add(timeout)}
}

// started returns the context that does the work, making it first.
func (l *lazyTimeout) started() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx == nil {
		l.ctx, l.cancel = context.WithDeadline(l.parent, l.deadline)
		if l.done {
			l.cancel()
		}
	}
	return l.ctx
}

// stop ends the context and releases its timer, if it has one.
func (l *lazyTimeout) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	if l.cancel != nil {
		l.cancel()
	}
}

func (l *lazyTimeout) Deadline() (time.Time, bool) {
	if d, ok := l.parent.Deadline(); ok && d.Before(l.deadline) {
		return d, true
	}
	return l.deadline, true
}

func (l *lazyTimeout) Done() <-chan struct{} { return l.started().Done() }
func (l *lazyTimeout) Err() error            { return l.started().Err() }
func (l *lazyTimeout) Value(key any) any     { return l.parent.Value(key) }
