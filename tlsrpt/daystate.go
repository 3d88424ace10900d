package tlsrpt

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// A dayState holds what a Recorder counted of one UTC day and has not yet
// flushed to its store. Recording a success for a policy already seen that
// day reads it without a lock and writes no memory that other cores write:
//
//   - the policies are in an open-addressing hash table of atomic pointers,
//     read without a lock, added to under mu (as the cache's table of
//     domains is); a reader that misses a policy added meanwhile takes the
//     slow path, which looks again under mu;
//   - successes are counted in stripes: each stripe is an array of counters,
//     one per policy of the day, and a goroutine adds to the stripe its
//     stack address picks. Two cores recording for the same policy thus
//     mostly write different cache lines, and a policy costs 8 bytes per
//     stripe, not a padded line. The flush sums and zeroes a policy's
//     counter in every stripe.
//
// Failures, rarer and carrying details, are counted under the mutex of their
// policy domain, which also guards the cap on its failure-detail rows.
type dayState struct {
	day  int64
	seed maphash.Seed

	stripes []stripe // len a power of two
	bits    uint     // log2(len(stripes))

	slots atomic.Pointer[[]atomic.Pointer[policyDay]] // len a power of two

	mu      sync.Mutex // held by writers of slots, chunks, n and domains
	n       int        // policies of the day, their indexes in the stripes
	domains map[string]*domainDay

	dirtyMu sync.Mutex
	dirty   []*policyDay // policies with counts to flush

	// pending is a batch the store failed to add, to give it again;
	// guarded by the Recorder's flushMu.
	pending *Batch
}

// chunkBits sets the policies per chunk of a stripe: 1024 counters, 8 KiB.
const chunkBits = 10

type chunk [1 << chunkBits]atomic.Int64

// stripe is one set of success counters of a day: the i-th counter of chunk
// i>>chunkBits is that of the day's i-th policy. Chunks are added, never
// moved, so a counter stays where a recorder found it.
type stripe struct {
	chunks atomic.Pointer[[]*chunk]
	_      [56]byte // the pointer on a cache line of its own
}

// policyDay is one policy's counts of one day.
type policyDay struct {
	ds     *dayState
	idx    int // its counters in ds.stripes
	hash   uint64
	policy Policy
	dom    *domainDay

	// dirty is set while the policy is on ds.dirty, so that it is added
	// once per flush.
	dirty atomic.Bool

	// triggers is set, for the rest of the day, by the first count that
	// may cause a report (all but PolicyResult.CountOnly ones), before the
	// count is added; a flush reads it after taking the counts, so that a
	// batch holding such a count is never marked CountOnly.
	triggers atomic.Bool

	// Guarded by dom.mu: failures not yet flushed, and the day's
	// failure-detail rows with their counts not yet flushed. A row stays
	// for the day, with a count of 0 once flushed, so that the cap on
	// rows counts each once.
	failures int64
	rows     map[FailureDetail]int64
}

// domainDay is one policy domain's failure-detail rows of one day, over all
// its policies (RFC 8460 4.4: a report per policy domain).
type domainDay struct {
	mu   sync.Mutex
	rows int
}

func newDayState(day int64, seed maphash.Seed, stripes int) *dayState {
	ds := &dayState{
		day:     day,
		seed:    seed,
		stripes: make([]stripe, stripes),
		domains: map[string]*domainDay{},
	}
	for stripes > 1 {
		ds.bits++
		stripes >>= 1
	}
	slots := make([]atomic.Pointer[policyDay], 16)
	ds.slots.Store(&slots)
	for i := range ds.stripes {
		ds.stripes[i].chunks.Store(&[]*chunk{})
	}
	return ds
}

// hashPolicy returns the hash of p in the table: of its policy domain, and
// of its type and the number and lengths of its strings, but not of their
// bytes, which would cost more than the rest of a Success. Policies of one
// domain and type whose strings have equal lengths thus share a hash, and
// get tells them apart; a domain has one or two policies a day, a few more
// at worst, since each must be fetched and applied.
func hashPolicy(seed maphash.Seed, p *Policy) uint64 {
	x := uint64(len(p.PolicyType))
	if len(p.PolicyType) > 0 {
		x = x<<8 | uint64(p.PolicyType[0])
	}
	x = x*31 + uint64(len(p.PolicyString))
	for _, s := range p.PolicyString {
		x = x*31 + uint64(len(s))
	}
	x = x*31 + uint64(len(p.MXHost))
	for _, s := range p.MXHost {
		x = x*31 + uint64(len(s))
	}
	x = x*31 + uint64(len(p.RecipientDomain))
	// Mixed so that the low bits, which pick the slot, depend on all.
	x *= 0x9E3779B97F4A7C15
	x ^= x >> 29
	return maphash.String(seed, p.PolicyDomain) ^ x
}

