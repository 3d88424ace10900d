package tlsrpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/quoted"
)

// maxReportSize is the largest report JSON read, as received or after
// decompression: 20 MiB.
const maxReportSize = 20 << 20

// maxDepth is the deepest nesting of JSON objects and arrays ParseReport
// reads. The schema of RFC 8460 4.4 nests five deep; the rest is room for
// members added by later versions.
const maxDepth = 16

// ParseReport parses the JSON of an aggregate report (RFC 8460 4.4) strictly
// and returns it validated (see Report.Validate). It reads at most 20 MiB.
// It does no I/O, as mtasts.ParsePolicy does none; ReadReport reads a report
// as received, gzip-compressed or in a message, and forgives what real
// senders get wrong.
//
// The JSON must be I-JSON (RFC 8460 4, RFC 7493): UTF-8 without surrogates
// or noncharacters, and no object with two members of the same name. Member
// names are case-sensitive. The required members are those RFC 8460 4.4 does
// not mark optional, less those its own example omits: organization-name,
// date-range with start-datetime and end-datetime, contact-info, report-id,
// policies, and in each policy, policy with policy-type and policy-domain,
// and summary with both counts; in each failure detail, result-type and
// failed-session-count. Optional members may be null, and IP addresses may
// be "" for unknown, as some reporters write them.
//
// Members the schema does not name are accepted and ignored, though checked
// for well-formed JSON, nested at most 16 deep. RFC 8460 makes no rule for them in
// reports, but its schema is meant to grow ("The list of result types will
// start with the minimal set below and is expected to grow over time", 4.3),
// I-JSON asks protocols to let receivers ignore what they do not know (RFC
// 7493 4.3, "Must-Ignore"), and RFC 8460 3 rules the same for its TXT record:
// "unknown fields SHALL be ignored". For the same reason, result types of the
// registered form that RFC 8460 does not list are kept as read. Policy types
// have no registry, and only the three of RFC 8460 4.4 are valid.
//
// Values are bounded, and text fields of failure details and the
// policy-string hold no control characters, as Report.Validate says.
//
// Counts must be JSON integers from 0 to 2^53-1, the integers I-JSON carries
// exactly (RFC 7493 2.2): 5, not "5", 5.0 or 5e0. Dates are RFC 3339
// date-times with a time zone offset. mx-host is an array of strings, or the
// single string of RFC 8460 Appendix B (erratum 6241).
//
// Errors are a *SyntaxError, wrapping ErrInvalidReport, whose Field is the
// JSON path at fault, e.g. "policies[0].summary.total-failure-session-count", or
// an error wrapping ErrTooLarge.
func ParseReport(data []byte) (*Report, error) {
	if len(data) > maxReportSize {
		return nil, fmt.Errorf("%w: %d bytes of JSON, more than the maximum of %d", ErrTooLarge, len(data), maxReportSize)
	}
	r := &Report{}
	if err := decodeReport(data, r, nil); err != nil {
		return nil, err
	}
	return r, nil
}

// UnmarshalJSON parses a report as ParseReport does, so that json.Unmarshal
// reads reports as strictly.
func (r *Report) UnmarshalJSON(data []byte) error {
	var nr Report
	if err := decodeReport(data, &nr, nil); err != nil {
		return err
	}
	*r = nr
	return nil
}

// byteOrderMark is U+FEFF in UTF-8.
const byteOrderMark = "\ufeff"

