package cache

import (
	"context"
	"time"

	"github.com/mtasts-go/mtasts"
)

// LookupFunc and FetchFunc are the shapes of mtasts.LookupRecord and
// mtasts.FetchPolicy.
type (
	LookupFunc = func(ctx context.Context, resolver mtasts.Resolver, domain mtasts.Domain) (*mtasts.Record, string, error)
	FetchFunc  = func(ctx context.Context, domain mtasts.Domain) (*mtasts.Policy, string, error)
)

// Fake returns opts with lookup and fetch, where not nil, standing in for
// the lookups and fetches of Options.Client: the tests' stand-ins for the
// network, which a testing/synctest bubble cannot wait for.
func Fake(opts Options, lookup LookupFunc, fetch FetchFunc) Options {
	if lookup != nil {
		opts.lookupRecord = lookup
	}
	if fetch != nil {
		opts.fetchPolicy = fetch
	}
	return opts
}

// HasFakeFetch reports whether opts has a fetch standing in for Client's.
func HasFakeFetch(opts Options) bool { return opts.fetchPolicy != nil }

// MemoryStore is the tests' Store in memory (memorystore_test.go).
type MemoryStore = memoryStore

// NewMemoryStore returns a MemoryStore holding at most limit entries.
var NewMemoryStore = newMemoryStore

// MaxPolicyText bounds Result.PolicyText.
const MaxPolicyText = maxPolicyText

// NewEntry returns the Entry of a policy fetched as text for record id at
// fetched, expiring max_age later, capped at mtasts.MaxAgeLimit (RFC 8461
// 3.2, 5.1), as the cache would save it: for the tests to seed a store. It returns the error of
// mtasts.ParsePolicy when text is no policy, and of Domain.Validate when
// domain is no host name.
func NewEntry(domain mtasts.Domain, id, text string, fetched time.Time) (Entry, error) {
	if err := domain.Validate(); err != nil {
		return Entry{}, err
	}
	p, err := mtasts.ParsePolicy(text)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Domain: domain.ASCII, RecordID: id, Policy: text, Fetched: fetched, Expires: fetched.Add(p.MaxAge())}, nil
}

// Len returns the number of domains in memory.
func (c *Cache) Len() int {
	return c.items.len()
}

// Materialized reports whether memory holds the policy of domain, an A-label
// name, decoded from its compact form, as hits hand it out.
func (c *Cache) Materialized(domain string) bool {
	it := c.items.get(domain)
	if it == nil {
		return false
	}
	s := it.snap.Load()
	return s != nil && s.policy.Load() != nil
}
