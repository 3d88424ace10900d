package tlsrpt

import (
	"encoding/json"
	"fmt"
	"net/mail"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/quoted"
)

// Report is an aggregate TLS report (RFC 8460 4.4): what a sending
// organisation saw of one policy domain's TLS over one day. Its fields
// marshal to exactly the names of the JSON schema; ParseReport and
// json.Unmarshal read it strictly.
type Report struct {
	// OrganizationName is "the name of the organization responsible for
	// the report".
	OrganizationName string `json:"organization-name"`
	// DateRange is the period the report covers; RFC 8460 4.1: "SHOULD
	// cover a full day, from 00:00-24:00 UTC".
	DateRange DateRange `json:"date-range"`
	// ContactInfo is the e-mail address (an RFC 5322 addr-spec) of the
	// party responsible for the report.
	ContactInfo string `json:"contact-info"`
	// ReportID is a unique identifier of the report, of the reporter's
	// own scheme.
	ReportID string `json:"report-id"`
	// Policies holds one entry per policy applied. RFC 8460 4: "the
	// "policies" field of the report body MUST be an array", and it
	// marshals as one even when nil.
	Policies []PolicyResult `json:"policies"`

	// Domain is the domain the report is sent to, in A-labels: the one
	// whose TLSRPT record (RFC 8460 3) names the rua URIs, and that
	// TLS-Report-Domain and the file name name (RFC 8460 5.1, 5.3). Empty,
	// it is the policy domain of the policies, which must then all have
	// one. A report to a recipient domain or to an MX host (see
	// ReportInfo.Recipients and MXHosts) sets it, its policies naming
	// several domains. It is not part of the report's JSON; outboxes keep
	// it beside.
	Domain string `json:"-"`
}

// DateRange is the period a report covers (RFC 8460 4.4, "date-range").
type DateRange struct {
	// Start and End are RFC 3339 date-times (RFC 3339 5.6). RFC 8460
	// Appendix B ends a day at 23:59:59; a range ending at 00:00:00 of the
	// next day reads as well.
	Start time.Time `json:"start-datetime"`
	End   time.Time `json:"end-datetime"`
}

// PolicyResult is one element of a report's "policies": a policy and the
// sessions it applied to.
type PolicyResult struct {
	Policy  Policy  `json:"policy"`
	Summary Summary `json:"summary"`
	// FailureDetails holds a row per distinct failure; it is omitted
	// when empty. RFC 8460 4: the failure types are non-exclusive, so the
	// rows' counts need not add up to the summary's.
	FailureDetails []FailureDetail `json:"failure-details,omitempty"`

	// CountOnly marks counts that are reported but cause no report by
	// themselves: a Reporter makes no report whose every result
	// is CountOnly. Recorder.Record takes it; the stores keep a result
	// CountOnly while every count added to it of the day was. It is not
	// part of a report's JSON.
	CountOnly bool `json:"-"`
}

// Policy is a policy as a report describes it (RFC 8460 4.4, 4.5). Build it
// with a Target, which picks the right policy domain for each policy type.
type Policy struct {
	// PolicyType is PolicyTypeSTS, PolicyTypeTLSA or
	// PolicyTypeNoPolicyFound.
	PolicyType PolicyType `json:"policy-type"`
	// PolicyString is the applied policy as a JSON array of strings: the
	// lines of an MTA-STS policy, or the TLSA records, one per element
	// (RFC 8460 4.5). It marshals as an array even when empty.
	PolicyString []string `json:"policy-string"`
	// PolicyDomain is the policy domain, in A-labels (RFC 8460 4.4:
	// "MUST consist of the Punycode-encoded A-labels"): the recipient
	// domain for MTA-STS, the TLSA base domain (the MX host) for DANE.
	PolicyDomain string `json:"policy-domain"`
	// MXHost holds the mx patterns of an MTA-STS policy, in A-labels; it
	// is omitted when empty. Read from a report, it also accepts the
	// single string of RFC 8460 Appendix B (erratum 6241).
	MXHost []string `json:"mx-host,omitempty"`

	// RecipientDomain is the recipient domain of the deliveries the
	// policy applied to, in A-labels, as a Target sets it: the policy
	// domain itself for MTA-STS and no-policy-found, the domain whose MX
	// host it is for DANE. A result whose policy domain differs from it
	// is an MX host's own (DANE) result. It is not part of a report's
	// JSON: the Recorder and the stores keep the results of each
	// recipient domain apart, so that reports can be made per recipient
	// domain and per MX host (ReportInfo). Empty, the result counts for
	// its policy domain alone, as a recipient domain.
	RecipientDomain string `json:"-"`
}

