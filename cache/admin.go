package cache

import (
	"context"
	"iter"
	"time"

	"github.com/mtasts-go/mtasts"
)

// Status is what memory holds of a domain, for an operator's listing.
type Status struct {
	// Domain is the domain, with its Unicode form.
	Domain mtasts.Domain
	// Result is what Get would answer now from memory alone: the policy
	// with its id, fetch and expiry times while it is valid, the latest
	// failure with its back-off, and when the record was last checked.
	Result
	// LastUsed is when Get last asked for the domain, to the second.
	LastUsed time.Time
}

// Memory returns the domains that memory holds, in no order, with what the
// cache knows of each: also those without a policy, most domains a mail
// server sends to, so an admin page of policies filters on Policy or Err. It
// takes no lock that Get takes: domains added or dropped while it runs may or
// may not be listed. What the store holds beyond memory is listed by the
// store itself, when it is a Lister.
func (c *Cache) Memory() iter.Seq[Status] {
	return func(yield func(Status) bool) {
		now := time.Now()
		more := true
		c.items.each(func(it *item) {
			s := it.snap.Load()
			if !more || s == nil {
				return
			}
			more = yield(Status{
				Domain:   it.domain(),
				Result:   c.result(it, s, now, fromMemory),
				LastUsed: c.epoch.Add(time.Duration(it.lastUsed.Load()) * time.Second),
			})
		})
	}
}

// Lister is implemented by a Store whose entries can be listed, as an admin
// page of a mail server lists its policy database. The stores of
// OpenFileStore and of package redisstore implement it.
type Lister interface {
	// List returns the store's entries, in no order, each with nil, or
	// the error of the entry or of the listing, after which the listing
	// may go on. It honours ctx.
	List(ctx context.Context) iter.Seq2[Entry, error]
}

// Forget removes domain from memory and from the store, as an operator does
// after the domain fixed a broken policy: its next Get looks the record up
// and fetches the policy anew, with no back-off left from earlier failures.
// An update of the domain running meanwhile may still add it back. It
// returns the store's error, if any.
func (c *Cache) Forget(ctx context.Context, domain mtasts.Domain) error {
	c.mu.Lock()
	if it := c.items.get(domain.ASCII); it != nil {
		c.removeLocked(it)
	}
	c.mu.Unlock()
	return c.storeCall(ctx, func(ctx context.Context) error {
		return c.opts.Store.Delete(ctx, domain.ASCII)
	})
}
