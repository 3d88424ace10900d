package tlsrpt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/quoted"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrNotSigned means a report message has no valid DKIM signature by the
// reporting domain, and was ignored. RFC 8460 3: "Reports lacking such a
// signature MUST be ignored by the recipient."
var ErrNotSigned = errors.New("tlsrpt: no valid dkim signature by the reporting domain")

// Defaults of a Collector's bounds.
const (
	defaultCollectTimeout    = 30 * time.Second
	defaultCollectConcurrent = 8
)

// Collector takes in received reports for automated processing: posted over
// HTTPS to its ServeHTTP (RFC 8460 5.4), or read from mail by
// CollectMessage (5.3). It reads each one as ReadReport does, forgiving what
// real senders get wrong, and hands the report to Store. A post's body is
// at most 15 MiB, the JSON within at most 20 MiB. Set its fields before
// first use, and do not copy it after.
type Collector struct {
	// Store keeps a report read. It is called from several goroutines at
	// once, with a context that ends after Timeout. Its error fails the
	// post (503, for the sender to retry) or CollectMessage. Required.
	Store func(ctx context.Context, r *Report) error

	// Resolver looks up the DKIM keys of report messages. Required for
	// CollectMessage, which ignores reports without a valid DKIM
	// signature by the reporting domain, as RFC 8460 3 says, and counts
	// them.
	Resolver mtasts.Resolver

	// Timeout bounds the time to read a post's body and store it, as the
	// server's ReadTimeout may not; 0 means 30 seconds.
	Timeout time.Duration

	// MaxConcurrent bounds the posts read and stored at once, and with
	// them the memory the collector takes; a post past it is answered 503
	// with Retry-After, for the sender to retry later. 0 means 8.
	MaxConcurrent int

	// acceptUnsigned makes CollectMessage store reports without a valid
	// signature too; tests set it.
	acceptUnsigned bool
	// maxBodySize bounds the body of a post; 0 means maxInputSize. Tests
	// set it.
	maxBodySize int64

	once    sync.Once
	sem     chan struct{}
	metrics *collectorMetrics
}

func (c *Collector) init() {
	c.once.Do(func() {
		n := c.MaxConcurrent
		if n <= 0 {
			n = defaultCollectConcurrent
		}
		c.sem = make(chan struct{}, n)
		c.metrics = newCollectorMetrics()
	})
}

func (c *Collector) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return defaultCollectTimeout
}

// CollectMessage reads a report message (RFC 8460 5.3) from r, leniently as
// ReadReport does, verifies its DKIM signatures (VerifyDKIM), and stores the
// report when one is valid. It returns the report and the DKIM results.
//
// The error wraps ErrNotSigned for a report ignored for its signatures
// (the report and results are returned with it), those of ReadReport, or
// the Store's.
func (c *Collector) CollectMessage(ctx context.Context, r io.Reader) (*Report, []DKIMResult, error) {
	c.init()
	if c.Store == nil {
		return nil, nil, errors.New("tlsrpt: collector has no Store")
	}
	data, err := readMax(r, maxInputSize, "message")
	if err != nil {
		c.metrics.count("mail", outcomeOf(err))
		return nil, nil, err
	}
	report, err := (&reading{}).message(bytes.NewReader(data))
	if err != nil {
		c.metrics.count("mail", outcomeOf(err))
		return nil, nil, err
	}
	results, err := VerifyDKIM(ctx, c.Resolver, data, report)
	if err != nil {
		c.metrics.count("mail", "invalid")
		return nil, nil, err
	}
	valid := false
	for i := range results {
		valid = valid || results[i].Valid()
	}
	if !valid && !c.acceptUnsigned {
		// RFC 8460 3: "Reports lacking such a signature MUST be
		// ignored by the recipient."
		c.metrics.count("mail", "unsigned")
		return report, results, fmt.Errorf("%w: %d %s checked", ErrNotSigned, len(results), plural(len(results), "signature"))
	}
	sctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	if err := c.Store(sctx, report); err != nil {
		c.metrics.count("mail", "store_error")
		return report, results, err
	}
	c.metrics.count("mail", "stored")
	return report, results, nil
}

