package tlsrpt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/prometheus/client_golang/prometheus"
)

// reportStore keeps the reports a Collector stores.
type reportStore struct {
	mu      sync.Mutex
	reports []*Report
}

func (s *reportStore) store(_ context.Context, r *Report) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports = append(s.reports, r)
	return nil
}

func (s *reportStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reports)
}

func appendixB(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/rfc8460-appendix-b.json")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// post posts body as mediaType to url, and returns the status and answer.
func post(t testing.TB, url, mediaType string, body io.Reader) (int, string) {
	t.Helper()
	resp, err := http.Post(url, mediaType, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// count returns the count of received reports by via and outcome.
func (c *Collector) count(via, outcome string) int {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.metrics.received)
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["via"] == via && labels["outcome"] == outcome {
				return int(m.GetCounter().GetValue())
			}
		}
	}
	return 0
}

// Reports posted as RFC 8460 5.4 says, JSON or gzip, are read and stored;
// other posts get a 4xx with a short reason, and none reaches the store.
func TestCollectorPost(t *testing.T) {
	store := &reportStore{}
	c := &Collector{Store: store.store, maxBodySize: 64 << 10}
	srv := httptest.NewServer(c)
	defer srv.Close()
	data := appendixB(t)
	want, err := ParseReport(data)
	if err != nil {
		t.Fatal(err)
	}
	junk := `{"organization-name": "` + strings.Repeat("\x1b[2J", 4000) + `"}`

	tests := []struct {
		name      string
		mediaType string
		body      io.Reader
		status    int
		reason    string
	}{
		{"json", mediaTypeJSON, bytes.NewReader(data), 201, "report stored"},
		{"gzip", mediaTypeGzip, bytes.NewReader(gzipped(t, data)), 201, "report stored"},
		{"gzip labelled json", mediaTypeJSON, bytes.NewReader(gzipped(t, data)), 201, "report stored"},
		{"media type with parameter", mediaTypeJSON + "; charset=utf-8", bytes.NewReader(data), 201, "report stored"},
		{"wrong media type", "application/json", bytes.NewReader(data), 415, `content-type "application/json", expected application/tlsrpt+gzip or application/tlsrpt+json`},
		{"no media type", "", bytes.NewReader(data), 415, `content-type "", expected`},
		{"oversized", mediaTypeJSON, bytes.NewReader(make([]byte, 65<<10)), 413, "body of 66560 bytes, more than the maximum of 65536"},
		{"oversized, chunked", mediaTypeJSON, io.MultiReader(strings.NewReader("{"), bytes.NewReader(make([]byte, 65<<10))), 413, "body larger than the maximum of 65536 bytes"},
		{"gzip bomb", mediaTypeGzip, bytes.NewReader(gzipped(t, make([]byte, maxReportSize+1))), 413, "report too large"},
		{"bad report", mediaTypeJSON, strings.NewReader(`{"organization-name": "x"}`), 400, "invalid report"},
		{"long bad report", mediaTypeJSON, strings.NewReader(junk), 400, "invalid report"},
		{"bad gzip", mediaTypeGzip, bytes.NewReader(gzipped(t, data)[:30]), 400, "invalid report: gzip"},
		{"not json", mediaTypeJSON, strings.NewReader("From: x\r\n\r\n"), 400, "invalid report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := store.len()
			status, answer := post(t, srv.URL+"/tlsrpt", tt.mediaType, tt.body)
			if status != tt.status || !strings.Contains(answer, tt.reason) {
				t.Errorf("%d %q, want %d with %q", status, answer, tt.status, tt.reason)
			}
			if len(answer) > maxReason+30 || strings.ContainsRune(answer, 0x1b) {
				t.Errorf("answer of %d bytes, not short and escaped: %q", len(answer), answer)
			}
			stored := store.len() - before
			if want := tt.status / 100 * 100; (stored == 1) != (want == 200) {
				t.Errorf("%d reports stored", stored)
			}
		})
	}
	for _, r := range store.reports {
		if r.ReportID != want.ReportID || r.Policies[0].Summary != want.Policies[0].Summary {
			t.Errorf("stored %+v", r)
		}
	}

	resp, err := http.Get(srv.URL + "/tlsrpt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if n := c.count("https", "stored"); n != 4 {
		t.Errorf("counted %d stored", n)
	}
	if n := c.count("https", "media_type"); n != 2 {
		t.Errorf("counted %d of another media type", n)
	}
}

// A body that stops coming is answered 408 once Timeout passes, and frees
// its place for other posts.
func TestCollectorSlowBody(t *testing.T) {
	store := &reportStore{}
	c := &Collector{Store: store.store, Timeout: 200 * time.Millisecond, MaxConcurrent: 1}
	srv := httptest.NewServer(c)
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Half the body it announces, then nothing.
	fmt.Fprintf(conn, "POST /tlsrpt HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: 1000\r\n\r\n{\"organization-name\": ", mediaTypeJSON)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 408 || !strings.Contains(string(body), "body not received within 200ms") {
		t.Errorf("%d %q", resp.StatusCode, body)
	}
	if status, _ := post(t, srv.URL, mediaTypeJSON, bytes.NewReader(appendixB(t))); status != 201 {
		t.Errorf("the next post: %d", status)
	}
}

