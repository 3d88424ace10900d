package tlsrpt

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"mime/quotedprintable"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/quoted"
)

// The header fields of RFC 8460 5.3 and 6.1, which every report message
// carries.
const (
	// HeaderReportDomain is "TLS-Report-Domain: Receiver-Domain", the
	// policy domain the report is about.
	HeaderReportDomain = "TLS-Report-Domain"
	// HeaderReportSubmitter is "TLS-Report-Submitter: Sender-Domain", the
	// domain of the report's contact-info.
	HeaderReportSubmitter = "TLS-Report-Submitter"
)

// A report sent by e-mail must reach its rua address even when that
// address's own MTA-STS or DANE fails: RFC 8460 3, "When sending failure
// reports via SMTP, Sending MTAs MUST deliver reports despite any
// TLS-related failures and SHOULD NOT include this SMTP session in the next
// report", and 5.3, "Sending MTAs MUST NOT honor MTA-STS or DANE TLSA
// failures". Otherwise a domain whose TLS is broken, the very domain a report
// is for, would never hear of it; and a report's own delivery, recorded,
// would make a report of its own the next day, and so on.
//
// The MTA tells a report by the mark on the context passed to
// SenderOptions.Submit (IsReportSubmission), set by this package alone,
// which cannot be forged; it keeps the mark with the queued message. The
// message itself carries the headers TLS-Report-Domain and
// TLS-Report-Submitter and the media type multipart/report;
// report-type="tlsrpt", which anyone can write: an MTA that trusted them on
// mail that users or other hosts submit would let them keep their own
// sessions out of the reports.
//
// The message also carries "TLS-Required: No" (RFC 8689 3), the standard
// request of a message's sender that MTAs deliver it despite MTA-STS or
// DANE failures. It says so to every MTA the report passes through, a
// smarthost or a relay of the rua domain, not only to this one. Any sender
// may make that request for its own message, so an MTA that honours it does
// so on any message; the mark remains what tells this MTA not to record the
// session (RFC 8460 3), and to deliver without enforcing even when it does
// not implement RFC 8689.

type reportSubmissionKey struct{}

// withReportSubmission returns ctx marked as that of a report's submission.
func withReportSubmission(ctx context.Context) context.Context {
	return context.WithValue(ctx, reportSubmissionKey{}, true)
}

// IsReportSubmission reports whether ctx is, or derives from, the context a
// Sender passes to SenderOptions.Submit with a report message. The MTA then
// delivers the message without enforcing MTA-STS or DANE (RFC 8460 5.3:
// "Sending MTAs MUST NOT honor MTA-STS or DANE TLSA failures"), trying
// STARTTLS but going on without it if it fails (RFC 8460 3: "This may mean
// that the reports are delivered unencrypted"), and does not record the
// session's TLS outcome with a Recorder (RFC 8460 3: it "SHOULD NOT include
// this SMTP session in the next report"), so that reports never breed
// reports. An MTA that queues the message keeps this mark with it until it
// is delivered.
func IsReportSubmission(ctx context.Context) bool {
	v, _ := ctx.Value(reportSubmissionKey{}).(bool)
	return v
}

