package tlsrpt

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/internal/policytext"
	"github.com/mtasts-go/mtasts/internal/quoted"
)

// Target names the domains of a delivery attempt, so that each policy is
// described for, and reported to, the right policy domain. RFC 8460 1.1: for
// MTA-STS the policy domain "is typically the same as the envelope recipient
// domain", but "For DANE, the Policy Domain is the "TLSA base domain" of the
// receiving SMTP server". The two go to different TLSRPT records and so to
// different reports; mox once sent DANE results to the recipient domain.
// With a Target the caller states facts it knows, the recipient domain and
// the MX host, and each method takes the policy domain its policy type
// wants.
type Target struct {
	// Recipient is the domain of the envelope recipient, or of the
	// smarthost when local policy routes mail through one (RFC 8460 1.1).
	// It is the policy domain of MTA-STS and of no-policy-found.
	Recipient mtasts.Domain
	// MX is the MX host the session is with. It is the policy domain of
	// DANE, unless TLSABase is set.
	MX mtasts.Domain
	// TLSABase is the TLSA base domain when it is not MX: the target of a
	// DNSSEC-validated CNAME of MX (RFC 7672 2.2.3). The zero Domain
	// means MX.
	TLSABase mtasts.Domain
}

// STS returns the description of MTA-STS policy p, fetched as text, as
// applied to mail for t.Recipient (RFC 8460 4.4, 4.5): type sts, the policy
// domain t.Recipient in A-labels, the policy's lines as policy-string and
// its mx patterns as mx-host.
//
// The lines are those of text, each without its line ending, blank lines
// skipped: "the policy that is declared by the receiving site, including any
// errors that may be present" (RFC 8460 4.5), one "mx" line per element.
// With text empty, they are those of p.String(). The lines and patterns are
// those of Policy.ReportLines and Policy.ReportMXHosts.
//
// A nil p, or one in mode none, gives t.NoPolicyFound(): RFC 8461 5 treats a
// domain in mode none "as though it does not have any active policy".
func (t Target) STS(p *mtasts.Policy, text string) Policy {
	if p == nil || p.Mode == mtasts.ModeNone {
		return t.NoPolicyFound()
	}
	// RFC 8460 4.4, 4.5: the policy's lines and its mx patterns in
	// A-labels, as the core package computes them for any report.
	var lines []string
	if text != "" {
		lines = reportLines(text)
	} else {
		lines = p.ReportLines()
	}
	return Policy{
		PolicyType:      PolicyTypeSTS,
		PolicyString:    lines,
		PolicyDomain:    t.Recipient.ASCII,
		MXHost:          p.ReportMXHosts(),
		RecipientDomain: t.Recipient.ASCII,
	}
}

// FromCache returns the description of the MTA-STS side of a delivery to
// t.Recipient from the cache's answer for it, and the failure to report with
// it, or nil.
//
//   - A policy that applies (enforce or testing) is described as STS does,
//     also when it applied despite a failure to refresh it (res.Err set):
//     RFC 8461 6 reports "Policy fetch failures of any kind when a valid
//     policy exists in the policy cache, except if that policy's mode is
//     "none"".
//   - With no policy but a failure, as when a valid TXT record announced a
//     policy that could not be fetched (RFC 8461 6, "HTTPS policy fetch
//     failures when a valid TXT record is present"), or the TXT record was
//     invalid or its lookup failed, the policy is of type sts: the failure's
//     result type is one of MTA-STS's (RFC 8460 4.3.2.2). Its policy-string
//     is empty, unless the domain served a policy that did not parse: then
//     it holds that policy's lines (res.PolicyText), as RFC 8460 4.5 asks,
//     "including any errors that may be present". A domain without a record
//     has no failure (the cache reports none).
//   - Otherwise (no policy, mode none, or an error with no result type such
//     as a canceled context) it is t.NoPolicyFound() and no failure.
//
// The failure carries mtasts.TLSReportResultType(res.Err),
// mtasts.TLSReportFailureReason(res.Err) and a session count of one; the MX
// host and the addresses are for the caller to add where they
// apply, as a policy fetch concerns no MX host.
func (t Target) FromCache(res cache.Result) (Policy, *FailureDetail) {
	var fd *FailureDetail
	active := res.Policy != nil && res.Policy.Mode != mtasts.ModeNone
	if rt := mtasts.TLSReportResultType(res.Err); rt != "" && (active || res.Policy == nil) {
		fd = &FailureDetail{
			ResultType:         rt,
			FailureReasonCode:  mtasts.TLSReportFailureReason(res.Err),
			FailedSessionCount: 1,
		}
	}
	switch {
	case active:
		return t.STS(res.Policy, ""), fd
	case fd != nil:
		p := Policy{PolicyType: PolicyTypeSTS, PolicyDomain: t.Recipient.ASCII, RecipientDomain: t.Recipient.ASCII}
		if res.PolicyText != "" {
			p.PolicyString = reportLines(res.PolicyText) // RFC 8460 4.5
		}
		return p, fd
	}
	return t.NoPolicyFound(), nil
}

// reportLines returns the lines of text as Policy.ReportLines gives those
// of a Policy (policytext.ReportLines), with each line that holds a
// control character escaped as Go escapes strings: RFC 8460 4.5 gives the
// policy "including any errors that may be present", and a policy that did
// not parse may hold them, which the Recorder refuses and a report
// viewer would print raw. Should escaping take the lines past
// mtasts.MaxPolicySize bytes, as the policy-string may not be (RFC 8461
// 3.3), the lines past it are left out.
func reportLines(text string) []string {
	lines := policytext.ReportLines(text)
	n := 0
	for i, l := range lines {
		if controlAt(l) >= 0 {
			l = quoted.Text(l, len(l))
			lines[i] = l
		}
		if n += len(l) + 1; n-1 > mtasts.MaxPolicySize {
			return lines[:i]
		}
	}
	return lines
}

