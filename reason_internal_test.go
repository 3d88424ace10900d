package mtasts

import (
	"os"
	"strings"
	"testing"
)

// reasonCodes are the reason codes with the values that reports and
// dashboards already key on (RFC 8460 4.3.3, "failure-reason-code").
var reasonCodes = []struct{ name, got, want string }{
	{"reasonRecordNotFound", reasonRecordNotFound, "mta-sts-record-not-found"},
	{"reasonRecordMultiple", reasonRecordMultiple, "mta-sts-record-multiple"},
	{"reasonRecordDNSError", reasonRecordDNSError, "mta-sts-record-dns-error"},
	{"reasonRecordInvalid", reasonRecordInvalid, "mta-sts-record-invalid"},
	{"reasonPolicyNotFound", reasonPolicyNotFound, "mta-sts-policy-not-found"},
	{"reasonPolicyFetchError", reasonPolicyFetchError, "mta-sts-policy-fetch-error"},
	{"reasonPolicyRedirect", reasonPolicyRedirect, "mta-sts-policy-redirect"},
	{"reasonPolicyFetchTimeout", reasonPolicyFetchTimeout, "mta-sts-policy-fetch-timeout"},
	{"reasonPolicyHTTPStatusPrefix", reasonPolicyHTTPStatusPrefix, "mta-sts-policy-http-status-"},
	{"reasonPolicyCertificateExpired", reasonPolicyCertificateExpired, "mta-sts-policy-certificate-expired"},
	{"reasonPolicyCertificateHostMismatch", reasonPolicyCertificateHostMismatch, "mta-sts-policy-certificate-host-mismatch"},
	{"reasonPolicyCertificateUntrusted", reasonPolicyCertificateUntrusted, "mta-sts-policy-certificate-untrusted"},
	{"reasonPolicyCertificateInvalid", reasonPolicyCertificateInvalid, "mta-sts-policy-certificate-invalid"},
	{"reasonPolicyInvalid", reasonPolicyInvalid, "mta-sts-policy-invalid"},
	{"reasonPolicyTooLarge", reasonPolicyTooLarge, "mta-sts-policy-too-large"},
	{"reasonPolicyMediaType", reasonPolicyMediaType, "mta-sts-policy-media-type"},
	{"reasonPolicyAddressRefused", reasonPolicyAddressRefused, "mta-sts-policy-address-refused"},
	{"reasonDNSExtendedErrorPrefix", reasonDNSExtendedErrorPrefix, "dns-extended-error-"},
	{"reasonSTARTTLSNotOffered", reasonSTARTTLSNotOffered, "starttls-not-offered"},
	{"reasonSTARTTLSRefused", reasonSTARTTLSRefused, "starttls-refused"},
	{"reasonCertificateHostMismatch", reasonCertificateHostMismatch, "certificate-host-mismatch"},
	{"reasonCertificateExpired", reasonCertificateExpired, "certificate-expired"},
	{"reasonCertificateNotYetValid", reasonCertificateNotYetValid, "certificate-not-yet-valid"},
	{"reasonCertificateUnknownAuthority", reasonCertificateUnknownAuthority, "certificate-unknown-authority"},
	{"reasonCertificateNameConstraints", reasonCertificateNameConstraints, "certificate-name-constraints"},
	{"reasonCertificateChain", reasonCertificateChain, "certificate-chain-invalid"},
	{"reasonCertificateUsage", reasonCertificateUsage, "certificate-incompatible-usage"},
	{"reasonCertificateInvalid", reasonCertificateInvalid, "certificate-invalid"},
	{"reasonTLSAlertPrefix", reasonTLSAlertPrefix, "tls-alert-"},
	{"reasonTLSConnectionClosed", reasonTLSConnectionClosed, "tls-connection-closed"},
	{"reasonNotTLS", reasonNotTLS, "tls-not-spoken"},
	{"reasonTLSVersion", reasonTLSVersion, "tls-version-too-old"},
	{"reasonCertificateMissing", reasonCertificateMissing, "certificate-missing"},
	{"reasonTLSHandshake", reasonTLSHandshake, "tls-handshake-failed"},
}

// The reason codes keep their values.
func TestReasonCodeValues(t *testing.T) {
	for _, tc := range reasonCodes {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if got := reasonPolicyHTTPStatus(503); got != "mta-sts-policy-http-status-503" || !strings.HasPrefix(got, reasonPolicyHTTPStatusPrefix) {
		t.Errorf("reasonPolicyHTTPStatus(503) = %q", got)
	}
}

// docs/delivery.md lists every reason code, since users compare against the
// strings.
func TestReasonCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("docs/delivery.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range reasonCodes {
		if !strings.Contains(string(doc), "`"+tc.want) {
			t.Errorf("docs/delivery.md does not list reason code %q (%s)", tc.want, tc.name)
		}
	}
}