// parseMailto returns the address of a mailto rua URI (RFC 8460 3, RFC
// 6068), percent-decoded, with its domain in A-labels. The URI's header
// fields ("?subject=...") are ignored: a TLSRPT record names where reports
// go, not what their messages say. One address is taken, with a host name
// as its domain (U-labels are turned into A-labels) and an ASCII local
// part, so that the message needs no SMTPUTF8, or with smtputf8 a local part
// of UTF-8 (RFC 6531 3.3); errors wrap ErrPermanent and say which rule
// failed.
func parseMailto(uri string, smtputf8 bool) (string, error) {
	scheme, rest, _ := strings.Cut(uri, ":")
	if !strings.EqualFold(scheme, "mailto") {
		return "", fmt.Errorf("%w: %s is not a mailto URI", ErrPermanent, quoted.String(uri))
	}
	// RFC 6068 2: mailtoURI = "mailto:" [ to ] [ hfields ].
	to, _, _ := strings.Cut(rest, "?")
	to, _, _ = strings.Cut(to, "#")
	addr, err := url.PathUnescape(to)
	if err != nil {
		return "", fmt.Errorf("%w: mailto URI %s: invalid percent-encoding: %w", ErrPermanent, quoted.String(uri), quoted.Cause(err))
	}
	switch {
	case addr == "":
		return "", fmt.Errorf("%w: mailto URI %s has no address", ErrPermanent, quoted.String(uri))
	case strings.Contains(addr, ","):
		// RFC 6068 2: to = addr-spec *("," addr-spec). A record lists
		// its addresses as rua URIs of one address each.
		return "", fmt.Errorf("%w: mailto URI %s has several addresses, expected one per rua URI", ErrPermanent, quoted.String(uri))
	}
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("%w: mailto URI %s: control character %q in the address", ErrPermanent, quoted.String(uri), c)
		}
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || strings.ContainsAny(addr, "<>") {
		return "", fmt.Errorf("%w: mailto URI %s: %s is not an addr-spec (RFC 5322 3.4.1)", ErrPermanent, quoted.String(uri), quoted.String(addr))
	}
	at := strings.LastIndexByte(a.Address, '@')
	local := a.Address[:at]
	for i := 0; i < len(local); i++ {
		switch {
		case local[i] < utf8.RuneSelf:
		case !smtputf8:
			return "", fmt.Errorf("%w: mailto URI %s: non-ASCII local part, which needs SMTPUTF8 (not enabled: SenderOptions.SMTPUTF8)", ErrPermanent, quoted.String(uri))
		case !utf8.ValidString(local):
			// RFC 6531 3.3: Local-part = Dot-string / Quoted-string,
			// their characters extended by UTF8-non-ascii (RFC 6532 3.1).
			return "", fmt.Errorf("%w: mailto URI %s: the local part is not UTF-8", ErrPermanent, quoted.String(uri))
		}
	}
	domain, err := mtasts.ParseDomain(a.Address[at+1:])
	if err != nil {
		return "", fmt.Errorf("%w: mailto URI %s: the domain is not a host name: %w", ErrPermanent, quoted.String(uri), err)
	}
	return a.Address[:at+1] + domain.ASCII, nil
}

// parseFrom parses the From address of report messages, an address with an
// optional display name, and returns it with its addr-spec, the envelope
// sender.
func parseFrom(from string) (*mail.Address, error) {
	a, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: From address %s: %w", quoted.String(from), quoted.Cause(err))
	}
	for i := 0; i < len(a.Address); i++ {
		if c := a.Address[i]; c < 0x21 || c >= 0x7f {
			return nil, fmt.Errorf("tlsrpt: From address %s: expected an ASCII addr-spec", quoted.String(from))
		}
	}
	return a, nil
}

// A Message is a report message of RFC 8460 5.3, as a Sender composes it
// and SenderOptions.Submit takes it: the bytes, and the parts an MTA queues
// the message by, so that it need not parse them back out of the header.
type Message struct {
	// From is the envelope sender: the addr-spec of the From field.
	From string
	// To are the envelope recipients, the addresses of the To field:
	// addr-specs with their domain in A-labels.
	To []string
	// ReportID is the report-id of the report (RFC 8460 4.4), from which
	// the Subject's Report-ID derives.
	ReportID string
	// MessageID is the Message-ID field, with its angle brackets.
	MessageID string
	// PolicyDomain is the domain the report is about, the value of
	// TLS-Report-Domain.
	PolicyDomain mtasts.Domain
	// Submitter is the domain of the report's contact-info, the value of
	// TLS-Report-Submitter: the reporting domain, whose DKIM signature the
	// message must carry (RFC 8460 3).
	Submitter mtasts.Domain
	// Subject is the Subject field (RFC 8460 5.3), unfolded.
	Subject string
	// SMTPUTF8 is set when an address of To has a non-ASCII local part:
	// the message then needs the SMTPUTF8 extension (RFC 6531) and has
	// UTF-8 in its header (RFC 6532). Otherwise it is 7-bit throughout.
	SMTPUTF8 bool
	// Data is the whole message, header and body, with lines ended by
	// CRLF.
	Data []byte
}

