// Package mtasts implements the sending side of SMTP MTA Strict Transport
// Security (MTA-STS, RFC 8461): discovering a domain's policy through its
// _mta-sts TXT record, fetching the policy over HTTPS, parsing both, and
// matching MX hosts against the policy. Failures map to the result types and
// reason codes of SMTP TLS Reporting (TLS-RPT, RFC 8460).
//
// The pipeline is three composable functions: LookupRecord (DNS),
// FetchPolicy (HTTPS) and Get (both). ParseRecord and ParsePolicy do no I/O.
// Caching policies as RFC 8461 section 5 requires is left to the caller, or to
// the cache subpackage. For the connection to an MX host under a policy,
// MXTLSConfig is the TLS configuration of RFC 8461 4.2, and
// TLSReportResultType and TLSReportFailureReason classify what went wrong
// on the SMTP connection (ErrSTARTTLSNotSupported, *STARTTLSError) for a
// TLS report.
//
// TLS reporting itself lives in the tlsrpt subpackage, which builds on this
// one (this package does not import it): the _smtp._tls record, the report
// model and a strict reader of received reports, policies as reports
// describe them, and the recording of each delivery's outcome.
//
// Every error wraps one of the sentinel errors (ErrNoRecord, ErrDNS,
// ErrPolicyFetch, ...), so delivery code can tell failure classes apart with
// errors.Is. Error messages quote what a domain published cut to 64 bytes
// and escaped to printable ASCII.
//
// The recipient domain is chosen by whoever addresses the mail, and its DNS
// answers and policy host by the domain's owner: all may be hostile. Domains
// are checked to be host names before use (Domain.Validate), and the default HTTPClient refuses to connect to
// loopback, private and other special-purpose addresses and bounds what a
// policy host can make it read (NewTransport).
//
// # Logging
//
// The package functions log nothing. A Client does the same work, with the
// same arguments, and logs each TXT lookup and policy fetch at debug level
// through its log/slog Logger: the outcome (record id, policy mode, or the
// error and its TLS-RPT reason), the DNSSEC status of the lookup, the HTTP
// status and size of the fetch, and the duration. A nil Logger logs nothing
// and builds no attribute. The cache subpackage's Options.Client takes one
// for the cache's lookups and fetches.
//
// Per-delivery attributes, such as a message or connection id, come with
// the logger: Client.WithLogger returns a copy of a Client that logs through
// a logger derived for one delivery, e.g. client.WithLogger(log.With("msgid",
// id)). That was chosen over attributes carried in the context because a Go
// mail server already holds such a logger for each delivery, and it works
// with any slog.Handler, where attributes in a context reach only a handler
// written to look for them. The caller's context is still passed to the
// handler with each record, for handlers that take a trace id from it.
// Through a cache, whose lookups and fetches serve many deliveries at once,
// records carry the attributes of the Client given to the cache, not those
// of one delivery.
package mtasts

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/mjl-/adns"
)

// Resolver looks up TXT records. *adns.Resolver satisfies it, and reports
// whether the answer was DNSSEC-signed and validated. For a resolver shaped
// like *net.Resolver, which does not say, ResolverFrom makes one.
//
// A name that does not exist, or has no TXT records, is signalled by an error
// that is, or wraps, an *adns.DNSError or *net.DNSError with IsNotFound set;
// any other error is a DNS failure. CNAMEs are for the resolver to follow
// (RFC 8461 3.1).
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, adns.Result, error)
}

// ResolverFrom returns a Resolver that looks up TXT records through r, a
// resolver shaped like *net.Resolver, such as a mail server's own, so that
// code holding one need not import adns. It returns nil for a nil r, which
// LookupRecord reports as ErrDNS.
//
// r does not say whether an answer was DNSSEC-signed and validated, so the
// Resolver reports none as validated: its adns.Result is the zero value,
// with Authentic false, and a Client logs the lookup with dnssec=false. The
// DNSSEC status is unknown, as good as insecure. MTA-STS does not need
// DNSSEC: it relies on the policy host's certificate instead (RFC 8461 2).
// Only DANE, which this package does not do, needs validated answers.
//
// Errors of r pass through as they are. As with *net.Resolver, a name that
// does not exist or has no TXT records must be signalled by an error that
// is, or wraps, a *net.DNSError with IsNotFound set: LookupRecord reports it
// as ErrNoRecord, and any other error, such as a server failure or timeout,
// as ErrDNS.
func ResolverFrom(r interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}) Resolver {
	if r == nil {
		return nil
	}
	return netResolver{r}
}

