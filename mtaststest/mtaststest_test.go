package mtaststest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mjl-/adns"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/testkit"
	"github.com/mtasts-go/mtasts/mtaststest"
)

func TestResolver(t *testing.T) {
	r := mtaststest.NewResolver()
	r.SetTXT("a.example.", "one", "two")
	r.SetTXT("empty.example")
	r.ServFail("servfail.example")
	r.ServFail("bogus.example", adns.ErrDNSSECBogus)
	r.Hold("block.example") // never released: lookups hang until their context ends
	ctx := context.Background()

	if txts, _, err := r.LookupTXT(ctx, "A.example"); err != nil || len(txts) != 2 || txts[1] != "two" {
		t.Errorf("a.example: %v, %v", txts, err)
	}
	var dnsErr *adns.DNSError
	for _, name := range []string{"empty.example.", "unknown.example"} {
		if _, _, err := r.LookupTXT(ctx, name); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
			t.Errorf("%s: %v, want not found", name, err)
		}
	}
	if _, _, err := r.LookupTXT(ctx, "servfail.example"); !errors.As(err, &dnsErr) || !dnsErr.IsTemporary || dnsErr.IsNotFound {
		t.Errorf("servfail: %v", err)
	}
	var code adns.ErrorCode
	if _, _, err := r.LookupTXT(ctx, "bogus.example"); !errors.As(err, &code) || code != adns.ErrDNSSECBogus {
		t.Errorf("bogus: %v", err)
	}
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, _, err := r.LookupTXT(ctx2, "block.example"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("block: %v, want the context's error", err)
	}
	r.Remove("a.example")
	if _, _, err := r.LookupTXT(ctx, "a.example"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("removed: %v", err)
	}
	if n := r.Lookups("a.example."); n != 2 {
		t.Errorf("Lookups = %d, want 2", n)
	}
}

