package tlsrpt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/logname"
	"github.com/mtasts-go/mtasts/internal/quoted"
)

// Sending a report, one role per file: payload.go makes the gzip data and
// the file name (RFC 8460 5.1, 5.2), mail.go the e-mail message (5.3),
// https.go the POST (5.4), and this file delivers to every rua URI of a
// TLSRPT record, with retries (5.5).

// Sentinel errors of delivering reports.
var (
	// ErrPermanent marks a delivery failure that a retry would not mend: a
	// redirect or a 4xx answer to a POST, an address the guard refuses, a
	// mailto URI that is no usable address. A Sender does not retry it;
	// SenderOptions.Submit may wrap it in an error of its own for the
	// same effect.
	ErrPermanent = errors.New("tlsrpt: permanent delivery failure")

	// ErrNotDelivered means no rua URI of the policy domain's TLSRPT
	// record accepted the report. RFC 8460 3: "the report SHOULD NOT be
	// considered successfully delivered until one of the endpoints
	// accepts delivery of the report".
	ErrNotDelivered = errors.New("tlsrpt: report not delivered")
)

// Transports of RFC 8460 5, as the metrics name them.
const (
	transportHTTPS  = "https"
	transportMailto = "mailto"
)

// maxRUA is the most rua URIs of one record that a Sender delivers a report
// to; the rest are skipped. RFC 8460 3 lets a domain list several, and 7
// warns of reports used to flood a target; a handful is plenty.
const maxRUA = 8

// SenderOptions configure a Sender. The zero value of each field means its
// default.
type SenderOptions struct {
	// Resolver looks up the TLSRPT record of a report's policy domain
	// (RFC 8460 3). Required. In production: &adns.Resolver{}.
	Resolver mtasts.Resolver

	// Submit hands a report message (RFC 8460 5.3) to the MTA, for
	// delivery from the envelope sender msg.From to the addresses msg.To.
	// msg holds the message's bytes and the parts the MTA queues it by:
	// report-id, policy domain, submitter, Subject, Message-ID, and
	// whether it needs SMTPUTF8. Without Submit, mailto rua URIs are not
	// delivered to.
	//
	// The MTA signs msg.Data with DKIM for the reporting domain,
	// msg.Submitter, as RFC 8460 3 requires ("Reports sent via SMTP MUST
	// contain a valid DomainKeys Identified Mail (DKIM) [RFC6376]
	// signature by the reporting domain"), without the "l=" tag,
	// covering the TLS-Report-Domain and TLS-Report-Submitter fields
	// (5.3), with a key whose record says "s=tlsrpt"; then queues and
	// delivers it. It delivers it without enforcing MTA-STS or DANE and
	// without recording the session's TLS outcome: ctx carries the mark
	// IsReportSubmission reports, which the MTA keeps with the queued
	// message (see there), and the message says "TLS-Required: No"
	// (RFC 8689).
	//
	// Submit returns nil once the message is queued for every address of
	// msg.To; an error is retried (RFC 8460 5.5), with the same msg,
	// unless it wraps ErrPermanent. It must not change msg. It is called
	// from several goroutines at once, and its ctx has the deadline of
	// AttemptTimeout.
	Submit func(ctx context.Context, msg *Message) error

	// OneMessage sends one message to all the mailto rua addresses of a
	// record, each in its To field, as an MTA sends one message to
	// several recipients, rather than a message to each. Each mailto
	// URI's Delivery then has the outcome of that message.
	OneMessage bool

	// SMTPUTF8 says the MTA can deliver to addresses whose local part is
	// not ASCII (RFC 6531): mailto rua URIs with such an address are then
	// mailed to, in a message that says it needs SMTPUTF8
	// (Message.SMTPUTF8). Without it, they are refused (ErrPermanent).
	// Domains are always given in A-labels.
	SMTPUTF8 bool

	// Suppress, when set, is asked about each mailto rua address, as
	// messages give it, before a report is mailed to it; when it returns
	// true, e.g. for an address on the MTA's suppression list after its
	// reports bounced, the URI is skipped (Delivery.Skipped): no message
	// goes to it, and it is counted as skipped, neither delivered nor
	// failed. It is called once per address and delivery (not per retry),
	// from the goroutine of Send; an MTA that cannot tell, e.g. with its
	// database down, decides by returning false (send) or true (skip).
	Suppress func(ctx context.Context, addr string) bool

	// NoHTTPS leaves out the https rua URIs: they are skipped
	// (Delivery.Skipped), and reports go by mail alone. RFC 8460 3 lets a
	// reporter deliver to any of the rua URIs; a report by mail carries
	// the DKIM signature that shows who sent it, a POST nothing alike.
	NoHTTPS bool

	// From is the address of report messages, in their From field and as
	// their envelope sender, e.g. "tlsrpt@mail.example.com" or "TLS
	// reports <tlsrpt@mail.example.com>". Default: the report's
	// contact-info.
	From string

	// Transport carries the POSTs to https rua URIs. Default:
	// mtasts.NewTransport(nil), whose guard refuses loopback, private
	// and other special-purpose addresses: a rua URI is chosen by the
	// policy domain's owner, who must not reach into the sender's own
	// network with it. Tests and private deployments pass
	// mtasts.NewTransport(mtasts.AllowLoopback) or
	// mtasts.NewTransport(mtasts.AllowPrivate), with their own
	// TLSClientConfig.RootCAs when needed. A transport not made by
	// mtasts.NewTransport has no guard, nor its header bound.
	// Certificates are verified: RFC 8460 3 lets submitters ignore
	// validation errors, which a transport with InsecureSkipVerify does.
	Transport http.RoundTripper

	// AttemptTimeout bounds each attempt: a POST with its answer, or a
	// call of Submit. Default 1 minute.
	AttemptTimeout time.Duration

	// FirstRetry is the wait before the first retry of a failed
	// attempt; each further wait is twice the one before, up to
	// MaxRetryDelay. Defaults 1 minute and 4 hours. RFC 8460 5.5: "If
	// multiple retries are attempted, ideally they SHOULD be done with
	// exponential backoff." (The cache's Options.Backoff is another
	// thing: a fixed wait after a failed fetch.)
	FirstRetry    time.Duration
	MaxRetryDelay time.Duration

	// RetryWindow is how long after the first attempt retries may begin.
	// Default 24 hours: RFC 8460 5.5, "a sender SHOULD attempt redelivery
	// for up to 24 hours after the initial attempt". A negative window
	// means no retries.
	//
	// AttemptTimeout, FirstRetry, MaxRetryDelay and RetryWindow set the
	// retries of Send, and those of a Reporter that delivers with this
	// Sender, which makes them in rounds of its passes
	// (ReporterOptions.Sender).
	RetryWindow time.Duration

	// Logger receives an Info record per report delivered to a rua URI,
	// a Warn record per rua URI given up on and a Debug record per failed
	// attempt. Default: nothing is logged.
	Logger *slog.Logger
}

