package cache

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mtasts-go/mtasts"
)

// item holds one domain in memory. It is small on purpose: a cache of a
// million domains holds a million of them, most without a policy.
type item struct {
	name string // the domain's A-label form
	snap atomic.Pointer[snapshot]
	// lastUsed and checkedAt are seconds since the cache's epoch: of
	// the last Get, written at most once a second, and of the last TXT
	// lookup, or of the background check that a hit started.
	lastUsed  atomic.Uint32
	checkedAt atomic.Uint32
}

// domain returns the item's domain.
func (it *item) domain() mtasts.Domain {
	// The name is an A-label domain that ParseDomain accepted once
	// already; for the Unicode form it is parsed again, which only Run's
	// refreshes need.
	d, err := mtasts.ParseDomain(it.name)
	if err != nil {
		return mtasts.Domain{ASCII: it.name}
	}
	return d
}

// clock converts times to the seconds since the cache's epoch that items
// keep.
func (c *Cache) clock(t time.Time) uint32 {
	return uint32(max(t.Sub(c.epoch)/time.Second, 0))
}

// touch records a use of the item; it writes at most once a second, so that
// parallel hits on one domain do not fight over its cache line.
func (it *item) touch(now uint32) {
	if it.lastUsed.Load() != now {
		it.lastUsed.Store(now)
	}
}

// item returns the item of domain, adding it, and making room for it, when
// it is not in memory.
func (c *Cache) item(domain mtasts.Domain, now time.Time) *item {
	c.mu.Lock()
	defer c.mu.Unlock()
	if it := c.items.get(domain.ASCII); it != nil {
		return it
	}
	if c.items.len() >= c.opts.MaxEntries {
		c.evictLocked(now)
	}
	it := &item{name: domain.ASCII}
	it.lastUsed.Store(c.clock(now))
	c.items.add(it)
	return it
}

// removeLocked drops it from memory, if it is still there.
func (c *Cache) removeLocked(it *item) {
	c.items.remove(it)
}

// evictLocked makes room by dropping a batch of items: 1/64 of MaxEntries,
// at least one. Domains without a valid policy go first, as forgetting them
// costs a lookup and no protection; then the least recently used. Hits keep
// no ordered list, which would make them write shared memory, so finding the
// oldest takes a scan; dropping a batch per scan keeps the cost per added
// domain small however large MaxEntries is. A dropped policy is still in the
// store, if there is one.
func (c *Cache) evictLocked(now time.Time) {
	type aged struct {
		policy bool
		used   uint32
		it     *item
	}
	all := make([]aged, 0, c.items.len())
	c.items.each(func(it *item) {
		all = append(all, aged{it.snap.Load().valid(now), it.lastUsed.Load(), it})
	})
	n := max(1, c.opts.MaxEntries/64)
	if n < len(all) {
		slices.SortFunc(all, func(a, b aged) int {
			if a.policy != b.policy {
				if a.policy {
					return 1
				}
				return -1
			}
			return cmp.Compare(a.used, b.used)
		})
	}
	for _, a := range all[:min(n, len(all))] {
		c.removeLocked(a.it)
	}
}
