package mtasts

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// Client does what LookupRecord, FetchPolicy and Get do, with its own HTTP
// client and a logger. Its methods take the arguments of those functions,
// so that code moves from one to the other by changing the receiver. The
// cache subpackage's Options take a Client for the cache's lookups and
// fetches:
//
//	client := &mtasts.Client{Logger: logger}
//	c, err := cache.New(cache.Options{Resolver: resolver, Client: client})
//
// The zero Client, and a nil *Client, behave as the package functions:
// they use HTTPClient and log nothing. A Client is safe for concurrent use;
// do not change its fields while it is in use, derive a copy with
// WithLogger instead.
//
// # Logging
//
// With a Logger, each TXT lookup and each policy fetch gives one record at
// slog.LevelDebug, whatever its outcome: whether a failure matters is the
// caller's decision (most domains have no record, and a cached policy may
// still apply). Get gives the records of its lookup and of its fetch. The
// records are logged with the caller's ctx, for handlers that read it.
//
// A lookup is logged with the message "mtasts: txt record lookup" and the
// attributes
//
//	domain     the domain, in A-labels
//	dnssec     whether the resolver said the answer was DNSSEC-signed and
//	           validated (adns.Result.Authentic)
//	duration   the time taken
//	record_id  the id of the record found, on success
//
// and a fetch with "mtasts: policy fetch" and
//
//	domain     the domain, in A-labels
//	status     the HTTP status code, 0 when there was no response
//	bytes      the size of the body read
//	duration   the time taken
//	mode       the policy's mode, on success
//	max_age    the policy's max_age in seconds, on success
//
// and, when they fail, with
//
//	result     the result label of the error, as in the metrics (see
//	           RegisterMetrics), e.g. "no-record", "fetch-error"
//	reason     TLSReportFailureReason of the error, e.g.
//	           "mta-sts-policy-http-status-500"
//	err        the error
//
// To carry per-delivery attributes, such as a message or connection id,
// log through a Client derived for the delivery:
//
//	record, policy, _, err := client.WithLogger(log.With("msgid", id)).Get(ctx, resolver, domain)
//
// Without a logger, or with one not enabled for debug, nothing is logged
// and no log attribute is built: the lookup allocates no more than the
// package function does.
type Client struct {
	// HTTPClient fetches policies, as the package-level HTTPClient does,
	// whose documentation says what a replacement should keep. Whatever
	// its CheckRedirect and Jar, redirects are not followed and cookies
	// not kept (RFC 8461 3.3). Nil means the package-level HTTPClient as
	// it is at the time of each fetch.
	HTTPClient *http.Client

	// Logger receives a debug record for each lookup and fetch; see
	// Logging. Nil means nothing is logged.
	Logger *slog.Logger
}

// defaultClient is the Client of the package functions.
var defaultClient Client

// WithLogger returns a copy of c that logs to l, e.g. the logger of one
// delivery with its message and connection ids: c.WithLogger(log.With(...)).
// The copy shares c's HTTPClient; c is not changed. A nil l gives a copy
// that logs nothing.
func (c *Client) WithLogger(l *slog.Logger) *Client {
	c2 := Client{Logger: l}
	if c != nil {
		c2.HTTPClient = c.HTTPClient
	}
	return &c2
}

// logger returns c's logger when it logs debug records for ctx, else nil.
func (c *Client) logger(ctx context.Context) *slog.Logger {
	if c == nil || c.Logger == nil || !c.Logger.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	return c.Logger
}

// LookupRecord looks up the MTA-STS TXT record of domain as the function
// LookupRecord does, and logs the lookup (see Client). It returns what that
// function returns, errors included.
func (c *Client) LookupRecord(ctx context.Context, resolver Resolver, domain Domain) (*Record, string, error) {
	start := time.Now()
	record, text, dnssec, err := lookupRecord(ctx, resolver, domain)
	d := time.Since(start)
	metricLookup.WithLabelValues(resultLabel(err)).Observe(d.Seconds())
	l := c.logger(ctx)
	if l == nil {
		return record, text, err
	}
	attrs := []slog.Attr{
		slog.String("domain", domain.ASCII),
		slog.Bool("dnssec", dnssec),
		slog.Duration("duration", d),
	}
	if err == nil {
		attrs = append(attrs, slog.String("record_id", record.ID))
	} else {
		attrs = appendErrorAttrs(attrs, err)
	}
	l.LogAttrs(ctx, slog.LevelDebug, "mtasts: txt record lookup", attrs...)
	return record, text, err
}

// FetchPolicy fetches the policy of domain as the function FetchPolicy
// does, with c.HTTPClient, and logs the fetch (see Client). It returns what
// that function returns, errors included.
func (c *Client) FetchPolicy(ctx context.Context, domain Domain) (policy *Policy, text string, err error) {
	hc := HTTPClient
	if c != nil && c.HTTPClient != nil {
		hc = c.HTTPClient
	}
	var info fetchInfo
	start := time.Now()
	policy, text, err = fetchPolicy(ctx, hc, domain, &info)
	d := time.Since(start)
	metricFetch.WithLabelValues(resultLabel(err)).Observe(d.Seconds())

	if l := c.logger(ctx); l != nil {
		attrs := []slog.Attr{
			slog.String("domain", domain.ASCII),
			slog.Int("status", info.status),
			slog.Int("bytes", info.bytes),
			slog.Duration("duration", d),
		}
		if err == nil {
			attrs = append(attrs, slog.String("mode", string(policy.Mode)), slog.Int("max_age", policy.MaxAgeSeconds))
		} else {
			attrs = appendErrorAttrs(attrs, err)
		}
		l.LogAttrs(ctx, slog.LevelDebug, "mtasts: policy fetch", attrs...)
	}
	return policy, text, err
}

// Get discovers and fetches the policy of domain as the function Get does,
// with c.LookupRecord and c.FetchPolicy, so both are logged (see Client). It
// returns what that function returns, errors included.
func (c *Client) Get(ctx context.Context, resolver Resolver, domain Domain) (record *Record, policy *Policy, text string, err error) {
	start := time.Now()
	defer func() { metricGet.WithLabelValues(resultLabel(err)).Observe(time.Since(start).Seconds()) }()

	record, _, err = c.LookupRecord(ctx, resolver, domain)
	if err != nil {
		return nil, nil, "", err
	}
	policy, text, err = c.FetchPolicy(ctx, domain)
	return record, policy, text, err
}

// appendErrorAttrs appends the log attributes of a failure.
func appendErrorAttrs(attrs []slog.Attr, err error) []slog.Attr {
	return append(attrs,
		slog.String("result", resultLabel(err)),
		slog.String("reason", TLSReportFailureReason(err)),
		slog.Any("err", err),
	)
}
