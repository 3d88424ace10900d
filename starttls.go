package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Delivery under a policy. RFC 8461 4: a sending MTA that has a policy in
// mode enforce or testing checks that the MX host matches the policy
// (Policy.Matches) and that the MX "supports STARTTLS and offers a
// PKIX-based TLS certificate, during TLS handshake, which is valid for that
// host". MXTLSConfig is the second check; TLSReportResultType and
// TLSReportFailureReason turn its failures into the result types and reason
// codes of a TLS report (RFC 8460 4.3). The SMTP client is the MTA's own.

// MXTLSConfig returns the TLS client configuration for the STARTTLS
// handshake with MX host mx under an MTA-STS policy (RFC 8461 4.2, 7):
//
//   - ServerName is mx.ASCII, the MX host name in A-labels: it is sent as
//     SNI (RFC 8461 7.1: "the SNI extension MUST contain the MX hostname")
//     and checked against the certificate's DNS names (subject alternative
//     names; the subject's common name is not used), as RFC 6125 says:
//     without regard to case, with a wildcard only as the whole left-most
//     label, matching exactly one label (RFC 8461 4.1, 4.2). Give the MX
//     host as the MX record names it, not the name its address records
//     were found under (a CNAME target).
//   - The certificate must chain to one of roots, or to the system's roots
//     when roots is nil, and no certificate of the chain may be expired
//     (RFC 8461 4.2: it "MUST not be expired and MUST chain to a root CA
//     that is trusted by the Sending MTA").
//   - TLS 1.2 at least (RFC 8461 7.2; RFC 8996 deprecates TLS 1.0 and 1.1).
//
// Each call returns a new Config, which the caller may change before the
// handshake; MXTLSConfigFrom starts from the MTA's own instead. A handshake
// under it fails with a *tls.CertificateVerificationError for a
// certificate that is not valid; TLSReportResultType and
// TLSReportFailureReason classify it.
func MXTLSConfig(mx Domain, roots *x509.CertPool) *tls.Config {
	return MXTLSConfigFrom(nil, mx, roots)
}