// netResolver is the Resolver ResolverFrom returns.
type netResolver struct {
	r interface {
		LookupTXT(ctx context.Context, name string) ([]string, error)
	}
}

func (n netResolver) LookupTXT(ctx context.Context, name string) ([]string, adns.Result, error) {
	txts, err := n.r.LookupTXT(ctx, name)
	return txts, adns.Result{}, err
}

// LookupRecord looks up the MTA-STS TXT record of domain at
// _mta-sts.<domain> (RFC 8461 3.1) and returns it parsed, with its text: the
// concatenation of the record's strings.
//
// TXT records that do not start with v=STSv1 are ignored. The error wraps
// ErrInvalidDomain when domain is not a host name (see Domain.Validate), with
// no lookup made; ErrNoRecord when no MTA-STS record exists, ErrMultipleRecords when there is
// more than one, ErrRecordSyntax when the record is invalid, and ErrDNS when
// the lookup fails otherwise; in each case RFC 8461 3.1 says the domain has no
// available policy (a cached one still applies, RFC 8461 5.1).
func LookupRecord(ctx context.Context, resolver Resolver, domain Domain) (*Record, string, error) {
	return defaultClient.LookupRecord(ctx, resolver, domain)
}

// lookupRecord is LookupRecord, and also reports whether the resolver said
// its answer was DNSSEC-signed and validated.
func lookupRecord(ctx context.Context, resolver Resolver, domain Domain) (_ *Record, _ string, dnssec bool, _ error) {
	// The name goes into a DNS query: it must be a host name.
	if err := domain.Validate(); err != nil {
		return nil, "", false, err
	}
	if resolver == nil {
		return nil, "", false, newError(ErrDNS, reasonRecordDNSError, nil, "no resolver")
	}
	name := "_mta-sts." + domain.ASCII + "."
	txts, result, err := resolver.LookupTXT(ctx, name)
	dnssec = result.Authentic
	if err != nil {
		if isNotFound(err) {
			return nil, "", dnssec, newError(ErrNoRecord, reasonRecordNotFound, err, "no txt record at %s", name)
		}
		return nil, "", dnssec, newError(ErrDNS, reasonRecordDNSError, err, "looking up txt record at %s", name)
	}

	// RFC 8461 3.1: records that do not begin with v=STSv1 are discarded;
	// if the number of resulting records is not one, or the one is
	// invalid, there is no available policy. A resolver's strings of one
	// record arrive concatenated ("without adding spaces").
	var (
		record   *Record
		text     string
		firstErr error
		n        int
	)
	for _, txt := range txts {
		r, ismtasts, err := ParseRecord(txt)
		if !ismtasts {
			continue
		}
		n++
		if n == 1 {
			record, text, firstErr = r, txt, err
		}
	}
	switch {
	case n == 0:
		return nil, "", dnssec, newError(ErrNoRecord, reasonRecordNotFound, nil, "no txt record starting with v=STSv1 at %s", name)
	case n > 1:
		return nil, "", dnssec, newError(ErrMultipleRecords, reasonRecordMultiple, nil, "%d txt records starting with v=STSv1 at %s", n, name)
	case firstErr != nil:
		return nil, text, dnssec, firstErr
	}
	return record, text, dnssec, nil
}

// isNotFound reports whether err says the name does not exist or has no
// records of the type asked for.
func isNotFound(err error) bool {
	var aerr *adns.DNSError
	var nerr *net.DNSError
	return errors.As(err, &aerr) && aerr.IsNotFound || errors.As(err, &nerr) && nerr.IsNotFound
}

// MaxPolicySize is the largest policy body FetchPolicy reads: 64 KiB, the
// suggested maximum of RFC 8461 3.3.
const MaxPolicySize = 64 * 1024