func TestPolicyServer(t *testing.T) {
	s := testkit.PolicyServer(t)
	t.Cleanup(s.Install())
	const policy = "version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 60\n"
	s.SetPolicy("example.org", policy)
	s.SetResponse("missing.example", mtaststest.Response{Status: 404})
	s.SetResponse("moved.example", mtaststest.Response{Header: map[string]string{"Location": "https://elsewhere.example/"}})
	s.SetResponse("html.example", mtaststest.Response{Header: map[string]string{"Content-Type": "text/html"}, Body: policy})
	s.SetResponse("slow.example", mtaststest.Response{Delay: time.Hour, Body: policy})
	s.SetPolicy("wrongcert.example", policy)
	cert, err := s.IssueCertificate(time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "mta-sts.other.example")
	if err != nil {
		t.Fatal(err)
	}
	s.SetCertificate("wrongcert.example", cert)

	fetch := func(domain string) (*mtasts.Policy, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d, err := mtasts.ParseDomain(domain)
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := mtasts.FetchPolicy(ctx, d)
		return p, err
	}
	if p, err := fetch("example.org"); err != nil || p.Mode != mtasts.ModeTesting {
		t.Errorf("example.org: %v, %v", p, err)
	}
	for domain, want := range map[string]error{
		"missing.example":   mtasts.ErrNoPolicy,
		"unknown.example":   mtasts.ErrNoPolicy,
		"moved.example":     mtasts.ErrPolicyFetch,
		"html.example":      mtasts.ErrPolicySyntax,
		"wrongcert.example": mtasts.ErrPolicyFetch,
	} {
		if _, err := fetch(domain); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", domain, err, want)
		}
	}
	if got := s.Requests("example.org"); got != 1 {
		t.Errorf("Requests(example.org) = %d, want 1", got)
	}
	if got := s.Requests("wrongcert.example"); got != 0 {
		t.Errorf("Requests(wrongcert.example) = %d, want 0: the handshake must fail first", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := mtasts.FetchPolicy(ctx, mtasts.Domain{ASCII: "slow.example"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow: %v, want a deadline error", err)
	}
}

// TestResolverConcurrent checks that lookups from many goroutines are all
// answered and all counted, per name, as a cache's coalescing test needs.
func TestResolverConcurrent(t *testing.T) {
	r := mtaststest.NewResolver()
	r.SetTXT("_mta-sts.example.org", "v=STSv1; id=1")
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			name := "_mta-sts.example.org"
			if i%2 == 0 {
				name += "." // both spellings count for the same name
			}
			if txts, _, err := r.LookupTXT(context.Background(), name); err != nil || len(txts) != 1 {
				errs <- fmt.Errorf("lookup %d: %v, %v", i, txts, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := r.Lookups("_mta-sts.example.org."); got != n {
		t.Errorf("Lookups = %d, want %d", got, n)
	}
	if got := r.Lookups("_mta-sts.example.com"); got != 0 {
		t.Errorf("Lookups of a name never asked = %d, want 0", got)
	}
}

// TestResolverBlockCanceled checks that a blocked lookup ends with the
// context, and that a cancellation is not reported as a timeout.
func TestResolverBlockCanceled(t *testing.T) {
	r := mtaststest.NewResolver()
	r.Hold("block.example") // never released: lookups hang until their context ends
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, _, err := r.LookupTXT(ctx, "block.example")
		done <- err
	}()
	cancel()
	err := <-done
	var dnsErr *adns.DNSError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &dnsErr) || dnsErr.IsTimeout || dnsErr.IsNotFound {
		t.Errorf("canceled lookup: %v (%+v), want context.Canceled, not a timeout", err, dnsErr)
	}
	// Through the library, a blocked lookup is a DNS failure.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, _, err := mtasts.LookupRecord(ctx2, r, mtasts.Domain{ASCII: "example.net"}); !errors.Is(err, mtasts.ErrDNS) || !errors.Is(err, context.Canceled) {
		t.Errorf("LookupRecord with a canceled context: %v, want ErrDNS wrapping context.Canceled", err)
	}
}

// TestResolverThroughLibrary checks each fake outcome as LookupRecord
// classifies it, TLS-RPT reason included.
func TestResolverThroughLibrary(t *testing.T) {
	r := mtaststest.NewResolver()
	r.SetTXT("_mta-sts.good.example", "v=STSv1; id=1")
	r.SetTXT("_mta-sts.two.example", "v=STSv1; id=1", "v=STSv1; id=2")
	r.SetTXT("_mta-sts.spf.example", "v=spf1 -all")
	r.ServFail("_mta-sts.servfail.example")
	r.ServFail("_mta-sts.bogus.example.", adns.ErrDNSSECBogus)
	tests := []struct {
		domain string
		want   error
		reason string
	}{
		{"good.example", nil, ""},
		{"unknown.example", mtasts.ErrNoRecord, "mta-sts-record-not-found"},
		{"spf.example", mtasts.ErrNoRecord, "mta-sts-record-not-found"},
		{"two.example", mtasts.ErrMultipleRecords, "mta-sts-record-multiple"},
		{"servfail.example", mtasts.ErrDNS, "mta-sts-record-dns-error"},
		{"bogus.example", mtasts.ErrDNS, "dns-extended-error-6-dnssec-bogus"},
	}
	for _, tc := range tests {
		_, _, err := mtasts.LookupRecord(context.Background(), r, mtasts.Domain{ASCII: tc.domain})
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) || mtasts.TLSReportFailureReason(err) != tc.reason {
			t.Errorf("LookupRecord(%s) = %v (%q); want %v (%q)", tc.domain, err, mtasts.TLSReportFailureReason(err), tc.want, tc.reason)
		}
	}
}

// TestPolicyServerCertificates checks that the certificates a test can set
// make FetchPolicy fail PKIX validation with the reason a TLS report needs.
func TestPolicyServerCertificates(t *testing.T) {
	s := testkit.PolicyServer(t)
	t.Cleanup(s.Install())
	other := testkit.PolicyServer(t) // another CA, unknown to the client
	const policy = "version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 60\n"
	now := time.Now()
	issue := func(s *mtaststest.PolicyServer, from, until time.Time, name string) tls.Certificate {
		t.Helper()
		c, err := s.IssueCertificate(from, until, name)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		domain string
		cert   tls.Certificate
		reason string
	}{
		{"expired.example", issue(s, now.Add(-48*time.Hour), now.Add(-time.Hour), "mta-sts.expired.example"), "mta-sts-policy-certificate-expired"},
		{"future.example", issue(s, now.Add(time.Hour), now.Add(48*time.Hour), "mta-sts.future.example"), "mta-sts-policy-certificate-expired"},
		{"wrongname.example", issue(s, now.Add(-time.Hour), now.Add(time.Hour), "mta-sts.other.example"), "mta-sts-policy-certificate-host-mismatch"},
		{"bare.example", issue(s, now.Add(-time.Hour), now.Add(time.Hour), "bare.example"), "mta-sts-policy-certificate-host-mismatch"},
		{"otherca.example", issue(other, now.Add(-time.Hour), now.Add(time.Hour), "mta-sts.otherca.example"), "mta-sts-policy-certificate-untrusted"},
	}
	for _, tc := range tests {
		s.SetPolicy(tc.domain, policy)
		s.SetCertificate(tc.domain+".", tc.cert) // the trailing dot is ignored
		_, _, err := mtasts.FetchPolicy(context.Background(), mtasts.Domain{ASCII: tc.domain})
		if !errors.Is(err, mtasts.ErrPolicyFetch) || mtasts.TLSReportResultType(err) != mtasts.ResultSTSWebPKIInvalid || mtasts.TLSReportFailureReason(err) != tc.reason {
			t.Errorf("%s: %v (%q, %q); want %q", tc.domain, err, mtasts.TLSReportResultType(err), mtasts.TLSReportFailureReason(err), tc.reason)
		}
		if n := s.Requests(tc.domain); n != 0 {
			t.Errorf("%s: %d requests reached the handler, want 0", tc.domain, n)
		}
	}

	// The pool trusts the CA of the certificates the server issues.
	cert := issue(s, now.Add(-time.Hour), now.Add(time.Hour), "mta-sts.x.example")
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "mta-sts.x.example", Roots: rootsOf(s)}); err != nil {
		t.Errorf("issued certificate does not verify against the server's CA: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "mta-sts.x.example", Roots: rootsOf(other)}); err == nil {
		t.Errorf("issued certificate verifies against another server's pool")
	}
	block, _ := pem.Decode(s.CACertificatePEM())
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("CACertificatePEM: no certificate block")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CACertificatePEM())
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "mta-sts.x.example", Roots: pool}); err != nil {
		t.Errorf("issued certificate does not verify against CACertificatePEM: %v", err)
	}
}

