// Package mtaststest helps test code that uses package mtasts: a fake DNS
// resolver and an HTTPS policy server on loopback, so that LookupRecord,
// FetchPolicy, Get and the cache run unchanged, without a network.
//
// Resolver answers TXT lookups from a map and can make a name not exist,
// fail as on SERVFAIL, with or without an extended DNS error (RFC 8914) such
// as DNSSEC bogus, or hang until released or until the lookup's context
// ends. Its errors have the types and flags *adns.Resolver gives, so the
// library classifies them as it would in production. It counts lookups per
// name.
//
// PolicyServer serves a policy per domain over HTTPS (HTTP/2 and HTTP/1.1)
// with certificates from a CA made in memory, lets a test choose the status,
// headers, body and delay, or present another certificate (expired, for
// another name, from another CA), and counts requests per domain. Client
// gives the code under test an HTTP client that reaches it; Install points
// the package-level mtasts.HTTPClient at it.
//
// DNSServer is a real DNS server on 127.0.0.1, over UDP and TCP, for code
// that takes a resolver's address instead of a Resolver: it answers A,
// AAAA, TXT and MX queries from records set per name, and counts queries.
//
// Start each server with StartPolicyServer or StartDNSServer, and close it
// when done: in a test, with t.Cleanup(server.Close). All three are safe for
// concurrent use. Because mtasts.HTTPClient is a package variable, tests
// that call PolicyServer.Install must not run in parallel with other tests
// that fetch policies through it.
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
	txt []string
	err error
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

// Remove makes name not exist.
func (r *Resolver) Remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.answers, canonical(name))
}

// ServFail makes lookups of name fail as a server failure does: an
// *adns.DNSError marked temporary, as adns reports SERVFAIL. With an
// extended DNS error code (RFC 8914), such as adns.ErrDNSSECBogus for a
// DNSSEC validation failure, the error carries it as adns reports it, and
// is temporary as the code is. At most one code is taken.
func (r *Resolver) ServFail(name string, ede ...adns.ErrorCode) {
	err := &adns.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	if len(ede) > 0 {
		e := adns.ExtendedError{InfoCode: ede[0]}
		err = &adns.DNSError{Err: e.Error(), Name: name, UnwrapErr: e, IsTemporary: ede[0].IsTemporary()}
	}
	r.set(name, answer{err: err})
}

// Hold makes lookups of name wait until release is called, then answer as
// name is set at that moment. A lookup whose context ends first fails with
// the context's error, as adns reports it: a deadline is a timeout, a
// cancellation is not. Calling release more than once has no effect; never
// calling it makes name hang as with a server that never answers.
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
			// As adns reports it: a deadline is a timeout, a
			// cancellation is not.
			err := ctx.Err()
			return nil, adns.Result{}, &adns.DNSError{Err: err.Error(), Name: name, UnwrapErr: err, IsTimeout: errors.Is(err, context.DeadlineExceeded)}
		}
	}
	r.mu.Lock()
	a, ok := r.answers[key]
	r.mu.Unlock()

	switch {
	case ctx.Err() != nil:
		return nil, adns.Result{}, &adns.DNSError{Err: ctx.Err().Error(), Name: name, UnwrapErr: ctx.Err()}
	case !ok || a.err == nil && len(a.txt) == 0:
		return nil, adns.Result{}, &adns.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	case a.err != nil:
		return nil, adns.Result{}, a.err
	}
	return append([]string(nil), a.txt...), adns.Result{}, nil
}