// FetchTimeout bounds a whole policy fetch, from connecting to reading the
// last byte of the body: one minute, the suggested timeout of RFC 8461 3.3.
const FetchTimeout = time.Minute

// HTTPClient is the client FetchPolicy uses, and a Client without an
// HTTPClient of its own; both read it at each fetch. Its transport, made by
// NewTransport(nil), guards against the policy host, which the recipient
// domain's owner controls: it refuses to connect to loopback, private,
// link-local and other special-purpose addresses (see ErrAddressRefused),
// connects directly rather than through a proxy, reads at most 64 KiB of
// response headers, and bounds connection time and the connections it
// keeps.
//
// To trust other roots, allow private addresses or use a proxy, replace the
// client or its Transport with one made by NewTransport and changed as
// needed. A client built otherwise should keep what NewTransport sets: a
// dialer from NewDialer (or another check of the address dialled), no proxy
// from the environment, MaxResponseHeaderBytes, TLSHandshakeTimeout,
// MaxConnsPerHost, MaxIdleConnsPerHost and IdleConnTimeout; and certificate
// verification on, as RFC 8461 3.3 requires. The body and the whole fetch are
// bounded by FetchPolicy whatever the client (MaxPolicySize, FetchTimeout).
//
// Whatever the client's CheckRedirect and Jar, FetchPolicy never follows
// redirects and never sends or stores cookies: it uses a copy of the client
// with its own settings for those. Its Timeout, when shorter than
// FetchTimeout, bounds the fetch.
var HTTPClient = &http.Client{
	Transport:     NewTransport(nil),
	CheckRedirect: noRedirect,
}

// noRedirect makes the client return a redirect response as is. RFC 8461 3.3:
// "HTTP 3xx redirects MUST NOT be followed".
func noRedirect(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}

// FetchPolicy fetches the policy of domain from
// https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 3.2, 3.3) and
// returns it parsed, with its text.
//
// The certificate must be valid for mta-sts.<domain> under PKIX rules.
// Redirects are not followed, only status 200 is accepted, HTTP caching is not
// used, the body may be at most MaxPolicySize bytes, and the whole fetch must
// finish within FetchTimeout or the deadline of ctx, whichever comes first.
// The media type must be text/plain, with any parameters (RFC 8461 3.2,
// "senders SHOULD validate that the media type is text/plain").
//
// The error wraps ErrInvalidDomain when domain is not a host name (see
// Domain.Validate), with no connection made; ErrNoPolicy when the policy
// host does not exist or answers
// 404, ErrPolicySyntax for an invalid policy, an oversize body or another
// media type, and ErrPolicyFetch for any other failure: connection, TLS,
// redirect, status, timeout, and an address the client refuses to connect to
// (then ErrAddressRefused too). Causes such as context.DeadlineExceeded or an
// x509 error stay reachable with errors.Is and errors.As, and HTTPStatus
// gives the HTTP status of a failure that had a response.
func FetchPolicy(ctx context.Context, domain Domain) (policy *Policy, text string, err error) {
	return defaultClient.FetchPolicy(ctx, domain)
}

// fetchInfo is what a policy fetch saw besides its result, for logs.
type fetchInfo struct {
	status int // HTTP status code; 0 without a response
	bytes  int // bytes of the body read
}

