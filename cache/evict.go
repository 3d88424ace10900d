package cache

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mtasts-go/mtasts"
)

// item holds one domain in memory.
type item struct {
	domain    mtasts.Domain
	snap      atomic.Pointer[snapshot]
	lastUsed  atomic.Int64 // unix nanoseconds
	checkedAt atomic.Int64 // unix nanoseconds of the last TXT lookup
}

// touch records a use of the item; it writes at most once a second, so that
// parallel hits on one domain do not fight over its cache line.
func (it *item) touch(now time.Time) {
	n := now.UnixNano()
	if n-it.lastUsed.Load() > int64(time.Second) {
		it.lastUsed.Store(n)
	}
}

// item returns the item of domain, adding it, and making room for it, when
// it is not in memory.
func (c *Cache) item(domain mtasts.Domain, now time.Time) *item {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.items.Load(domain.ASCII); ok {
		return v.(*item)
	}
	if c.nitems >= c.opts.MaxEntries {
		c.evictLocked()
	}
	it := &item{domain: domain}
	it.lastUsed.Store(now.UnixNano())
	c.items.Store(domain.ASCII, it)
	c.nitems++
	return it
}

// removeLocked drops it from memory, if it is still there.
func (c *Cache) removeLocked(it *item) {
	if c.items.CompareAndDelete(it.domain.ASCII, it) {
		c.nitems--
	}
}

// evictLocked makes room by dropping the least recently used items: the
// oldest 1/64 of MaxEntries, at least one. Hits keep no ordered list, which
// would make them write shared memory, so finding the oldest takes a scan;
// dropping a batch per scan keeps the cost per added domain small however
// large MaxEntries is. A dropped policy is still in the store.
func (c *Cache) evictLocked() {
	type aged struct {
		used int64
		it   *item
	}
	all := make([]aged, 0, c.nitems)
	c.items.Range(func(_, v any) bool {
		it := v.(*item)
		all = append(all, aged{it.lastUsed.Load(), it})
		return true
	})
	n := max(1, c.opts.MaxEntries/64)
	if n < len(all) {
		slices.SortFunc(all, func(a, b aged) int { return cmp.Compare(a.used, b.used) })
	}
	for _, a := range all[:min(n, len(all))] {
		c.removeLocked(a.it)
	}
}
