package mtasts_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/testkit"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// testCA issues certificates from the test kit's in-memory CA.
type testCA struct {
	kit  *mtaststest.PolicyServer
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	kit := testkit.PolicyServer(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(kit.CACertificatePEM())
	return &testCA{kit, pool}
}

// issue returns a certificate for names, valid from notBefore to notAfter.
func (ca *testCA) issue(t *testing.T, notBefore, notAfter time.Time, names ...string) tls.Certificate {
	t.Helper()
	cert, err := ca.kit.IssueCertificate(notBefore, notAfter, names...)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// startPolicyServer starts an HTTPS server with cert and handler, and points
// mtasts.HTTPClient at it for the test: every host name dials the server,
// except mta-sts.nohost.example, which does not exist. Only roots are
// trusted.
func startPolicyServer(t *testing.T, roots *x509.CertPool, cert tls.Certificate, handler http.Handler) {
	t.Helper()
	srv := httptest.NewUnstartedServer(handler)
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are the point
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	useServer(t, roots, srv.Listener.Addr().String())
}

func useServer(t testing.TB, roots *x509.CertPool, addr string) {
	orig := mtasts.HTTPClient
	t.Cleanup(func() { mtasts.HTTPClient = orig })
	// The library's transport and dialer, allowing the loopback address
	// of the test servers.
	dialer := mtasts.NewDialer(mtasts.AllowLoopback)
	tr := mtasts.NewTransport(mtasts.AllowLoopback)
	tr.TLSClientConfig.RootCAs = roots
	tr.DialContext = func(ctx context.Context, network, hostport string) (net.Conn, error) {
		if strings.HasPrefix(hostport, "mta-sts.nohost.example:") {
			return nil, &net.DNSError{Err: "no such host", Name: "mta-sts.nohost.example", IsNotFound: true}
		}
		return dialer.DialContext(ctx, network, addr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	mtasts.HTTPClient = &http.Client{Transport: tr}
}

const goodPolicy = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\n"

func TestFetchPolicy(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	good := ca.issue(t, now.Add(-time.Hour), now.Add(time.Hour), "mta-sts.example.com")

	type response struct {
		status int
		header map[string]string // "" value deletes the header
		body   string
	}
	tests := []struct {
		name   string
		resp   response
		want   error  // nil for success
		reason string // TLS-RPT failure reason
	}{
		{"good", response{200, map[string]string{"Content-Type": "text/plain"}, goodPolicy}, nil, ""},
		{"charset", response{200, map[string]string{"Content-Type": "text/plain; charset=utf-8"}, goodPolicy}, nil, ""},
		{"other charset and parameters ignored", response{200, map[string]string{"Content-Type": "Text/Plain; charset=iso-8859-1; format=flowed"}, goodPolicy}, nil, ""},
		{"unparseable parameter ignored", response{200, map[string]string{"Content-Type": "text/plain; charset"}, goodPolicy}, nil, ""},
		{"lf policy", response{200, map[string]string{"Content-Type": "text/plain"}, strings.ReplaceAll(goodPolicy, "\r\n", "\n")}, nil, ""},
		{"html", response{200, map[string]string{"Content-Type": "text/html"}, goodPolicy}, mtasts.ErrPolicySyntax, "mta-sts-policy-media-type"},
		{"octet-stream", response{200, map[string]string{"Content-Type": "application/octet-stream"}, goodPolicy}, mtasts.ErrPolicySyntax, "mta-sts-policy-media-type"},
		{"no media type", response{200, map[string]string{"Content-Type": ""}, goodPolicy}, mtasts.ErrPolicySyntax, "mta-sts-policy-media-type"},
		{"404", response{404, nil, "not found"}, mtasts.ErrNoPolicy, "mta-sts-policy-not-found"},
		{"500", response{500, nil, "oops"}, mtasts.ErrPolicyFetch, "mta-sts-policy-http-status-500"},
		{"204", response{204, nil, ""}, mtasts.ErrPolicyFetch, "mta-sts-policy-http-status-204"},
		{"301", response{301, map[string]string{"Location": "/elsewhere"}, ""}, mtasts.ErrPolicyFetch, "mta-sts-policy-redirect"},
		{"302 to another host", response{302, map[string]string{"Location": "https://mta-sts.example.org/elsewhere"}, ""}, mtasts.ErrPolicyFetch, "mta-sts-policy-redirect"},
		{"invalid policy", response{200, map[string]string{"Content-Type": "text/plain"}, "version: STSv1\nmode: enforce\n"}, mtasts.ErrPolicySyntax, "mta-sts-policy-invalid"},
		{"html error page", response{200, map[string]string{"Content-Type": "text/plain"}, "<html>hello</html>"}, mtasts.ErrPolicySyntax, "mta-sts-policy-invalid"},
		{"oversize with length", response{200, map[string]string{"Content-Type": "text/plain"}, goodPolicy + "x: " + strings.Repeat("y", mtasts.MaxPolicySize) + "\n"}, mtasts.ErrPolicySyntax, "mta-sts-policy-too-large"},
		{"oversize chunked", response{200, map[string]string{"Content-Type": "text/plain", "X-Chunked": "1"}, goodPolicy + "x: " + strings.Repeat("y", mtasts.MaxPolicySize) + "\n"}, mtasts.ErrPolicySyntax, "mta-sts-policy-too-large"},
		{"exactly the maximum size", response{200, map[string]string{"Content-Type": "text/plain", "X-Chunked": "1"}, goodPolicy + "x: " + strings.Repeat("y", mtasts.MaxPolicySize-len(goodPolicy)-5) + "\r\n"}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var policyHits, otherHits atomic.Int32
			var sawNoCache, sawHTTP2 atomic.Bool
			startPolicyServer(t, ca.pool, good, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/.well-known/mta-sts.txt" || r.Host != "mta-sts.example.com" {
					otherHits.Add(1)
					http.Error(w, "wrong place", http.StatusTeapot)
					return
				}
				policyHits.Add(1)
				sawNoCache.Store(r.Header.Get("Cache-Control") == "no-cache")
				sawHTTP2.Store(r.ProtoMajor == 2)
				for k, v := range tc.resp.header {
					if v == "" {
						w.Header()[k] = nil // also stops content sniffing
					} else {
						w.Header().Set(k, v)
					}
				}
				if tc.resp.header["X-Chunked"] == "" {
					w.Header().Set("Content-Length", strconv.Itoa(len(tc.resp.body)))
				}
				w.WriteHeader(tc.resp.status)
				if tc.resp.header["X-Chunked"] != "" {
					// Flush the headers so no Content-Length is sent.
					w.(http.Flusher).Flush()
				}
				io.WriteString(w, tc.resp.body)
			}))

			policy, text, err := mtasts.FetchPolicy(context.Background(), mustDomain(t, "example.com"))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("FetchPolicy: %v", err)
				}
				if policy.Mode != mtasts.ModeEnforce || len(policy.MX) != 2 || text != tc.resp.body {
					t.Fatalf("FetchPolicy = %v, %q", policy, text)
				}
			} else {
				if policy != nil {
					t.Errorf("FetchPolicy returned policy %v with error %v", policy, err)
				}
				checkFailure(t, err, tc.want, tc.reason)
			}
			if policyHits.Load() != 1 || otherHits.Load() != 0 {
				t.Errorf("policy requested %d times, other paths %d times; want 1 and 0 (redirects are never followed)", policyHits.Load(), otherHits.Load())
			}
			if !sawNoCache.Load() || !sawHTTP2.Load() {
				t.Errorf("request had Cache-Control no-cache %v, HTTP/2 %v; want both", sawNoCache.Load(), sawHTTP2.Load())
			}
		})
	}
}