// Sender delivers finished reports to the rua URIs of their policy domain's
// TLSRPT record (RFC 8460 5): by POST to https URIs, by Submit to mailto
// ones. It is safe for concurrent use. Create it with NewSender.
type Sender struct {
	opts    SenderOptions
	log     *slog.Logger
	client  *http.Client
	metrics *senderMetrics
}

// NewSender returns a Sender with opts. It returns an error when opts.From
// is set but is not an e-mail address.
func NewSender(opts SenderOptions) (*Sender, error) {
	if opts.From != "" {
		if _, err := parseFrom(opts.From); err != nil {
			return nil, err
		}
	}
	if opts.AttemptTimeout == 0 {
		opts.AttemptTimeout = time.Minute
	}
	if opts.FirstRetry == 0 {
		opts.FirstRetry = time.Minute
	}
	if opts.MaxRetryDelay == 0 {
		opts.MaxRetryDelay = 4 * time.Hour
	}
	if opts.RetryWindow == 0 {
		opts.RetryWindow = 24 * time.Hour
	}
	if opts.Transport == nil {
		opts.Transport = mtasts.NewTransport(nil)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sender{
		opts:    opts,
		log:     log,
		client:  newHTTPClient(opts.Transport),
		metrics: newSenderMetrics(),
	}, nil
}

// Delivery is the outcome of delivering a report to one rua URI.
type Delivery struct {
	// URI is the rua URI, as the record has it. Its scheme, https or
	// mailto, says how the report went.
	URI string
	// Attempts counts the POSTs or calls of Submit made; 0 when the URI
	// was not tried, or when, with a nil Err, it took the report before a
	// restart (a Reporter resuming a delivery).
	Attempts int
	// Err is nil when the report was delivered: answered with 2xx, or
	// queued by Submit. Otherwise it is the last attempt's error, or why
	// none was made; it wraps ErrPermanent when a retry would not mend
	// it, and the context's error when ctx ended first.
	Err error
	// Skipped is set when the URI was left out by the MTA's choice, its
	// address suppressed (SenderOptions.Suppress) or https left out
	// (SenderOptions.NoHTTPS), rather than failed: Err then says why,
	// wrapping ErrPermanent, and Attempts is 0.
	Skipped bool

	transport string // transportHTTPS or transportMailto
}

// Send delivers report to the rua URIs of the TLSRPT record of its policy
// domain, which it looks up at _smtp._tls.<domain> with
// SenderOptions.Resolver (RFC 8460 3).
//
// It delivers to every rua URI of the record that has a supported scheme,
// mailto or https (RFC 8460 3: "the reporter MAY attempt to deliver to
// each of the supported rua destinations"), at most 8, each once however
// often it is listed: RFC 8460 7 warns of reports used to flood a target,
// and the URIs beyond fail with ErrPermanent, untried. The URIs are
// delivered to at the same time; each is retried as SenderOptions say
// until it is delivered, it fails for good, the retry window closes or ctx
// ends. The same bytes, with the same report-id, go to each URI on each
// attempt.
//
// It returns a Delivery per URI, in the record's order, and nil when one of
// them took the report; else an error wrapping ErrNotDelivered and the
// deliveries' errors.
//
// Nothing is sent, and no Delivery returned, when report is not valid (the
// error wraps ErrInvalidReport, a *ReportError naming the JSON path, or
// ErrTooLarge; see Report.Validate), or when its domain has no usable
// TLSRPT record, so does not implement TLSRPT: the error then wraps
// ErrNoRecord, ErrMultipleRecords, ErrRecordSyntax or ErrDNS, as
// LookupRecord's does.
func (s *Sender) Send(ctx context.Context, report *Report) ([]Delivery, error) {
	return s.resume(ctx, report, nil, nil)
}

// sendMode says how a Sender retries.
type sendMode struct {
	// once makes one attempt per rua URI: the caller retries the round
	// later (a Reporter, which holds no goroutine meanwhile).
	once bool
	// last, with once, says no round follows: a URI that failed is
	// given up on.
	last bool
}

// resume is Send for a delivery resumed after a restart: it skips the rua
// URIs in done, which took the report before, and calls delivered, when not
// nil, with each URI as it takes the report, from the URI's goroutine.
func (s *Sender) resume(ctx context.Context, report *Report, done []string, delivered func(uri string)) ([]Delivery, error) {
	return s.send(ctx, report, done, delivered, sendMode{})
}

// round is resume making one attempt per rua URI, for a caller that retries
// the URIs that failed with a transient error (not ErrPermanent) in a later
// round, unless last is set.
func (s *Sender) round(ctx context.Context, report *Report, done []string, delivered func(uri string), last bool) ([]Delivery, error) {
	return s.send(ctx, report, done, delivered, sendMode{once: true, last: last})
}

// send is resume, retrying as mode says.
func (s *Sender) send(ctx context.Context, report *Report, done []string, delivered func(uri string), mode sendMode) ([]Delivery, error) {
	p, err := s.build(report)
	if err != nil {
		return nil, err
	}
	if s.opts.Resolver == nil {
		return nil, fmt.Errorf("%w: SenderOptions.Resolver is not set", ErrDNS)
	}
	record, _, err := LookupRecord(ctx, s.opts.Resolver, p.PolicyDomain)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelDebug, "tlsrpt: no report sent: no tlsrpt record",
			slog.String("domain", logname.Domain(p.PolicyDomain.ASCII, p.PolicyDomain.Unicode)), slog.Any("err", err))
		return nil, err
	}
	deliveries := s.deliver(ctx, p, record, done, delivered, mode)
	return deliveries, s.outcomeOf(p, deliveries)
}

