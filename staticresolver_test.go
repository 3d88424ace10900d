package mtasts_test

import (
	"context"

	"github.com/mjl-/adns"
)

// staticResolver answers TXT lookups from a map, and reports other names as
// not existing, as *adns.Resolver would.
type staticResolver map[string][]string

func (r staticResolver) LookupTXT(ctx context.Context, name string) ([]string, adns.Result, error) {
	if txts, ok := r[name]; ok {
		return txts, adns.Result{}, nil
	}
	return nil, adns.Result{}, &adns.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}