// TestFetchPolicyRedirectWithFollowingClient checks that a user's client
// that follows redirects cannot make FetchPolicy follow one (RFC 8461 3.3).
func TestFetchPolicyRedirectWithFollowingClient(t *testing.T) {
	ca := newTestCA(t)
	var targetHits atomic.Int32
	startPolicyServer(t, ca.pool, ca.issue(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "mta-sts.example.com"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/target" {
			targetHits.Add(1)
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, goodPolicy)
			return
		}
		http.Redirect(w, r, "/target", http.StatusMovedPermanently)
	}))
	mtasts.HTTPClient.CheckRedirect = nil // the http package's default: follow

	_, _, err := mtasts.FetchPolicy(context.Background(), mustDomain(t, "example.com"))
	if !errors.Is(err, mtasts.ErrPolicyFetch) || targetHits.Load() != 0 {
		t.Fatalf("FetchPolicy: %v, redirect target requested %d times; want ErrPolicyFetch and 0", err, targetHits.Load())
	}
}

func TestFetchPolicyCertificates(t *testing.T) {
	kit := testkit.PolicyServer(t)
	t.Cleanup(kit.Install())
	other := testkit.PolicyServer(t) // another CA, not trusted
	now := time.Now()
	issue := func(s *mtaststest.PolicyServer, notBefore, notAfter time.Time, names ...string) tls.Certificate {
		cert, err := s.IssueCertificate(notBefore, notAfter, names...)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	tests := []struct {
		domain string
		cert   tls.Certificate
		reason string
	}{
		{"wrongname.example", issue(kit, now.Add(-time.Hour), now.Add(time.Hour), "mta-sts.example.org", "wrongname.example"), "mta-sts-policy-certificate-host-mismatch"},
		{"deepwildcard.example", issue(kit, now.Add(-time.Hour), now.Add(time.Hour), "*.example"), "mta-sts-policy-certificate-host-mismatch"},
		{"expired.example", issue(kit, now.Add(-2*time.Hour), now.Add(-time.Hour), "mta-sts.expired.example"), "mta-sts-policy-certificate-expired"},
		// The x509 package reports both as outside the validity period.
		{"notyet.example", issue(kit, now.Add(time.Hour), now.Add(2*time.Hour), "mta-sts.notyet.example"), "mta-sts-policy-certificate-expired"},
		{"untrusted.example", issue(other, now.Add(-time.Hour), now.Add(time.Hour), "mta-sts.untrusted.example"), "mta-sts-policy-certificate-untrusted"},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			kit.SetPolicy(tc.domain, goodPolicy)
			kit.SetCertificate(tc.domain, tc.cert)
			_, _, err := mtasts.FetchPolicy(context.Background(), mustDomain(t, tc.domain))
			checkFailure(t, err, mtasts.ErrPolicyFetch, tc.reason)
			if n := kit.Requests(tc.domain); n != 0 {
				t.Errorf("%d requests; want the handshake to fail before any", n)
			}
			if got := mtasts.TLSReportResultType(err); got != mtasts.ResultSTSWebPKIInvalid {
				t.Errorf("TLSReportResultType = %q, want %q", got, mtasts.ResultSTSWebPKIInvalid)
			}
		})
	}

	// A wildcard certificate for the policy host's parent is valid
	// (RFC 8461 3.3, "'*' as the complete left-most label").
	kit.SetPolicy("wildcard.example", goodPolicy)
	kit.SetCertificate("wildcard.example", issue(kit, now.Add(-time.Hour), now.Add(time.Hour), "*.wildcard.example"))
	if _, _, err := mtasts.FetchPolicy(context.Background(), mustDomain(t, "wildcard.example")); err != nil {
		t.Errorf("FetchPolicy with a wildcard certificate: %v", err)
	}
}