// decodeReport decodes the JSON of a report into r: strictly when lax is
// nil, else forgiving the deviations of real senders with a warning each
// (see ReadOptions).
func decodeReport(data []byte, r *Report, lax *reading) error {
	// RFC 8259 8.1: "Implementations MUST NOT add a byte order mark
	// (U+FEFF) to the beginning of a networked-transmitted JSON text. In
	// the interests of interoperability, implementations that parse JSON
	// texts MAY ignore the presence of a byte order mark rather than
	// treating it as an error."
	if rest, ok := bytes.CutPrefix(data, []byte(byteOrderMark)); ok {
		if lax == nil {
			return &SyntaxError{Kind: ErrInvalidReport, Msg: "UTF-8 byte order mark before the JSON, which RFC 8259 8.1 forbids"}
		}
		lax.warns.add("", "UTF-8 byte order mark before the JSON, which RFC 8259 8.1 forbids; skipped")
		data = rest
	}
	if err := checkIJSON(data); err != nil {
		return err
	}
	d := &decoder{dec: json.NewDecoder(bytes.NewReader(data)), lax: lax}
	d.dec.UseNumber()
	tok, err := d.token()
	if err != nil {
		return err
	}
	if err := d.report(tok, r); err != nil {
		return err
	}
	if _, err := d.dec.Token(); err != io.EOF {
		return &SyntaxError{Kind: ErrInvalidReport, Msg: "data after the report's JSON object"}
	}
	if lax != nil {
		return lax.check(r)
	}
	return r.Validate()
}

// decoder reads a report from JSON tokens, keeping the path of the value it
// is in for errors.
type decoder struct {
	dec   *json.Decoder
	path  []pathElem
	depth int
	// lax, when set, forgives what real senders get wrong, with a
	// warning each; nil reads strictly.
	lax *reading
}

// pathElem is a member name, or an array index when key is "".
type pathElem struct {
	key   string
	index int
}

// pathString returns the path for errors, e.g. "policies[0].summary". A
// member name that is printable US-ASCII without ".", "[", "]" and quotes,
// of at most quoted.Max bytes, as the schema's names are, is written as it
// is; any other, an unknown member's name being the sender's text, is
// quoted, bounded and escaped.
func (d *decoder) pathString() string {
	var b strings.Builder
	for _, e := range d.path {
		if e.key == "" {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(e.index))
			b.WriteByte(']')
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		if plainName(e.key) {
			b.WriteString(e.key)
		} else {
			b.WriteString(quoted.String(e.key))
		}
	}
	return b.String()
}

func (d *decoder) errorf(format string, args ...any) error {
	return &SyntaxError{Kind: ErrInvalidReport, Field: d.pathString(), Msg: fmt.Sprintf(format, args...)}
}

// warnf adds a warning at the current path.
func (d *decoder) warnf(format string, args ...any) {
	d.lax.warns.add(d.pathString(), format, args...)
}

// plainName reports whether a member name can stand in a path unquoted.
func plainName(name string) bool {
	if len(name) > quoted.Max {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(".[]\"'\\", c) >= 0 {
			return false
		}
	}
	return true
}

// token reads the next token; a syntax error names the path and the byte
// offset.
func (d *decoder) token() (json.Token, error) {
	tok, err := d.dec.Token()
	if err != nil {
		var serr *json.SyntaxError
		switch {
		case errors.As(err, &serr):
			// encoding/json quotes the byte at fault as a Go string,
			// which keeps a byte of 0x80 and up as a character.
			return nil, d.errorf("invalid JSON at byte %d: %s", serr.Offset, quoted.Text(strings.TrimPrefix(serr.Error(), "json: "), quoted.MaxCause))
		case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
			return nil, d.errorf("unexpected end of the JSON")
		}
		return nil, d.errorf("invalid JSON: %v", quoted.Cause(err))
	}
	return tok, nil
}

// kind names a token's JSON type, for errors.
func kind(tok json.Token) string {
	switch t := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case json.Delim:
		if t == '[' {
			return "an array"
		}
		return "an object"
	}
	return fmt.Sprintf("%T", tok)
}