// sendRecord is Send with record, its policy domain's TLSRPT record, looked
// up already.
func (s *Sender) sendRecord(ctx context.Context, report *Report, record *Record) ([]Delivery, error) {
	p, err := s.build(report)
	if err != nil {
		return nil, err
	}
	if record == nil {
		return nil, fmt.Errorf("%w: no tlsrpt record for %s", ErrNoRecord, p.PolicyDomain.ASCII)
	}
	deliveries := s.deliver(ctx, p, record, nil, nil, sendMode{})
	return deliveries, s.outcomeOf(p, deliveries)
}

// build makes the payload of report, counting it.
func (s *Sender) build(report *Report) (*payload, error) {
	p, err := buildPayload(report)
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: building the report: %w", err)
	}
	s.metrics.built.Inc()
	return p, nil
}

// deliver delivers p to the supported rua URIs of record, but for those in
// done, which count as delivered without an attempt. It calls delivered,
// when not nil, with each URI that takes p, from the URI's goroutine.
func (s *Sender) deliver(ctx context.Context, p *payload, record *Record, done []string, delivered func(uri string), mode sendMode) []Delivery {
	var uris []string
	for _, u := range record.SupportedRUA() {
		if !slices.Contains(uris, u) {
			uris = append(uris, u)
		}
	}
	deliveries := make([]Delivery, len(uris))
	var wg sync.WaitGroup
	run := func(ds []*Delivery, attempt func(context.Context) error) {
		wg.Go(func() { s.run(ctx, p, ds, attempt, delivered, mode) })
	}
	// With OneMessage, the mailto URIs share one message (RFC 5321 3.3:
	// one message, several RCPT TO).
	var group []*Delivery
	var groupTo []string
	tried := 0 // URIs tried or done, for maxRUA
	for i, uri := range uris {
		d := &deliveries[i]
		d.URI = uri
		d.transport = transportHTTPS
		if scheme, _, _ := strings.Cut(uri, ":"); strings.EqualFold(scheme, "mailto") {
			d.transport = transportMailto
		}
		if slices.Contains(done, uri) {
			// Took the report before a restart: not sent again.
			tried++
			continue
		}
		var to string
		var err error
		if d.transport == transportMailto {
			to, err = s.mailAddress(uri)
		}
		if why := s.leftOut(ctx, d, to, err); why != "" {
			s.skip(ctx, p, d, why)
			continue
		}
		if tried >= maxRUA {
			d.Err = fmt.Errorf("%w: more than %d rua URIs, %s not tried", ErrPermanent, maxRUA, quoted.String(uri))
			continue
		}
		tried++
		switch d.transport {
		case transportHTTPS:
			if d.Err = checkHTTPSURI(uri); d.Err != nil {
				s.finish(ctx, p, d, mode)
				continue
			}
			run([]*Delivery{d}, func(ctx context.Context) error { return postReport(ctx, s.client, uri, p) })
		case transportMailto:
			switch {
			case err != nil:
				d.Err = err
				s.finish(ctx, p, d, mode)
			case s.opts.OneMessage:
				group = append(group, d)
				groupTo = append(groupTo, to)
			default:
				s.mail(ctx, p, []*Delivery{d}, []string{to}, run, mode)
			}
		}
	}
	if len(group) > 0 {
		s.mail(ctx, p, group, groupTo, run, mode)
	}
	wg.Wait()
	return deliveries
}

