package mtasts_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
)

func TestPolicyHandler(t *testing.T) {
	policy, err := mtasts.ParsePolicy("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n")
	if err != nil {
		t.Fatal(err)
	}
	want := policy.String()
	h := mtasts.PolicyHandler(policy)

	tests := []struct {
		method, target string
		status         int
		body           string // checked when status is 200
	}{
		{"GET", "/.well-known/mta-sts.txt", 200, want},
		{"GET", "/.well-known/mta-sts.txt?x=1", 200, want},
		{"HEAD", "/.well-known/mta-sts.txt", 200, ""},
		{"POST", "/.well-known/mta-sts.txt", 405, ""},
		{"PUT", "/.well-known/mta-sts.txt", 405, ""},
		{"GET", "/", 404, ""},
		{"GET", "/.well-known/mta-sts.txt/", 404, ""},
		{"GET", "/.well-known/MTA-STS.txt", 404, ""},
		{"POST", "/other", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, nil))
			resp := rec.Result()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			switch tc.status {
			case 200:
				if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
				if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control %q, want no-store", cc)
				}
				if cl := resp.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(want)) {
					t.Errorf("Content-Length %q, want %d", cl, len(want))
				}
				if body := rec.Body.String(); body != tc.body {
					t.Errorf("body %q, want %q", body, tc.body)
				}
			case 405:
				if allow := resp.Header.Get("Allow"); allow != "GET, HEAD" {
					t.Errorf("Allow %q", allow)
				}
			}
		})
	}
}

// A nil policy is a host without a policy: 404, which senders read as "no
// policy" (RFC 8461 3.3).
func TestPolicyHandlerNil(t *testing.T) {
	rec := httptest.NewRecorder()
	mtasts.PolicyHandler(nil).ServeHTTP(rec, httptest.NewRequest("GET", mtasts.WellKnownPath, nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status %d, want 404", rec.Code)
	}
}

// The handler rendered the policy when created: changing the Policy later
// does not change what is served.
func TestPolicyHandlerSnapshot(t *testing.T) {
	policy, err := mtasts.ParsePolicy("version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 86400\n")
	if err != nil {
		t.Fatal(err)
	}
	want := policy.String()
	h := mtasts.PolicyHandler(policy)
	policy.Mode = mtasts.ModeNone
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", mtasts.WellKnownPath, nil))
	if rec.Body.String() != want {
		t.Fatalf("body %q, want %q", rec.Body.String(), want)
	}
}

// What the handler serves over real TLS is what FetchPolicy accepts: an equal
// policy, as text/plain, with status 200.
func TestPolicyHandlerFetch(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	cert := ca.issue(t, now.Add(-time.Hour), now.Add(time.Hour), "mta-sts.example.com")
	for _, text := range []string{
		"version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n",
		"version: STSv1\r\nmode: none\r\nmax_age: 31557600\r\next: a value with spaces\r\n",
		"version: STSv1\nmode: testing\nmx: xn--bcher-kva.example\nmax_age: 1\n",
	} {
		policy, err := mtasts.ParsePolicy(text)
		if err != nil {
			t.Fatal(err)
		}
		startPolicyServer(t, ca.pool, cert, mtasts.PolicyHandler(policy))
		got, gotText, err := mtasts.FetchPolicy(context.Background(), mustDomain(t, "example.com"))
		if err != nil {
			t.Fatalf("FetchPolicy of %q: %v", text, err)
		}
		if !reflect.DeepEqual(got, policy) || gotText != policy.String() {
			t.Errorf("fetched %#v, %q; want %#v", got, gotText, policy)
		}
	}
}

// HEAD gives the headers of GET, without a body.
func TestPolicyHandlerHead(t *testing.T) {
	policy, err := mtasts.ParsePolicy("version: STSv1\nmode: none\nmax_age: 86400\n")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mtasts.PolicyHandler(policy))
	defer srv.Close()
	resp, err := http.Head(srv.URL + mtasts.WellKnownPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len(policy.String())) {
		t.Fatalf("HEAD: status %d, length %d, body %q", resp.StatusCode, resp.ContentLength, body)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("HEAD: Content-Type %q", resp.Header.Get("Content-Type"))
	}
}

// BenchmarkPolicyHandler measures serving the policy: the per-request cost a
// web server pays for PolicyHandler.
func BenchmarkPolicyHandler(b *testing.B) {
	policy, err := mtasts.ParsePolicy("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n")
	if err != nil {
		b.Fatal(err)
	}
	h := mtasts.PolicyHandler(policy)
	req := httptest.NewRequest("GET", mtasts.WellKnownPath, nil)
	w := &discardResponse{header: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.header)
		h.ServeHTTP(w, req)
	}
	if w.status != 200 {
		b.Fatalf("status %d", w.status)
	}
}

// discardResponse is a ResponseWriter that keeps the status and drops the
// body, so the benchmark measures the handler, not a recorder.
type discardResponse struct {
	header http.Header
	status int
}

func (w *discardResponse) Header() http.Header         { return w.header }
func (w *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardResponse) WriteHeader(status int)      { w.status = status }

// One HTTPS server serves the policies of two domains, with a certificate
// for both policy hosts and a PolicyHandler per host, chosen by the
// request's Host as docs/operators.md shows: FetchPolicy gets each domain's
// own.
func TestPolicyHandlerManyDomains(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	cert := ca.issue(t, now.Add(-time.Hour), now.Add(time.Hour), "mta-sts.example.com", "mta-sts.example.net", "mta-sts.example.org")
	policies := map[string]*mtasts.Policy{}
	handlers := map[string]http.Handler{} // by policy host, in lower case
	for domain, text := range map[string]string{
		"example.com": "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n",
		"example.net": "version: STSv1\nmode: testing\nmx: *.example.net\nmax_age: 86400\n",
	} {
		p, err := mtasts.ParsePolicy(text)
		if err != nil {
			t.Fatal(err)
		}
		policies[domain] = p
		handlers["mta-sts."+domain] = mtasts.PolicyHandler(p)
	}
	startPolicyServer(t, ca.pool, cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host // no port
		}
		if h := handlers[strings.TrimSuffix(strings.ToLower(host), ".")]; h != nil {
			h.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r) // no policy (RFC 8461 3.3)
	}))
	for name, want := range policies {
		got, _, err := mtasts.FetchPolicy(context.Background(), mustDomain(t, name))
		if err != nil {
			t.Fatalf("FetchPolicy(%s): %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("FetchPolicy(%s) = %v, want %v", name, got, want)
		}
	}
	if _, _, err := mtasts.FetchPolicy(context.Background(), mustDomain(t, "example.org")); !errors.Is(err, mtasts.ErrNoPolicy) {
		t.Errorf("FetchPolicy(example.org): %v, want ErrNoPolicy", err)
	}
}
