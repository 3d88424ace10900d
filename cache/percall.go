package cache

import (
	"context"
	"log/slog"

	"github.com/mtasts-go/mtasts"
)

// resolverKey and loggerKey are the context keys of WithResolver and
// WithLogger.
type (
	resolverKey struct{}
	loggerKey   struct{}
)

// WithResolver returns a copy of ctx that makes a Get, Recheck or Run given
// it look TXT records up with r instead of Options.Resolver: a mail server
// can then pass the resolver of one delivery, a test its fake, without a
// cache of its own.
//
// The resolver serves the update that the call starts, which runs on the
// cache's context, not ctx, and may outlive the call (see Get): the lookup a
// miss or Recheck waits for, the background check a hit starts, the
// refreshes of Run. A call that finds an update of its domain running joins
// it, and shares its resolver: the one of the call that started it. A nil r
// leaves Options.Resolver in use.
func WithResolver(ctx context.Context, r mtasts.Resolver) context.Context {
	return context.WithValue(ctx, resolverKey{}, r)
}

// WithLogger returns a copy of ctx that makes a Get, Recheck or Run given it
// log to l instead of Options.Logger, e.g. a logger carrying the id of one
// delivery. As with WithResolver, l receives what the updates that the call
// starts log (failed refreshes, failing stores), and a call that joins a
// running update shares that update's logger. A nil l leaves Options.Logger
// in use.
//
// Stores may log to the logger of the ctx they are given: the Prune and
// List of OpenFileStore's store do, and Run gives Prune the cache's logger, or Run's own.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// callEnv is what an update uses that a call may bring: the resolver of its
// lookups and the logger of its warnings.
type callEnv struct {
	resolver mtasts.Resolver
	log      *slog.Logger
}

// envOf returns the callEnv of a call given ctx: the values of WithResolver and
// WithLogger, else the cache's own.
func (c *Cache) envOf(ctx context.Context) callEnv {
	e := callEnv{resolver: c.opts.Resolver, log: c.log}
	if r, _ := ctx.Value(resolverKey{}).(mtasts.Resolver); r != nil {
		e.resolver = r
	}
	if l, _ := ctx.Value(loggerKey{}).(*slog.Logger); l != nil {
		e.log = l
	}
	return e
}
