package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/internal/testkit"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// TestHostilePolicyHost runs the cache with its defaults, mtasts.LookupRecord
// and mtasts.FetchPolicy, against a real TLS policy server that turns
// hostile after the first fetch: each new record id meets a failure, the
// cached enforce policy stays, and the failure is described for TLS-RPT.
func TestHostilePolicyHost(t *testing.T) {
	resolver := mtaststest.NewResolver()
	server := testkit.PolicyServer(t)
	t.Cleanup(server.Install())
	resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
	server.SetPolicy("example.com", policyText("enforce", 86400))
	c, err := cache.New(cache.Options{Resolver: resolver})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	d := domain(t, "example.com")
	if r := c.Get(ctx, d); r.Policy == nil || !r.Fresh || r.Err != nil {
		t.Fatalf("first Get = %+v; want a fresh policy", r)
	}

	expired, err := server.IssueCertificate(time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour), "mta-sts.example.com")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		hostile    func()
		resultType mtasts.ResultType
		reason     string
		sentinel   error
	}{
		{"invalid policy", func() { server.SetPolicy("example.com", "version: STSv1\nmode: enforce\n") },
			mtasts.ResultSTSPolicyInvalid, "mta-sts-policy-invalid", mtasts.ErrPolicySyntax},
		{"server error", func() { server.SetResponse("example.com", mtaststest.Response{Status: 500}) },
			mtasts.ResultSTSPolicyFetchError, "mta-sts-policy-http-status-500", mtasts.ErrPolicyFetch},
		{"redirect", func() {
			server.SetResponse("example.com", mtaststest.Response{Status: 301, Header: map[string]string{"Location": "https://evil.example/"}})
		}, mtasts.ResultSTSPolicyFetchError, "mta-sts-policy-redirect", mtasts.ErrPolicyFetch},
		{"policy host gone", func() { server.Remove("example.com") },
			mtasts.ResultSTSPolicyFetchError, "mta-sts-policy-not-found", mtasts.ErrNoPolicy},
		{"expired certificate", func() {
			server.SetPolicy("example.com", policyText("none", 86400))
			server.SetCertificate("example.com", expired)
			mtasts.HTTPClient.CloseIdleConnections() // a new handshake
		}, mtasts.ResultSTSWebPKIInvalid, "mta-sts-policy-certificate-expired", mtasts.ErrPolicyFetch},
	}
	for i, tt := range tests {
		tt.hostile()
		resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=hostile"+string(rune('a'+i)))
		r := c.Recheck(ctx, d)
		if r.Policy == nil || r.Policy.Mode != mtasts.ModeEnforce || r.RecordID != "1" {
			t.Errorf("%s: Recheck = %+v; want the cached enforce policy", tt.name, r)
		}
		if !errors.Is(r.Err, tt.sentinel) || mtasts.TLSReportResultType(r.Err) != tt.resultType || mtasts.TLSReportFailureReason(r.Err) != tt.reason {
			t.Errorf("%s: Err %v, ResultType %q, FailureReason %q; want %v, %q, %q", tt.name, r.Err, mtasts.TLSReportResultType(r.Err), mtasts.TLSReportFailureReason(r.Err), tt.sentinel, tt.resultType, tt.reason)
		}
		if r := c.Get(ctx, d); r.Policy == nil || r.RecordID != "1" {
			t.Errorf("%s: Get after = %+v; want the cached policy", tt.name, r)
		}
	}
}
