package cache

import (
	"context"

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