// fetchPolicy is FetchPolicy with the HTTP client hc. It fills in info.
func fetchPolicy(ctx context.Context, hc *http.Client, domain Domain, info *fetchInfo) (policy *Policy, text string, err error) {
	// The name goes into the URL's host: anything but a host name could
	// add a user, a port, a path or a query.
	if err := domain.Validate(); err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()

	host := "mta-sts." + domain.ASCII
	url := "https://" + host + "/.well-known/mta-sts.txt"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", newError(ErrPolicyFetch, reasonPolicyFetchError, err, "building request for %s", url)
	}
	// RFC 8461 3.3: "HTTP caching ... MUST NOT be used". This client keeps
	// no cache; ask intermediaries not to answer from theirs either.
	req.Header.Set("Cache-Control", "no-cache")

	client := *hc
	client.CheckRedirect = noRedirect
	client.Jar = nil
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", fetchError(err, url)
	}
	defer resp.Body.Close()
	info.status = resp.StatusCode
	defer func() {
		// Any failure from here on had a response: keep its status
		// for HTTPStatus.
		if err != nil {
			err = &statusError{status: resp.StatusCode, err: err}
		}
	}()

	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound:
		return nil, "", newError(ErrNoPolicy, reasonPolicyNotFound, nil, "%s: 404 not found", url)
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		// RFC 8461 3.3: redirects MUST NOT be followed.
		return nil, "", newError(ErrPolicyFetch, reasonPolicyRedirect, nil, "%s: redirect (status %d to %s) not followed", url, resp.StatusCode, quote(resp.Header.Get("Location")))
	default:
		// RFC 8461 3.3: "only valid if the HTTP response code is 200".
		return nil, "", newError(ErrPolicyFetch, reasonPolicyHTTPStatus(resp.StatusCode), nil, "%s: status %d, expected 200", url, resp.StatusCode)
	}

	// RFC 8461 3.2: "senders SHOULD validate that the media type is
	// text/plain"; its parameters are ignored. A parameter that does not
	// parse still leaves the media type known.
	ct := resp.Header.Get("Content-Type")
	mt, _, perr := mime.ParseMediaType(ct)
	if perr != nil && !errors.Is(perr, mime.ErrInvalidMediaParameter) || mt != "text/plain" {
		return nil, "", newError(ErrPolicySyntax, reasonPolicyMediaType, nil, "%s: media type %s, expected text/plain", url, quote(ct))
	}

	// RFC 8461 3.3: a suggested maximum policy size of 64 kilobytes.
	if resp.ContentLength > MaxPolicySize {
		return nil, "", newError(ErrPolicySyntax, reasonPolicyTooLarge, nil, "%s: body of %d bytes, larger than the maximum of %d", url, resp.ContentLength, MaxPolicySize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPolicySize+1))
	info.bytes = len(body)
	if err != nil {
		return nil, "", fetchError(err, url)
	}
	if len(body) > MaxPolicySize {
		return nil, "", newError(ErrPolicySyntax, reasonPolicyTooLarge, nil, "%s: body larger than the maximum of %d bytes", url, MaxPolicySize)
	}
	text = string(body)
	policy, err = ParsePolicy(text)
	if err != nil {
		return nil, text, err
	}
	return policy, text, nil
}

// fetchError classifies a failed request or body read.
func fetchError(err error, url string) error {
	switch {
	case errors.Is(err, ErrAddressRefused):
		// The name resolved to an address of the MTA's own networks,
		// or another that is not of the internet: no connection made.
		return newError(ErrPolicyFetch, reasonPolicyAddressRefused, err, "%s: policy host address refused", url)
	case isNotFound(err):
		// No policy host: the name mta-sts.<domain> does not exist.
		return newError(ErrNoPolicy, reasonPolicyNotFound, err, "%s: policy host not found", url)
	case isCertificateError(err):
		// RFC 8461 3.3: the certificate must be valid for the mta-sts
		// DNS-ID, chain to a trusted root, and be non-expired.
		return newError(ErrPolicyFetch, certificateReason(err), err, "%s: certificate not valid", url)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return newError(ErrPolicyFetch, reasonPolicyFetchTimeout, err, "%s: timed out", url)
	}
	var rerr tls.RecordHeaderError
	if errors.As(err, &rerr) {
		return newError(ErrPolicyFetch, reasonPolicyFetchError, err, "%s: server does not speak TLS", url)
	}
	return newError(ErrPolicyFetch, reasonPolicyFetchError, err, "%s", url)
}

func isTimeout(err error) bool {
	var nerr net.Error
	return errors.As(err, &nerr) && nerr.Timeout()
}

// Get discovers and fetches the policy of domain: LookupRecord, then, if a
// record was found, FetchPolicy. It returns the record, the policy and the
// policy's text.
//
// When the record is found but the policy cannot be fetched, the record is
// returned with the error, so a caller holding a cached policy can compare
// ids. Errors are those of LookupRecord and FetchPolicy.
func Get(ctx context.Context, resolver Resolver, domain Domain) (record *Record, policy *Policy, text string, err error) {
	return defaultClient.Get(ctx, resolver, domain)
}
