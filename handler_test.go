package mtasts_test

import (
	"context"
	"errors"
	"io"
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

// policiesByHost is the policy function of a server for several domains:
// it chooses by the request's Host. broken.example fails, with an error
// whose text must not reach the client.
func policiesByHost(t testing.TB, calls *int) func(r *http.Request) (*mtasts.Policy, error) {
	policies := map[string]*mtasts.Policy{}
	for domain, text := range map[string]string{
		"example.com":           "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n",
		"example.net":           "version: STSv1\nmode: testing\nmx: *.example.net\nmax_age: 86400\n",
		"xn--bcher-kva.example": "version: STSv1\nmode: none\nmax_age: 86400\n",
	} {
		p, err := mtasts.ParsePolicy(text)
		if err != nil {
			t.Fatal(err)
		}
		policies[domain] = p
	}
	return func(r *http.Request) (*mtasts.Policy, error) {
		if calls != nil {
			*calls++
		}
		domain, err := mtasts.PolicyHostDomain(r.Host)
		if err != nil {
			return nil, nil // not one of ours: 404
		}
		if domain.ASCII == "broken.example" {
			return nil, errors.New("database password hunter2 rejected")
		}
		return policies[domain.ASCII], nil
	}
}

func TestPolicyHandlerFunc(t *testing.T) {
	var calls int
	f := policiesByHost(t, &calls)
	h := mtasts.PolicyHandlerFunc(f)
	policyOf := func(host string) string {
		p, err := f(httptest.NewRequest("GET", "http://"+host+"/", nil))
		if err != nil || p == nil {
			t.Fatalf("no policy for %s: %v", host, err)
		}
		return p.String()
	}
	comPolicy, netPolicy, idnPolicy := policyOf("mta-sts.example.com"), policyOf("mta-sts.example.net"), policyOf("mta-sts.xn--bcher-kva.example")

	tests := []struct {
		method, host, path string
		status             int
		body               string // checked when status is 200
		called             bool   // whether the policy function is asked
	}{
		// Host routing: each domain gets its own policy; the port, the
		// case and a trailing dot of Host do not matter.
		{"GET", "mta-sts.example.com", mtasts.WellKnownPath, 200, comPolicy, true},
		{"GET", "mta-sts.example.net", mtasts.WellKnownPath, 200, netPolicy, true},
		{"GET", "MTA-STS.Example.NET:443", mtasts.WellKnownPath + "?x=1", 200, netPolicy, true},
		{"GET", "mta-sts.example.com.", mtasts.WellKnownPath, 200, comPolicy, true},
		{"GET", "mta-sts.xn--bcher-kva.example", mtasts.WellKnownPath, 200, idnPolicy, true},
		{"HEAD", "mta-sts.example.com", mtasts.WellKnownPath, 200, "", true},
		// Unknown hosts: no policy, as from a host without one (RFC
		// 8461 3.3).
		{"GET", "mta-sts.example.org", mtasts.WellKnownPath, 404, "", true},
		{"GET", "example.com", mtasts.WellKnownPath, 404, "", true},
		{"GET", "127.0.0.1:8443", mtasts.WellKnownPath, 404, "", true},
		{"POST", "mta-sts.example.org", mtasts.WellKnownPath, 404, "", true},
		// A failing policy function: 500, without its error.
		{"GET", "mta-sts.broken.example", mtasts.WellKnownPath, 500, "", true},
		// Methods, for a host with a policy.
		{"POST", "mta-sts.example.com", mtasts.WellKnownPath, 405, "", true},
		{"PUT", "mta-sts.example.net", mtasts.WellKnownPath, 405, "", true},
		// Other paths: 404, without asking for a policy.
		{"GET", "mta-sts.example.com", "/", 404, "", false},
		{"GET", "mta-sts.example.com", "/.well-known/mta-sts.txt/", 404, "", false},
		{"POST", "mta-sts.example.com", "/other", 404, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.host+tc.path, func(t *testing.T) {
			calls = 0
			req := httptest.NewRequest(tc.method, tc.path, nil)
			req.Host = tc.host
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			resp := rec.Result()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if called := calls > 0; called != tc.called || calls > 1 {
				t.Errorf("policy function called %d times", calls)
			}
			body := rec.Body.String()
			switch tc.status {
			case 200:
				if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
				if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control %q, want no-store", cc)
				}
				want := tc.body
				if tc.method == "HEAD" {
					want = comPolicy
				}
				if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(want)) {
					t.Errorf("Content-Length %q, want %d", cl, len(want))
				}
				if body != tc.body {
					t.Errorf("body %q, want %q", body, tc.body)
				}
			case 405:
				if allow := resp.Header.Get("Allow"); allow != "GET, HEAD" {
					t.Errorf("Allow %q", allow)
				}
			case 500:
				if strings.Contains(body, "hunter2") || strings.Contains(body, "database") {
					t.Errorf("500 body %q leaks the error", body)
				}
			}
		})
	}
}