// Summary counts a policy's sessions (RFC 8460 4.2).
type Summary struct {
	// TotalSuccessfulSessionCount counts sessions that negotiated a
	// policy-compliant TLS connection.
	TotalSuccessfulSessionCount int64 `json:"total-successful-session-count"`
	// TotalFailureSessionCount counts sessions that could not.
	TotalFailureSessionCount int64 `json:"total-failure-session-count"`
}

// FailureDetail is a row of a policy's "failure-details" (RFC 8460 4.4): a
// result type and where it happened, with the number of sessions it
// happened to. Empty strings and unset addresses are omitted when
// marshalled, as a policy-fetch failure has no MX host or receiving IP; the
// count is always written.
type FailureDetail struct {
	ResultType mtasts.ResultType `json:"result-type"`
	// SendingMTAIP is the address the sending MTA connected from.
	SendingMTAIP netip.Addr `json:"sending-mta-ip,omitzero"`
	// ReceivingMXHostname is the MX host name the session was with.
	ReceivingMXHostname string `json:"receiving-mx-hostname,omitempty"`
	// ReceivingMXHelo is the host name of the receiving MTA's greeting
	// or EHLO response, when known.
	ReceivingMXHelo string `json:"receiving-mx-helo,omitempty"`
	// ReceivingIP is the address connected to.
	ReceivingIP netip.Addr `json:"receiving-ip,omitzero"`
	// FailedSessionCount is the number of sessions of this row.
	FailedSessionCount int64 `json:"failed-session-count"`
	// AdditionalInformation is a URI with more on the failure. Read from
	// a report it is kept as given, never fetched: RFC 8460 Appendix B's
	// own example is no URI.
	AdditionalInformation string `json:"additional-information,omitempty"`
	// FailureReasonCode is a short error code or text, e.g.
	// "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED" (RFC 8460 4.3.3).
	FailureReasonCode string `json:"failure-reason-code,omitempty"`
}

// PolicyType is the "policy-type" of a report's policy (RFC 8460 4.4).
type PolicyType string

// The policy types of RFC 8460 4.4: "Presently, the only three valid choices
// are "tlsa", "sts", and the literal string "no-policy-found"".
const (
	// PolicyTypeSTS is an MTA-STS policy (RFC 8461).
	PolicyTypeSTS PolicyType = "sts"
	// PolicyTypeTLSA is a DANE TLSA record set (RFC 6698, RFC 7672).
	PolicyTypeTLSA PolicyType = "tlsa"
	// PolicyTypeNoPolicyFound is for sessions to which "neither a DANE nor
	// MTA-STS Policy could be found" (RFC 8460 4).
	PolicyTypeNoPolicyFound PolicyType = "no-policy-found"
)

// MarshalJSON marshals the report with "policies" as an array even when it
// is nil (RFC 8460 4).
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report // without the methods
	p := plain(r)
	if p.Policies == nil {
		p.Policies = []PolicyResult{}
	}
	return json.Marshal(p)
}

// MarshalJSON marshals the policy with "policy-string" as an array even when
// it is nil (RFC 8460 4.4, "a JSON array of strings").
func (p Policy) MarshalJSON() ([]byte, error) {
	type plain Policy
	q := plain(p)
	if q.PolicyString == nil {
		q.PolicyString = []string{}
	}
	return json.Marshal(q)
}

// Validate checks the values of r against RFC 8460 4.4: required strings
// are not empty, the date range runs forward, contact-info is an addr-spec,
// there is at least one policy, domains are A-label names, counts are not
// negative, addresses carry no zone, the policy type is one of the three
// RFC 8460 4.4 allows, and result types have the form of registered ones.
//
// It also bounds what no report needs to be larger than, and refuses
// control characters (C0 but tab, DEL, C1) where a Recorder takes text from
// the network, which a report viewer would otherwise print raw: the
// policy-string holds at most mtasts.MaxPolicySize bytes, as the policy it
// describes does (RFC 8461 3.3), of printable lines; so do the mx-host
// patterns; receiving-mx-helo holds at most 255 bytes, a domain name's
// most (RFC 5321 4.5.3.1.2), and failure-reason-code and
// additional-information at most 2048, all without control characters.
//
// It returns a *SyntaxError whose Field is the JSON path of the first problem, or
// nil. Reports read with ParseReport have passed it; so have those a
// Recorder makes.
func (r *Report) Validate() error {
	v := validator{}
	v.nonEmpty("organization-name", r.OrganizationName)
	v.dateRange(r.DateRange)
	v.contactInfo(r.ContactInfo)
	v.nonEmpty("report-id", r.ReportID)
	if len(r.Policies) == 0 {
		// RFC 8460 4: reports contain the policies applied; a report
		// with none says nothing.
		v.fail("policies", "empty, expected at least one policy")
	}
	for i := range r.Policies {
		v.policyResult("policies["+strconv.Itoa(i)+"]", &r.Policies[i])
	}
	return v.err
}

// validator keeps the first problem found.
type validator struct{ err error }

