package mtasts

import (
	"strconv"
	"strings"
	"time"

	"github.com/mtasts-go/mtasts/internal/policytext"
)

// Record is an MTA-STS TXT record, published at _mta-sts.<domain>
// (RFC 8461 3.1).
type Record struct {
	// Version is "STSv1".
	Version string
	// ID identifies the current policy: 1 to 32 letters and digits. A new
	// ID tells senders that the policy changed.
	ID string
	// Extensions holds the fields other than v and id, in the order
	// published; of a repeated field only the first is kept.
	Extensions []Pair
}

// Pair is a key and value of a record or policy extension field.
type Pair struct {
	Key   string
	Value string
}

// String returns the record in the form to publish in DNS, e.g.
// "v=STSv1; id=20160831085700Z". ParseRecord gives back an equal Record.
func (r Record) String() string {
	var b strings.Builder
	b.WriteString("v=")
	b.WriteString(r.Version)
	b.WriteString("; id=")
	b.WriteString(r.ID)
	for _, e := range r.Extensions {
		b.WriteString("; ")
		b.WriteString(e.Key)
		b.WriteByte('=')
		b.WriteString(e.Value)
	}
	return b.String()
}

// Mode is the policy mode: what a sender does when a policy fails to
// validate (RFC 8461 5).
type Mode string

// The modes of RFC 8461 3.2 and 5.
const (
	// ModeEnforce: do not deliver to MX hosts that fail MX matching or
	// certificate validation, or that lack STARTTLS.
	ModeEnforce Mode = "enforce"
	// ModeTesting: deliver as if there were no failure, but report it
	// (RFC 8460).
	ModeTesting Mode = "testing"
	// ModeNone: treat the domain as having no active policy.
	ModeNone Mode = "none"
)

// STSMX is an "mx" pattern of a policy: an exact host name, or with Wildcard
// set, any host one label below Domain (RFC 8461 3.2 and 4.1).
type STSMX struct {
	// Wildcard is set for a pattern "*.<Domain>".
	Wildcard bool
	// Domain is the pattern without its "*." prefix.
	Domain Domain
}

// String returns the pattern as written in a policy: its A-label form,
// with "*." in front for a wildcard.
func (mx STSMX) String() string {
	if mx.Wildcard {
		return "*." + mx.Domain.ASCII
	}
	return mx.Domain.ASCII
}

// MaxAgeLimit is the largest max_age in seconds that RFC 8461 3.2 allows:
// 31557600, a year.
const MaxAgeLimit = 31557600

// Policy is an MTA-STS policy, as served at
// https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 3.2).
type Policy struct {
	// Version is "STSv1".
	Version string
	// Mode says what to do when a delivery fails to validate.
	Mode Mode
	// MX lists the patterns of the MX hosts allowed to receive mail; it is
	// empty only in mode none.
	MX []STSMX
	// MaxAgeSeconds is max_age as published. The grammar allows up to ten
	// digits; values above MaxAgeLimit are kept here as published, and
	// MaxAge caps them.
	MaxAgeSeconds int
	// Extensions holds the keys other than version, mode, mx and max_age,
	// in the order published; of a repeated key only the first is kept.
	Extensions []Pair
}

// MaxAge returns how long the policy may be cached: MaxAgeSeconds, capped
// at MaxAgeLimit (RFC 8461 3.2, "maximum value of 31557600").
func (p *Policy) MaxAge() time.Duration {
	return time.Duration(min(max(p.MaxAgeSeconds, 0), MaxAgeLimit)) * time.Second
}

// String returns the policy in the form to publish at WellKnownPath
// (RFC 8461 3.2), the body PolicyHandler serves. The format is fixed, and
// stays so from release to release; testdata/policystring holds it byte for
// byte:
//
//   - one line per field, "key: value": the key, a colon, one space, the
//     value; every line, the last one included, ends in CRLF ("\r\n": the
//     "CRLF-separated key/value pairs" of RFC 8461 3.2); no blank lines, and
//     no whitespace but that space and what a value holds;
//   - the keys in this order: "version"; "mode"; one "mx" line per element
//     of MX, in order; "max_age"; then the Extensions, in order;
//   - an mx pattern as STSMX.String writes it: A-labels, "*." in front of a
//     wildcard; max_age as MaxAgeSeconds in decimal, as held (not capped
//     at MaxAgeLimit).
//
// Values are written as held, without checks: ParsePolicy gives back an
// equal Policy when p is valid, e.g. when it came from ParsePolicy.
func (p Policy) String() string {
	var b strings.Builder
	line := func(k, v string) {
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteString("\r\n")
	}
	line("version", p.Version)
	line("mode", string(p.Mode))
	for _, mx := range p.MX {
		line("mx", mx.String())
	}
	line("max_age", strconv.Itoa(p.MaxAgeSeconds))
	for _, e := range p.Extensions {
		line(e.Key, e.Value)
	}
	return b.String()
}

// Matches reports whether host, a candidate MX host, is allowed by one of the
// policy's mx patterns (RFC 8461 4.1). Names compare case-insensitively in
// their A-label form; a wildcard "*.example.com" matches exactly one label in
// its place: "mail.example.com", but not "example.com" nor
// "a.mail.example.com". Matches does not look at the mode, and does not
// allocate.
func (p *Policy) Matches(host Domain) bool {
	h := strings.TrimSuffix(host.ASCII, ".")
	for _, mx := range p.MX {
		if !mx.Wildcard {
			if equalFoldASCII(h, mx.Domain.ASCII) {
				return true
			}
			continue
		}
		// RFC 8461 4.1: the wildcard matches the entire left-most label only.
		if i := strings.IndexByte(h, '.'); i > 0 && equalFoldASCII(h[i+1:], mx.Domain.ASCII) {
			return true
		}
	}
	return false
}

// ReportLines returns the policy as the "policy-string" of a TLS report
// wants it (RFC 8460 4.4, 4.5): the lines of p.String() without their line
// endings, one "mx" element per pattern, names in A-labels. For the policy
// as the domain served it, with any errors it held, a tlsrpt.Recorder
// reports the text that FetchPolicy returned (cache.Result.PolicyText) line
// by line in the same way.
func (p *Policy) ReportLines() []string {
	return policytext.ReportLines(p.String())
}

// ReportMXHosts returns the policy's mx patterns as the "mx-host" list of a
// TLS report wants them (RFC 8460 4.4): in policy order, in A-labels ("the
// domain MUST consist of the Punycode-encoded A-labels"), a wildcard with
// its "*." prefix. It is empty, not nil, for a policy without patterns.
func (p *Policy) ReportMXHosts() []string {
	mx := make([]string, len(p.MX))
	for i, m := range p.MX {
		mx[i] = m.String()
	}
	return mx
}
