package tlsrpt

import (
	"errors"
	"strings"

	"github.com/mtasts-go/mtasts/internal/quoted"
)

// Sentinel errors, one per failure class, for errors.Is.
var (
	// ErrNoRecord means the policy domain has no TLSRPT TXT record: the
	// name does not exist, or none of its TXT records starts with
	// v=TLSRPTv1. RFC 8460 3: the domain does not implement TLSRPT.
	ErrNoRecord = errors.New("tlsrpt: no tlsrpt dns txt record")

	// ErrMultipleRecords means more than one TXT record starts with
	// v=TLSRPTv1. RFC 8460 3: "If the number of resulting records is not
	// one, senders MUST assume the recipient domain does not implement
	// TLSRPT."
	ErrMultipleRecords = errors.New("tlsrpt: multiple tlsrpt dns txt records")

	// ErrDNS means the TXT lookup failed for another reason than the name
	// not existing. The resolver's error stays reachable with errors.As.
	ErrDNS = errors.New("tlsrpt: dns lookup of tlsrpt txt record failed")

	// ErrRecordSyntax means a TXT record starts with v=TLSRPTv1 but does
	// not follow the grammar of RFC 8460 3. The error is a *SyntaxError
	// naming the field.
	ErrRecordSyntax = errors.New("tlsrpt: invalid tlsrpt dns txt record")

	// ErrInvalidReport means a received report is not a valid RFC 8460
	// report: its JSON breaks the schema of RFC 8460 4.4 (the error is
	// then a *ReportError naming the JSON path), or its gzip or MIME
	// transfer encoding is corrupt.
	ErrInvalidReport = errors.New("tlsrpt: invalid report")

	// ErrTooLarge means a received report or message is larger than the
	// reader's bounds (MaxInputSize, MaxReportSize).
	ErrTooLarge = errors.New("tlsrpt: report too large")

	// ErrNoReport means a message holds no TLSRPT report: it is not a
	// multipart/report with report-type "tlsrpt", or has no part of media
	// type application/tlsrpt+json or application/tlsrpt+gzip (RFC 8460
	// 5.3).
	ErrNoReport = errors.New("tlsrpt: no tlsrpt report in message")
)

// SyntaxError describes what is wrong with a TLSRPT TXT record, and where. It
// wraps ErrRecordSyntax.
type SyntaxError struct {
	// Field is the name of the record field at fault ("v", "rua" or an
	// extension), when one is known.
	Field string
	// Msg says what was found and what was expected.
	Msg string
}

// Error returns the message with the field at fault.
func (e *SyntaxError) Error() string {
	var b strings.Builder
	b.WriteString("tlsrpt: invalid txt record")
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(quoted.String(e.Field))
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns ErrRecordSyntax.
func (e *SyntaxError) Unwrap() error { return ErrRecordSyntax }

// ReportError describes what is wrong with the JSON of a report, and where.
// It wraps ErrInvalidReport.
type ReportError struct {
	// Path is the JSON path at fault, e.g.
	// "policies[0].summary.total-failure-session-count"; empty for the
	// document as a whole. A member name other than a short one of
	// printable US-ASCII, as the schema's are, is quoted, bounded and
	// escaped: the names of unknown members are the sender's text.
	Path string
	// Msg says what was found and what was expected.
	Msg string
}

// Error returns the message with the JSON path at fault.
func (e *ReportError) Error() string {
	if e.Path == "" {
		return "tlsrpt: invalid report: " + e.Msg
	}
	return "tlsrpt: invalid report: " + e.Path + ": " + e.Msg
}

// Unwrap returns ErrInvalidReport.
func (e *ReportError) Unwrap() error { return ErrInvalidReport }