// object reads an object that starts with tok, calling member for each
// member with the member's first token; member consumes the value. Two
// members of one name are an error (RFC 7493 2.3: "Objects in I-JSON
// messages MUST NOT have members with duplicate names"). An object that
// misses a required member is reported by the caller.
func (d *decoder) object(tok json.Token, member func(name string, tok json.Token) error) error {
	if tok != json.Delim('{') {
		return d.errorf("%s, expected an object", kind(tok))
	}
	if d.depth++; d.depth > maxDepth {
		return d.errorf("nested deeper than %d objects and arrays", maxDepth)
	}
	var seen names
	for d.dec.More() {
		tok, err := d.token()
		if err != nil {
			return err
		}
		name, ok := tok.(string)
		if !ok {
			return d.errorf("invalid JSON: %s as a member name", kind(tok))
		}
		if seen.add(name) {
			return d.errorf("member %s appears twice, which I-JSON forbids (RFC 7493 2.3)", quoted.String(name))
		}
		d.path = append(d.path, pathElem{key: name})
		tok, err = d.token()
		if err == nil {
			err = member(name, tok)
		}
		if err != nil {
			return err
		}
		d.path = d.path[:len(d.path)-1]
	}
	if _, err := d.token(); err != nil { // "}"
		return err
	}
	d.depth--
	return nil
}

// array reads an array that starts with tok, calling elem for each element
// with its first token; elem consumes the element.
func (d *decoder) array(tok json.Token, elem func(i int, tok json.Token) error) error {
	if tok != json.Delim('[') {
		return d.errorf("%s, expected an array", kind(tok))
	}
	if d.depth++; d.depth > maxDepth {
		return d.errorf("nested deeper than %d objects and arrays", maxDepth)
	}
	for i := 0; d.dec.More(); i++ {
		d.path = append(d.path, pathElem{index: i})
		tok, err := d.token()
		if err == nil {
			err = elem(i, tok)
		}
		if err != nil {
			return err
		}
		d.path = d.path[:len(d.path)-1]
	}
	if _, err := d.token(); err != nil { // "]"
		return err
	}
	d.depth--
	return nil
}

// skip reads a value the schema does not name, checking it as any other.
func (d *decoder) skip(tok json.Token) error {
	switch tok {
	case json.Delim('{'):
		return d.object(tok, func(_ string, tok json.Token) error { return d.skip(tok) })
	case json.Delim('['):
		return d.array(tok, func(_ int, tok json.Token) error { return d.skip(tok) })
	}
	return nil
}

func (d *decoder) str(tok json.Token) (string, error) {
	s, ok := tok.(string)
	if !ok {
		return "", d.errorf("%s, expected a string", kind(tok))
	}
	return s, nil
}

// maxCount is the largest count read, 2^53-1: RFC 7493 2.2 has I-JSON
// numbers no more precise than IEEE 754 doubles.
const maxCount = 1<<53 - 1

// count reads a count: "an integer, encoded as a JSON number" (RFC 8460
// 4.4), from 0 to maxCount.
func (d *decoder) count(tok json.Token) (int64, error) {
	num, ok := tok.(json.Number)
	if !ok {
		return 0, d.errorf("%s, expected a count: an integer as a JSON number", kind(tok))
	}
	s := string(num)
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-':
			return 0, d.errorf("%s, expected a count of 0 or more", quoted.Text(s, quoted.Max))
		case c < '0' || c > '9':
			return 0, d.errorf("%s, expected an integer without fraction or exponent", quoted.Text(s, quoted.Max))
		}
		if n = n*10 + int64(c-'0'); n > maxCount {
			return 0, d.errorf("%s, larger than 2^53-1, the largest integer I-JSON carries exactly (RFC 7493 2.2)", quoted.Text(s, quoted.Max))
		}
	}
	return n, nil
}

// dateTime reads an RFC 3339 date-time (RFC 8460 4.4).
func (d *decoder) dateTime(tok json.Token) (time.Time, error) {
	s, err := d.str(tok)
	if err != nil {
		return time.Time{}, err
	}
	t, msg, zoneless := parseDateTime(s, d.lax != nil)
	if msg != "" {
		return time.Time{}, d.errorf("%s is not an RFC 3339 date-time: %s", quoted.String(s), msg)
	}
	if zoneless {
		// Microsoft was seen to send these.
		d.warnf("%s has no time zone offset, which RFC 3339 5.6 requires; read as UTC", quoted.String(s))
	}
	return t, nil
}

