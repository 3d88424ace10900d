package mtasts

import "strconv"

// Failure reason codes of this package, for the "failure-reason-code" field
// of a TLS report (RFC 8460 4.3.3: "A text field to include a TLS-related
// error code or error message"). TLSReportFailureReason returns them. They
// are stable: reports, dashboards and delivery code may compare against
// them. Codes of a record start with "mta-sts-record-", codes of a policy
// fetch with "mta-sts-policy-".
const (
	// ReasonRecordNotFound: no _mta-sts name, or no TXT record there
	// starting with v=STSv1 (ErrNoRecord, RFC 8461 3.1).
	ReasonRecordNotFound = "mta-sts-record-not-found"
	// ReasonRecordMultiple: more than one MTA-STS TXT record
	// (ErrMultipleRecords, RFC 8461 3.1).
	ReasonRecordMultiple = "mta-sts-record-multiple"
	// ReasonRecordDNSError: the TXT lookup failed otherwise (ErrDNS). A
	// DNSSEC failure that the resolver reports as an extended DNS error
	// has a code starting with ReasonDNSExtendedErrorPrefix instead.
	ReasonRecordDNSError = "mta-sts-record-dns-error"
	// ReasonRecordInvalid: the TXT record breaks the grammar of RFC 8461
	// 3.1 (ErrRecordSyntax).
	ReasonRecordInvalid = "mta-sts-record-invalid"

	// ReasonPolicyNotFound: no policy host, or it answered 404
	// (ErrNoPolicy).
	ReasonPolicyNotFound = "mta-sts-policy-not-found"
	// ReasonPolicyFetchError: the fetch failed for a reason no other code
	// names, e.g. a refused connection (ErrPolicyFetch).
	ReasonPolicyFetchError = "mta-sts-policy-fetch-error"
	// ReasonPolicyRedirect: the policy host answered with a redirect,
	// which RFC 8461 3.3 forbids following (ErrPolicyFetch).
	ReasonPolicyRedirect = "mta-sts-policy-redirect"
	// ReasonPolicyFetchTimeout: the fetch timed out (ErrPolicyFetch).
	ReasonPolicyFetchTimeout = "mta-sts-policy-fetch-timeout"
	// ReasonPolicyHTTPStatusPrefix, followed by the status code in
	// decimal, is the code of a status other than 200, 404 and a redirect
	// (ErrPolicyFetch, RFC 8461 3.3), e.g.
	// "mta-sts-policy-http-status-500"; see ReasonPolicyHTTPStatus.
	ReasonPolicyHTTPStatusPrefix = "mta-sts-policy-http-status-"
	// ReasonPolicyCertificateExpired: the policy host's certificate has
	// expired or is not yet valid (ErrPolicyFetch, RFC 8461 3.3).
	ReasonPolicyCertificateExpired = "mta-sts-policy-certificate-expired"
	// ReasonPolicyCertificateHostMismatch: the certificate is not valid
	// for mta-sts.<domain> (ErrPolicyFetch, RFC 8461 3.3).
	ReasonPolicyCertificateHostMismatch = "mta-sts-policy-certificate-host-mismatch"
	// ReasonPolicyCertificateUntrusted: the certificate does not chain to
	// a trusted root (ErrPolicyFetch, RFC 8461 3.3).
	ReasonPolicyCertificateUntrusted = "mta-sts-policy-certificate-untrusted"
	// ReasonPolicyCertificateInvalid: the certificate failed PKIX
	// validation otherwise (ErrPolicyFetch, RFC 8461 3.3).
	ReasonPolicyCertificateInvalid = "mta-sts-policy-certificate-invalid"
	// ReasonPolicyInvalid: the policy breaks the grammar of RFC 8461 3.2
	// (ErrPolicySyntax).
	ReasonPolicyInvalid = "mta-sts-policy-invalid"
	// ReasonPolicyTooLarge: the policy is larger than MaxPolicySize
	// (ErrPolicySyntax, RFC 8461 3.3).
	ReasonPolicyTooLarge = "mta-sts-policy-too-large"
	// ReasonPolicyMediaType: the policy is not served as text/plain
	// (ErrPolicySyntax, RFC 8461 3.2).
	ReasonPolicyMediaType = "mta-sts-policy-media-type"
	// ReasonPolicyAddressRefused: the policy host resolved to an address
	// the client refuses to connect to (ErrAddressRefused, a kind of
	// ErrPolicyFetch).
	ReasonPolicyAddressRefused = "mta-sts-policy-address-refused"

	// ReasonDNSExtendedErrorPrefix starts the code of a DNSSEC
	// authentication failure that the resolver reported as an extended
	// DNS error (RFC 8914): the prefix, the info code in decimal, "-" and
	// the code's name with dashes for spaces, e.g.
	// "dns-extended-error-6-dnssec-bogus" (ErrDNS).
	ReasonDNSExtendedErrorPrefix = "dns-extended-error-"
)

// ReasonPolicyHTTPStatus returns the failure reason code of a policy fetch
// answered with HTTP status code status: ReasonPolicyHTTPStatusPrefix
// followed by the code, e.g. "mta-sts-policy-http-status-500".
func ReasonPolicyHTTPStatus(status int) string {
	return ReasonPolicyHTTPStatusPrefix + strconv.Itoa(status)
}