// TestPolicyServerResponses checks what reaches the client for each
// Response field, over HTTP/2, and that requests are counted per domain.
func TestPolicyServerResponses(t *testing.T) {
	s := testkit.PolicyServer(t)
	const policy = "version: STSv1\nmode: none\nmax_age: 60\n"
	s.SetPolicy("Plain.Example.", policy)
	s.SetResponse("charset.example", mtaststest.Response{Header: map[string]string{"Content-Type": "text/plain; charset=utf-8"}, Body: policy})
	s.SetResponse("notype.example", mtaststest.Response{Header: map[string]string{"Content-Type": ""}, Body: policy})
	s.SetResponse("moved.example", mtaststest.Response{Status: 302, Header: map[string]string{"Location": "https://mta-sts.plain.example/x"}})
	s.SetResponse("error.example", mtaststest.Response{Status: 500, Header: map[string]string{"X-Test": "yes"}, Body: "oops"})
	client := s.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	tests := []struct {
		url, proto   string
		status       int
		header, want string // header to check and its value
		body         string
	}{
		{"https://mta-sts.plain.example/.well-known/mta-sts.txt", "HTTP/2.0", 200, "Content-Type", "text/plain", policy},
		{"https://MTA-STS.plain.example./.well-known/mta-sts.txt", "HTTP/2.0", 200, "Content-Type", "text/plain", policy},
		{"https://mta-sts.charset.example/.well-known/mta-sts.txt", "HTTP/2.0", 200, "Content-Type", "text/plain; charset=utf-8", policy},
		{"https://mta-sts.notype.example/.well-known/mta-sts.txt", "HTTP/2.0", 200, "Content-Type", "", policy},
		{"https://mta-sts.moved.example/.well-known/mta-sts.txt", "HTTP/2.0", 302, "Location", "https://mta-sts.plain.example/x", ""},
		{"https://mta-sts.error.example/.well-known/mta-sts.txt", "HTTP/2.0", 500, "X-Test", "yes", "oops"},
		{"https://mta-sts.plain.example/other.txt", "HTTP/2.0", 404, "", "", ""},
	}
	for _, tc := range tests {
		resp, err := client.Get(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Proto != tc.proto || resp.StatusCode != tc.status || tc.header != "" && resp.Header.Get(tc.header) != tc.want || tc.status != 404 && string(body) != tc.body {
			t.Errorf("%s: %s %d, %s %q, body %q; want %s %d, %q, body %q", tc.url, resp.Proto, resp.StatusCode, tc.header, resp.Header.Get(tc.header), body, tc.proto, tc.status, tc.want, tc.body)
		}
	}
	// Three requests for plain.example's policy URL or another path of its
	// host; none for a domain never asked for.
	if got := s.Requests("plain.example"); got != 3 {
		t.Errorf("Requests(plain.example) = %d, want 3", got)
	}
	if got := s.Requests("never.example"); got != 0 {
		t.Errorf("Requests(never.example) = %d, want 0", got)
	}
	if _, err := client.Get("https://mta-sts.never.example/.well-known/mta-sts.txt"); err == nil {
		t.Errorf("a domain never set resolved")
	}
}

// TestUseRestores checks that Use puts mtasts.HTTPClient back when the test
// ends.
func TestUseRestores(t *testing.T) {
	orig := mtasts.HTTPClient
	t.Run("use", func(t *testing.T) {
		t.Cleanup(testkit.PolicyServer(t).Install())
		if mtasts.HTTPClient == orig {
			t.Errorf("Use did not replace mtasts.HTTPClient")
		}
	})
	if mtasts.HTTPClient != orig {
		t.Errorf("mtasts.HTTPClient not restored after the test")
	}
}

func TestIssueCertificateNoNames(t *testing.T) {
	s := testkit.PolicyServer(t)
	if _, err := s.IssueCertificate(time.Now(), time.Now().Add(time.Hour)); err == nil {
		t.Errorf("IssueCertificate with no names: no error")
	}
}

// TestSetCertificateAfterFetch checks that a certificate set after a fetch
// is presented to the next fetch, not bypassed by a kept-alive connection.
func TestSetCertificateAfterFetch(t *testing.T) {
	s := testkit.PolicyServer(t)
	t.Cleanup(s.Install())
	s.SetPolicy("example.org", "version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 60\n")
	domain := mtasts.Domain{ASCII: "example.org"}
	if _, _, err := mtasts.FetchPolicy(context.Background(), domain); err != nil {
		t.Fatalf("first fetch: %v", err)
	}
	now := time.Now()
	cert, err := s.IssueCertificate(now.Add(-48*time.Hour), now.Add(-24*time.Hour), "mta-sts.example.org")
	if err != nil {
		t.Fatal(err)
	}
	s.SetCertificate("example.org", cert)
	if _, _, err := mtasts.FetchPolicy(context.Background(), domain); mtasts.TLSReportFailureReason(err) != "mta-sts-policy-certificate-expired" {
		t.Errorf("fetch after SetCertificate: %v, want an expired certificate", err)
	}
	if got := s.Requests("example.org"); got != 1 {
		t.Errorf("Requests = %d, want 1: the second handshake must fail", got)
	}
}

// TestRemoveAfterFetch checks that a domain removed after a fetch is gone
// for the next fetch, not reached over a kept-alive connection.
func TestRemoveAfterFetch(t *testing.T) {
	s := testkit.PolicyServer(t)
	t.Cleanup(s.Install())
	s.SetPolicy("example.org", "version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 60\n")
	domain := mtasts.Domain{ASCII: "example.org"}
	if _, _, err := mtasts.FetchPolicy(context.Background(), domain); err != nil {
		t.Fatalf("first fetch: %v", err)
	}
	s.Remove("example.org.")
	_, _, err := mtasts.FetchPolicy(context.Background(), domain)
	var dnsErr *net.DNSError
	if !errors.Is(err, mtasts.ErrNoPolicy) || !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("fetch after Remove: %v, want ErrNoPolicy for a host that does not resolve", err)
	}
}

