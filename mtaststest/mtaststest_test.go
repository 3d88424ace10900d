package mtaststest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mjl-/adns"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
)

func TestResolver(t *testing.T) {
	r := mtaststest.NewResolver()
	r.SetTXT("a.example.", "one", "two")
	r.SetTXT("empty.example")
	r.ServFail("servfail.example")
	r.ExtendedError("bogus.example", adns.ErrDNSSECBogus)
	r.Block("block.example")
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
	s := mtaststest.NewPolicyServer(t)
	s.Use(t)
	const policy = "version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 60\n"
	s.SetPolicy("example.org", policy)
	s.SetResponse("missing.example", mtaststest.Response{Status: 404})
	s.SetResponse("moved.example", mtaststest.Response{Redirect: "https://elsewhere.example/"})
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
	r.SetRecord("example.org", "v=STSv1; id=1")
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
	r.Block("block.example")
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
	r.SetRecord("good.example", "v=STSv1; id=1")
	r.SetTXT("_mta-sts.two.example", "v=STSv1; id=1", "v=STSv1; id=2")
	r.SetTXT("_mta-sts.spf.example", "v=spf1 -all")
	r.ServFail("_mta-sts.servfail.example")
	r.ExtendedError("_mta-sts.bogus.example.", adns.ErrDNSSECBogus)
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
