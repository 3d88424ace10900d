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
	// then a *SyntaxError naming the JSON path), or its gzip or MIME
	// transfer encoding is corrupt.
	ErrInvalidReport = errors.New("tlsrpt: invalid report")

	// ErrTooLarge means a received report or message is larger than the
	// reader's bounds (see ReadReport).
	ErrTooLarge = errors.New("tlsrpt: report too large")

	// ErrNoReport means a message holds no TLSRPT report: it is not a
	// multipart/report with report-type "tlsrpt", or has no part of media
	// type application/tlsrpt+json or application/tlsrpt+gzip (RFC 8460
	// 5.3).
	ErrNoReport = errors.New("tlsrpt: no tlsrpt report in message")
)

// SyntaxError describes what is wrong with a TLSRPT TXT record or a report,
// and where, as mtasts.SyntaxError does for MTA-STS. It wraps
// ErrRecordSyntax or ErrInvalidReport.
type SyntaxError struct {
	// Kind is ErrRecordSyntax (a TXT record) or ErrInvalidReport (a
	// report); Unwrap returns it.
	Kind error
	// Field is where the fault is, when that is known. In a TXT record, it
	// is the name of the field ("v", "rua" or an extension). In a report,
	// it is the JSON path, e.g.
	// "policies[0].summary.total-failure-session-count", or empty for the
	// document as a whole; a member name other than a short one of
	// printable US-ASCII, as the schema's are, is quoted, bounded and
	// escaped, since the names of unknown members are the sender's text.
	Field string
	// Msg says what was found and what was expected.
	Msg string
}

// Error returns the message with the field or JSON path at fault.
func (e *SyntaxError) Error() string {
	var b strings.Builder
	if e.Kind == ErrRecordSyntax {
		b.WriteString("tlsrpt: invalid txt record")
		if e.Field != "" {
			b.WriteString(": ")
			b.WriteString(quoted.String(e.Field))
		}
	} else {
		b.WriteString("tlsrpt: invalid report")
		if e.Field != "" {
			b.WriteString(": ")
			b.WriteString(e.Field)
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns Kind.
func (e *SyntaxError) Unwrap() error { return e.Kind }