// composeMessage returns the e-mail message of RFC 8460 5.3 that sends p to
// the addresses to, from the address from, dated date: the header fields
// From, To, Date, Message-ID and the Subject of 5.3, TLS-Report-Domain and
// TLS-Report-Submitter, Auto-Submitted (RFC 3834: no automatic replies),
// TLS-Required: No (RFC 8689 3: deliver despite MTA-STS or DANE failures),
// and a body of media type multipart/report; report-type="tlsrpt" with a
// human-readable text/plain part and the application/tlsrpt+gzip report,
// base64-encoded, named p.Filename (5.1). Lines end in CRLF and are 7-bit,
// but for the To field when an address needs SMTPUTF8 (Message.SMTPUTF8),
// and at most 78 characters long but for the one with the file name, which
// is kept whole rather than split by RFC 2231 continuations that simple
// readers of reports may not know.
//
// from may have a display name ("TLS reports <tlsrpt@example.com>"); to are
// addr-specs. The message is not signed: RFC 8460 3 requires a DKIM
// signature by the reporting domain, without the "l=" tag, and 5.3 that it
// cover TLS-Report-Domain and TLS-Report-Submitter; the MTA signs it as it
// signs its other mail.
//
// It returns an error when from is not an ASCII e-mail address, when to is
// empty, or when an address of to is not an addr-spec.
func composeMessage(p *payload, from string, to []string, date time.Time) (*Message, error) {
	fromAddr, err := parseFrom(from)
	if err != nil {
		return nil, err
	}
	if len(to) == 0 {
		return nil, errors.New("tlsrpt: no To address")
	}
	m := &Message{
		From:         fromAddr.Address,
		To:           slices.Clone(to),
		ReportID:     p.Report.ReportID,
		MessageID:    "<" + randomID() + "@" + p.Submitter.ASCII + ">",
		PolicyDomain: p.PolicyDomain,
		Submitter:    p.Submitter,
		Subject:      strings.ReplaceAll(reportSubject(p), "\r\n", ""),
	}
	for _, addr := range to {
		utf8Local, err := checkTo(addr)
		if err != nil {
			return nil, err
		}
		m.SMTPUTF8 = m.SMTPUTF8 || utf8Local
	}
	boundary := "tlsrpt-" + randomID()
	var b bytes.Buffer
	header := func(name, value string) {
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	header("From", fromAddr.String())
	// RFC 5322 3.6.3: to = "To:" address-list CRLF; one address a line.
	header("To", strings.Join(m.To, ",\r\n\t"))
	header("Date", date.Format(time.RFC1123Z)) // RFC 5322 3.3
	header("Message-ID", m.MessageID)
	header("Subject", reportSubject(p))
	// RFC 8460 5.3: "These message header fields MUST be included".
	header(HeaderReportDomain, p.PolicyDomain.ASCII)
	header(HeaderReportSubmitter, p.Submitter.ASCII)
	header("Auto-Submitted", "auto-generated")
	// RFC 8689 3: "TLS-Required: No" asks each MTA that relays the message
	// to deliver it despite MTA-STS or DANE failures (RFC 8689 4.2.2), as
	// RFC 8460 5.3 wants of reports: the mark of IsReportSubmission says
	// the same to this MTA alone.
	header("TLS-Required", "No")
	header("MIME-Version", "1.0")
	// RFC 8460 5.3: "a top-level media type "multipart/report" with a new
	// parameter "report-type="tlsrpt"""; RFC 6522 3.
	header("Content-Type", "multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\""+boundary+"\"")
	b.WriteString("\r\nThis is a multipart message in MIME format.\r\n")

	// "The first part is human readable, typically "text/plain"".
	b.WriteString("\r\n--" + boundary + "\r\n")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(reportText(p))) // writes to a bytes.Buffer do not fail
	qp.Close()

	// "the second part is machine readable ... If compressed, the report
	// should use the media type "application/tlsrpt+gzip"", named as 5.1
	// recommends, base64-encoded as in the example of 5.3.1.
	b.WriteString("\r\n--" + boundary + "\r\n")
	header("Content-Type", mediaTypeGzip)
	header("Content-Transfer-Encoding", "base64")
	header("Content-Disposition", "attachment;\r\n\tfilename=\""+p.Filename+"\"")
	b.WriteString("\r\n")
	writeBase64Lines(&b, p.Gzip)
	b.WriteString("--" + boundary + "--\r\n")
	m.Data = b.Bytes()
	return m, nil
}

// checkTo checks that addr, an address of a report's To field, is an
// addr-spec of printable ASCII, or UTF-8 in its local part alone (RFC 6532
// 3.2), and reports whether it is the latter: the message then needs
// SMTPUTF8 (RFC 6531).
func checkTo(addr string) (utf8Local bool, err error) {
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || a.Address != addr {
		return false, fmt.Errorf("tlsrpt: To address %s: expected an addr-spec", quoted.String(addr))
	}
	at := strings.LastIndexByte(addr, '@')
	for i := 0; i < len(addr); i++ {
		switch c := addr[i]; {
		case c >= utf8.RuneSelf && i < at:
			utf8Local = true
		case c < 0x21 || c >= 0x7f:
			return false, fmt.Errorf("tlsrpt: To address %s: expected printable ASCII, or UTF-8 in the local part", quoted.String(addr))
		}
	}
	if utf8Local && !utf8.ValidString(addr) {
		return false, fmt.Errorf("tlsrpt: To address %s: invalid UTF-8", quoted.String(addr))
	}
	return utf8Local, nil
}

