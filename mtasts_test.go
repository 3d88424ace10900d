package mtasts_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/mjl-/adns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
)

// errResolver fails every lookup with err.
type errResolver struct{ err error }

func (r errResolver) LookupTXT(ctx context.Context, name string) ([]string, adns.Result, error) {
	return nil, adns.Result{}, r.err
}

func mustDomain(t testing.TB, s string) mtasts.Domain {
	t.Helper()
	d, err := mtasts.ParseDomain(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestLookupRecord(t *testing.T) {
	resolver := staticResolver{
		"_mta-sts.good.example.":     {"v=STSv1; id=abc123"},
		"_mta-sts.spf.example.":      {"v=spf1 -all", "v=STSv1; id=abc123;", "google-site-verification=x"},
		"_mta-sts.nonsts.example.":   {"v=spf1 -all", "v=STSv10; id=1"},
		"_mta-sts.none.example.":     {},
		"_mta-sts.two.example.":      {"v=STSv1; id=1", "v=STSv1; id=2"},
		"_mta-sts.twobad.example.":   {"v=STSv1; id=1", "v=STSv1 id=2"},
		"_mta-sts.invalid.example.":  {"v=STSv1; id=not-valid"},
		"_mta-sts.xn--bcher-kva.ex.": {"v=STSv1; id=idn"},
		// A resolver returns the strings of one record concatenated
		// (RFC 8461 3.1); a long record with an extension.
		"_mta-sts.long.example.": {"v=STSv1; id=long; " + "ext=" + strings.Repeat("x", 255) + strings.Repeat("y", 255)},
	}
	good := []struct {
		domain, id string
	}{
		{"good.example", "abc123"},
		{"spf.example", "abc123"},
		{"bücher.ex", "idn"},
		{"long.example", "long"},
	}
	for _, tc := range good {
		record, text, err := mtasts.LookupRecord(context.Background(), resolver, mustDomain(t, tc.domain))
		if err != nil || record.ID != tc.id {
			t.Errorf("LookupRecord(%s) = %v, %q, %v; want id %q", tc.domain, record, text, err, tc.id)
			continue
		}
		if r2, _, _ := mtasts.ParseRecord(text); r2 == nil || r2.ID != tc.id {
			t.Errorf("LookupRecord(%s) text %q is not the record", tc.domain, text)
		}
	}
	if r, _, _ := mtasts.LookupRecord(context.Background(), resolver, mustDomain(t, "long.example")); r == nil || len(r.Extensions) != 1 || len(r.Extensions[0].Value) != 510 {
		t.Errorf("long record: %#v", r)
	}

	bogus := adns.ExtendedError{InfoCode: adns.ErrDNSSECBogus, ExtraText: "signature invalid"}
	bad := []struct {
		name     string
		resolver mtasts.Resolver
		domain   string
		want     error
		reason   string
		result   string
	}{
		{"absent name", resolver, "absent.example", mtasts.ErrNoRecord, "mta-sts-record-not-found", "sts-policy-fetch-error"},
		{"no txt records", resolver, "none.example", mtasts.ErrNoRecord, "mta-sts-record-not-found", "sts-policy-fetch-error"},
		{"only non-sts records", resolver, "nonsts.example", mtasts.ErrNoRecord, "mta-sts-record-not-found", "sts-policy-fetch-error"},
		{"two sts records", resolver, "two.example", mtasts.ErrMultipleRecords, "mta-sts-record-multiple", "sts-policy-invalid"},
		{"two sts records, one invalid", resolver, "twobad.example", mtasts.ErrMultipleRecords, "mta-sts-record-multiple", "sts-policy-invalid"},
		{"invalid record", resolver, "invalid.example", mtasts.ErrRecordSyntax, "mta-sts-record-invalid", "sts-policy-invalid"},
		{"net not found", errResolver{&net.DNSError{Err: "no such host", IsNotFound: true}}, "x.example", mtasts.ErrNoRecord, "mta-sts-record-not-found", "sts-policy-fetch-error"},
		{"servfail", errResolver{&adns.DNSError{Err: "server misbehaving", IsTemporary: true}}, "x.example", mtasts.ErrDNS, "mta-sts-record-dns-error", "sts-policy-fetch-error"},
		{"timeout", errResolver{&adns.DNSError{Err: "i/o timeout", IsTimeout: true}}, "x.example", mtasts.ErrDNS, "mta-sts-record-dns-error", "sts-policy-fetch-error"},
		{"dnssec bogus", errResolver{&adns.DNSError{Err: bogus.Error(), UnwrapErr: bogus}}, "x.example", mtasts.ErrDNS, "dns-extended-error-6-dnssec-bogus", "sts-policy-fetch-error"},
		{"extended error, not authentication", errResolver{&adns.DNSError{Err: "blocked", UnwrapErr: adns.ExtendedError{InfoCode: adns.ErrBlocked}}}, "x.example", mtasts.ErrDNS, "mta-sts-record-dns-error", "sts-policy-fetch-error"},
		{"canceled", errResolver{context.Canceled}, "x.example", mtasts.ErrDNS, "mta-sts-record-dns-error", "sts-policy-fetch-error"},
		{"nil resolver", nil, "x.example", mtasts.ErrDNS, "mta-sts-record-dns-error", "sts-policy-fetch-error"},
		{"zero domain", resolver, "", mtasts.ErrInvalidDomain, "", ""},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			var domain mtasts.Domain
			if tc.domain != "" {
				domain = mustDomain(t, tc.domain)
			}
			record, _, err := mtasts.LookupRecord(context.Background(), tc.resolver, domain)
			if record != nil {
				t.Errorf("LookupRecord returned record %v with error %v", record, err)
			}
			checkFailure(t, err, tc.want, tc.reason)
			if got := mtasts.TLSReportResultType(err); got != mtasts.ResultType(tc.result) {
				t.Errorf("TLSReportResultType = %q, want %q", got, tc.result)
			}
		})
	}

	// The resolver's error stays reachable.
	_, _, err := mtasts.LookupRecord(context.Background(), errResolver{&adns.DNSError{Err: bogus.Error(), UnwrapErr: bogus}}, mustDomain(t, "x.example"))
	var code adns.ErrorCode
	if !errors.As(err, &code) || code != adns.ErrDNSSECBogus {
		t.Errorf("error %v does not give the extended error code", err)
	}
	_, _, err = mtasts.LookupRecord(context.Background(), errResolver{context.Canceled}, mustDomain(t, "x.example"))
	if !errors.Is(err, context.Canceled) || mtasts.ResultLabel(err) != "canceled" {
		t.Errorf("error %v (label %q) does not say the context was canceled", err, mtasts.ResultLabel(err))
	}
}

