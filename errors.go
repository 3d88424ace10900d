package mtasts

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mjl-/adns"
)

// Sentinel errors, one per failure class. Every error returned by this
// package wraps exactly one of them, so delivery code and TLS reports can tell
// the classes apart with errors.Is, however deep the wrapping. One failure
// has a sentinel of its own besides its class: ErrAddressRefused, a kind of
// ErrPolicyFetch.
var (
	// ErrNoRecord means the policy domain has no MTA-STS TXT record: the
	// name does not exist, or none of its TXT records starts with v=STSv1.
	// RFC 8461 3.1: the domain has no available policy.
	ErrNoRecord = errors.New("mtasts: no mta-sts dns txt record")

	// ErrMultipleRecords means more than one MTA-STS TXT record was found.
	// RFC 8461 3.1: "If the number of resulting records is not one", the
	// domain has no available policy.
	ErrMultipleRecords = errors.New("mtasts: multiple mta-sts dns txt records")

	// ErrDNS means the TXT lookup failed for another reason than the name
	// not existing: a server failure, a timeout, a DNSSEC failure. The
	// resolver's error (an *adns.DNSError, adns.ExtendedError, ...) stays
	// reachable with errors.As.
	ErrDNS = errors.New("mtasts: dns lookup of mta-sts txt record failed")

	// ErrRecordSyntax means the MTA-STS TXT record does not follow the
	// grammar of RFC 8461 3.1. The error is a *SyntaxError naming the field.
	ErrRecordSyntax = errors.New("mtasts: invalid mta-sts dns txt record")

	// ErrNoPolicy means the policy host mta-sts.<domain> does not exist or
	// answered 404 Not Found.
	ErrNoPolicy = errors.New("mtasts: no mta-sts policy served")

	// ErrPolicyFetch means the HTTPS fetch of the policy failed: connection,
	// TLS (PKIX) validation, a redirect, a status other than 200, a timeout.
	ErrPolicyFetch = errors.New("mtasts: fetching mta-sts policy failed")

	// ErrPolicySyntax means a policy was received but is not a valid policy
	// resource: it breaks the grammar of RFC 8461 3.2, is larger than
	// MaxPolicySize, or is not served as text/plain.
	ErrPolicySyntax = errors.New("mtasts: invalid mta-sts policy")

	// ErrInvalidDomain means a domain name is not a valid host name: given
	// to ParseDomain, or a Domain built by hand and refused by
	// LookupRecord, FetchPolicy and Get before any DNS or network use (see
	// Domain.Validate). It is a fault of the caller's input, not of the
	// domain's policy: TLSReportResultType and TLSReportFailureReason
	// return "" for it.
	ErrInvalidDomain = errors.New("mtasts: invalid domain name")
)

// SyntaxError describes what is wrong with a TXT record or a policy, and
// where. It wraps ErrRecordSyntax or ErrPolicySyntax.
type SyntaxError struct {
	// Kind is ErrRecordSyntax or ErrPolicySyntax; Unwrap returns it.
	Kind error
	// Line is the 1-based line of a policy at fault; 0 for a TXT record, and
	// for a policy-wide problem such as a missing key.
	Line int
	// Field is the record field or policy key at fault, when one is known.
	Field string
	// Msg says what was found and what was expected.
	Msg string
}

