package mtasts_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mjl-/adns"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
)

// logEntry is one record a recordingHandler received.
type logEntry struct {
	level slog.Level
	msg   string
	attrs map[string]slog.Value // with those of Logger.With
	ctx   context.Context
}

// recordingHandler keeps the records it is given, with the attributes
// added by Logger.With. It is enabled from level min.
type recordingHandler struct {
	min     slog.Level
	mu      *sync.Mutex
	entries *[]logEntry
	attrs   []slog.Attr
}

func newRecorder(min slog.Level) (*recordingHandler, func() []logEntry) {
	h := &recordingHandler{min: min, mu: &sync.Mutex{}, entries: &[]logEntry{}}
	return h, func() []logEntry {
		h.mu.Lock()
		defer h.mu.Unlock()
		return append([]logEntry(nil), *h.entries...)
	}
}

func (h *recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }

func (h *recordingHandler) Handle(ctx context.Context, r slog.Record) error {
	e := logEntry{level: r.Level, msg: r.Message, attrs: map[string]slog.Value{}, ctx: ctx}
	for _, a := range h.attrs {
		e.attrs[a.Key] = a.Value
	}
	r.Attrs(func(a slog.Attr) bool {
		e.attrs[a.Key] = a.Value
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.entries = append(*h.entries, e)
	return nil
}

func (h *recordingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	h2.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &h2
}

func (h *recordingHandler) WithGroup(string) slog.Handler { return h }

// dnssecResolver answers TXT lookups from a map, as DNSSEC-validated when
// authentic is set.
type dnssecResolver struct {
	txts      map[string][]string
	authentic bool
}

func (r dnssecResolver) LookupTXT(ctx context.Context, name string) ([]string, adns.Result, error) {
	if txts, ok := r.txts[name]; ok {
		return txts, adns.Result{Authentic: r.authentic}, nil
	}
	return nil, adns.Result{Authentic: r.authentic}, &adns.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// checkAttrs checks that e has the attributes of want, by their String
// form, and none of absent.
func checkAttrs(t *testing.T, e logEntry, want map[string]string, absent ...string) {
	t.Helper()
	for k, v := range want {
		got, ok := e.attrs[k]
		if !ok {
			t.Errorf("%q: no attribute %q in %v", e.msg, k, e.attrs)
		} else if got.String() != v {
			t.Errorf("%q: attribute %s=%q, want %q", e.msg, k, got.String(), v)
		}
	}
	for _, k := range absent {
		if v, ok := e.attrs[k]; ok {
			t.Errorf("%q: attribute %s=%v, want none", e.msg, k, v)
		}
	}
	if d, ok := e.attrs["duration"]; !ok || d.Kind() != slog.KindDuration || d.Duration() < 0 {
		t.Errorf("%q: duration %v", e.msg, d)
	}
}

// A lookup is logged at debug level with its outcome, the DNSSEC status and
// its duration, through a logger derived for the delivery, which carries
// the caller's own attributes.
func TestClientLogsLookup(t *testing.T) {
	h, entries := newRecorder(slog.LevelDebug)
	client := &mtasts.Client{Logger: slog.New(h).With("service", "queue")}
	resolver := dnssecResolver{txts: map[string][]string{"_mta-sts.example.com.": {"v=STSv1; id=20240101T000000"}}, authentic: true}
	delivery := client.WithLogger(client.Logger.With("msgid", "m1", "conn", 7))

	if _, _, err := delivery.LookupRecord(context.Background(), resolver, mustDomain(t, "example.com")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := delivery.LookupRecord(context.Background(), resolver, mustDomain(t, "example.org")); !errors.Is(err, mtasts.ErrNoRecord) {
		t.Fatalf("error %v, want ErrNoRecord", err)
	}
	// The client it was derived from keeps its own logger.
	if _, _, err := client.LookupRecord(context.Background(), resolver, mustDomain(t, "example.com")); err != nil {
		t.Fatal(err)
	}

	got := entries()
	if len(got) != 3 {
		t.Fatalf("%d records, want 3: %v", len(got), got)
	}
	for _, e := range got {
		if e.level != slog.LevelDebug || e.msg != "mtasts: txt record lookup" {
			t.Errorf("record %v %q, want DEBUG \"mtasts: txt record lookup\"", e.level, e.msg)
		}
	}
	checkAttrs(t, got[0], map[string]string{
		"service": "queue", "msgid": "m1", "conn": "7",
		"domain": "example.com", "record_id": "20240101T000000", "dnssec": "true",
	}, "err", "reason", "result")
	checkAttrs(t, got[1], map[string]string{
		"msgid": "m1", "domain": "example.org", "dnssec": "true",
		"result": "no-record", "reason": "mta-sts-record-not-found",
	}, "record_id")
	if v, ok := got[1].attrs["err"]; !ok || !strings.Contains(v.String(), "no txt record") {
		t.Errorf("err attribute %v", v)
	}
	checkAttrs(t, got[2], map[string]string{"service": "queue", "domain": "example.com"}, "msgid", "conn")
}

// A fetch is logged with status, size and mode, or the error and its
// TLS-RPT reason. A Client without an HTTPClient of its own uses the
// package's HTTPClient as it is at the time of the fetch, so code that
// replaced it keeps working.
func TestClientLogsFetch(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	cert := ca.issue(t, now.Add(-time.Hour), now.Add(time.Hour), "mta-sts.example.com", "mta-sts.broken.example")
	startPolicyServer(t, ca.pool, cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host == "mta-sts.broken.example" {
			http.Error(w, "oops", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, goodPolicy)
	}))
	h, entries := newRecorder(slog.LevelDebug)
	client := (&mtasts.Client{}).WithLogger(slog.New(h).With("msgid", "m2"))

	if _, _, err := client.FetchPolicy(context.Background(), mustDomain(t, "example.com")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.FetchPolicy(context.Background(), mustDomain(t, "broken.example")); !errors.Is(err, mtasts.ErrPolicyFetch) {
		t.Fatalf("error %v, want ErrPolicyFetch", err)
	}
	got := entries()
	if len(got) != 2 {
		t.Fatalf("%d records, want 2: %v", len(got), got)
	}
	for _, e := range got {
		if e.level != slog.LevelDebug || e.msg != "mtasts: policy fetch" {
			t.Errorf("record %v %q, want DEBUG \"mtasts: policy fetch\"", e.level, e.msg)
		}
	}
	checkAttrs(t, got[0], map[string]string{
		"msgid": "m2", "domain": "example.com", "status": "200", "bytes": strconv.Itoa(len(goodPolicy)), "mode": "enforce", "max_age": "86400",
	}, "err", "reason", "result")
	checkAttrs(t, got[1], map[string]string{
		"msgid": "m2", "domain": "broken.example", "status": "503",
		"result": "fetch-error", "reason": "mta-sts-policy-http-status-503",
	}, "mode", "max_age")
}

// roundTripFunc is an http.RoundTripper from a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A Client's own HTTPClient is used instead of the package's, with the
// package's rules on redirects kept.
func TestClientHTTPClient(t *testing.T) {
	var hosts []string
	client := &mtasts.Client{HTTPClient: &http.Client{
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			hosts = append(hosts, r.URL.Host)
			if r.URL.Host == "mta-sts.moved.example" {
				return &http.Response{StatusCode: 302, Header: http.Header{"Location": {"https://mta-sts.example.com/.well-known/mta-sts.txt"}}, Body: http.NoBody, Request: r}, nil
			}
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: io.NopCloser(strings.NewReader(goodPolicy)), Request: r}, nil
		}),
		// Would follow redirects; FetchPolicy must not.
		CheckRedirect: func(*http.Request, []*http.Request) error { return nil },
	}}
	p, _, err := client.FetchPolicy(context.Background(), mustDomain(t, "example.com"))
	if err != nil || p.Mode != mtasts.ModeEnforce {
		t.Fatalf("FetchPolicy: %v, %v", p, err)
	}
	if _, _, err := client.FetchPolicy(context.Background(), mustDomain(t, "moved.example")); mtasts.TLSReportFailureReason(err) != "mta-sts-policy-redirect" {
		t.Fatalf("redirect: %v", err)
	}
	if want := []string{"mta-sts.example.com", "mta-sts.moved.example"}; strings.Join(hosts, " ") != strings.Join(want, " ") {
		t.Errorf("requests to %q, want %q", hosts, want)
	}
}

// Get logs its lookup and its fetch; a handler that reads the context gets
// the caller's; a logger not enabled for debug gets nothing.
func TestClientLogsGet(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	startPolicyServer(t, ca.pool, ca.issue(t, now.Add(-time.Hour), now.Add(time.Hour), "mta-sts.example.com"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, goodPolicy)
	}))
	resolver := dnssecResolver{txts: map[string][]string{"_mta-sts.example.com.": {"v=STSv1; id=1"}}}
	type ctxKey struct{}
	ctx := context.WithValue(context.Background(), ctxKey{}, "trace-1")

	h, entries := newRecorder(slog.LevelDebug)
	if _, _, _, err := (&mtasts.Client{Logger: slog.New(h)}).Get(ctx, resolver, mustDomain(t, "example.com")); err != nil {
		t.Fatal(err)
	}
	got := entries()
	if len(got) != 2 || got[0].msg != "mtasts: txt record lookup" || got[1].msg != "mtasts: policy fetch" {
		t.Fatalf("records %v, want a lookup and a fetch", got)
	}
	checkAttrs(t, got[0], map[string]string{"record_id": "1", "dnssec": "false"})
	checkAttrs(t, got[1], map[string]string{"status": "200", "mode": "enforce"})
	for _, e := range got {
		if e.ctx.Value(ctxKey{}) != "trace-1" {
			t.Errorf("%q: handler did not get the caller's context", e.msg)
		}
	}

	info, infoEntries := newRecorder(slog.LevelInfo)
	if _, _, _, err := (&mtasts.Client{Logger: slog.New(info)}).Get(ctx, resolver, mustDomain(t, "example.com")); err != nil {
		t.Fatal(err)
	}
	if got := infoEntries(); len(got) != 0 {
		t.Errorf("logger at info level got %v", got)
	}
}