// addr reads an ip-address: "an IPv4 (see below) or IPv6 [RFC5952] address
// in dot-decimal or colon-hexadecimal notation" (RFC 8460 4.4); "" or null
// for an unknown one. netip.ParseAddr takes IPv4 by the dec-octet rule of RFC
// 8460 4.4 (no leading zeros) and IPv6 in any RFC 4291 2.2 text form.
func (d *decoder) addr(tok json.Token) (netip.Addr, error) {
	if tok == nil {
		return netip.Addr{}, nil
	}
	s, err := d.str(tok)
	if err != nil || s == "" {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, d.errorf("%s is not an IPv4 or IPv6 address", quoted.String(s))
	}
	return a, nil
}

// optStr reads an optional string, null meaning absent.
func (d *decoder) optStr(tok json.Token) (string, error) {
	if tok == nil {
		return "", nil
	}
	return d.str(tok)
}

// stringList reads an array of strings; null is an empty one.
func (d *decoder) stringList(tok json.Token) ([]string, error) {
	if tok == nil {
		return nil, nil
	}
	l := []string{}
	err := d.array(tok, func(_ int, tok json.Token) error {
		s, err := d.str(tok)
		l = append(l, s)
		return err
	})
	return l, err
}

// required reports the first of the required members that is missing.
func (d *decoder) required(have map[string]bool, names ...string) error {
	for _, n := range names {
		if !have[n] {
			return d.errorf("member %q missing, which RFC 8460 4.4 requires", n)
		}
	}
	return nil
}

// report reads the top-level object of RFC 8460 4.4.
func (d *decoder) report(tok json.Token, r *Report) error {
	have := map[string]bool{}
	err := d.object(tok, func(name string, tok json.Token) (err error) {
		have[name] = true
		switch name {
		case "organization-name":
			r.OrganizationName, err = d.laxStr(tok)
		case "date-range":
			err = d.dateRange(tok, &r.DateRange)
		case "contact-info":
			r.ContactInfo, err = d.laxStr(tok)
		case "report-id":
			r.ReportID, err = d.str(tok)
		case "policies":
			// RFC 8460 4: "the "policies" field of the report body
			// MUST be an array and not a singular value".
			r.Policies = []PolicyResult{}
			err = d.array(tok, func(i int, tok json.Token) error {
				r.Policies = append(r.Policies, PolicyResult{})
				return d.policyResult(tok, &r.Policies[i])
			})
		default:
			err = d.skip(tok)
		}
		return err
	})
	if err != nil {
		return err
	}
	if d.lax != nil {
		// Stalwart's mail-auth was seen to leave them out, or null.
		for _, name := range []string{"organization-name", "contact-info"} {
			if !have[name] {
				have[name] = true
				d.lax.warns.add(name, "missing, which RFC 8460 4.4 requires; read as empty")
			}
		}
	}
	return d.required(have, "organization-name", "date-range", "contact-info", "report-id", "policies")
}

// laxStr reads a string that RFC 8460 4.4 requires; reading laxly, null is
// read as empty, with a warning.
func (d *decoder) laxStr(tok json.Token) (string, error) {
	if tok == nil && d.lax != nil {
		d.warnf("null, expected a string (RFC 8460 4.4); read as empty")
		return "", nil
	}
	return d.str(tok)
}

func (d *decoder) dateRange(tok json.Token, dr *DateRange) error {
	have := map[string]bool{}
	err := d.object(tok, func(name string, tok json.Token) (err error) {
		have[name] = true
		switch name {
		case "start-datetime":
			dr.Start, err = d.dateTime(tok)
		case "end-datetime":
			dr.End, err = d.dateTime(tok)
		default:
			err = d.skip(tok)
		}
		return err
	})
	if err != nil {
		return err
	}
	return d.required(have, "start-datetime", "end-datetime")
}