// reportSubject returns the Subject of RFC 8460 5.3, folded as its example
// is:
//
//	tlsrpt-subject = %s"Report" FWS %s"Domain:" FWS domain-name FWS
//	                 %s"Submitter:" FWS domain-name FWS
//	                 %s"Report-ID:" FWS "<" id-left "@" id-right ">" [CFWS]
func reportSubject(p *payload) string {
	return "Report Domain: " + p.PolicyDomain.ASCII +
		"\r\n Submitter: " + p.Submitter.ASCII +
		"\r\n Report-ID: <" + subjectReportID(p.Report.ReportID, p.Submitter.ASCII) + ">"
}

// maxSubjectID bounds the Report-ID of a Subject, to keep its line short.
const maxSubjectID = 128

// subjectReportID returns the id-left "@" id-right of the Subject's
// Report-ID for a report-id. RFC 8460 5.3 says the Report-ID lets the policy
// domain "identify and ignore duplicate reports", and sets no tie to the
// report-id of the JSON; tying them keeps one identity per report:
//
//   - a report-id of that form, both sides dot-atom-text (RFC 5322 3.6.4),
//     is used as it is;
//   - a report-id that is dot-atom-text, as newReportID's are, gets
//     "@" and the submitter domain;
//   - any other report-id, or one longer than 128 bytes, is replaced by its
//     unique-id (see uniqueID), with "@" and the submitter domain.
func subjectReportID(reportID, submitter string) string {
	if len(reportID) <= maxSubjectID {
		left, right, hasAt := strings.Cut(reportID, "@")
		switch {
		case hasAt && isDotAtomText(left) && isDotAtomText(right):
			return reportID
		case !hasAt && isDotAtomText(reportID):
			return reportID + "@" + submitter
		}
	}
	return uniqueID(reportID) + "@" + submitter
}

// isDotAtomText reports whether s is dot-atom-text = 1*atext *("." 1*atext)
// (RFC 5322 3.2.3).
func isDotAtomText(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && !isAtext(c) {
			return false
		}
	}
	return true
}

// isAtext reports whether c is atext: ALPHA / DIGIT / "!" / "#" / "$" /
// "%" / "&" / "'" / "*" / "+" / "-" / "/" / "=" / "?" / "^" / "_" / "`" /
// "{" / "|" / "}" / "~" (RFC 5322 3.2.3).
func isAtext(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// reportText returns the human-readable part of a report message.
func reportText(p *payload) string {
	r := p.Report
	var ok, failed int64
	for _, pr := range r.Policies {
		ok += pr.Summary.TotalSuccessfulSessionCount
		failed += pr.Summary.TotalFailureSessionCount
	}
	var b strings.Builder
	fmt.Fprintf(&b, "This is an aggregate TLS report (RFC 8460) from %s\r\n", p.Submitter.ASCII)
	if r.OrganizationName != "" {
		fmt.Fprintf(&b, "(%s)\r\n", r.OrganizationName)
	}
	fmt.Fprintf(&b, "about mail to %s,\r\n", p.PolicyDomain.ASCII)
	fmt.Fprintf(&b, "from %s to %s.\r\n\r\n",
		r.DateRange.Start.UTC().Format(time.RFC3339), r.DateRange.End.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Successful TLS sessions: %d\r\n", ok)
	fmt.Fprintf(&b, "Failed TLS sessions:     %d\r\n\r\n", failed)
	fmt.Fprintf(&b, "The report is attached, compressed with gzip, as\r\n%s\r\n", p.Filename)
	fmt.Fprintf(&b, "Contact: %s\r\n", r.ContactInfo)
	return b.String()
}

// writeBase64Lines writes data in base64, in lines of 76 characters ended by
// CRLF (RFC 2045 6.8).
func writeBase64Lines(b *bytes.Buffer, data []byte) {
	const lineBytes = 57 // 76 characters of base64
	var line [76]byte
	for len(data) > 0 {
		n := min(len(data), lineBytes)
		m := base64.StdEncoding.EncodedLen(n)
		base64.StdEncoding.Encode(line[:m], data[:n])
		b.Write(line[:m])
		b.WriteString("\r\n")
		data = data[n:]
	}
}
