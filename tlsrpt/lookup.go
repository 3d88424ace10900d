package tlsrpt

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/mjl-/adns"
	"github.com/mtasts-go/mtasts"
)

// recordName returns the DNS name of the TLSRPT record of domain,
// "_smtp._tls.<domain>." in A-labels, with the trailing dot (RFC 8460 3).
func recordName(domain mtasts.Domain) string {
	return "_smtp._tls." + domain.ASCII + "."
}

// LookupRecord looks up the TLSRPT TXT record of domain at
// _smtp._tls.<domain> (RFC 8460 3) through resolver, and returns it parsed,
// with its text: the concatenation of the record's strings, as the resolver
// returns it.
//
// TXT records that do not start with v=TLSRPTv1 are ignored. The error wraps
// mtasts.ErrInvalidDomain when domain is not a host name (see
// Domain.Validate; the zero Domain is not one), with no lookup made;
// ErrNoRecord when no TLSRPT record exists, ErrMultipleRecords when there is
// more than one, ErrRecordSyntax when the record is invalid (the text is then
// returned too), and ErrDNS when the lookup fails otherwise. In each case the
// domain does not implement TLSRPT, and no report is sent (RFC 8460 3).
func LookupRecord(ctx context.Context, resolver mtasts.Resolver, domain mtasts.Domain) (*Record, string, error) {
	// RFC 8460 3: the name goes into a DNS query, _smtp._tls.<domain>: it
	// must be a host name, not a Domain built by hand carrying "/", NUL or
	// empty labels. Its error quotes the name bounded and escaped.
	if err := domain.Validate(); err != nil {
		return nil, "", fmt.Errorf("tlsrpt: looking up the tlsrpt record: %w", err)
	}
	if resolver == nil {
		return nil, "", fmt.Errorf("%w: no resolver", ErrDNS)
	}
	name := recordName(domain)
	txts, _, err := resolver.LookupTXT(ctx, name)
	if err != nil {
		if isNotFound(err) {
			return nil, "", fmt.Errorf("%w: no txt record at %s: %w", ErrNoRecord, name, err)
		}
		return nil, "", fmt.Errorf("%w: looking up txt record at %s: %w", ErrDNS, name, err)
	}

	// RFC 8460 3: "records that do not begin with "v=TLSRPTv1;" are
	// discarded. If the number of resulting records is not one, senders
	// MUST assume the recipient domain does not implement TLSRPT." A
	// resolver's strings of one record arrive concatenated ("without
	// adding spaces").
	var (
		record   *Record
		text     string
		firstErr error
		n        int
	)
	for _, txt := range txts {
		r, istlsrpt, err := ParseRecord(txt)
		if !istlsrpt {
			continue
		}
		n++
		if n == 1 {
			record, text, firstErr = r, txt, err
		}
	}
	switch {
	case n == 0:
		return nil, "", fmt.Errorf("%w: no txt record starting with v=TLSRPTv1 at %s", ErrNoRecord, name)
	case n > 1:
		return nil, "", fmt.Errorf("%w: %d txt records starting with v=TLSRPTv1 at %s", ErrMultipleRecords, n, name)
	case firstErr != nil:
		return nil, text, firstErr
	}
	return record, text, nil
}

// isNotFound reports whether err says the name does not exist or has no
// records of the type asked for, as mtasts.Resolver documents it.
func isNotFound(err error) bool {
	var aerr *adns.DNSError
	var nerr *net.DNSError
	return errors.As(err, &aerr) && aerr.IsNotFound || errors.As(err, &nerr) && nerr.IsNotFound
}
