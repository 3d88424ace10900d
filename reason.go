package mtasts

import "strconv"

// Failure reason codes of this package, for the "failure-reason-code" field
// of a TLS report (RFC 8460 4.3.3: "A text field to include a TLS-related
// error code or error message"). TLSReportFailureReason returns them. They
// are stable: reports, dashboards and delivery code may compare against
// them, and docs/delivery.md lists them (keep its table in step). Codes of a
// record start with "mta-sts-record-", codes of a policy fetch with
// "mta-sts-policy-".
const (
	// reasonRecordNotFound: no _mta-sts name, or no TXT record there
	// starting with v=STSv1 (ErrNoRecord, RFC 8461 3.1).
	reasonRecordNotFound = "mta-sts-record-not-found"
	// reasonRecordMultiple: more than one MTA-STS TXT record
	// (ErrMultipleRecords, RFC 8461 3.1).
	reasonRecordMultiple = "mta-sts-record-multiple"
	// reasonRecordDNSError: the TXT lookup failed otherwise (ErrDNS). A
	// DNSSEC failure that the resolver reports as an extended DNS error
	// has a code starting with reasonDNSExtendedErrorPrefix instead.
	reasonRecordDNSError = "mta-sts-record-dns-error"
	// reasonRecordInvalid: the TXT record breaks the grammar of RFC 8461
	// 3.1 (ErrRecordSyntax).
	reasonRecordInvalid = "mta-sts-record-invalid"

	// reasonPolicyNotFound: no policy host, or it answered 404
	// (ErrNoPolicy).
	reasonPolicyNotFound = "mta-sts-policy-not-found"
	// reasonPolicyFetchError: the fetch failed for a reason no other code
	// names, e.g. a refused connection (ErrPolicyFetch).
	reasonPolicyFetchError = "mta-sts-policy-fetch-error"
	// reasonPolicyRedirect: the policy host answered with a redirect,
	// which RFC 8461 3.3 forbids following (ErrPolicyFetch).
	reasonPolicyRedirect = "mta-sts-policy-redirect"
	// reasonPolicyFetchTimeout: the fetch timed out (ErrPolicyFetch).
	reasonPolicyFetchTimeout = "mta-sts-policy-fetch-timeout"
	// reasonPolicyHTTPStatusPrefix, followed by the status code in
	// decimal, is the code of a status other than 200, 404 and a redirect
	// (ErrPolicyFetch, RFC 8461 3.3), e.g.
	// "mta-sts-policy-http-status-500"; see reasonPolicyHTTPStatus.
	reasonPolicyHTTPStatusPrefix = "mta-sts-policy-http-status-"
	// reasonPolicyCertificateExpired: the policy host's certificate has
	// expired or is not yet valid (ErrPolicyFetch, RFC 8461 3.3).
	reasonPolicyCertificateExpired = "mta-sts-policy-certificate-expired"
	// reasonPolicyCertificateHostMismatch: the certificate is not valid
	// for mta-sts.<domain> (ErrPolicyFetch, RFC 8461 3.3).
	reasonPolicyCertificateHostMismatch = "mta-sts-policy-certificate-host-mismatch"
	// reasonPolicyCertificateUntrusted: the certificate does not chain to
	// a trusted root (ErrPolicyFetch, RFC 8461 3.3).
	reasonPolicyCertificateUntrusted = "mta-sts-policy-certificate-untrusted"
	// reasonPolicyCertificateInvalid: the certificate failed PKIX
	// validation otherwise (ErrPolicyFetch, RFC 8461 3.3).
	reasonPolicyCertificateInvalid = "mta-sts-policy-certificate-invalid"
	// reasonPolicyInvalid: the policy breaks the grammar of RFC 8461 3.2
	// (ErrPolicySyntax).
	reasonPolicyInvalid = "mta-sts-policy-invalid"
	// reasonPolicyTooLarge: the policy is larger than MaxPolicySize
	// (ErrPolicySyntax, RFC 8461 3.3).
	reasonPolicyTooLarge = "mta-sts-policy-too-large"
	// reasonPolicyMediaType: the policy is not served as text/plain
	// (ErrPolicySyntax, RFC 8461 3.2).
	reasonPolicyMediaType = "mta-sts-policy-media-type"
	// reasonPolicyAddressRefused: the policy host resolved to an address
	// the client refuses to connect to (ErrAddressRefused, a kind of
	// ErrPolicyFetch).
	reasonPolicyAddressRefused = "mta-sts-policy-address-refused"

	// reasonDNSExtendedErrorPrefix starts the code of a DNSSEC
	// authentication failure that the resolver reported as an extended
	// DNS error (RFC 8914): the prefix, the info code in decimal, "-" and
	// the code's name with dashes for spaces, e.g.
	// "dns-extended-error-6-dnssec-bogus" (ErrDNS).
	reasonDNSExtendedErrorPrefix = "dns-extended-error-"
)

// reasonPolicyHTTPStatus returns the failure reason code of a policy fetch
// answered with HTTP status code status: reasonPolicyHTTPStatusPrefix
// followed by the code, e.g. "mta-sts-policy-http-status-500".
func reasonPolicyHTTPStatus(status int) string {
	return reasonPolicyHTTPStatusPrefix + strconv.Itoa(status)
}