// The zero Client and a nil *Client work as the package functions do,
// logging nothing.
func TestClientZero(t *testing.T) {
	resolver := dnssecResolver{txts: map[string][]string{"_mta-sts.example.com.": {"v=STSv1; id=1"}}}
	var nilClient *mtasts.Client
	for _, c := range []*mtasts.Client{{}, nilClient} {
		r, _, err := c.LookupRecord(context.Background(), resolver, mustDomain(t, "example.com"))
		if err != nil || r.ID != "1" {
			t.Errorf("LookupRecord: %v, %v", r, err)
		}
	}
	h, entries := newRecorder(slog.LevelDebug)
	if _, _, err := nilClient.WithLogger(slog.New(h)).LookupRecord(context.Background(), resolver, mustDomain(t, "example.com")); err != nil {
		t.Fatal(err)
	}
	if len(entries()) != 1 {
		t.Errorf("nil Client with a logger: %d records, want 1", len(entries()))
	}
}

// A Client given to the cache's Options logs the cache's lookups and
// fetches.
func TestClientInCache(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	startPolicyServer(t, ca.pool, ca.issue(t, now.Add(-time.Hour), now.Add(time.Hour), "mta-sts.example.com"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, goodPolicy)
	}))
	h, entries := newRecorder(slog.LevelDebug)
	client := &mtasts.Client{Logger: slog.New(h).With("component", "mtasts-cache")}
	c, err := cache.New(cache.Options{
		Resolver: dnssecResolver{txts: map[string][]string{"_mta-sts.example.com.": {"v=STSv1; id=1"}}},
		Client:   client,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if res := c.Get(context.Background(), mustDomain(t, "example.com")); res.Policy == nil || res.Err != nil {
		t.Fatalf("cache Get: %+v", res)
	}
	got := entries()
	if len(got) != 2 || got[0].msg != "mtasts: txt record lookup" || got[1].msg != "mtasts: policy fetch" {
		t.Fatalf("records %v, want a lookup and a fetch", got)
	}
	checkAttrs(t, got[1], map[string]string{"component": "mtasts-cache", "status": "200", "mode": "enforce"})
}