func (d *decoder) policyResult(tok json.Token, pr *PolicyResult) error {
	have := map[string]bool{}
	err := d.object(tok, func(name string, tok json.Token) (err error) {
		have[name] = true
		switch name {
		case "policy":
			err = d.policy(tok, &pr.Policy)
		case "summary":
			err = d.summary(tok, &pr.Summary)
		case "failure-details":
			if tok == nil {
				return nil
			}
			err = d.array(tok, func(i int, tok json.Token) error {
				pr.FailureDetails = append(pr.FailureDetails, FailureDetail{})
				return d.failureDetail(tok, &pr.FailureDetails[i])
			})
		default:
			err = d.skip(tok)
		}
		return err
	})
	if err != nil {
		return err
	}
	return d.required(have, "policy", "summary")
}

func (d *decoder) policy(tok json.Token, p *Policy) error {
	have := map[string]bool{}
	err := d.object(tok, func(name string, tok json.Token) (err error) {
		have[name] = true
		switch name {
		case "policy-type":
			var s string
			s, err = d.str(tok)
			p.PolicyType = PolicyType(s)
		case "policy-string":
			// "An encoding of the applied policy as a JSON array of
			// strings" (RFC 8460 4.4); empty or absent when none was
			// found or fetched.
			p.PolicyString, err = d.stringList(tok)
		case "policy-domain":
			if d.lax != nil {
				// Null as missing, which lax.check looks at.
				p.PolicyDomain, err = d.optStr(tok)
				return err
			}
			p.PolicyDomain, err = d.str(tok)
		case "mx-host":
			// "provided as a JSON array of strings" (RFC 8460 4.4),
			// but a single string in Appendix B (erratum 6241).
			if s, ok := tok.(string); ok {
				p.MXHost = []string{s}
				return nil
			}
			p.MXHost, err = d.stringList(tok)
		default:
			err = d.skip(tok)
		}
		return err
	})
	if err != nil {
		return err
	}
	if d.lax != nil && p.PolicyType == PolicyTypeNoPolicyFound {
		// Postfix with sys4's tlsrpt-reporter was seen to leave it out
		// when there is no policy; lax.check fills it in or warns.
		have["policy-domain"] = true
	}
	return d.required(have, "policy-type", "policy-domain")
}

func (d *decoder) summary(tok json.Token, s *Summary) error {
	have := map[string]bool{}
	err := d.object(tok, func(name string, tok json.Token) (err error) {
		have[name] = true
		switch name {
		case "total-successful-session-count":
			s.TotalSuccessfulSessionCount, err = d.count(tok)
		case "total-failure-session-count":
			s.TotalFailureSessionCount, err = d.count(tok)
		default:
			err = d.skip(tok)
		}
		return err
	})
	if err != nil {
		return err
	}
	return d.required(have, "total-successful-session-count", "total-failure-session-count")
}

func (d *decoder) failureDetail(tok json.Token, fd *FailureDetail) error {
	have := map[string]bool{}
	err := d.object(tok, func(name string, tok json.Token) (err error) {
		have[name] = true
		switch name {
		case "result-type":
			var s string
			s, err = d.str(tok)
			fd.ResultType = mtasts.ResultType(s)
		case "sending-mta-ip":
			fd.SendingMTAIP, err = d.addr(tok)
		case "receiving-mx-hostname":
			fd.ReceivingMXHostname, err = d.optStr(tok)
		case "receiving-mx-helo":
			fd.ReceivingMXHelo, err = d.optStr(tok)
		case "receiving-ip":
			fd.ReceivingIP, err = d.addr(tok)
		case "failed-session-count":
			fd.FailedSessionCount, err = d.count(tok)
		case "additional-information":
			fd.AdditionalInformation, err = d.optStr(tok)
		case "failure-reason-code":
			fd.FailureReasonCode, err = d.optStr(tok)
		default:
			err = d.skip(tok)
		}
		return err
	})
	if err != nil {
		return err
	}
	return d.required(have, "result-type", "failed-session-count")
}

// names is the set of member names of one object: a short list searched
// in order, and past a few dozen a map, so that an object with many
// members costs linear time.
type names struct {
	list []string
	set  map[string]struct{}
}