// checkFailure checks that err matches the sentinel want and no other, and
// gives reason as its TLS-RPT failure reason.
func checkFailure(t *testing.T, err, want error, reason string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	for _, other := range sentinels {
		if other != want && errors.Is(err, other) {
			t.Errorf("error %v also matches %v", err, other)
		}
	}
	if got := mtasts.TLSReportFailureReason(err); got != reason {
		t.Errorf("TLSReportFailureReason(%v) = %q, want %q", err, got, reason)
	}
}

var sentinels = []error{
	mtasts.ErrNoRecord, mtasts.ErrMultipleRecords, mtasts.ErrDNS, mtasts.ErrRecordSyntax,
	mtasts.ErrNoPolicy, mtasts.ErrPolicyFetch, mtasts.ErrPolicySyntax, mtasts.ErrInvalidDomain,
}

func TestTLSReportUnknownErrors(t *testing.T) {
	for _, err := range []error{nil, errors.New("other"), context.DeadlineExceeded} {
		if r := mtasts.TLSReportFailureReason(err); r != "" {
			t.Errorf("TLSReportFailureReason(%v) = %q, want empty", err, r)
		}
		if r := mtasts.TLSReportResultType(err); r != "" {
			t.Errorf("TLSReportResultType(%v) = %q, want empty", err, r)
		}
	}
	for _, err := range sentinels {
		if !errors.Is(err, err) || len(err.Error()) < 8 || err.Error()[:8] != "mtasts: " {
			t.Errorf("sentinel %q lacks the package prefix", err)
		}
	}
}

func TestRegisterMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := mtasts.RegisterMetrics(reg); err != nil {
		t.Fatalf("RegisterMetrics: %v", err)
	}
	if err := mtasts.RegisterMetrics(reg); err == nil {
		t.Fatal("second RegisterMetrics with the same registry did not fail")
	}

	// A Get that fails at the lookup is observed with its result.
	_, _, _, err := mtasts.Get(context.Background(), staticResolver{}, mustDomain(t, "metrics.example"))
	if !errors.Is(err, mtasts.ErrNoRecord) {
		t.Fatalf("Get: %v", err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, mf := range families {
		if mf.GetName() != "mtastsgo_get_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "no-record" && m.GetHistogram().GetSampleCount() > 0 {
					found = true
				}
			}
		}
	}
	if !found {
		t.Errorf("no mtastsgo_get_duration_seconds sample with result no-record in %v", families)
	}
}