// TestResolverHold checks that held lookups wait for release, then answer
// as the name is set by then, and that a context ending frees one.
func TestResolverHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mtaststest.NewResolver()
		release := r.Hold("_mta-sts.example.org.")
		const n = 100
		results := make(chan []string, n)
		for range n {
			go func() {
				txts, _, err := r.LookupTXT(context.Background(), "_mta-sts.example.org")
				if err != nil {
					t.Errorf("held lookup: %v", err)
				}
				results <- txts
			}()
		}
		ctx, cancel := context.WithCancel(context.Background())
		canceled := make(chan error)
		go func() {
			_, _, err := r.LookupTXT(ctx, "_mta-sts.example.org")
			canceled <- err
		}()
		synctest.Wait()
		if len(results) != 0 {
			t.Fatalf("%d lookups answered before release", len(results))
		}
		if got := r.Lookups("_mta-sts.example.org"); got != n+1 {
			t.Errorf("Lookups while held = %d, want %d", got, n+1)
		}
		cancel()
		if err := <-canceled; !errors.Is(err, context.Canceled) {
			t.Errorf("held lookup with canceled context: %v, want context.Canceled", err)
		}

		r.SetTXT("_mta-sts.example.org", "v=STSv1; id=late") // set while held
		release()
		release() // no effect
		for range n {
			if txts := <-results; len(txts) != 1 || txts[0] != "v=STSv1; id=late" {
				t.Errorf("released lookup: %q, want the record set before release", txts)
			}
		}
		// Once released, lookups no longer wait.
		if _, _, err := r.LookupTXT(context.Background(), "_mta-sts.example.org"); err != nil {
			t.Errorf("lookup after release: %v", err)
		}
	})
}

// rootsOf returns a pool of the server's CA certificate.
func rootsOf(s *mtaststest.PolicyServer) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CACertificatePEM())
	return pool
}