func policyEqual(a, b *Policy) bool {
	return a.PolicyType == b.PolicyType && a.PolicyDomain == b.PolicyDomain && a.RecipientDomain == b.RecipientDomain &&
		slices.Equal(a.PolicyString, b.PolicyString) && slices.Equal(a.MXHost, b.MXHost)
}

// get returns the policy of hash h equal to p, or nil.
func (ds *dayState) get(h uint64, p *Policy) *policyDay {
	slots := *ds.slots.Load()
	mask := uint64(len(slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		pd := slots[i].Load()
		if pd == nil {
			return nil
		}
		if pd.hash == h && policyEqual(&pd.policy, p) {
			return pd
		}
	}
}

// add returns the policy of hash h equal to p, adding a copy of p when the
// day has none.
func (ds *dayState) add(h uint64, p *Policy) *policyDay {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if pd := ds.get(h, p); pd != nil {
		return pd
	}
	pd := &policyDay{ds: ds, idx: ds.n, hash: h, policy: clonePolicy(*p)}
	dom := ds.domains[p.PolicyDomain]
	if dom == nil {
		dom = &domainDay{}
		ds.domains[p.PolicyDomain] = dom
	}
	pd.dom = dom
	if pd.idx&(1<<chunkBits-1) == 0 {
		// The first policy of a chunk: add one to every stripe. The
		// chunks are published before pd, so a recorder that finds
		// pd finds its counters.
		for i := range ds.stripes {
			s := &ds.stripes[i]
			chunks := append(slices.Clip(*s.chunks.Load()), new(chunk))
			s.chunks.Store(&chunks)
		}
	}
	ds.n++
	slots := *ds.slots.Load()
	// At most half the slots in use: probes stay short.
	if 2*ds.n > len(slots) {
		slots = ds.grow(slots)
	}
	mask := uint64(len(slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		if slots[i].Load() == nil {
			slots[i].Store(pd)
			return pd
		}
	}
}

// grow publishes and returns a table twice the size of slots holding the
// same policies. A reader still probing the old one may miss a policy added
// to the new one, and then looks again under mu.
func (ds *dayState) grow(slots []atomic.Pointer[policyDay]) []atomic.Pointer[policyDay] {
	bigger := make([]atomic.Pointer[policyDay], 2*len(slots))
	mask := uint64(len(bigger) - 1)
	for i := range slots {
		pd := slots[i].Load()
		if pd == nil {
			continue
		}
		j := pd.hash & mask
		for bigger[j].Load() != nil {
			j = (j + 1) & mask
		}
		bigger[j].Store(pd)
	}
	ds.slots.Store(&bigger)
	return bigger
}

// stripeOf returns the stripe of the calling goroutine, picked from the
// address of its stack, so that a goroutine keeps writing the same lines and
// two seldom share one. The address is only hashed, never dereferenced.
func (ds *dayState) stripeOf() *stripe {
	var onStack byte
	// Goroutine stacks are 2 KiB apart or more; a multiplicative hash of
	// the address's higher bits spreads them over the stripes.
	a := uint64(uintptr(unsafe.Pointer(&onStack)) >> 11)
	return &ds.stripes[(a*0x9E3779B97F4A7C15)>>(64-ds.bits)&uint64(len(ds.stripes)-1)]
}

// trigger marks pd's counts of the day as ones that cause a report. A
// read of a flag set once costs a Success next to nothing.
func (pd *policyDay) trigger() {
	if !pd.triggers.Load() {
		pd.triggers.Store(true)
	}
}

// addSuccesses adds n to the successes of pd.
func (pd *policyDay) addSuccesses(n int64) {
	chunks := *pd.ds.stripeOf().chunks.Load()
	chunks[pd.idx>>chunkBits][pd.idx&(1<<chunkBits-1)].Add(n)
}

// takeSuccesses returns the successes of pd and zeroes them.
func (pd *policyDay) takeSuccesses() int64 {
	var n int64
	for i := range pd.ds.stripes {
		chunks := *pd.ds.stripes[i].chunks.Load()
		n += chunks[pd.idx>>chunkBits][pd.idx&(1<<chunkBits-1)].Swap(0)
	}
	return n
}

// markDirty puts pd on its day's list of policies to flush, unless it is
// on it. A recorder adds its count first and marks after: a flush clears
// the mark before it takes the counts, so a count it missed is marked again.
func (pd *policyDay) markDirty() {
	if pd.dirty.Load() || !pd.dirty.CompareAndSwap(false, true) {
		return
	}
	ds := pd.ds
	ds.dirtyMu.Lock()
	ds.dirty = append(ds.dirty, pd)
	ds.dirtyMu.Unlock()
}

// takeDirty returns the policies marked dirty, and empties the list.
func (ds *dayState) takeDirty() []*policyDay {
	ds.dirtyMu.Lock()
	defer ds.dirtyMu.Unlock()
	l := ds.dirty
	ds.dirty = nil
	return l
}