// mail delivers p by one message to the addresses to, those of the mailto
// URIs of ds, with run; the message is composed once, so that every
// attempt submits the same one.
func (s *Sender) mail(ctx context.Context, p *payload, ds []*Delivery, to []string, run func([]*Delivery, func(context.Context) error), mode sendMode) {
	from := s.opts.From
	if from == "" {
		from = p.Report.ContactInfo
	}
	msg, err := composeMessage(p, from, to, time.Now())
	if err != nil {
		for _, d := range ds {
			d.Err = fmt.Errorf("%w: %w", ErrPermanent, err)
			s.finish(ctx, p, d, mode)
		}
		return
	}
	run(ds, func(ctx context.Context) error { return s.opts.Submit(withReportSubmission(ctx), msg) })
}

// mailAddress returns the address of the mailto URI uri, or an error
// wrapping ErrPermanent when it cannot be mailed to.
func (s *Sender) mailAddress(uri string) (string, error) {
	if s.opts.Submit == nil {
		return "", fmt.Errorf("%w: no SenderOptions.Submit to send mail with", ErrPermanent)
	}
	return parseMailto(uri, s.opts.SMTPUTF8)
}

// outcomeOf returns nil when one of deliveries succeeded, else an error
// wrapping ErrNotDelivered.
func (s *Sender) outcomeOf(p *payload, deliveries []Delivery) error {
	var errs []error
	for _, d := range deliveries {
		if d.Err == nil {
			return nil
		}
		errs = append(errs, d.Err)
	}
	if len(deliveries) == 0 {
		return fmt.Errorf("%w: the tlsrpt record of %s has no mailto or https rua URI", ErrNotDelivered, p.PolicyDomain.ASCII)
	}
	return fmt.Errorf("%w: report for %s: %w", ErrNotDelivered, p.PolicyDomain.ASCII, errors.Join(errs...))
}