// add adds name and reports whether it was there already.
func (n *names) add(name string) bool {
	const listMax = 16
	if n.set != nil {
		if _, ok := n.set[name]; ok {
			return true
		}
		n.set[name] = struct{}{}
		return false
	}
	for _, s := range n.list {
		if s == name {
			return true
		}
	}
	n.list = append(n.list, name)
	if len(n.list) > listMax {
		n.set = make(map[string]struct{}, 2*listMax)
		for _, s := range n.list {
			n.set[s] = struct{}{}
		}
	}
	return false
}

// checkIJSON checks what encoding/json lets through but I-JSON forbids (RFC
// 7493 2.1): bytes that are not UTF-8, and in strings, surrogates (an
// unpaired \uD800-\uDFFF escape) and noncharacters, escaped or not.
func checkIJSON(data []byte) error {
	inString := false
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			switch {
			case !inString:
				inString = c == '"'
			case c == '"':
				inString = false
			case c == '\\' && i+1 < len(data) && data[i+1] == 'u':
				r, n := escapedRune(data[i:])
				if msg := badRune(r); msg != "" {
					return &SyntaxError{Kind: ErrInvalidReport, Msg: fmt.Sprintf("byte %d: %s, which I-JSON forbids (RFC 7493 2.1)", i, msg)}
				}
				i += n
				continue
			case c == '\\':
				i += 2 // an escaped quote or backslash does not end the string
				continue
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return &SyntaxError{Kind: ErrInvalidReport, Msg: fmt.Sprintf("byte %d: invalid UTF-8; I-JSON is UTF-8 (RFC 7493 2.1)", i)}
		}
		if msg := badRune(r); msg != "" && inString {
			return &SyntaxError{Kind: ErrInvalidReport, Msg: fmt.Sprintf("byte %d: %s, which I-JSON forbids (RFC 7493 2.1)", i, msg)}
		}
		i += n
	}
	return nil
}

// escapedRune decodes the \uXXXX escape at the start of b, with the low
// surrogate escape following a high one. It returns the rune, or a lone
// surrogate as is, and the bytes read; syntax errors are left to the JSON
// decoder, which reports them, and give utf8.RuneError.
func escapedRune(b []byte) (rune, int) {
	r, ok := hex4(b)
	if !ok {
		return utf8.RuneError, 2
	}
	if r < 0xD800 || r > 0xDBFF {
		return r, 6
	}
	if lo, ok := hex4(b[6:]); ok && lo >= 0xDC00 && lo <= 0xDFFF {
		return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), 12
	}
	return r, 6
}

// hex4 decodes "\uXXXX" at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[2:6] {
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

// badRune says why r may not be in an I-JSON string, or "".
func badRune(r rune) string {
	switch {
	case r >= 0xD800 && r <= 0xDFFF:
		return fmt.Sprintf("unpaired surrogate U+%04X", r)
	case r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE:
		return fmt.Sprintf("noncharacter U+%04X", r)
	}
	return ""
}

