package tlsrpt_test

import (
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// appendixB returns RFC 8460's example report, freshly parsed.
func appendixB(t testing.TB) *tlsrpt.Report {
	t.Helper()
	data, err := os.ReadFile("testdata/rfc8460-appendix-b.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := tlsrpt.ParseReport(data)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sameReport fails the test unless got and want marshal to the same JSON.
func sameReport(t *testing.T, got, want *tlsrpt.Report) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("report differs:\n got %s\nwant %s", g, w)
	}
}

// collector is an HTTPS report collector on 127.0.0.1: a real TLS server
// whose answers the test scripts.
type collector struct {
	srv *httptest.Server

	mu       sync.Mutex
	posts    []post
	answer   func(n int, w http.ResponseWriter, r *http.Request) // n counts requests from 1
	requests int
}

type post struct {
	method, path, contentType, contentEncoding string
	body                                       []byte
}

func newCollector(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *collector {
	c := &collector{answer: answer}
	c.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.requests++
		n := c.requests
		c.posts = append(c.posts, post{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"), body})
		c.mu.Unlock()
		c.answer(n, w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) received() []post {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.posts)
}

// transport returns the guarded transport of the library, trusting the
// collector's certificate, with allow as its guard's exceptions: as a user
// would set up a private collector.
func (c *collector) transport(allow func(netip.Addr) bool) *http.Transport {
	tr := mtasts.NewTransport(allow)
	pool := x509.NewCertPool()
	pool.AddCert(c.srv.Certificate())
	tr.TLSClientConfig.RootCAs = pool
	return tr
}

func record(uris ...string) *tlsrpt.Record {
	return &tlsrpt.Record{RUA: uris}
}

func newSender(t *testing.T, opts tlsrpt.SenderOptions) *tlsrpt.Sender {
	t.Helper()
	s, err := tlsrpt.NewSender(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// counters gathers the sender's metrics as name{label=value} -> value.
func counters(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			got[name] = m.GetCounter().GetValue()
		}
	}
	return got
}

// A collector that fails once and then takes the report gets it twice, the
// same bytes each time, posted as RFC 8460 5.4 says; the retry is counted.
func TestSendHTTPSRetry(t *testing.T) {
	c := newCollector(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			http.Error(w, "busy, try later", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	s := newSender(t, tlsrpt.SenderOptions{
		Transport:  c.transport(mtasts.AllowLoopback),
		FirstRetry: 1, // a nanosecond: the timing is TestSendRetryBackoff's
	})
	reg := prometheus.NewPedanticRegistry()
	if err := s.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	report := appendixB(t)
	uri := c.srv.URL + "/v1/tlsrpt"
	deliveries, err := s.SendRecordForTest(t.Context(), report, record(uri))
	if err != nil {
		t.Fatalf("SendRecord: %v", err)
	}
	want := []tlsrpt.Delivery{{URI: uri, Attempts: 2}}
	if len(deliveries) != 1 || deliveries[0].TransportForTest() != "https" || deliveries[0].URI != uri || deliveries[0].Attempts != 2 || deliveries[0].Err != nil || deliveries[0].Skipped {
		t.Errorf("deliveries %+v, want %+v, by https", deliveries, want)
	}

	posts := c.received()
	if len(posts) != 2 {
		t.Fatalf("collector got %d requests, want 2", len(posts))
	}
	for i, p := range posts {
		// RFC 8460 5.4: POST, media type application/tlsrpt+gzip; the
		// gzip data is the entity, not a Content-Encoding.
		if p.method != http.MethodPost || p.path != "/v1/tlsrpt" || p.contentType != "application/tlsrpt+gzip" || p.contentEncoding != "" {
			t.Errorf("request %d: %s %s, Content-Type %q, Content-Encoding %q; want POST /v1/tlsrpt application/tlsrpt+gzip", i+1, p.method, p.path, p.contentType, p.contentEncoding)
		}
		if len(p.body) < 2 || p.body[0] != 0x1f || p.body[1] != 0x8b {
			t.Errorf("request %d: body does not start with the gzip magic number (RFC 8460 6.5)", i+1)
		}
		got, _, err := tlsrpt.ReadReport(bytes.NewReader(p.body), tlsrpt.ReadOptions{})
		if err != nil {
			t.Fatalf("request %d: the collector cannot read the report: %v", i+1, err)
		}
		sameReport(t, got, report)
	}
	if !bytes.Equal(posts[0].body, posts[1].body) {
		t.Error("the retry posted other bytes than the first attempt")
	}

	got := counters(t, reg)
	for name, want := range map[string]float64{
		"mtastsgo_tlsrpt_reports_built_total":                    1,
		"mtastsgo_tlsrpt_reports_sent_total{transport=https}":    1,
		"mtastsgo_tlsrpt_reports_sent_total{transport=mailto}":   0,
		"mtastsgo_tlsrpt_reports_failed_total{transport=https}":  0,
		"mtastsgo_tlsrpt_report_retries_total{transport=https}":  1,
		"mtastsgo_tlsrpt_report_retries_total{transport=mailto}": 0,
		"mtastsgo_tlsrpt_reports_failed_total{transport=mailto}": 0,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}

// A redirect is no success (RFC 8460 5.4) and is not followed: the report
// must not be carried on to wherever the rua URI's owner points.
func TestSendHTTPSRedirectRefused(t *testing.T) {
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			c := newCollector(t, func(n int, w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/elsewhere" {
					w.WriteHeader(http.StatusOK)
					return
				}
				http.Redirect(w, r, "/elsewhere", code)
			})
			s := newSender(t, tlsrpt.SenderOptions{Transport: c.transport(mtasts.AllowLoopback), FirstRetry: 1})
			deliveries, err := s.SendRecordForTest(t.Context(), appendixB(t), record(c.srv.URL+"/tlsrpt"))
			if !errors.Is(err, tlsrpt.ErrNotDelivered) {
				t.Errorf("SendRecord: %v, want ErrNotDelivered", err)
			}
			if len(deliveries) != 1 || !errors.Is(deliveries[0].Err, tlsrpt.ErrPermanent) || deliveries[0].Attempts != 1 {
				t.Fatalf("deliveries %+v, want one permanent failure after 1 attempt", deliveries)
			}
			if !strings.Contains(deliveries[0].Err.Error(), "redirect") {
				t.Errorf("error %q does not say it was a redirect", deliveries[0].Err)
			}
			for _, p := range c.received() {
				if p.path == "/elsewhere" {
					t.Error("the redirect was followed")
				}
			}
		})
	}
}

// The collector's answer is bounded: an endless body after a 2xx does not
// hold the sender, an endless error body is cut short in the error, and
// headers past the 64 KiB that mtasts.NewTransport allows fail the attempt.
func TestSendHTTPSHugeAnswer(t *testing.T) {
	endless := func(w http.ResponseWriter, code int) {
		w.WriteHeader(code)
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for i := 0; i < 1<<14; i++ { // up to 1 GiB, until the client hangs up
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter)
		ok     bool
		want   string // in the error
	}{
		{"2xx with endless body", func(w http.ResponseWriter) { endless(w, http.StatusOK) }, true, ""},
		{"5xx with endless body", func(w http.ResponseWriter) { endless(w, http.StatusServiceUnavailable) }, false, `answered "503 Service Unavailable": "xxxx`},
		{"huge headers", func(w http.ResponseWriter) {
			w.Header().Set("X-Padding", strings.Repeat("p", 64<<10+1))
			w.WriteHeader(http.StatusOK)
		}, false, "header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCollector(t, func(n int, w http.ResponseWriter, r *http.Request) { tc.answer(w) })
			s := newSender(t, tlsrpt.SenderOptions{Transport: c.transport(mtasts.AllowLoopback), RetryWindow: -1})
			deliveries, err := s.SendRecordForTest(t.Context(), appendixB(t), record(c.srv.URL))
			if tc.ok {
				if err != nil {
					t.Fatalf("SendRecord: %v", err)
				}
				return
			}
			if err == nil || len(deliveries) != 1 || deliveries[0].Attempts != 1 {
				t.Fatalf("SendRecord: %+v, %v; want one failed attempt", deliveries, err)
			}
			msg := deliveries[0].Err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
			if len(msg) > 1024 {
				t.Errorf("error of %d bytes: the answer was not bounded", len(msg))
			}
		})
	}
}

// A rua URI is the policy domain's choice: by default the library's guard
// refuses to post to loopback, and the failure is not retried.
func TestSendHTTPSLoopbackRefused(t *testing.T) {
	c := newCollector(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	s := newSender(t, tlsrpt.SenderOptions{Transport: c.transport(nil), FirstRetry: 1})
	deliveries, err := s.SendRecordForTest(t.Context(), appendixB(t), record(c.srv.URL))
	if !errors.Is(err, tlsrpt.ErrNotDelivered) || !errors.Is(err, mtasts.ErrAddressRefused) {
		t.Errorf("SendRecord: %v, want ErrNotDelivered and mtasts.ErrAddressRefused", err)
	}
	if len(deliveries) != 1 || deliveries[0].Attempts != 1 || !errors.Is(deliveries[0].Err, tlsrpt.ErrPermanent) {
		t.Errorf("deliveries %+v, want one permanent failure after 1 attempt", deliveries)
	}
	if n := len(c.received()); n != 0 {
		t.Errorf("the collector got %d requests", n)
	}

	// The default transport is the guarded one too.
	s = newSender(t, tlsrpt.SenderOptions{})
	if _, err := s.SendRecordForTest(t.Context(), appendixB(t), record(c.srv.URL)); !errors.Is(err, mtasts.ErrAddressRefused) {
		t.Errorf("with the default transport: %v, want mtasts.ErrAddressRefused", err)
	}
}

// Send looks up the record at _smtp._tls.<policy domain>; without one,
// nothing is sent (RFC 8460 3).
func TestSendLooksUpRecord(t *testing.T) {
	c := newCollector(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	resolver := mtaststest.NewResolver()
	s := newSender(t, tlsrpt.SenderOptions{Resolver: resolver, Transport: c.transport(mtasts.AllowLoopback)})

	deliveries, err := s.Send(t.Context(), appendixB(t))
	if !errors.Is(err, tlsrpt.ErrNoRecord) || deliveries != nil {
		t.Errorf("Send without a record: %+v, %v; want ErrNoRecord and no deliveries", deliveries, err)
	}
	if n := len(c.received()); n != 0 {
		t.Errorf("the collector got %d requests without a record", n)
	}

	resolver.SetTXT("_smtp._tls.company-y.example", "v=TLSRPTv1; rua="+c.srv.URL+"/a,http://insecure.example/b,"+c.srv.URL+"/a")
	deliveries, err = s.Send(t.Context(), appendixB(t))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	// The http: URI is no supported scheme; the repeated one is sent to
	// once.
	if len(deliveries) != 1 || deliveries[0].URI != c.srv.URL+"/a" || deliveries[0].Err != nil {
		t.Errorf("deliveries %+v, want one to %s/a", deliveries, c.srv.URL)
	}
	if n := len(c.received()); n != 1 {
		t.Errorf("the collector got %d requests, want 1", n)
	}
}

// An invalid report is not sent anywhere.
func TestSendInvalidReport(t *testing.T) {
	c := newCollector(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	s := newSender(t, tlsrpt.SenderOptions{Transport: c.transport(mtasts.AllowLoopback)})
	r := appendixB(t)
	r.ContactInfo = "not an address"
	_, err := s.SendRecordForTest(t.Context(), r, record(c.srv.URL))
	var rerr *tlsrpt.SyntaxError
	if !errors.As(err, &rerr) || rerr.Field != "contact-info" {
		t.Errorf("SendRecord: %v, want a *SyntaxError at contact-info", err)
	}
	if n := len(c.received()); n != 0 {
		t.Errorf("the collector got %d requests", n)
	}
}

// gunzip decompresses data.
func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The metrics take the options of mtasts.RegisterMetrics.
func TestSenderMetricsOptions(t *testing.T) {
	s := newSender(t, tlsrpt.SenderOptions{})
	reg := prometheus.NewPedanticRegistry()
	err := s.RegisterMetrics(reg, mtasts.MetricsNamespace("mox"), mtasts.MetricsConstLabels(prometheus.Labels{"instance": "a"}))
	if err != nil {
		t.Fatal(err)
	}
	got := counters(t, reg)
	for _, name := range []string{
		"mox_mtastsgo_tlsrpt_reports_built_total{instance=a}",
		"mox_mtastsgo_tlsrpt_reports_sent_total{instance=a,transport=https}",
		"mox_mtastsgo_tlsrpt_reports_failed_total{instance=a,transport=mailto}",
		"mox_mtastsgo_tlsrpt_report_retries_total{instance=a,transport=https}",
	} {
		if _, ok := got[name]; !ok {
			t.Errorf("no metric %s; have %v", name, got)
		}
	}
	if err := s.RegisterMetrics(prometheus.NewPedanticRegistry(), mtasts.MetricsConstLabels(prometheus.Labels{"transport": "x"})); err == nil {
		t.Error("RegisterMetrics accepted the constant label \"transport\", which the metrics have")
	}
	if _, err := tlsrpt.NewSender(tlsrpt.SenderOptions{From: "not an address"}); err == nil {
		t.Error("NewSender accepted From \"not an address\"")
	}
}

// At most MaxRUA URIs of a record are delivered to (RFC 8460 7: reports
// must not become a flood); a missing record sends nothing.
func TestSendRUALimit(t *testing.T) {
	tr := &memTransport{answer: status(http.StatusOK)}
	s := newSender(t, tlsrpt.SenderOptions{Transport: tr})
	var uris []string
	for i := range tlsrpt.MaxRUA + 2 {
		uris = append(uris, "https://r"+strconv.Itoa(i)+".example/")
	}
	deliveries, err := s.SendRecordForTest(t.Context(), appendixB(t), record(uris...))
	if err != nil || len(deliveries) != len(uris) {
		t.Fatalf("SendRecord: %d deliveries, %v", len(deliveries), err)
	}
	for i, d := range deliveries {
		tried := i < tlsrpt.MaxRUA
		if tried != (d.Err == nil && d.Attempts == 1) || !tried && (d.Attempts != 0 || !errors.Is(d.Err, tlsrpt.ErrPermanent)) {
			t.Errorf("delivery %d: %+v, tried %v", i, d, tried)
		}
	}
	if n := len(tr.attempts(time.Now())); n != tlsrpt.MaxRUA {
		t.Errorf("%d POSTs, want %d", n, tlsrpt.MaxRUA)
	}

	if _, err := s.SendRecordForTest(t.Context(), appendixB(t), nil); !errors.Is(err, tlsrpt.ErrNoRecord) {
		t.Errorf("SendRecord without a record: %v, want ErrNoRecord", err)
	}
	if _, err := s.SendRecordForTest(t.Context(), appendixB(t), record("http://r.example/", "ftp://r.example/")); !errors.Is(err, tlsrpt.ErrNotDelivered) {
		t.Errorf("SendRecord with no supported URI: %v, want ErrNotDelivered", err)
	}
}