// run makes the attempts of delivering p to the URIs of ds, one message or
// POST for them all, filling in each, and calls delivered, when not nil,
// with each URI that takes p.
func (s *Sender) run(ctx context.Context, p *payload, ds []*Delivery, attempt func(context.Context) error, delivered func(uri string), mode sendMode) {
	n, err := s.retry(ctx, ds[0], attempt, mode.once)
	for _, d := range ds {
		d.Attempts, d.Err = n, err
		s.finish(ctx, p, d, mode)
		if err == nil && delivered != nil {
			delivered(d.URI)
		}
	}
}

// leftOut returns why the MTA's options leave out d, whose address, for a
// mailto URI, is to (or err), or "" when they do not.
func (s *Sender) leftOut(ctx context.Context, d *Delivery, to string, err error) string {
	switch {
	case d.transport == transportHTTPS && s.opts.NoHTTPS:
		return "https rua URIs are left out (SenderOptions.NoHTTPS)"
	case d.transport == transportMailto && err == nil && s.opts.Suppress != nil && s.opts.Suppress(ctx, to):
		return quoted.String(to) + " is suppressed (SenderOptions.Suppress)"
	}
	return ""
}

// skip marks d skipped by the MTA's choice, for the reason why, and
// counts it.
func (s *Sender) skip(ctx context.Context, p *payload, d *Delivery, why string) {
	d.Skipped = true
	d.Err = fmt.Errorf("%w: %s skipped: %s", ErrPermanent, quoted.String(d.URI), why)
	s.finish(ctx, p, d, sendMode{})
}

// finish counts and logs the outcome of d.
func (s *Sender) finish(ctx context.Context, p *payload, d *Delivery, mode sendMode) {
	log := s.log.With(slog.String("domain", logname.Domain(p.PolicyDomain.ASCII, p.PolicyDomain.Unicode)), slog.String("uri", d.URI),
		slog.String("report_id", p.Report.ReportID), slog.Int("attempts", d.Attempts))
	switch {
	case d.Skipped:
		s.metrics.skipped.WithLabelValues(d.transport).Inc()
		log.LogAttrs(ctx, slog.LevelInfo, "tlsrpt: rua uri skipped", slog.Any("err", d.Err))
		return
	case d.Err == nil:
		s.metrics.sent.WithLabelValues(d.transport).Inc()
		log.LogAttrs(ctx, slog.LevelInfo, "tlsrpt: report delivered")
		return
	case mode.once && !mode.last && retryable(d.Err) && ctx.Err() == nil:
		// RFC 8460 5.5: the caller tries again in a later round.
		s.metrics.retries.WithLabelValues(d.transport).Inc()
		log.LogAttrs(ctx, slog.LevelDebug, "tlsrpt: report delivery failed, will retry", slog.Any("err", d.Err))
		return
	}
	s.metrics.failed.WithLabelValues(d.transport).Inc()
	log.LogAttrs(ctx, slog.LevelWarn, "tlsrpt: report not delivered", slog.Any("err", d.Err))
}

// retryable reports whether err, a Delivery's, may be mended by a retry.
func retryable(err error) bool {
	return err != nil && !errors.Is(err, ErrPermanent)
}

