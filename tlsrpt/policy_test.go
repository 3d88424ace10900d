package tlsrpt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/internal/testkit"
	"github.com/mtasts-go/mtasts/mtaststest"
)

func domain(t testing.TB, s string) mtasts.Domain {
	t.Helper()
	d, err := mtasts.ParseDomain(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func parsePolicy(t testing.TB, text string) *mtasts.Policy {
	t.Helper()
	p, err := mtasts.ParsePolicy(text)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The policy of RFC 8461 Appendix A, with max_age as in RFC 8460 4.5, gives
// the policy-string of RFC 8460 4.5's example.
func TestTargetSTS(t *testing.T) {
	text := "version: STSv1\r\nmode: testing\r\nmx: mx1.example.com\r\n\r\nmx: mx2.example.com\nmx: mx.backup-example.com\n  \nmax_age: 604800\r\n"
	p := parsePolicy(t, text)
	tg := Target{Recipient: domain(t, "example.com"), MX: domain(t, "mx1.example.com")}

	got := tg.STS(p, text)
	want := Policy{
		PolicyType: PolicyTypeSTS,
		PolicyString: []string{
			"version: STSv1",
			"mode: testing",
			"mx: mx1.example.com",
			"mx: mx2.example.com",
			"mx: mx.backup-example.com",
			"max_age: 604800",
		},
		PolicyDomain:    "example.com",
		MXHost:          []string{"mx1.example.com", "mx2.example.com", "mx.backup-example.com"},
		RecipientDomain: "example.com",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("STS = %+v\nwant %+v", got, want)
	}
	if err := got.validate(); err != nil {
		t.Error(err)
	}
	// Without the text, the policy's own lines.
	if got := tg.STS(p, ""); !reflect.DeepEqual(got, want) {
		t.Errorf("STS without text = %+v", got)
	}

	// An invalid line is kept as declared (RFC 8460 4.5, "including any
	// errors that may be present").
	bad := "version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 86400\nfoo: bar"
	if got := tg.STS(parsePolicy(t, bad), bad).PolicyString; !reflect.DeepEqual(got, strings.Split(bad, "\n")) {
		t.Errorf("lines %q", got)
	}
}

// Domains are reported in A-labels (RFC 8460 4.4).
func TestTargetSTSInternationalized(t *testing.T) {
	// The policy as held in memory, with the Unicode forms of its names.
	p := &mtasts.Policy{Version: "STSv1", Mode: mtasts.ModeEnforce, MaxAgeSeconds: 86400, MX: []mtasts.STSMX{
		{Wildcard: true, Domain: domain(t, "xn--mnchen-3ya.example")},
		{Domain: domain(t, "mail.bücher-post.example")},
	}}
	got := Target{Recipient: domain(t, "Bücher.example")}.STS(p, "")
	if got.PolicyDomain != "xn--bcher-kva.example" {
		t.Errorf("policy-domain %q", got.PolicyDomain)
	}
	if want := []string{"*.xn--mnchen-3ya.example", "mail.xn--bcher-post-9db.example"}; !reflect.DeepEqual(got.MXHost, want) {
		t.Errorf("mx-host %q, want %q", got.MXHost, want)
	}
	if want := "mx: mail.xn--bcher-post-9db.example"; got.PolicyString[3] != want {
		t.Errorf("policy-string %q, want %q in it", got.PolicyString, want)
	}
	if err := got.validate(); err != nil {
		t.Error(err)
	}
}

func TestTargetNoPolicy(t *testing.T) {
	tg := Target{Recipient: domain(t, "example.com"), MX: domain(t, "mx.example.net")}
	want := Policy{PolicyType: PolicyTypeNoPolicyFound, PolicyDomain: "example.com", RecipientDomain: "example.com"}
	none := parsePolicy(t, "version: STSv1\nmode: none\nmax_age: 86400\n")
	for name, got := range map[string]Policy{
		"NoPolicyFound": tg.NoPolicyFound(),
		"nil policy":    tg.STS(nil, ""),
		"mode none":     tg.STS(none, "version: STSv1\nmode: none\nmax_age: 86400\n"),
	} {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v", name, got)
		}
	}
	out, _ := json.Marshal(want)
	if string(out) != `{"policy-type":"no-policy-found","policy-string":[],"policy-domain":"example.com"}` {
		t.Errorf("JSON %s", out)
	}
}

// The lesson from mox: MTA-STS results belong to the recipient domain, DANE
// results to the MX host (RFC 8460 1.1).
func TestTargetPolicyDomains(t *testing.T) {
	tg := Target{Recipient: domain(t, "example.com"), MX: domain(t, "mx.provider.example")}
	p := parsePolicy(t, "version: STSv1\nmode: enforce\nmx: mx.provider.example\nmax_age: 86400\n")
	sts := tg.STS(p, "")
	tlsa, err := tg.TLSA([]string{"3 1 1 " + strings.Repeat("ab", 32)})
	if err != nil {
		t.Fatal(err)
	}
	noPolicy := tg.NoPolicyFound()
	if sts.PolicyDomain != "example.com" || noPolicy.PolicyDomain != "example.com" || tlsa.PolicyDomain != "mx.provider.example" {
		t.Errorf("policy domains: sts %q, no-policy-found %q, tlsa %q", sts.PolicyDomain, noPolicy.PolicyDomain, tlsa.PolicyDomain)
	}
	// The TLSA base domain of a secure CNAME (RFC 7672 2.2.3).
	tg.TLSABase = domain(t, "smtp.hosting.example")
	tlsa, _ = tg.TLSA([]string{"3 1 1 " + strings.Repeat("ab", 32)})
	if tlsa.PolicyDomain != "smtp.hosting.example" || !reflect.DeepEqual(tlsa.MXHost, []string{"mx.provider.example"}) {
		t.Errorf("with a TLSA base domain: %+v", tlsa)
	}
}

func TestTargetTLSA(t *testing.T) {
	tg := Target{Recipient: domain(t, "example.com"), MX: domain(t, "MX.Example.net")}
	sha256 := "1F850A337E6DB9C609C522D136A475638CC43E1ED424F8EEC8513D747D1D085D"
	// RFC 8460 4.5's records, here without the line break of the RFC's
	// layout; then the same in the forms DNS tools print.
	got, err := tg.TLSA([]string{
		"3 0 1 " + sha256,
		"3 0 1 12350A337E6DB9C6123522D136A475638CC43E1ED424F8EEC8513D747D1D1234",
		" 2\t0  1 " + strings.ToLower(sha256[:32]) + " " + strings.ToLower(sha256[32:]),
		"3 1 2 " + strings.Repeat("0a", 64),
		"3 1 0 3059301306072A8648CE3D",
		"255 255 255 00",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Policy{
		PolicyType: PolicyTypeTLSA,
		PolicyString: []string{
			"3 0 1 " + sha256,
			"3 0 1 12350A337E6DB9C6123522D136A475638CC43E1ED424F8EEC8513D747D1D1234",
			"2 0 1 " + sha256,
			"3 1 2 " + strings.Repeat("0A", 64),
			"3 1 0 3059301306072A8648CE3D",
			"255 255 255 00",
		},
		PolicyDomain:    "mx.example.net",
		MXHost:          []string{"mx.example.net"},
		RecipientDomain: "example.com", // RFC 8460 1.1: kept beside the policy domain
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("TLSA = %+v\nwant %+v", got, want)
	}
	if err := got.validate(); err != nil {
		t.Error(err)
	}

	for _, tc := range []struct {
		rec, msg string
	}{
		{"", "invalid usage"},
		{"3 1", "invalid matching type"},
		{"3 1 1", "no certificate association data"},
		{"256 1 1 00", "invalid usage"},
		{"1234 1 1 00", "invalid usage"},
		{"3 x 1 00", "invalid selector"},
		{"3 1 1x 00", "invalid matching type"},
		{"3 1 0 0", "odd number"},
		{"3 1 0 (00)", "invalid character '('"},
		{"3 1 0 0g", "invalid character 'g'"},
		{"3 1 1 00", "1 bytes of data for matching type 1 (SHA2-256), expected 32"},
		{"3 1 2 " + sha256, "32 bytes of data for matching type 2 (SHA2-512), expected 64"},
	} {
		_, err := tg.TLSA([]string{"3 1 1 " + sha256, tc.rec})
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "tlsa record 2") {
			t.Errorf("TLSA(%q): %v, want %q", tc.rec, err, tc.msg)
		}
	}
	if _, err := tg.TLSA(nil); err == nil {
		t.Error("TLSA(nil): no error")
	}
	if _, err := (Target{Recipient: domain(t, "example.com")}).TLSA([]string{"3 1 1 " + sha256}); err == nil || !strings.Contains(err.Error(), "Target.MX") {
		t.Errorf("TLSA without MX: %v", err)
	}
}

func TestTargetFromCacheResults(t *testing.T) {
	text := "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n"
	p := parsePolicy(t, text)
	none := parsePolicy(t, "version: STSv1\nmode: none\nmax_age: 86400\n")
	tg := Target{Recipient: domain(t, "example.com"), MX: domain(t, "mx.example.com")}
	sts := tg.STS(p, text)
	fetchErr := &FailureDetail{ResultType: mtasts.ResultSTSPolicyFetchError, FailureReasonCode: "mta-sts-policy-fetch-error", FailedSessionCount: 1}
	errFetch := fmt.Errorf("%w: connection refused", mtasts.ErrPolicyFetch)
	tests := []struct {
		name    string
		res     cache.Result
		policy  Policy
		failure *FailureDetail
	}{
		{"applied", cache.Result{Policy: p, Fresh: true}, sts, nil},
		{"applied despite a failure", cache.Result{Policy: p, Err: errFetch}, sts, fetchErr},
		{"no policy for a failure", cache.Result{Err: errFetch},
			Policy{PolicyType: PolicyTypeSTS, PolicyDomain: "example.com", RecipientDomain: "example.com"}, fetchErr},
		{"no policy", cache.Result{}, tg.NoPolicyFound(), nil},
		{"mode none", cache.Result{Policy: none}, tg.NoPolicyFound(), nil},
		// A failure never goes with mode none (RFC 8461 6); the cache
		// clears it, and so does FromCache.
		{"mode none with a failure", cache.Result{Policy: none, Err: errFetch}, tg.NoPolicyFound(), nil},
		{"canceled", cache.Result{Err: context.Canceled}, tg.NoPolicyFound(), nil},
	}
	for _, tc := range tests {
		policy, failure := tg.FromCache(tc.res)
		if !reflect.DeepEqual(policy, tc.policy) || !reflect.DeepEqual(failure, tc.failure) {
			t.Errorf("%s: %+v, %+v\nwant %+v, %+v", tc.name, policy, failure, tc.policy, tc.failure)
		}
	}
}

// With a real cache: a policy applies, then, after its refresh fails, still
// applies, with the failure to report.
func TestTargetFromCache(t *testing.T) {
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
	server := testkit.PolicyServer(t)
	text := "version: STSv1\nmode: testing\nmx: *.mail.example.com\nmax_age: 604800\n"
	server.SetPolicy("example.com", text)
	t.Cleanup(server.Install())
	c, err := cache.New(cache.Options{Resolver: resolver})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	tg := Target{Recipient: domain(t, "example.com"), MX: domain(t, "mx1.mail.example.com")}
	want := Policy{
		PolicyType:      PolicyTypeSTS,
		PolicyString:    []string{"version: STSv1", "mode: testing", "mx: *.mail.example.com", "max_age: 604800"},
		PolicyDomain:    "example.com",
		MXHost:          []string{"*.mail.example.com"},
		RecipientDomain: "example.com",
	}

	policy, failure := tg.FromCache(c.Get(ctx, tg.Recipient))
	if !reflect.DeepEqual(policy, want) || failure != nil {
		t.Fatalf("fresh policy: %+v, %+v", policy, failure)
	}

	// A new id, and the policy host answers 500: the cached policy stays.
	resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=2")
	server.SetResponse("example.com", mtaststest.Response{Status: 500})
	res := c.Recheck(ctx, tg.Recipient)
	if res.Policy == nil || res.Err == nil {
		t.Fatalf("cache result %+v, want the cached policy and the failure", res)
	}
	policy, failure = tg.FromCache(res)
	wantFailure := &FailureDetail{ResultType: mtasts.ResultSTSPolicyFetchError, FailureReasonCode: "mta-sts-policy-http-status-500", FailedSessionCount: 1}
	if !reflect.DeepEqual(policy, want) || !reflect.DeepEqual(failure, wantFailure) {
		t.Errorf("policy applied despite a failure: %+v, %+v", policy, failure)
	}
}

// RFC 8460 4.5: the policy-string of an MTA-STS policy is the policy "that
// is declared by the receiving site, including any errors that may be
// present". A policy that did not parse is reported with its lines, as
// served, on the fetch that failed and on the remembered failure after it.
func TestTargetFromCacheInvalidPolicy(t *testing.T) {
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
	server := testkit.PolicyServer(t)
	server.SetPolicy("example.com", "version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: forever\r\n")
	t.Cleanup(server.Install())
	c, err := cache.New(cache.Options{Resolver: resolver})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tg := Target{Recipient: domain(t, "example.com"), MX: domain(t, "mx.example.com")}
	want := Policy{
		PolicyType:      PolicyTypeSTS,
		PolicyString:    []string{"version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: forever"},
		PolicyDomain:    "example.com",
		RecipientDomain: "example.com",
	}
	for _, attempt := range []string{"the fetch", "the failure remembered"} {
		res := c.Get(context.Background(), tg.Recipient)
		policy, failure := tg.FromCache(res)
		if !reflect.DeepEqual(policy, want) || failure == nil || failure.ResultType != mtasts.ResultSTSPolicyInvalid {
			t.Errorf("%s: %+v, %+v; want %+v and an sts-policy-invalid failure", attempt, policy, failure, want)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	p := Target{}.NoPolicyFound()
	var rerr *SyntaxError
	if err := p.validate(); !errors.As(err, &rerr) || rerr.Field != "policy.policy-domain" {
		t.Errorf("Validate of a policy without a domain: %v", err)
	}
}

// A policy that did not parse may hold control characters; its lines go
// into the policy-string escaped (RFC 8460 4.5 wants the policy "including
// any errors that may be present"), so that the Recorder takes the
// failure rather than refusing the policy.
func TestTargetFromCacheControlCharacters(t *testing.T) {
	tg := Target{Recipient: domain(t, "example.com")}
	res := cache.Result{
		Err:        mtasts.ErrPolicySyntax,
		PolicyText: "version: STSv1\r\nmode: \x1b[2Jenforce\r\nmx: mx.example.com\u0085\r\nmax_age: 86400\r\n",
	}
	p, fd := tg.FromCache(res)
	want := []string{"version: STSv1", `mode: \x1b[2Jenforce`, `mx: mx.example.com\u0085`, "max_age: 86400"}
	if !reflect.DeepEqual(p.PolicyString, want) || fd == nil {
		t.Errorf("policy-string %q, failure %v; want %q and a failure", p.PolicyString, fd, want)
	}
	if err := p.validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	rec, err := NewRecorder(RecorderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Failure(p, *fd); err != nil {
		t.Errorf("Recorder.Failure: %v", err)
	}
}

// Escaping does not take a policy-string past mtasts.MaxPolicySize: the
// lines past it are left out.
func TestReportLinesBounded(t *testing.T) {
	text := strings.Repeat("mx: \x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\n", mtasts.MaxPolicySize/16)
	p, _ := Target{Recipient: domain(t, "example.com")}.FromCache(cache.Result{
		Err: mtasts.ErrPolicySyntax, PolicyText: text})
	if err := p.validate(); err != nil || len(p.PolicyString) == 0 {
		t.Errorf("%d lines: %v", len(p.PolicyString), err)
	}
}