func (v *validator) fail(path, format string, args ...any) {
	if v.err == nil {
		v.err = &SyntaxError{Kind: ErrInvalidReport, Field: path, Msg: fmt.Sprintf(format, args...)}
	}
}

func (v *validator) nonEmpty(path, s string) {
	if s == "" {
		v.fail(path, "empty, expected a string")
	}
}

// dateRange checks the date-time fields: set, and start before end.
func (v *validator) dateRange(dr DateRange) {
	switch {
	case dr.Start.IsZero():
		v.fail("date-range.start-datetime", "missing, expected an RFC 3339 date-time")
	case dr.End.IsZero():
		v.fail("date-range.end-datetime", "missing, expected an RFC 3339 date-time")
	case !dr.Start.Before(dr.End):
		v.fail("date-range", "start-datetime %s is not before end-datetime %s",
			dr.Start.Format(time.RFC3339Nano), dr.End.Format(time.RFC3339Nano))
	}
}

// contactInfo checks "email-address": "a string formatted according to
// "Addr-Spec Specification", Section 3.4.1 of [RFC5322]" (RFC 8460 4.4).
func (v *validator) contactInfo(s string) {
	const path = "contact-info"
	if s == "" {
		v.fail(path, "empty, expected an e-mail address")
		return
	}
	a, err := mail.ParseAddress(s)
	switch {
	case err != nil:
		v.fail(path, "%s is not an e-mail address (RFC 5322 addr-spec): %v", quoted.String(s), quoted.Cause(err))
	case a.Name != "" || strings.ContainsAny(s, "<>"):
		v.fail(path, "%s has a display name or angle brackets, expected a bare addr-spec (RFC 5322 3.4.1)", quoted.String(s))
	}
}

func (v *validator) policyResult(path string, pr *PolicyResult) {
	v.policy(path+".policy", &pr.Policy)
	v.count(path+".summary.total-successful-session-count", pr.Summary.TotalSuccessfulSessionCount)
	v.count(path+".summary.total-failure-session-count", pr.Summary.TotalFailureSessionCount)
	for i := range pr.FailureDetails {
		v.failureDetail(path+".failure-details["+strconv.Itoa(i)+"]", &pr.FailureDetails[i])
	}
}

func (v *validator) policy(path string, p *Policy) {
	v.policyType(path+".policy-type", p.PolicyType)
	v.policyString(path+".policy-string", p.PolicyString)
	v.domain(path+".policy-domain", p.PolicyDomain, true)
	if n := joinedLen(p.MXHost); n > mtasts.MaxPolicySize {
		v.fail(path+".mx-host", "%d patterns of %d bytes, more than the %d bytes of the largest policy (RFC 8461 3.3)", len(p.MXHost), n, mtasts.MaxPolicySize)
	}
	for i, mx := range p.MXHost {
		// mx-host-pattern: "interpreted in the same manner as the rules
		// in "MX Host Validation"" of RFC 8461 4.1, in A-labels.
		v.domain(path+".mx-host["+strconv.Itoa(i)+"]", strings.TrimPrefix(mx, "*."), true)
	}
	if p.RecipientDomain != "" {
		v.domain(path+".recipient-domain", p.RecipientDomain, true)
	}
}

func (v *validator) failureDetail(path string, fd *FailureDetail) {
	v.token(path+".result-type", string(fd.ResultType), "a result type such as \"certificate-expired\"")
	v.addr(path+".sending-mta-ip", fd.SendingMTAIP)
	if fd.ReceivingMXHostname != "" {
		v.domain(path+".receiving-mx-hostname", fd.ReceivingMXHostname, false)
	}
	// RFC 8460 4.4: "The HELLO (HELO) or Extended HELLO (EHLO) string
	// from the banner", a domain name or address literal (RFC 5321
	// 4.1.1.1), the receiving MX's own words.
	v.text(path+".receiving-mx-helo", fd.ReceivingMXHelo, maxHelo)
	v.addr(path+".receiving-ip", fd.ReceivingIP)
	v.count(path+".failed-session-count", fd.FailedSessionCount)
	// RFC 8460 4.4: "A URI [RFC3986] that points to additional
	// information", and "A text field to include a TLS-related error code
	// or error message".
	v.text(path+".additional-information", fd.AdditionalInformation, maxRowText)
	v.text(path+".failure-reason-code", fd.FailureReasonCode, maxRowText)
}

// maxHelo bounds receiving-mx-helo: a domain name, at most 255 octets (RFC
// 5321 4.5.3.1.2).
const maxHelo = 255

// maxRowText bounds failure-reason-code and additional-information: an
// error code or message, and a URI, which need no more.
const maxRowText = 2048