// parseDateTime parses an RFC 3339 date-time (RFC 3339 5.6):
//
//	date-time      = full-date "T" full-time
//	full-date      = date-fullyear "-" date-month "-" date-mday
//	full-time      = partial-time time-offset
//	partial-time   = time-hour ":" time-minute ":" time-second [time-secfrac]
//	time-secfrac   = "." 1*DIGIT
//	time-offset    = "Z" / time-numoffset
//	time-numoffset = ("+" / "-") time-hour ":" time-minute
//
// "T" and "Z" may be lower case (RFC 3339 5.6, NOTE). A leap second
// (time-second 60) cannot be held by time.Time and is refused. It returns
// what is wrong, or "". With zoneOK, a date-time without time-offset is
// read as UTC, and zoneless says so.
func parseDateTime(s string, zoneOK bool) (t time.Time, msg string, zoneless bool) {
	p := dtParser{s: s}
	year := p.digits(4, 0, 9999, "year")
	p.lit('-', "\"-\" after the year")
	month := p.digits(2, 1, 12, "month")
	p.lit('-', "\"-\" after the month")
	day := p.digits(2, 1, 31, "day")
	if p.msg == "" && p.i < len(s) && (s[p.i] == 'T' || s[p.i] == 't') {
		p.i++
	} else {
		p.fail("expected \"T\" between the date and the time")
	}
	hour := p.digits(2, 0, 23, "hour")
	p.lit(':', "\":\" after the hour")
	minute := p.digits(2, 0, 59, "minute")
	p.lit(':', "\":\" after the minute")
	second := p.digits(2, 0, 60, "second")
	nsec := 0
	if p.msg == "" && p.i < len(s) && s[p.i] == '.' {
		p.i++
		start := p.i
		for p.i < len(s) && isDigit(s[p.i]) {
			if p.i-start < 9 {
				nsec = nsec*10 + int(s[p.i]-'0')
			}
			p.i++
		}
		if p.i == start {
			p.fail("expected digits after \".\"")
		}
		for n := p.i - start; n < 9; n++ {
			nsec *= 10
		}
	}
	loc := time.UTC
	switch {
	case p.msg != "":
	case p.i == len(s) && zoneOK:
		zoneless = true
	case p.i == len(s):
		p.fail("no time zone offset, expected \"Z\" or \"+hh:mm\" after the time")
	case s[p.i] == 'Z' || s[p.i] == 'z':
		p.i++
	case s[p.i] == '+' || s[p.i] == '-':
		sign := 1
		if s[p.i] == '-' {
			sign = -1
		}
		p.i++
		oh := p.digits(2, 0, 23, "offset hour")
		p.lit(':', "\":\" in the offset")
		om := p.digits(2, 0, 59, "offset minute")
		loc = time.FixedZone("", sign*(oh*3600+om*60))
	default:
		p.fail(fmt.Sprintf("unexpected %s after the time, expected \"Z\" or \"+hh:mm\"", quoted.Char(s, p.i)))
	}
	if p.msg == "" && p.i < len(s) {
		p.fail(fmt.Sprintf("unexpected %s after the date-time", quoted.Char(s, p.i)))
	}
	if p.msg != "" {
		return time.Time{}, p.msg, false
	}
	// date-mday: 01-28, 01-29, 01-30, 01-31 based on month/year.
	if day > daysIn(month, year) {
		return time.Time{}, fmt.Sprintf("day %d is past the end of the month", day), false
	}
	if second == 60 {
		return time.Time{}, "leap second 60 is not supported", false
	}
	return time.Date(year, time.Month(month), day, hour, minute, second, nsec, loc), "", zoneless
}

// dtParser reads a date-time, keeping the first problem.
type dtParser struct {
	s   string
	i   int
	msg string
}

func (p *dtParser) fail(msg string) {
	if p.msg == "" {
		p.msg = msg
	}
}

// digits reads exactly n digits of a value from lo to hi.
func (p *dtParser) digits(n, lo, hi int, what string) int {
	if p.msg != "" {
		return 0
	}
	if p.i+n > len(p.s) {
		p.fail(fmt.Sprintf("expected %d digits of %s", n, what))
		return 0
	}
	v := 0
	for _, c := range []byte(p.s[p.i : p.i+n]) {
		if !isDigit(c) {
			p.fail(fmt.Sprintf("expected %d digits of %s", n, what))
			return 0
		}
		v = v*10 + int(c-'0')
	}
	if v < lo || v > hi {
		p.fail(fmt.Sprintf("%s %s out of range", what, p.s[p.i:p.i+n]))
		return 0
	}
	p.i += n
	return v
}

func (p *dtParser) lit(c byte, what string) {
	if p.msg != "" {
		return
	}
	if p.i >= len(p.s) || p.s[p.i] != c {
		p.fail("expected " + what)
		return
	}
	p.i++
}

// daysIn returns the number of days of month in year (RFC 3339 5.7).
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