func TestFetchPolicyConnection(t *testing.T) {
	ca := newTestCA(t)

	// No policy host: the name does not resolve.
	useServer(t, ca.pool, "127.0.0.1:1")
	_, _, err := mtasts.FetchPolicy(context.Background(), mustDomain(t, "nohost.example"))
	if !errors.Is(err, mtasts.ErrNoPolicy) || mtasts.TLSReportFailureReason(err) != "mta-sts-policy-not-found" {
		t.Errorf("no policy host: %v (%q), want ErrNoPolicy", err, mtasts.TLSReportFailureReason(err))
	}

	// A server that speaks plain HTTP on the HTTPS port.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, goodPolicy)
	}))
	t.Cleanup(plain.Close)
	useServer(t, ca.pool, plain.Listener.Addr().String())
	_, _, err = mtasts.FetchPolicy(context.Background(), mustDomain(t, "example.com"))
	if !errors.Is(err, mtasts.ErrPolicyFetch) || mtasts.TLSReportResultType(err) != mtasts.ResultSTSPolicyFetchError {
		t.Errorf("plain http server: %v, want ErrPolicyFetch", err)
	}

	// Nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	useServer(t, ca.pool, addr)
	_, _, err = mtasts.FetchPolicy(context.Background(), mustDomain(t, "example.com"))
	if !errors.Is(err, mtasts.ErrPolicyFetch) || mtasts.TLSReportFailureReason(err) != "mta-sts-policy-fetch-error" {
		t.Errorf("connection refused: %v (%q), want ErrPolicyFetch", err, mtasts.TLSReportFailureReason(err))
	}
}

