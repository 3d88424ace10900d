package cache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// table maps domain names to their items. It is what a hit reads, so reads
// take no lock and write no shared memory; writers, rare, hold mu.
//
// It is an open-addressing hash table with linear probing, holding a
// pointer per slot and nothing else: a million domains take 8 to 16 MiB of
// slots, where a sync.Map would add some 80 bytes per entry (an entry node,
// the key boxed in an interface, its share of the trie). A removed item
// leaves a tombstone, so that a probe that began before the removal still
// reaches the items beyond it; growing drops the tombstones. Growing
// publishes a new slot array: a reader still probing the old one may miss an
// item added since, and then takes the slow path, which looks again under
// the cache's lock.
type table struct {
	seed  maphash.Seed
	slots atomic.Pointer[[]atomic.Pointer[item]] // length a power of two

	mu    sync.Mutex // held by writers
	live  int        // items in slots
	tombs int        // tombstones in slots
}

// tombstone marks a slot whose item was removed.
var tombstone = &item{}

func newTable() *table {
	t := &table{seed: maphash.MakeSeed()}
	slots := make([]atomic.Pointer[item], 8)
	t.slots.Store(&slots)
	return t
}

// get returns the item named name, or nil.
func (t *table) get(name string) *item {
	slots := *t.slots.Load()
	mask := uint64(len(slots) - 1)
	for i := maphash.String(t.seed, name) & mask; ; i = (i + 1) & mask {
		it := slots[i].Load()
		if it == nil {
			return nil
		}
		if it != tombstone && it.name == name {
			return it
		}
	}
}

// add adds it, whose name the table must not hold.
func (t *table) add(it *item) {
	t.mu.Lock()
	defer t.mu.Unlock()
	slots := *t.slots.Load()
	// At most 13/16 of the slots in use, tombstones included, so that
	// probes stay short (three slots on average for a hit) and always
	// reach an empty slot.
	if 16*(t.live+t.tombs+1) > 13*len(slots) {
		slots = t.growLocked()
	}
	mask := uint64(len(slots) - 1)
	for i := maphash.String(t.seed, it.name) & mask; ; i = (i + 1) & mask {
		old := slots[i].Load()
		if old == nil || old == tombstone {
			if old == tombstone {
				t.tombs--
			}
			slots[i].Store(it)
			t.live++
			return
		}
	}
}

// remove removes it, if the table holds it, and reports whether it did.
func (t *table) remove(it *item) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	slots := *t.slots.Load()
	mask := uint64(len(slots) - 1)
	for i := maphash.String(t.seed, it.name) & mask; ; i = (i + 1) & mask {
		switch slots[i].Load() {
		case nil:
			return false
		case it:
			slots[i].Store(tombstone)
			t.live--
			t.tombs++
			return true
		}
	}
}

// growLocked moves the items to a new slot array, twice as large as the
// live items need, and publishes it.
func (t *table) growLocked() []atomic.Pointer[item] {
	n := 8
	for n < 2*(t.live+1) {
		n *= 2
	}
	slots := make([]atomic.Pointer[item], n)
	mask := uint64(n - 1)
	old := *t.slots.Load()
	for j := range old {
		it := old[j].Load()
		if it == nil || it == tombstone {
			continue
		}
		i := maphash.String(t.seed, it.name) & mask
		for slots[i].Load() != nil {
			i = (i + 1) & mask
		}
		slots[i].Store(it)
	}
	t.slots.Store(&slots)
	t.tombs = 0
	return slots
}

// each calls f for each item, without a lock: items added or removed
// meanwhile may or may not be seen.
func (t *table) each(f func(*item)) {
	slots := *t.slots.Load()
	for i := range slots {
		if it := slots[i].Load(); it != nil && it != tombstone {
			f(it)
		}
	}
}

// len returns the number of items.
func (t *table) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.live
}