// MXTLSConfigFrom returns a clone of base, the MTA's own TLS client
// configuration, set for the STARTTLS handshake with MX host mx under an
// MTA-STS policy as MXTLSConfig describes. base itself is not changed; a
// nil base is an empty Config, which gives MXTLSConfig's.
//
// What the checks of RFC 8461 4.2 and 7 need is set: ServerName to
// mx.ASCII, InsecureSkipVerify to false, MinVersion to TLS 1.2 when base
// allows less, and RootCAs to roots unless roots is nil, when base's
// RootCAs (the system's, if nil too) are kept. Every other field is
// base's: client certificates, cipher suites, the clock of Time (which the
// certificate's validity is checked at), a session cache, and
// VerifyPeerCertificate and VerifyConnection, which run as checks of the
// caller's besides. A MaxVersion below TLS 1.2 is kept too, and makes every
// handshake fail.
func MXTLSConfigFrom(base *tls.Config, mx Domain, roots *x509.CertPool) *tls.Config {
	var cfg *tls.Config
	if base == nil {
		cfg = &tls.Config{}
	} else {
		cfg = base.Clone()
	}
	// RFC 8461 7.1: "the SNI extension MUST contain the MX hostname",
	// and RFC 8461 4.2: the certificate must be valid for it.
	cfg.ServerName = mx.ASCII
	// RFC 8461 4.2: the certificate "MUST chain to a root CA that is
	// trusted by the Sending MTA": crypto/tls checks it, and the name,
	// unless told to skip.
	cfg.InsecureSkipVerify = false
	if roots != nil {
		cfg.RootCAs = roots
	}
	// RFC 8461 7.2: "TLS 1.2 or TLS 1.3 or higher".
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

// VerifyMXConnection checks a TLS connection to MX host mx as MXTLSConfig
// makes crypto/tls check it (RFC 8461 4.2): TLS 1.2 at least, and a
// certificate chain that validates to roots (the system's when nil) with a
// DNS-ID matching mx. It is for an SMTP client that must finish the
// handshake whatever the certificate, as one delivering opportunistically or
// under a policy in mode testing does (RFC 8461 5), and checks it after, or
// in tls.Config.VerifyConnection. It returns nil when the connection passes;
// otherwise a *tls.CertificateVerificationError wrapping the x509 error, as
// the handshake under MXTLSConfig would, so that TLSReportResultType and
// TLSReportFailureReason classify both alike; or an error wrapping
// ErrTLSVersion for a version below TLS 1.2, or ErrNoCertificate for a
// connection state without the MX host's certificate, which classify too.
func VerifyMXConnection(cs tls.ConnectionState, mx Domain, roots *x509.CertPool) error {
	host := appendEscaped(nil, mx.ASCII, maxQuoted, 0)
	if cs.Version < tls.VersionTLS12 {
		// RFC 8461 7.2: "TLS 1.2 or TLS 1.3 or higher".
		return fmt.Errorf("%w: %s: %s (RFC 8461 7.2)", ErrTLSVersion, host, tls.VersionName(cs.Version))
	}
	if len(cs.PeerCertificates) == 0 {
		// RFC 8461 4.2: the MX host "offers a PKIX-based TLS
		// certificate".
		return fmt.Errorf("%w: %s: none in the connection state", ErrNoCertificate, host)
	}
	opts := x509.VerifyOptions{DNSName: mx.ASCII, Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	return nil
}

// ErrSTARTTLSNotSupported means an MX host did not offer STARTTLS in its
// EHLO reply, or refused the STARTTLS command (RFC 3207). Under a policy in
// mode enforce the message must not be delivered to that host (RFC 8461 5).
// An MTA's SMTP client wraps it in the error of such a session, e.g.
// fmt.Errorf("%s: %w", mx.ASCII, mtasts.ErrSTARTTLSNotSupported);
// TLSReportResultType then gives ResultSTARTTLSNotSupported (RFC 8460
// 4.3.1). A *STARTTLSError for a reply refusing STARTTLS, or holding
// go-smtp's error for a server that does not offer it, wraps it too.
var ErrSTARTTLSNotSupported = errors.New("mtasts: starttls not supported by mx host")

// ErrTLSVersion means a TLS connection to an MX host was made at a
// version below TLS 1.2, which RFC 8461 7.2 does not allow under a policy:
// VerifyMXConnection returns an error wrapping it. TLSReportResultType
// gives ResultValidationFailure for it and TLSReportFailureReason
// "tls-version-too-old".
var ErrTLSVersion = errors.New("mtasts: tls version below 1.2")

// ErrNoCertificate means a TLS connection to an MX host has no certificate
// of the host to check, as RFC 8461 4.2 asks: VerifyMXConnection returns an
// error wrapping it, e.g. for the state of a connection whose handshake has
// not been made. TLSReportResultType gives ResultCertificateNotTrusted for
// it and TLSReportFailureReason "certificate-missing".
var ErrNoCertificate = errors.New("mtasts: no certificate of the mx host")

// STARTTLSError is the failure of the STARTTLS command, or of the TLS
// handshake that follows it, on an SMTP connection to an MX host. An MTA's
// SMTP client wraps the error of its STARTTLS step in one, so that
// TLSReportResultType and TLSReportFailureReason can tell a failed
// handshake from other failures of a session: certificate failures and TLS
// alerts are recognised without it; a connection closed during the
// handshake, a server that does not answer in TLS or a reply refusing
// STARTTLS only within it.
type STARTTLSError struct {
	// MX is the MX host of the connection, named in the message; it may
	// be zero.
	MX Domain
	// Err is the error of the STARTTLS command or of the handshake: an
	// SMTP reply refusing the command, or an error of crypto/tls.
	//
	// A reply is recognised by its code (RFC 5321 4.2: three digits, the
	// first 2 to 5), whichever SMTP library made the error, when Err holds,
	// however wrapped, one of these:
	//   - a *textproto.Error, as net/smtp returns it;
	//   - a *smtp.SMTPError of github.com/emersion/go-smtp, which has
	//     its code in a field only; it is recognised by its type's
	//     package and name, so that this package need not import go-smtp;
	//   - an error of any other type with a method SMTPReplyCode() int
	//     giving the code: an MTA whose SMTP client has its own error type
	//     adds the method, or wraps the error in a type that has it.
	//
	// go-smtp's error for a server whose EHLO reply does not offer
	// STARTTLS (from NewClientStartTLS, with no type of its own) is
	// recognised by its text.
	Err error
}

// Error names the MX host and the STARTTLS failure.
func (e *STARTTLSError) Error() string {
	s := "mtasts: starttls"
	if e.MX.ASCII != "" {
		s += " with " + string(appendEscaped(nil, e.MX.ASCII, maxCauseText, 0))
	}
	if e.Err != nil {
		s += ": " + causeText(e.Err)
	}
	return s
}

// Unwrap returns Err, and ErrSTARTTLSNotSupported when Err is a reply
// refusing the STARTTLS command or says that the server does not offer it.
func (e *STARTTLSError) Unwrap() []error {
	if refusedReply(e.Err) || notOffered(e.Err) {
		return []error{e.Err, ErrSTARTTLSNotSupported}
	}
	return []error{e.Err}
}

// refusedReply reports whether err holds an SMTP reply, which a STARTTLS
// command gets instead of "220" when the server refuses it (RFC 3207 4:
// e.g. "454 TLS not available due to temporary reason"), in one of the
// shapes STARTTLSError.Err lists.
func refusedReply(err error) bool {
	code, ok := replyCode(err)
	// RFC 5321 4.2: a reply code is three digits, the first of them 2
	// to 5. Any reply other than 220 refuses STARTTLS (RFC 3207 4).
	return ok && code >= 200 && code <= 599
}

// replyCoder is the method by which the error of an SMTP library of the
// user's own gives the code of a reply (see STARTTLSError.Err).
type replyCoder interface {
	SMTPReplyCode() int
}

// goSMTPPath is the package whose error type SMTPError holds a reply's
// code in its field Code.
const goSMTPPath = "github.com/emersion/go-smtp"

// replyCode returns the code of the SMTP reply that err holds, found as
// STARTTLSError.Err describes, and whether it holds one.
func replyCode(err error) (int, bool) {
	var perr *textproto.Error
	if errors.As(err, &perr) {
		return perr.Code, true
	}
	var coder replyCoder
	if errors.As(err, &coder) {
		return coder.SMTPReplyCode(), true
	}
	code, found := 0, false
	walkErrors(err, func(e error) bool {
		code, found = goSMTPCode(e)
		return found
	})
	return code, found
}

// goSMTPCode returns the field Code of e when e is a *smtp.SMTPError of
// go-smtp. Only the type's package and name and the field's kind are
// relied on; go-smtp has had them since its first releases.
func goSMTPCode(e error) (int, bool) {
	t := reflect.TypeOf(e)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct ||
		t.Elem().Name() != "SMTPError" || t.Elem().PkgPath() != goSMTPPath {
		return 0, false
	}
	v := reflect.ValueOf(e)
	if v.IsNil() {
		return 0, false
	}
	f := v.Elem().FieldByName("Code")
	if !f.IsValid() || f.Kind() != reflect.Int {
		return 0, false
	}
	return int(f.Int()), true
}

// goSMTPNotOffered is the text of go-smtp's error from NewClientStartTLS
// for a server whose EHLO reply does not list STARTTLS.
const goSMTPNotOffered = "smtp: server doesn't support STARTTLS"

// errorsNewType is the type of the errors errors.New makes, as go-smtp's
// for a server that does not offer STARTTLS is.
var errorsNewType = reflect.TypeOf(errors.New(""))

// notOffered reports whether err holds go-smtp's error for a server that
// does not offer STARTTLS (RFC 3207 4: the EHLO reply lists STARTTLS when
// the server supports it). Only errors made by errors.New are asked for
// their text.
func notOffered(err error) bool {
	return walkErrors(err, func(e error) bool {
		return reflect.TypeOf(e) == errorsNewType && !reflect.ValueOf(e).IsNil() && e.Error() == goSMTPNotOffered
	})
}

// walkErrors calls f on err and the errors it wraps, depth first, as
// errors.Is visits them, until f returns true; it reports whether f did.
func walkErrors(err error, f func(error) bool) bool {
	for err != nil {
		if f(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if walkErrors(e, f) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// Failure reason codes of failures of STARTTLS with an MX host, for the
// "failure-reason-code" of a TLS report (RFC 8460 4.3: "an error code or
// error text"). TLSReportFailureReason gives them; they are stable, so that
// reports and dashboards may key on them, and docs/delivery.md lists them.
const (
	// reasonSTARTTLSNotOffered: the EHLO reply did not list STARTTLS
	// (ErrSTARTTLSNotSupported).
	reasonSTARTTLSNotOffered = "starttls-not-offered"
	// reasonSTARTTLSRefused: the STARTTLS command got a reply other
	// than 220 (a *STARTTLSError holding a reply, as STARTTLSError.Err
	// describes).
	reasonSTARTTLSRefused = "starttls-refused"
	// reasonCertificateHostMismatch: no DNS name of the certificate
	// matches the MX host (x509.HostnameError).
	reasonCertificateHostMismatch = "certificate-host-mismatch"
	// reasonCertificateExpired: a certificate of the chain has expired
	// (x509.Expired).
	reasonCertificateExpired = "certificate-expired"
	// reasonCertificateNotYetValid: a certificate of the chain is not
	// valid yet (x509.Expired, for a time before its NotBefore).
	reasonCertificateNotYetValid = "certificate-not-yet-valid"
	// reasonCertificateUnknownAuthority: the chain does not end at a
	// trusted root (x509.UnknownAuthorityError, x509.SystemRootsError).
	reasonCertificateUnknownAuthority = "certificate-unknown-authority"
	// reasonCertificateNameConstraints: a CA of the chain may not issue
	// for the name (x509.CANotAuthorizedForThisName and the other name
	// constraint failures).
	reasonCertificateNameConstraints = "certificate-name-constraints"
	// reasonCertificateChain: the chain is broken otherwise: an issuer
	// that is not a CA, too many intermediates, an issuer name that does
	// not match, no valid chain.
	reasonCertificateChain = "certificate-chain-invalid"
	// reasonCertificateUsage: the certificate is not for TLS servers (its
	// extended key usage; x509.IncompatibleUsage).
	reasonCertificateUsage = "certificate-incompatible-usage"
	// reasonCertificateInvalid: another certificate failure, e.g. an
	// unhandled critical extension.
	reasonCertificateInvalid = "certificate-invalid"
	// reasonTLSAlertPrefix starts the reason code of a TLS alert received
	// from the MX host (RFC 8446 6), followed by the alert's number and,
	// when known, its name in lower case with hyphens, e.g.
	// "tls-alert-70-protocol-version-not-supported".
	reasonTLSAlertPrefix = "tls-alert-"
	// reasonTLSConnectionClosed: the MX host closed or reset the
	// connection during the handshake.
	reasonTLSConnectionClosed = "tls-connection-closed"
	// reasonNotTLS: the MX host did not answer in TLS after its "220" to
	// STARTTLS (tls.RecordHeaderError).
	reasonNotTLS = "tls-not-spoken"
	// reasonTLSVersion: the connection was made at a version below TLS
	// 1.2 (ErrTLSVersion).
	reasonTLSVersion = "tls-version-too-old"
	// reasonCertificateMissing: the connection has no certificate of the
	// MX host (ErrNoCertificate).
	reasonCertificateMissing = "certificate-missing"
	// reasonTLSHandshake: another failure of the handshake.
	reasonTLSHandshake = "tls-handshake-failed"
)

// starttlsFailure returns the result type and reason code of a failure of
// STARTTLS with an MX host, or "", "" when err is not one or is transient.
// Errors of policy discovery and fetching (wrapping a sentinel of theirs)
// are not asked about.
func starttlsFailure(err error) (result ResultType, reason string) {
	if errors.Is(err, ErrSTARTTLSNotSupported) {
		if refusedReply(err) {
			return ResultSTARTTLSNotSupported, reasonSTARTTLSRefused
		}
		return ResultSTARTTLSNotSupported, reasonSTARTTLSNotOffered
	}
	switch {
	case errors.Is(err, ErrTLSVersion):
		// RFC 8460 4.3.1 has no type for the protocol version, so it is
		// a "validation-failure" (4.3.3: "a negotiation failure [that]
		// cannot be categorized" otherwise), as the alert is that a
		// handshake under MXTLSConfig ends with at such an MX host.
		return ResultValidationFailure, reasonTLSVersion
	case errors.Is(err, ErrNoCertificate):
		// RFC 8461 4.2: the certificate "MUST chain to a root CA that is
		// trusted"; with none there is no chain to trust. RFC 8460
		// 4.3.1's "certificate-not-trusted" covers "certificate chain
		// errors, etc.", and tells the receiver that what failed is the
		// certificate, not the negotiation; the reason code says how.
		return ResultCertificateNotTrusted, reasonCertificateMissing
	}
	if result, reason = certificateFailure(err); result != "" {
		return result, reason
	}
	if code, ok := tlsAlert(err); ok {
		// RFC 8460 4.3.3: a failure not of the categories of 4.3.1 is a
		// validation-failure, with a reason code "to give some feedback".
		return ResultValidationFailure, alertReason(code)
	}
	var serr *STARTTLSError
	if !errors.As(err, &serr) || transient(err) {
		// RFC 8460 4.3.4: "Transient errors due to too-busy networks,
		// TCP timeouts, etc., are not required to be reported."
		return "", ""
	}
	var rerr tls.RecordHeaderError
	switch {
	case errors.As(err, &rerr):
		return ResultValidationFailure, reasonNotTLS
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return ResultValidationFailure, reasonTLSConnectionClosed
	}
	return ResultValidationFailure, reasonTLSHandshake
}

// transient reports whether err is a timeout, the end of the caller's
// context, or the sender's own closing of the connection (net.ErrClosed),
// as when it gives up at the end of its context.
func transient(err error) bool {
	var nerr net.Error
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &nerr) && nerr.Timeout()
}

// certificateFailure classifies a PKIX validation failure of an MX host's
// certificate (RFC 8461 4.2) into a result type of RFC 8460 4.3.1 and a
// reason code; "", "" when err is not one.
func certificateFailure(err error) (result ResultType, reason string) {
	var (
		herr x509.HostnameError
		uerr x509.UnknownAuthorityError
		rerr x509.SystemRootsError
		cerr x509.CertificateInvalidError
		verr *tls.CertificateVerificationError
		xerr x509.UnhandledCriticalExtension
		kerr x509.ConstraintViolationError
	)
	switch {
	case errors.As(err, &herr):
		return ResultCertificateHostMismatch, reasonCertificateHostMismatch
	case errors.As(err, &uerr), errors.As(err, &rerr):
		return ResultCertificateNotTrusted, reasonCertificateUnknownAuthority
	case errors.As(err, &cerr):
		return invalidCertificate(cerr)
	case errors.As(err, &verr), errors.As(err, &xerr), errors.As(err, &kerr):
		return ResultValidationFailure, reasonCertificateInvalid
	}
	return "", ""
}

// invalidCertificate classifies an x509.CertificateInvalidError.
func invalidCertificate(cerr x509.CertificateInvalidError) (result ResultType, reason string) {
	switch cerr.Reason {
	case x509.Expired:
		// x509 says Expired for a certificate outside its validity
		// period at either end. Which end it was is judged at the time
		// of the call, close to that of the handshake.
		if c := cerr.Cert; c != nil && time.Now().Before(c.NotBefore) {
			return ResultValidationFailure, reasonCertificateNotYetValid
		}
		return ResultCertificateExpired, reasonCertificateExpired
	case x509.CANotAuthorizedForThisName, x509.NameConstraintsWithoutSANs, x509.UnconstrainedName, x509.TooManyConstraints:
		// RFC 8460 4.3.1: certificate-not-trusted covers "certificate
		// name constraints".
		return ResultCertificateNotTrusted, reasonCertificateNameConstraints
	case x509.NotAuthorizedToSign, x509.TooManyIntermediates, x509.NameMismatch, x509.NoValidChains, x509.CANotAuthorizedForExtKeyUsage:
		// ... and "certificate chain errors".
		return ResultCertificateNotTrusted, reasonCertificateChain
	case x509.IncompatibleUsage:
		return ResultValidationFailure, reasonCertificateUsage
	}
	return ResultValidationFailure, reasonCertificateInvalid
}

// tlsAlert returns the TLS alert found in err: a tls.AlertError, or the
// alert crypto/tls reports receiving from the peer, as a *net.OpError with
// Op "remote error" whose Err is of its unexported alert type, a uint8.
func tlsAlert(err error) (uint8, bool) {
	var aerr tls.AlertError
	if errors.As(err, &aerr) {
		return uint8(aerr), true
	}
	var oerr *net.OpError
	if errors.As(err, &oerr) && oerr.Op == "remote error" && oerr.Err != nil {
		v := reflect.ValueOf(oerr.Err)
		if v.Kind() == reflect.Uint8 && v.Type().PkgPath() == "crypto/tls" {
			return uint8(v.Uint()), true
		}
	}
	return 0, false
}

// alertReason returns the reason code of a TLS alert: reasonTLSAlertPrefix,
// the alert's number, and the name crypto/tls gives it in lower case with
// hyphens, when it knows one.
func alertReason(code uint8) string {
	b := strconv.AppendUint([]byte(reasonTLSAlertPrefix), uint64(code), 10)
	// "tls: handshake failure"; "tls: alert(251)" for an unknown one.
	name, ok := strings.CutPrefix(tls.AlertError(code).Error(), "tls: ")
	if !ok || name == "" || strings.HasPrefix(name, "alert(") {
		return string(b)
	}
	b = append(b, '-')
	for i := range len(name) {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b = append(b, c)
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		case b[len(b)-1] != '-':
			b = append(b, '-')
		}
	}
	if b[len(b)-1] == '-' {
		b = b[:len(b)-1]
	}
	return string(b)
}