// Error returns the message with the line, key and value at fault.
func (e *SyntaxError) Error() string {
	var b strings.Builder
	if e.Kind == ErrRecordSyntax {
		b.WriteString("mtasts: invalid txt record")
	} else {
		b.WriteString("mtasts: invalid policy")
	}
	if e.Line > 0 {
		b.WriteString(": line ")
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(quote(e.Field))
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the sentinel of the failure class.
func (e *SyntaxError) Unwrap() error { return e.Kind }

// reasonError ties a failure to its sentinel, a TLS-RPT failure reason code
// and the underlying cause, all three reachable through errors.Is and
// errors.As.
type reasonError struct {
	kind   error  // one of the sentinels
	reason string // TLS-RPT failure-reason-code, RFC 8460 4.3.3
	msg    string // what happened, for people
	cause  error  // may be nil
}

func (e *reasonError) Error() string {
	s := e.kind.Error() + ": " + e.msg
	if e.cause != nil {
		s += ": " + causeText(e.cause)
	}
	return s
}

func (e *reasonError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func newError(kind error, reason string, cause error, format string, args ...any) error {
	return &reasonError{kind: kind, reason: reason, msg: fmt.Sprintf(format, args...), cause: cause}
}

// statusError adds the HTTP status of the response that a fetch received to
// its error, for HTTPStatus; the message is the error's.
type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// HTTPStatus returns the HTTP status code of the response that a failed
// policy fetch received: FetchPolicy's, Get's or a Client's, also within a
// cache's Result.Err. A status other than 200, 404 and a redirect is also in
// the TLS-RPT failure reason ("mta-sts-policy-http-status-500"); a 200 with a
// policy that was refused gives 200. It returns 0 when err holds no status:
// for nil (a fetch that succeeded got 200, the only status accepted), and
// for a failure before any response, such as a refused connection, a
// certificate not valid or a timeout waiting for the headers.
func HTTPStatus(err error) int {
	var se *statusError
	if errors.As(err, &se) {
		return se.status
	}
	return 0
}

// TLSReportFailureReason returns a short, dash-separated code describing err,
// for the "failure-reason-code" field of a TLS report (RFC 8460 4.3.3). The
// codes are stable, so reports, dashboards and delivery code may compare
// against them; docs/delivery.md lists each with its meaning.
//
// A DNSSEC authentication failure that adns reports as an extended DNS error
// (RFC 8914) gives "dns-extended-error-<code>-<name>", e.g.
// "dns-extended-error-6-dnssec-bogus". Other errors of policy discovery and
// fetching give a code for their class, refined where known, e.g.
// "mta-sts-policy-http-status-500", "mta-sts-policy-certificate-expired" or
// "mta-sts-policy-address-refused". A failure of STARTTLS with an MX host
// gives a code such as "starttls-not-offered",
// "certificate-unknown-authority", or "tls-alert-" followed by the alert
// (e.g. "tls-alert-80-internal-error"), as TLSReportResultType describes.
// It returns "" for nil, for transient failures and for errors it does not
// know.
func TLSReportFailureReason(err error) string {
	if err == nil {
		return ""
	}
	var code adns.ErrorCode
	if errors.As(err, &code) && code.IsAuthentication() {
		return reasonDNSExtendedErrorPrefix + strconv.Itoa(int(code)) + "-" + strings.ReplaceAll(code.String(), " ", "-")
	}
	var re *reasonError
	if errors.As(err, &re) {
		return re.reason
	}
	switch {
	case errors.Is(err, ErrRecordSyntax):
		return reasonRecordInvalid
	case errors.Is(err, ErrPolicySyntax):
		return reasonPolicyInvalid
	case errors.Is(err, ErrNoRecord):
		return reasonRecordNotFound
	case errors.Is(err, ErrMultipleRecords):
		return reasonRecordMultiple
	case errors.Is(err, ErrDNS):
		return reasonRecordDNSError
	case errors.Is(err, ErrNoPolicy):
		return reasonPolicyNotFound
	case errors.Is(err, ErrAddressRefused):
		return reasonPolicyAddressRefused
	case errors.Is(err, ErrPolicyFetch):
		return reasonPolicyFetchError
	}
	_, reason := starttlsFailure(err)
	return reason
}

// TLSReportResultType returns the RFC 8460 4.3 result type of a failure.
//
// For a failure to discover or fetch a policy (RFC 8460 4.3.2.2):
// ResultSTSWebPKIInvalid when the policy host's certificate failed PKIX
// validation, ResultSTSPolicyInvalid for an invalid or ambiguous record or
// policy (ErrRecordSyntax, ErrMultipleRecords, ErrPolicySyntax), and
// ResultSTSPolicyFetchError for the other failures of this package (DNS
// failures, missing record or policy, HTTP failures, a refused policy host
// address).
//
// For a failure of STARTTLS with an MX host (RFC 8460 4.3.1, 4.3.3):
//
//   - ResultSTARTTLSNotSupported for an error wrapping
//     ErrSTARTTLSNotSupported, and for a *STARTTLSError holding a reply
//     refusing the command;
//   - for a certificate that failed validation under MXTLSConfig (an x509
//     error, alone or in a *tls.CertificateVerificationError):
//     ResultCertificateHostMismatch (x509.HostnameError),
//     ResultCertificateExpired, ResultCertificateNotTrusted (unknown
//     authority, name constraints, chain errors), and
//     ResultValidationFailure for the rest, such as a certificate not
//     valid yet or not for TLS servers;
//   - for the errors of VerifyMXConnection that are not of the
//     certificate's validation: ResultValidationFailure for ErrTLSVersion
//     and ResultCertificateNotTrusted for ErrNoCertificate;
//   - ResultValidationFailure for a TLS alert received from the MX host,
//     and for other failures of the handshake in a *STARTTLSError;
//   - "" for a timeout, a canceled context or a connection the sender
//     closed itself (net.ErrClosed) within a *STARTTLSError:
//     transient failures, which RFC 8460 4.3.4 does not require to be
//     reported.
//
// A certificate failure counts as the policy host's only within an error
// of FetchPolicy (wrapping ErrPolicyFetch), and as an MX host's otherwise.
// TLSReportResultType returns "" for nil and for errors it does not know,
// e.g. a connection refused before any SMTP was spoken.
//
// Whether a failure is worth reporting at all is the caller's decision: a
// domain without a record and without a cached policy simply has no policy,
// and STARTTLS failures are reportable only under a policy whose mode is
// not none (RFC 8461 6).
func TLSReportResultType(err error) ResultType {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrPolicyFetch) && isCertificateError(err):
		return ResultSTSWebPKIInvalid
	case errors.Is(err, ErrRecordSyntax), errors.Is(err, ErrMultipleRecords), errors.Is(err, ErrPolicySyntax):
		return ResultSTSPolicyInvalid
	case errors.Is(err, ErrNoRecord), errors.Is(err, ErrDNS), errors.Is(err, ErrNoPolicy), errors.Is(err, ErrPolicyFetch):
		return ResultSTSPolicyFetchError
	case errors.Is(err, ErrAddressRefused):
		return ResultSTSPolicyFetchError
	}
	result, _ := starttlsFailure(err)
	return result
}

// isCertificateError reports whether err comes from PKIX validation of a
// server certificate.
func isCertificateError(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		herr x509.HostnameError
		uerr x509.UnknownAuthorityError
		cerr x509.CertificateInvalidError
	)
	return errors.As(err, &verr) || errors.As(err, &herr) || errors.As(err, &uerr) || errors.As(err, &cerr)
}

// certificateReason refines a PKIX validation failure into a reason code.
func certificateReason(err error) string {
	var (
		herr x509.HostnameError
		uerr x509.UnknownAuthorityError
		cerr x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &herr):
		return reasonPolicyCertificateHostMismatch
	case errors.As(err, &uerr):
		return reasonPolicyCertificateUntrusted
	case errors.As(err, &cerr) && cerr.Reason == x509.Expired:
		return reasonPolicyCertificateExpired
	}
	return reasonPolicyCertificateInvalid
}
