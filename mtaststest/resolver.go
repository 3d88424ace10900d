// Package mtaststest helps test code that uses package mtasts: a fake DNS
// resolver and an HTTPS policy server on loopback, so that LookupRecord,
// FetchPolicy, Get and the cache run unchanged, without a network.
//
// Resolver answers TXT lookups from a map and can make a name not exist,
// fail as on SERVFAIL, fail with an extended DNS error (RFC 8914) such as
// DNSSEC bogus, or hang until the lookup's context ends. Its errors have the
// types and flags *adns.Resolver gives, so the library classifies them as it
// would in production. It counts lookups per name.
//
// PolicyServer serves a policy per domain over HTTPS (HTTP/2 and HTTP/1.1)
// with certificates from a CA made in memory, lets a test choose the status,
// headers, body, delay and redirect, or present another certificate
// (expired, for another name, from another CA), and counts requests per
// domain. Use points mtasts.HTTPClient at it for the rest of a test.
//
// DNSServer is a real DNS server on 127.0.0.1, over UDP and TCP, for code
// that takes a resolver's address instead of a Resolver: it answers A,
// AAAA, TXT and MX queries from records set per name, and counts queries.
//
// All three are safe for concurrent use. Because mtasts.HTTPClient is a package
// variable, tests that call PolicyServer.Use must not run in parallel with
// other tests that fetch policies.
package mtaststest

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/mjl-/adns"
)

// Resolver is a fake mtasts.Resolver that answers TXT lookups from a map.
// Names may be given with or without the trailing dot. A name that was never
// set does not exist. The zero value is not usable; call NewResolver. It is
// safe for concurrent use.
type Resolver struct {
	mu      sync.Mutex
	answers map[string]answer
	lookups map[string]int
	holds   map[string]chan struct{} // closed on release
}

type answer struct {
	txt   []string
	err   error
	block bool
}

// NewResolver returns a Resolver that knows no names.
func NewResolver() *Resolver {
	return &Resolver{answers: map[string]answer{}, lookups: map[string]int{}, holds: map[string]chan struct{}{}}
}

func canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

func (r *Resolver) set(name string, a answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers[canonical(name)] = a
}

// SetTXT makes name exist with the TXT records txts, each a record's strings
// already joined. With no txts the name exists but has no TXT records, which
// a resolver reports as not found too.
func (r *Resolver) SetTXT(name string, txts ...string) {
	r.set(name, answer{txt: txts})
}

// SetRecord publishes record as the MTA-STS TXT record of domain, at
// _mta-sts.<domain>.
func (r *Resolver) SetRecord(domain, record string) {
	r.SetTXT("_mta-sts."+domain, record)
}

// Remove makes name not exist.
func (r *Resolver) Remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.answers, canonical(name))
}

// Fail makes lookups of name fail with err.
func (r *Resolver) Fail(name string, err error) {
	r.set(name, answer{err: err})
}

// ServFail makes lookups of name fail as a server failure does: an
// *adns.DNSError marked temporary.
func (r *Resolver) ServFail(name string) {
	r.Fail(name, &adns.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true})
}

// ExtendedError makes lookups of name fail with an RFC 8914 extended DNS
// error, as adns reports it: e.g. adns.ErrDNSSECBogus for a DNSSEC
// validation failure.
func (r *Resolver) ExtendedError(name string, code adns.ErrorCode) {
	ede := adns.ExtendedError{InfoCode: code}
	r.Fail(name, &adns.DNSError{Err: ede.Error(), Name: name, UnwrapErr: ede, IsTemporary: code.IsTemporary()})
}

// Block makes lookups of name wait until their context ends, as with a
// server that never answers; they then fail with the context's error.
func (r *Resolver) Block(name string) {
	r.set(name, answer{block: true})
}

// Hold makes lookups of name wait until release is called, then answer as
// name is set at that moment; a lookup whose context ends first fails with
// the context's error. Calling release more than once has no effect.
//
// With testing/synctest, a test can start lookups (or the Gets of a cache),
// wait with synctest.Wait until all are blocked, and then release them: the
// resolver is then created inside the bubble.
func (r *Resolver) Hold(name string) (release func()) {
	ch := make(chan struct{})
	key := canonical(name)
	r.mu.Lock()
	r.holds[key] = ch
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			if r.holds[key] == ch {
				delete(r.holds, key)
			}
			r.mu.Unlock()
			close(ch)
		})
	}
}

// Lookups returns how many lookups of name were made.
func (r *Resolver) Lookups(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups[canonical(name)]
}

// LookupTXT implements mtasts.Resolver.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, adns.Result, error) {
	key := canonical(name)
	r.mu.Lock()
	r.lookups[key]++
	hold := r.holds[key]
	r.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
		}
	}
	r.mu.Lock()
	a, ok := r.answers[key]
	r.mu.Unlock()

	switch {
	case ctx.Err() != nil:
		return nil, adns.Result{}, &adns.DNSError{Err: ctx.Err().Error(), Name: name, UnwrapErr: ctx.Err()}
	case !ok || a.err == nil && !a.block && len(a.txt) == 0:
		return nil, adns.Result{}, &adns.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	case a.block:
		<-ctx.Done()
		// As adns reports it: a deadline is a timeout, a cancellation is not.
		err := ctx.Err()
		return nil, adns.Result{}, &adns.DNSError{Err: err.Error(), Name: name, UnwrapErr: err, IsTimeout: errors.Is(err, context.DeadlineExceeded)}
	case a.err != nil:
		return nil, adns.Result{}, a.err
	}
	return append([]string(nil), a.txt...), adns.Result{}, nil
}
