package mtasts_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mjl-/adns"

	"github.com/mtasts-go/mtasts"
)

// Errors that carry only a sentinel, as wrapped by a caller, give the code
// of their class, by name.
func TestReasonCodeOfSentinel(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{mtasts.ErrNoRecord, "mta-sts-record-not-found"},
		{mtasts.ErrMultipleRecords, "mta-sts-record-multiple"},
		{mtasts.ErrDNS, "mta-sts-record-dns-error"},
		{mtasts.ErrRecordSyntax, "mta-sts-record-invalid"},
		{mtasts.ErrNoPolicy, "mta-sts-policy-not-found"},
		{mtasts.ErrPolicyFetch, "mta-sts-policy-fetch-error"},
		{mtasts.ErrPolicySyntax, "mta-sts-policy-invalid"},
		{mtasts.ErrAddressRefused, "mta-sts-policy-address-refused"},
	} {
		err := fmt.Errorf("delivery: %w", tc.err)
		if got := mtasts.TLSReportFailureReason(err); got != tc.want {
			t.Errorf("TLSReportFailureReason(%v) = %q, want %q", err, got, tc.want)
		}
	}
}

// A DNSSEC failure gives a code built at run time from its prefix.
func TestReasonCodePrefixes(t *testing.T) {
	ok := func(reason, prefix string) {
		t.Helper()
		if !strings.HasPrefix(reason, prefix) || len(reason) == len(prefix) {
			t.Errorf("reason %q does not extend prefix %q", reason, prefix)
		}
	}
	bogus := adns.ExtendedError{InfoCode: adns.ErrDNSSECBogus}
	_, _, err := mtasts.LookupRecord(context.Background(), errResolver{&adns.DNSError{Err: bogus.Error(), UnwrapErr: bogus}}, mustDomain(t, "x.example"))
	ok(mtasts.TLSReportFailureReason(err), "dns-extended-error-")
}
