package mtasts

// ResultType is the "result-type" of a failed session in a TLS report (RFC
// 8460 4.3), one of those registered in the "STARTTLS Validation Result
// Types" registry (RFC 8460 6.6). TLSReportResultType gives it for an error
// of this package; the tlsrpt subpackage's reports carry it.
type ResultType string

// Negotiation failures, RFC 8460 4.3.1, and the general failure of 4.3.3.
// TLSReportResultType gives them for failures of STARTTLS with an MX host.
const (
	// ResultSTARTTLSNotSupported: "the recipient MX did not support
	// STARTTLS".
	ResultSTARTTLSNotSupported ResultType = "starttls-not-supported"
	// ResultCertificateHostMismatch: the certificate "did not adhere to
	// the constraints specified in the MTA-STS or DANE policy, e.g., if the
	// MX hostname does not match any identities listed in the subject
	// alternative name (SAN)".
	ResultCertificateHostMismatch ResultType = "certificate-host-mismatch"
	// ResultCertificateExpired: "the certificate has expired".
	ResultCertificateExpired ResultType = "certificate-expired"
	// ResultCertificateNotTrusted covers "untrusted/unknown certification
	// authorities (CAs), certificate name constraints, certificate chain
	// errors, etc."; the failure reason code says which.
	ResultCertificateNotTrusted ResultType = "certificate-not-trusted"
	// ResultValidationFailure is "a general failure for a reason not
	// matching a category above"; the failure reason code says which.
	ResultValidationFailure ResultType = "validation-failure"
)

// DANE-specific policy failures, RFC 8460 4.3.2.1. This package does not
// do DANE; a sender that does reports its failures with these.
const (
	// ResultTLSAInvalid: "None of the records in the RRset were found to
	// be valid."
	ResultTLSAInvalid ResultType = "tlsa-invalid"
	// ResultDNSSECInvalid: "no valid records were returned from the
	// recursive resolver".
	ResultDNSSECInvalid ResultType = "dnssec-invalid"
	// ResultDANERequired: DANE is required for the destination, but the MX
	// host had no DNSSEC-validated TLSA records.
	ResultDANERequired ResultType = "dane-required"
)

// MTA-STS-specific policy failures, RFC 8460 4.3.2.2. TLSReportResultType
// gives them for failures to discover or fetch a policy.
const (
	// ResultSTSPolicyFetchError: "a failure to retrieve an MTA-STS
	// policy, for example, because the policy host is unreachable".
	ResultSTSPolicyFetchError ResultType = "sts-policy-fetch-error"
	// ResultSTSPolicyInvalid: "a validation error for the overall MTA-STS
	// Policy".
	ResultSTSPolicyInvalid ResultType = "sts-policy-invalid"
	// ResultSTSWebPKIInvalid: "the MTA-STS Policy could not be
	// authenticated using PKIX validation".
	ResultSTSWebPKIInvalid ResultType = "sts-webpki-invalid"
)