// policyType checks "policy-type": "Presently, the only three valid choices
// are "tlsa", "sts", and the literal string "no-policy-found"" (RFC 8460
// 4.4).
func (v *validator) policyType(path string, t PolicyType) {
	switch t {
	case PolicyTypeSTS, PolicyTypeTLSA, PolicyTypeNoPolicyFound:
	case "":
		v.fail(path, "empty, expected \"sts\", \"tlsa\" or \"no-policy-found\"")
	default:
		v.fail(path, "%s, expected \"sts\", \"tlsa\" or \"no-policy-found\" (RFC 8460 4.4)", quoted.String(string(t)))
	}
}

// policyString checks "policy-string", "An encoding of the applied policy as
// a JSON array of strings" (RFC 8460 4.4): the lines of an MTA-STS policy, at
// most mtasts.MaxPolicySize bytes in all (RFC 8461 3.3), or TLSA records,
// each without control characters.
func (v *validator) policyString(path string, lines []string) {
	if n := joinedLen(lines); n > mtasts.MaxPolicySize {
		v.fail(path, "%d lines of %d bytes, more than the %d bytes of the largest policy (RFC 8461 3.3)", len(lines), n, mtasts.MaxPolicySize)
		return
	}
	for i, l := range lines {
		v.text(path+"["+strconv.Itoa(i)+"]", l, mtasts.MaxPolicySize)
	}
}

// joinedLen returns the length of l joined by line ends.
func joinedLen(l []string) int {
	n := 0
	for _, s := range l {
		n += len(s) + 1
	}
	return max(n-1, 0)
}

// text checks a text field of at most limit bytes without control
// characters.
func (v *validator) text(path, s string, limit int) {
	if len(s) > limit {
		v.fail(path, "%s, more than %d bytes", quoted.String(s), limit)
		return
	}
	if i := controlAt(s); i >= 0 {
		v.fail(path, "control character %s at byte %d in %s, expected printable text", quoted.Char(s, i), i, quoted.String(s))
	}
}

// controlAt returns the offset of the first control character in s, other
// than tab: C0, DEL, or C1 (U+0080 to U+009F), which terminals act on; or
// -1. It allocates nothing.
func controlAt(s string) int {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 && c != '\t', c == 0x7f:
			return i
		case c == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f:
			return i // C1, in UTF-8
		}
	}
	return -1
}

// cleanText returns s for a text field that the network filled, bounded to
// limit bytes and without control characters: s itself when it is (without
// allocating), else s cut and escaped as quoted.Text does, followed by
// "...(N bytes)" when cut. limit must be at least 64.
func cleanText(s string, limit int) string {
	// The cut marker, "...(" and 20 digits and " bytes)", takes 31 bytes.
	const marker = 31
	ctl := controlAt(s)
	switch {
	case ctl < 0 && len(s) <= limit:
		return s
	case ctl < 0:
		return quoted.Cut(s, limit-marker) + "...(" + strconv.Itoa(len(s)) + " bytes)"
	}
	// An escape is at most 4 bytes per byte ("\x1b"; "\u00e9" for 2,
	// "\U0001f600" for 4).
	return quoted.Text(s, (limit-marker)/4)
}

// count checks that a count is not negative; counts are "an integer, encoded
// as a JSON number" (RFC 8460 4.4).
func (v *validator) count(path string, n int64) {
	if n < 0 {
		v.fail(path, "%d, expected a count of 0 or more", n)
	}
}

// addr checks an ip-address: an IPv4 address in dot-decimal or an IPv6
// address (RFC 8460 4.4); an address with a zone is neither.
func (v *validator) addr(path string, a netip.Addr) {
	if a.Zone() != "" {
		v.fail(path, "%s has a zone, expected an IPv4 or IPv6 address", a)
	}
}

// domain checks a domain name; with alabels, it must be in A-labels (RFC
// 8460 4.4: "the domain MUST consist of the Punycode-encoded A-labels ... and
// not the U-labels").
func (v *validator) domain(path, name string, alabels bool) {
	if name == "" {
		v.fail(path, "empty, expected a domain name")
		return
	}
	if alabels {
		for i := 0; i < len(name); i++ {
			if name[i] >= utf8.RuneSelf {
				v.fail(path, "%s has non-ASCII characters, expected A-labels (RFC 8460 4.4)", quoted.String(name))
				return
			}
		}
	}
	if _, err := mtasts.ParseDomain(name); err != nil {
		v.fail(path, "%s is not a valid domain name: %v", quoted.String(name), err)
	}
}

// token checks a policy or result type: the registered values, and any
// added to the registry by Expert Review (RFC 8460 6.6), are lower-case
// letters, digits and "-".
func (v *validator) token(path, s, what string) {
	if s == "" {
		v.fail(path, "empty, expected %s", what)
		return
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			v.fail(path, "%s, expected %s: lower-case letters, digits and \"-\"", quoted.String(s), what)
			return
		}
	}
}