// NoPolicyFound returns the description for mail to t.Recipient when
// "neither a DANE nor MTA-STS Policy could be found" (RFC 8460 4): type
// no-policy-found, the policy domain t.Recipient in A-labels, and no
// policy-string. Its sessions give the recipient domain the "heartbeat" of
// RFC 8460 4.2.1 even without a policy.
func (t Target) NoPolicyFound() Policy {
	return Policy{PolicyType: PolicyTypeNoPolicyFound, PolicyDomain: t.Recipient.ASCII, RecipientDomain: t.Recipient.ASCII}
}

// TLSA returns the description of the DANE TLSA records that applied to the
// session with t.MX (RFC 8460 4.4, 4.5): type tlsa, the policy domain the
// TLSA base domain (t.TLSABase, or else t.MX) in A-labels, the records as
// policy-string, and mx-host t.MX; its RecipientDomain is t.Recipient, which
// may be zero. Record DANE failures against it with the result types of RFC
// 8460 4.3.2.1 (mtasts.ResultTLSAInvalid, mtasts.ResultDNSSECInvalid, mtasts.ResultDANERequired)
// or of 4.3.1. DANE itself is the caller's: records are
// the RDATA of the TLSA records, each in presentation format (RFC 6698 2.2),
// e.g. "3 1 1 0C72AC70...". They are written as RFC 8460 4.5 asks, "a
// space-separated list of its four TLSA fields ... with no internal spaces
// or grouping parentheses", the hexadecimal data in upper case.
//
// It returns an error naming the record when a record is not four fields of
// usage, selector and matching type (0 to 255 each) and hexadecimal data
// (which may hold spaces, RFC 6698 2.2) of the size its matching type gives
// (32 bytes for SHA2-256, 64 for SHA2-512), when there are no records, or
// when the Target has no MX host.
func (t Target) TLSA(records []string) (Policy, error) {
	base := t.TLSABase
	if base == (mtasts.Domain{}) {
		base = t.MX
	}
	if base == (mtasts.Domain{}) {
		return Policy{}, errors.New("tlsrpt: tlsa policy without an MX host: set Target.MX")
	}
	if len(records) == 0 {
		return Policy{}, errors.New("tlsrpt: tlsa policy without records: a host without TLSA records has no DANE policy")
	}
	l := make([]string, len(records))
	for i, rec := range records {
		s, msg := tlsaRecord(rec)
		if msg != "" {
			return Policy{}, fmt.Errorf("tlsrpt: tlsa record %d %s: %s", i+1, quoted.String(rec), msg)
		}
		l[i] = s
	}
	// RFC 8460 1.1: the policy domain of DANE is the TLSA base domain;
	// the recipient domain is kept beside, for the reports to it.
	p := Policy{PolicyType: PolicyTypeTLSA, PolicyString: l, PolicyDomain: base.ASCII, RecipientDomain: t.Recipient.ASCII}
	if t.MX != (mtasts.Domain{}) {
		p.MXHost = []string{t.MX.ASCII}
	}
	return p, nil
}

// tlsaRecord parses the presentation format of TLSA RDATA (RFC 6698 2.2):
// three decimal fields of 0 to 255 and the certificate association data in
// hexadecimal, which "MAY contain whitespace", and returns it as RFC 8460 4.5
// writes it. On failure it returns what is wrong.
func tlsaRecord(s string) (string, string) {
	var b strings.Builder
	i := 0
	var mtype int
	for f, name := range []string{"usage", "selector", "matching type"} {
		for i < len(s) && isWSP(s[i]) {
			i++
		}
		start, n := i, 0
		for i < len(s) && isDigit(s[i]) && i-start < 3 {
			n = n*10 + int(s[i]-'0')
			i++
		}
		if i == start || n > 255 || i < len(s) && !isWSP(s[i]) {
			return "", fmt.Sprintf("invalid %s, expected a number from 0 to 255", name)
		}
		b.WriteString(s[start:i])
		b.WriteByte(' ')
		if f == 2 {
			mtype = n
		}
	}
	digits := 0
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case isWSP(c):
		case isHexDigit(c):
			if 'a' <= c && c <= 'f' {
				c -= 'a' - 'A'
			}
			b.WriteByte(c)
			digits++
		default:
			return "", fmt.Sprintf("invalid character %s in the certificate association data, expected hexadecimal digits", quoted.Char(s, i))
		}
	}
	switch {
	case digits == 0:
		return "", "no certificate association data"
	case digits%2 != 0:
		return "", "odd number of hexadecimal digits in the certificate association data"
	case mtype == 1 && digits != 64:
		return "", fmt.Sprintf("%d bytes of data for matching type 1 (SHA2-256), expected 32", digits/2)
	case mtype == 2 && digits != 128:
		return "", fmt.Sprintf("%d bytes of data for matching type 2 (SHA2-512), expected 64", digits/2)
	}
	return b.String(), ""
}

// validate checks p as Report.Validate checks the policies of a report, and
// returns a *SyntaxError whose Field starts at "policy", or nil: the policy
// type is "sts", "tlsa" or "no-policy-found" (RFC 8460 4.4), the policy
// domain and mx-host patterns are A-label names, and the policy-string is
// at most mtasts.MaxPolicySize bytes of lines without control characters.
// A Policy built by a Target with a zero Recipient fails it: its policy
// domain is empty. The Recorder refuses a policy that fails it.
func (p Policy) validate() error {
	v := validator{}
	v.policy("policy", &p)
	return v.err
}
