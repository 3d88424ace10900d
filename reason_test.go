package mtasts_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mjl-/adns"

	"github.com/mtasts-go/mtasts"
)

// The exported reason codes keep the values that reports and dashboards
// already key on (RFC 8460 4.3.3, "failure-reason-code").
func TestReasonCodeValues(t *testing.T) {
	for _, tc := range []struct{ name, got, want string }{
		{"ReasonRecordNotFound", mtasts.ReasonRecordNotFound, "mta-sts-record-not-found"},
		{"ReasonRecordMultiple", mtasts.ReasonRecordMultiple, "mta-sts-record-multiple"},
		{"ReasonRecordDNSError", mtasts.ReasonRecordDNSError, "mta-sts-record-dns-error"},
		{"ReasonRecordInvalid", mtasts.ReasonRecordInvalid, "mta-sts-record-invalid"},
		{"ReasonPolicyNotFound", mtasts.ReasonPolicyNotFound, "mta-sts-policy-not-found"},
		{"ReasonPolicyFetchError", mtasts.ReasonPolicyFetchError, "mta-sts-policy-fetch-error"},
		{"ReasonPolicyRedirect", mtasts.ReasonPolicyRedirect, "mta-sts-policy-redirect"},
		{"ReasonPolicyFetchTimeout", mtasts.ReasonPolicyFetchTimeout, "mta-sts-policy-fetch-timeout"},
		{"ReasonPolicyHTTPStatusPrefix", mtasts.ReasonPolicyHTTPStatusPrefix, "mta-sts-policy-http-status-"},
		{"ReasonPolicyCertificateExpired", mtasts.ReasonPolicyCertificateExpired, "mta-sts-policy-certificate-expired"},
		{"ReasonPolicyCertificateHostMismatch", mtasts.ReasonPolicyCertificateHostMismatch, "mta-sts-policy-certificate-host-mismatch"},
		{"ReasonPolicyCertificateUntrusted", mtasts.ReasonPolicyCertificateUntrusted, "mta-sts-policy-certificate-untrusted"},
		{"ReasonPolicyCertificateInvalid", mtasts.ReasonPolicyCertificateInvalid, "mta-sts-policy-certificate-invalid"},
		{"ReasonPolicyInvalid", mtasts.ReasonPolicyInvalid, "mta-sts-policy-invalid"},
		{"ReasonPolicyTooLarge", mtasts.ReasonPolicyTooLarge, "mta-sts-policy-too-large"},
		{"ReasonPolicyMediaType", mtasts.ReasonPolicyMediaType, "mta-sts-policy-media-type"},
		{"ReasonPolicyAddressRefused", mtasts.ReasonPolicyAddressRefused, "mta-sts-policy-address-refused"},
		{"ReasonDNSExtendedErrorPrefix", mtasts.ReasonDNSExtendedErrorPrefix, "dns-extended-error-"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

// Errors that carry only a sentinel, as wrapped by a caller, give the code
// of their class, by name.
func TestReasonCodeOfSentinel(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{mtasts.ErrNoRecord, mtasts.ReasonRecordNotFound},
		{mtasts.ErrMultipleRecords, mtasts.ReasonRecordMultiple},
		{mtasts.ErrDNS, mtasts.ReasonRecordDNSError},
		{mtasts.ErrRecordSyntax, mtasts.ReasonRecordInvalid},
		{mtasts.ErrNoPolicy, mtasts.ReasonPolicyNotFound},
		{mtasts.ErrPolicyFetch, mtasts.ReasonPolicyFetchError},
		{mtasts.ErrPolicySyntax, mtasts.ReasonPolicyInvalid},
		{mtasts.ErrAddressRefused, mtasts.ReasonPolicyAddressRefused},
	} {
		err := fmt.Errorf("delivery: %w", tc.err)
		if got := mtasts.TLSReportFailureReason(err); got != tc.want {
			t.Errorf("TLSReportFailureReason(%v) = %q, want %q", err, got, tc.want)
		}
	}
}

// The prefix constants name the codes built at run time.
func TestReasonCodePrefixes(t *testing.T) {
	ok := func(reason, prefix string) {
		t.Helper()
		if !strings.HasPrefix(reason, prefix) || len(reason) == len(prefix) {
			t.Errorf("reason %q does not extend prefix %q", reason, prefix)
		}
	}
	ok(mtasts.ReasonPolicyHTTPStatus(503), mtasts.ReasonPolicyHTTPStatusPrefix)
	if got := mtasts.ReasonPolicyHTTPStatus(503); got != "mta-sts-policy-http-status-503" {
		t.Errorf("ReasonPolicyHTTPStatus(503) = %q", got)
	}
	bogus := adns.ExtendedError{InfoCode: adns.ErrDNSSECBogus}
	_, _, err := mtasts.LookupRecord(context.Background(), errResolver{&adns.DNSError{Err: bogus.Error(), UnwrapErr: bogus}}, mustDomain(t, "x.example"))
	ok(mtasts.TLSReportFailureReason(err), mtasts.ReasonDNSExtendedErrorPrefix)
}