// retry runs attempt until it succeeds, fails for good (ErrPermanent), the
// retry window closes or ctx ends, waiting with exponential back-off between
// attempts (RFC 8460 5.5); or once, when once is set. Each attempt has a
// context with AttemptTimeout. It returns the number of attempts and the
// last error.
func (s *Sender) retry(ctx context.Context, d *Delivery, attempt func(context.Context) error, once bool) (int, error) {
	start := time.Now()
	wait := s.opts.FirstRetry
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, s.opts.AttemptTimeout)
		err := attempt(actx)
		cancel()
		switch {
		case err == nil:
			return n, nil
		case ctx.Err() != nil:
			return n, fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		case errors.Is(err, ErrPermanent), once:
			return n, err
		}
		// RFC 8460 5.5: "attempt redelivery for up to 24 hours after
		// the initial attempt".
		if s.opts.RetryWindow < 0 || time.Since(start)+wait > s.opts.RetryWindow {
			return n, fmt.Errorf("%w (gave up after %d attempts in %s)", err, n, time.Since(start).Round(time.Second))
		}
		s.log.LogAttrs(ctx, slog.LevelDebug, "tlsrpt: report delivery failed, will retry",
			slog.String("uri", d.URI), slog.Int("attempt", n), slog.Duration("retry_in", wait), slog.Any("err", err))
		s.metrics.retries.WithLabelValues(d.transport).Inc()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return n, fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		case <-t.C:
		}
		wait = min(2*wait, s.opts.MaxRetryDelay)
	}
}

// senderMetrics are a Sender's Prometheus collectors; nothing is registered
// until the user calls RegisterMetrics.
type senderMetrics struct {
	built   prometheus.Counter
	sent    *prometheus.CounterVec
	failed  *prometheus.CounterVec
	skipped *prometheus.CounterVec
	retries *prometheus.CounterVec
}

func newSenderMetrics() *senderMetrics {
	m := &senderMetrics{
		built: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mtastsgo_tlsrpt_reports_built_total",
			Help: "TLS reports built (validated, compressed) for sending.",
		}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtastsgo_tlsrpt_reports_sent_total",
			Help: "TLS reports delivered to a rua URI, by transport (https, mailto).",
		}, []string{"transport"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtastsgo_tlsrpt_reports_failed_total",
			Help: "TLS reports given up on for a rua URI, after any retries, by transport (https, mailto).",
		}, []string{"transport"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtastsgo_tlsrpt_reports_skipped_total",
			Help: "TLS reports not sent to a rua URI by the MTA's choice (a suppressed address, https left out), by transport (https, mailto).",
		}, []string{"transport"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtastsgo_tlsrpt_report_retries_total",
			Help: "Failed attempts to deliver a TLS report that were retried, by transport (https, mailto).",
		}, []string{"transport"}),
	}
	for _, t := range []string{transportHTTPS, transportMailto} {
		m.sent.WithLabelValues(t)
		m.failed.WithLabelValues(t)
		m.skipped.WithLabelValues(t)
		m.retries.WithLabelValues(t)
	}
	return m
}

// RegisterMetrics registers the sender's Prometheus collectors with reg:
// mtastsgo_tlsrpt_reports_built_total, and by transport (https, mailto)
// mtastsgo_tlsrpt_reports_sent_total, mtastsgo_tlsrpt_reports_failed_total and
// mtastsgo_tlsrpt_reports_skipped_total (see Delivery.Skipped), counted per
// rua URI, and mtastsgo_tlsrpt_report_retries_total. Register one
// sender per registry, or give each its own constant labels.
//
// The options are those of mtasts.RegisterMetrics: mtasts.MetricsNamespace
// puts a namespace before every name, mtasts.MetricsConstLabels adds labels
// to every metric. It returns an error for a namespace that is not a metric
// name prefix, for labels Prometheus rejects ("transport" is taken), or
// when reg already holds the metrics.
func (s *Sender) RegisterMetrics(reg prometheus.Registerer, opts ...mtasts.MetricsOption) error {
	reg, err := mtasts.MetricsRegisterer(reg, opts...)
	if err != nil {
		return err
	}
	m := s.metrics
	return errors.Join(reg.Register(m.built), reg.Register(m.sent), reg.Register(m.failed), reg.Register(m.skipped), reg.Register(m.retries))
}