// TestFetchPolicySlowBody checks that a server trickling its body cannot
// hold the fetch past the context's deadline, and that a canceled context
// ends the fetch.
func TestFetchPolicySlowBody(t *testing.T) {
	ca := newTestCA(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	startPolicyServer(t, ca.pool, ca.issue(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "mta-sts.example.com"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		// One byte now, the rest never: the client must give up.
		io.WriteString(w, goodPolicy[:1])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := mtasts.FetchPolicy(ctx, mustDomain(t, "example.com"))
	elapsed := time.Since(start)
	if !errors.Is(err, mtasts.ErrPolicyFetch) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("FetchPolicy: %v; want ErrPolicyFetch wrapping context.DeadlineExceeded", err)
	}
	if got := mtasts.TLSReportFailureReason(err); got != "mta-sts-policy-fetch-timeout" {
		t.Errorf("TLSReportFailureReason = %q", got)
	}
	// Not a speed measurement: a bound far above the deadline, to tell
	// "returned at the deadline" from "hung until the server gave up".
	if elapsed > 10*time.Second {
		t.Errorf("FetchPolicy returned after %v, long after the 200ms deadline", elapsed)
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, _, err = mtasts.FetchPolicy(ctx, mustDomain(t, "example.com"))
	if !errors.Is(err, mtasts.ErrPolicyFetch) || !errors.Is(err, context.Canceled) || mtasts.ResultLabel(err) != "canceled" {
		t.Fatalf("FetchPolicy with a canceled context: %v; want ErrPolicyFetch wrapping context.Canceled", err)
	}
}

func TestGet(t *testing.T) {
	kit := testkit.PolicyServer(t)
	t.Cleanup(kit.Install())
	kit.SetPolicy("example.com", goodPolicy)
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=20240101")
	domain := mustDomain(t, "example.com")

	record, policy, text, err := mtasts.Get(context.Background(), resolver, domain)
	if err != nil || record.ID != "20240101" || policy.Mode != mtasts.ModeEnforce || text != goodPolicy {
		t.Fatalf("Get = %v, %v, %q, %v", record, policy, text, err)
	}
	if !policy.Matches(mustDomain(t, "mx1.example.net")) || policy.Matches(mustDomain(t, "mx1.example.org")) {
		t.Errorf("policy %v matches wrongly", policy)
	}

	// The record is returned when the policy fetch fails.
	kit.SetResponse("example.com", mtaststest.Response{Status: 503})
	record, policy, _, err = mtasts.Get(context.Background(), resolver, domain)
	if record == nil || record.ID != "20240101" || policy != nil || !errors.Is(err, mtasts.ErrPolicyFetch) {
		t.Fatalf("Get with a failing fetch = %v, %v, %v; want the record and ErrPolicyFetch", record, policy, err)
	}

	// No record: no fetch is made.
	kit.SetPolicy("example.org", goodPolicy)
	record, policy, _, err = mtasts.Get(context.Background(), resolver, mustDomain(t, "example.org"))
	if record != nil || policy != nil || !errors.Is(err, mtasts.ErrNoRecord) || kit.Requests("example.org") != 0 {
		t.Fatalf("Get without a record = %v, %v, %v; want ErrNoRecord and no fetch", record, policy, err)
	}
}