// One HTTPS server serves the policies of two domains, with a certificate
// for both policy hosts: FetchPolicy gets each domain's own.
func TestPolicyHandlerFuncFetch(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	cert := ca.issue(t, now.Add(-time.Hour), now.Add(time.Hour), "mta-sts.example.com", "mta-sts.example.net", "mta-sts.example.org")
	f := policiesByHost(t, nil)
	startPolicyServer(t, ca.pool, cert, mtasts.PolicyHandlerFunc(f))
	for _, name := range []string{"example.com", "example.net"} {
		want, _ := f(httptest.NewRequest("GET", "http://mta-sts."+name+"/", nil))
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

func TestPolicyHostDomain(t *testing.T) {
	for _, tc := range []struct {
		host, want string // want "" for an error
	}{
		{"mta-sts.example.com", "example.com"},
		{"MTA-STS.Example.COM", "example.com"},
		{"mta-sts.example.com:443", "example.com"},
		{"mta-sts.example.com.", "example.com"},
		{"mta-sts.example.com.:8443", "example.com"},
		{"mta-sts.bücher.example", "xn--bcher-kva.example"},
		{"mta-sts.xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"mta-sts.mta-sts.example", "mta-sts.example"},
		{"", ""},
		{"mta-sts.", ""},
		{"mta-sts", ""},
		{"example.com", ""},
		{"www.mta-sts.example.com", ""},
		{"mta-sts.example.com:", ""},
		{"mta-sts.example.com:https", ""},
		{"mta-sts.example.com:443:443", ""},
		{"mta-sts.example.com:123456", ""},
		{"[::1]:443", ""},
		{"127.0.0.1", ""},
		{"mta-sts.127.0.0.1", ""},
		{"mta-sts.exa mple.com", ""},
		{"mta-sts.example.com/x", ""},
		{"user@mta-sts.example.com", ""},
	} {
		d, err := mtasts.PolicyHostDomain(tc.host)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("PolicyHostDomain(%q) = %v, want an error", tc.host, d)
		case tc.want == "" && !errors.Is(err, mtasts.ErrInvalidDomain):
			t.Errorf("PolicyHostDomain(%q): error %v, want ErrInvalidDomain", tc.host, err)
		case tc.want != "" && (err != nil || d.ASCII != tc.want):
			t.Errorf("PolicyHostDomain(%q) = %q, %v; want %q", tc.host, d.ASCII, err, tc.want)
		}
	}
}

// BenchmarkPolicyHandlerFunc measures serving a policy chosen per request
// by Host, beside BenchmarkPolicyHandler: the policy function (a parse of
// Host and a map lookup) and the rendering of the policy on each request.
func BenchmarkPolicyHandlerFunc(b *testing.B) {
	h := mtasts.PolicyHandlerFunc(policiesByHost(b, nil))
	req := httptest.NewRequest("GET", mtasts.WellKnownPath, nil)
	req.Host = "mta-sts.example.com"
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