// Posts past MaxConcurrent are answered 503 with Retry-After, not queued;
// those within it are all stored.
func TestCollectorConcurrent(t *testing.T) {
	data := appendixB(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	store := &reportStore{}
	c := &Collector{MaxConcurrent: 2, Store: func(ctx context.Context, r *Report) error {
		entered <- struct{}{}
		<-release
		return store.store(ctx, r)
	}}
	srv := httptest.NewServer(c)
	defer srv.Close()

	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	for range 2 {
		wg.Go(func() {
			status, _ := post(t, srv.URL, mediaTypeJSON, bytes.NewReader(data))
			statuses <- status
		})
	}
	<-entered
	<-entered
	resp, err := http.Post(srv.URL, mediaTypeJSON, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third post: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(release)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != 201 {
			t.Errorf("post within the bound: %d", s)
		}
	}

	// Many at once, within the bound, from many connections.
	c2 := &Collector{MaxConcurrent: 64, Store: store.store}
	srv2 := httptest.NewServer(c2)
	defer srv2.Close()
	before := store.len()
	for i := range 32 {
		wg.Go(func() {
			body, mt := data, mediaTypeJSON
			if i%2 == 1 {
				body, mt = gzipped(t, data), mediaTypeGzip
			}
			if status, answer := post(t, srv2.URL, mt, bytes.NewReader(body)); status != 201 {
				t.Errorf("post %d: %d %q", i, status, answer)
			}
		})
	}
	wg.Wait()
	if n := store.len() - before; n != 32 {
		t.Errorf("%d reports stored of 32", n)
	}
}

// A store that fails gets the sender to retry: 503.
func TestCollectorStoreError(t *testing.T) {
	c := &Collector{Store: func(context.Context, *Report) error { return errors.New("disk full") }}
	srv := httptest.NewServer(c)
	defer srv.Close()
	status, answer := post(t, srv.URL, mediaTypeJSON, bytes.NewReader(appendixB(t)))
	if status != 503 || strings.Contains(answer, "disk full") {
		t.Errorf("%d %q", status, answer)
	}
}

// CollectMessage ignores a message without a valid DKIM signature by the
// reporting domain (RFC 8460 3), and counts it; acceptUnsigned keeps it.
func TestCollectMessage(t *testing.T) {
	msg, _ := composedReport(t)
	key := newDKIMKey(t, "tlsrpt")
	res := mtaststest.NewResolver()
	res.SetTXT("sel._domainkey.company-x.example", key.record)
	res.SetTXT("sel._domainkey.attacker.example", key.record)
	signed := signDKIM(t, msg, key, "company-x.example", "sel")
	// The human-readable part changed: the report reads, the signature
	// fails.
	changed := bytes.Replace(signed, []byte("This is a multipart"), []byte("This is a Multipart"), 1)
	ctx := context.Background()

	store := &reportStore{}
	c := &Collector{Store: store.store, Resolver: res}
	tests := []struct {
		name   string
		msg    []byte
		stored bool
	}{
		{"valid", signed, true},
		{"unsigned", msg, false},
		{"body changed", changed, false},
		{"other domain", signDKIM(t, msg, key, "attacker.example", "sel"), false},
		{"l=", signDKIMBodyLength(t, msg, key, "company-x.example", "sel", 100), false},
	}
	for _, tt := range tests {
		before := store.len()
		report, results, err := c.CollectMessage(ctx, bytes.NewReader(tt.msg))
		if tt.stored != (err == nil) || !tt.stored && !errors.Is(err, ErrNotSigned) || report == nil {
			t.Errorf("%s: %v", tt.name, err)
		}
		if tt.name != "unsigned" && len(results) != 1 {
			t.Errorf("%s: %d results", tt.name, len(results))
		}
		if got := store.len() - before; got != map[bool]int{true: 1}[tt.stored] {
			t.Errorf("%s: %d stored", tt.name, got)
		}
	}
	if n := c.count("mail", "unsigned"); n != 4 {
		t.Errorf("counted %d unsigned", n)
	}

	c.acceptUnsigned = true
	if _, _, err := c.CollectMessage(ctx, bytes.NewReader(msg)); err != nil || store.len() != 2 {
		t.Errorf("acceptUnsigned: %v, %d stored", err, store.len())
	}
	if _, _, err := c.CollectMessage(ctx, strings.NewReader("Subject: x\r\n\r\nhello")); !errors.Is(err, ErrNoReport) {
		t.Errorf("not a report: %v", err)
	}
}

// Nothing is registered until RegisterMetrics, and once per registry.
func TestCollectorRegisterMetrics(t *testing.T) {
	c := &Collector{Store: (&reportStore{}).store}
	reg := prometheus.NewRegistry()
	if err := c.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if err := c.RegisterMetrics(reg); err == nil {
		t.Error("second RegisterMetrics with one registry: no error")
	}
	srv := httptest.NewServer(c)
	defer srv.Close()
	post(t, srv.URL, "text/plain", strings.NewReader("x"))
	if n := c.count("https", "media_type"); n != 1 {
		t.Errorf("counted %d", n)
	}
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != "mtastsgo_tlsrpt_reports_received_total" {
		t.Errorf("gathered %v, %v", mfs, err)
	}
}
