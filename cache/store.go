package cache

import (
	"context"
	"time"
)

// Entry is a policy as a Store keeps it: the raw text, re-parsed on load, so
// that any store can hold it as bytes.
type Entry struct {
	// Domain is the policy domain in A-label form, e.g.
	// "xn--bcher-kva.example".
	Domain string
	// RecordID is the id of the TXT record that announced the policy.
	RecordID string
	// Policy is the policy text as fetched.
	Policy string
	// Fetched is when the policy was fetched over HTTPS.
	Fetched time.Time
	// Expires is when the policy stops being valid: Fetched plus its
	// max_age, capped at mtasts.MaxAgeLimit (RFC 8461 3.2, 5.1).
	Expires time.Time
}

// Store keeps policies beyond the cache's memory: across restarts (a file
// store), or across a fleet of MTAs (a store in Redis, say).
//
// The cache keeps what it uses in memory and calls the store only when a
// domain is not in memory (Load) and after each successful fetch (Save), and
// saves a loaded entry again when it corrected its times (a fetch time ahead
// of now, an expiry past max_age), so a store may be slow. The cache never deletes: when Run drops a domain unused
// for longer than its policy's lifetime, the store keeps its entry, which may
// still protect a later delivery, or be a copy another MTA of a fleet just
// refreshed. Delete is for its users, e.g. an operator removing a domain. A store may fail: the cache reports the error through
// its logger and metrics and goes on without it; a failing store never fails
// a delivery.
//
// What an implementation, such as one in Redis shared by a fleet, must
// guarantee:
//   - It is safe for concurrent use, by several caches too, and honours the
//     context: a call returns soon after ctx ends.
//   - Load returns what Save stored for that domain: Policy byte for byte,
//     RecordID, and Fetched and Expires to the millisecond at least. The cache
//     parses Policy again with mtasts.ParsePolicy and never trusts Expires
//     beyond Fetched plus the policy's max_age, so a store needs no knowledge
//     of policies; it must not return another domain's entry.
//   - A value it cannot read or decode is an error from Load (or absent), never
//     a panic; the cache then fetches the policy again.
//   - Domain keys are opaque strings, normally A-label domains but possibly
//     hostile: a store must not let one reach outside its own key space (a
//     path, another key prefix).
//   - Concurrent Saves of one domain need no ordering: the last one may win.
//     An older entry that wins is corrected by the next record check.
//   - It should forget an entry at its Expires time (a TTL), or implement
//     Pruner if it cannot; an expired entry that is returned anyway is
//     ignored.
//   - Deleting an absent entry is not an error.
type Store interface {
	// Load returns the entry of domain; ok is false when there is none.
	// An entry that cannot be read or decoded is an error, not a panic.
	Load(ctx context.Context, domain string) (e Entry, ok bool, err error)
	// Save stores e, replacing any entry of e.Domain.
	Save(ctx context.Context, e Entry) error
	// Delete removes the entry of domain, if any.
	Delete(ctx context.Context, domain string) error
}

// Locker is implemented by a Store that several caches share, as a fleet of
// MTAs shares one Redis, to let one cache fetch a policy for all.
//
// Before fetching a domain's policy, the cache calls Lock. When it gets the
// lock, it fetches, saves the policy and calls Unlock with the token Lock
// returned. When another holds the lock, it polls Load for up to
// Options.LockWait for a policy with the record's id, and fetches itself when
// none comes: a slow or dead holder delays others by LockWait at most. Errors
// of Lock and Unlock are logged and counted, and the cache fetches as if
// there were no lock.
//
// The token makes a release exact: several caches may share one Store value
// (one Redis client for a whole process, say), and a holder whose lock
// expired must not release the lock another cache took since.
type Locker interface {
	// Lock tries to take the fetch lock of domain. It must not wait for
	// a holder, and the lock must expire by itself, so that a cache that
	// dies holding it blocks nobody for long. When held is true, token
	// identifies this taking of the lock, distinct from every other
	// (of this Store value too), for Unlock. When err is not nil, held
	// is false and the cache calls no Unlock: a Lock that failed after
	// the backend may have taken the lock (a reply that came too late,
	// say) must see to it that this lock does not last long.
	Lock(ctx context.Context, domain string) (token string, held bool, err error)
	// Unlock releases the lock of domain if it is still the one taken by
	// the Lock that returned token, and leaves it otherwise: a lock that
	// expired and was taken by another is not this holder's to release.
	Unlock(ctx context.Context, domain, token string) error
}

// Pruner is implemented by a Store whose entries do not expire by
// themselves, as the files of OpenFileStore do not. Run calls Prune once an hour, in
// a goroutine of its own, one call at a time, and ends its context when Run's
// ends or the cache is closed; Close waits for it to return.
type Pruner interface {
	// Prune removes the entries that expired by now, and whatever else
	// the store no longer needs, such as what a crash left. It returns
	// ctx's error when ctx ends first, and an error when the store
	// cannot be read; entries it could not remove wait for the next
	// call.
	Prune(ctx context.Context, now time.Time) error
}

// noStore is the cache's store when Options.Store is nil: it keeps nothing.
type noStore struct{}

func (noStore) Load(context.Context, string) (Entry, bool, error) { return Entry{}, false, nil }
func (noStore) Save(context.Context, Entry) error                 { return nil }
func (noStore) Delete(context.Context, string) error              { return nil }