// ServeHTTP takes a report posted over HTTPS (RFC 8460 5.4): a POST with a
// body of media type application/tlsrpt+json or application/tlsrpt+gzip.
// It reads the report as ReadReport does and hands it to Store, then
// answers 201 Created. RFC 8460 5.4: "The receiving system MUST return a
// "successful" response from its HTTPS server, typically a 200 or 201 HTTP
// code".
//
// Other answers, each with a short reason as text: 405 for another method,
// 415 for another media type, 413 for a body past 15 MiB or JSON past 20
// MiB, 408 for a body not read within Timeout, 400 for an invalid
// report, 503 with Retry-After past MaxConcurrent posts or when Store
// fails. The sender may retry those of 5xx (RFC 8460 5.4: "Other codes
// could indicate a delivery failure and may be retried").
func (c *Collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.init()
	if c.Store == nil {
		c.answer(w, http.StatusInternalServerError, "store_error", "no store")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		c.answer(w, http.StatusMethodNotAllowed, "method_not_allowed", "reports are posted (RFC 8460 5.4)")
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != mediaTypeGzip && mt != mediaTypeJSON {
		c.answer(w, http.StatusUnsupportedMediaType, "media_type",
			"content-type "+quoted.String(r.Header.Get("Content-Type"))+", expected "+mediaTypeGzip+" or "+mediaTypeJSON)
		return
	}
	limit := c.maxBodySize
	if limit <= 0 {
		limit = maxInputSize
	}
	if r.ContentLength > limit {
		c.answer(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body of %d bytes, more than the maximum of %d", r.ContentLength, limit))
		return
	}
	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
	default:
		w.Header().Set("Retry-After", "60")
		c.answer(w, http.StatusServiceUnavailable, "busy", "too many reports at once; retry later")
		return
	}

	deadline := time.Now().Add(c.timeout())
	// The server may have set no read deadline, or a longer one; an
	// error here means the connection does not take one, and the
	// server's own bounds apply.
	_ = http.NewResponseController(w).SetReadDeadline(deadline)
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()

	data, err := readMax(http.MaxBytesReader(w, r.Body, limit), int(limit), "body")
	var mberr *http.MaxBytesError
	switch {
	case errors.As(err, &mberr) || errors.Is(err, ErrTooLarge):
		c.answer(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body larger than the maximum of %d bytes", limit))
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.answer(w, http.StatusRequestTimeout, "timeout", "body not received within "+c.timeout().String())
		return
	case err != nil:
		c.answer(w, http.StatusBadRequest, "invalid", "reading the body: "+quoted.Cause(err).Error())
		return
	}

	// Gzip is told by its magic number (RFC 8460 6.5), whichever of the
	// two media types the sender named. The report is read as received
	// reports are, forgiving what real senders get wrong (ReadOptions).
	var report *Report
	if !isGzip(data) && !isJSON(data) {
		err = fmt.Errorf("%w: neither JSON nor gzip", ErrInvalidReport)
	} else {
		report, _, err = ReadReport(bytes.NewReader(data), ReadOptions{})
	}
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		c.answer(w, status, outcomeOf(err), strings.TrimPrefix(err.Error(), "tlsrpt: "))
		return
	}
	if err := c.Store(ctx, report); err != nil {
		w.Header().Set("Retry-After", "300")
		c.answer(w, http.StatusServiceUnavailable, "store_error", "the report could not be stored; retry later")
		return
	}
	c.answer(w, http.StatusCreated, "stored", "report stored")
}

// maxReason is how many bytes of a reason an answer shows.
const maxReason = 256

// answer writes a short text answer, and counts it by outcome.
func (c *Collector) answer(w http.ResponseWriter, status int, outcome, reason string) {
	c.metrics.count("https", outcome)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, quoted.Cut(reason, maxReason)+"\n")
}

// outcomeOf names the outcome of a read error, for the metrics.
func outcomeOf(err error) string {
	switch {
	case errors.Is(err, ErrTooLarge):
		return "too_large"
	case errors.Is(err, ErrNoReport):
		return "no_report"
	}
	return "invalid"
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// collectorMetrics are a Collector's Prometheus collectors; nothing is
// registered until the user calls RegisterMetrics.
type collectorMetrics struct {
	received *prometheus.CounterVec
}

func newCollectorMetrics() *collectorMetrics {
	return &collectorMetrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtastsgo_tlsrpt_reports_received_total",
			Help: "Reports received by a collector, by transport (https, mail) and outcome (stored, unsigned, invalid, no_report, too_large, media_type, method_not_allowed, timeout, busy, store_error).",
		}, []string{"via", "outcome"}),
	}
}

func (m *collectorMetrics) count(via, outcome string) {
	m.received.WithLabelValues(via, outcome).Inc()
}

// RegisterMetrics registers the collector's Prometheus collector with reg:
// mtastsgo_tlsrpt_reports_received_total by transport and outcome, which
// counts, among others, the messages ignored for want of a valid DKIM
// signature (outcome "unsigned"). The options are those of
// mtasts.RegisterMetrics.
func (c *Collector) RegisterMetrics(reg prometheus.Registerer, opts ...mtasts.MetricsOption) error {
	c.init()
	reg, err := mtasts.MetricsRegisterer(reg, opts...)
	if err != nil {
		return err
	}
	return reg.Register(c.metrics.received)
}
