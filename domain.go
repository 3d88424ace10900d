package mtasts

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Domain is a DNS domain name, in its ASCII form (with IDNA A-labels) and, for
// internationalized names, its Unicode form (with U-labels). Both are lower
// case and have no trailing dot.
type Domain struct {
	// ASCII is the name as used in DNS, e.g. "xn--bcher-kva.example".
	ASCII string
	// Unicode is the name with U-labels, e.g. "bücher.example"; empty when
	// the name has no internationalized labels, i.e. when it equals ASCII.
	Unicode string
}

// idnaProfile converts between U-labels and A-labels with the checks for
// host names: UTS #46 lookup mapping, the Bidi rule, STD3 characters, and
// the DNS length limits (RFC 5891, RFC 1035 2.3.4).
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
)

// maxDomainInput bounds the input ParseDomain converts. The A-label form
// may have 253 bytes; U-labels, and characters that UTS #46 maps to ASCII
// (full-width letters, 3 bytes each), make the input longer, but not by
// more than this.
const maxDomainInput = 1024

// ParseDomain parses a domain name given with U-labels, A-labels or a mix,
// in any case, with or without one trailing dot. For a name that is empty,
// too long, has an empty or overlong label, invalid characters or an invalid
// IDNA label, it returns an error wrapping ErrInvalidDomain that says what is
// wrong. A Domain it returns passes Validate.
func ParseDomain(s string) (Domain, error) {
	name := strings.TrimSuffix(s, ".")
	switch {
	case name == "":
		return Domain{}, &domainError{input: s, what: "empty name"}
	case len(name) > maxDomainInput:
		return Domain{}, &domainError{input: s, what: "longer than 253 bytes"}
	}
	if strings.HasSuffix(name, ".") {
		return Domain{}, &domainError{input: s, what: "empty label"}
	}
	d, err := idnaForms(name)
	if err != nil {
		return Domain{}, &domainError{input: s, cause: err}
	}
	if msg := checkHostName(d.ASCII); msg != "" {
		// The IDNA profile enforces the same rules but for one: an
		// all-numeric last label.
		return Domain{}, &domainError{input: s, what: msg}
	}
	return d, nil
}

// idnaForms returns name's A-label form and, when it differs, its Unicode
// form (UTS #46 under idnaProfile). A name of only lower-case letters,
// digits, hyphens and dots, with no label that IDNA reads specially, is
// its own A-label and Unicode form: it is returned as it is, without the
// conversions' cost, which most names, looked up once per message, spare.
func idnaForms(name string) (Domain, error) {
	if plainLDH(name) {
		return Domain{ASCII: name}, nil
	}
	return idnaConvert(name)
}

// idnaConvert returns name's forms as idnaForms does, through IDNA whatever
// name is.
func idnaConvert(name string) (Domain, error) {
	ascii, err := idnaProfile.ToASCII(name)
	if err != nil {
		return Domain{}, err
	}
	ascii = strings.ToLower(ascii)
	unicode, err := idnaProfile.ToUnicode(ascii)
	if err != nil {
		return Domain{}, err
	}
	if unicode == ascii {
		unicode = ""
	}
	return Domain{ASCII: ascii, Unicode: unicode}, nil
}

// plainLDH reports whether IDNA would leave name as it is: it holds only
// lower-case letters, digits, hyphens and dots, and no label with hyphens
// in its third and fourth places, which UTS #46's CheckHyphens refuses
// and which begin an A-label ("xn--"). The other rules IDNA checks of such
// a name (label and name lengths, hyphens at a label's ends) are
// checkHostName's too.
func plainLDH(name string) bool {
	label := 0 // the index of the label's first byte
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-':
			if i-label == 3 && name[i-1] == '-' {
				return false
			}
		case c == '.':
			label = i + 1
		default:
			return false
		}
	}
	return true
}

// Validate checks that d is a domain name in the form ParseDomain returns,
// as LookupRecord, FetchPolicy and Get do before they use it in a DNS name or
// a URL: a Domain built by hand, not by ParseDomain, could otherwise carry a
// port, a user, a path or a query into the policy URL
// ("evil.example@127.0.0.1"), junk into a DNS name, or a control sequence
// into a log line.
//
// d.ASCII must be 1 to 253 bytes of labels of 1 to 63 lower-case letters,
// digits and hyphens, not starting or ending with a hyphen, separated by
// single dots, with no trailing dot and a last label that is not all
// digits. Upper case is refused: names compare case-insensitively (RFC
// 4343), and a Domain holds one spelling of each, so that a cache keyed by
// it keeps one entry a name; ParseDomain lower-cases. d.Unicode, when not
// empty, must be UTF-8 without control characters and be d.ASCII with its
// A-labels converted to U-labels, as ParseDomain gives it, or d.ASCII
// itself.
//
// It returns nil for a valid name, without allocating when d.Unicode is
// empty or equals d.ASCII, and otherwise an error wrapping ErrInvalidDomain
// that quotes the name and says what is wrong, and at which byte.
func (d Domain) Validate() error {
	if msg := checkHostName(d.ASCII); msg != "" {
		return &domainError{input: d.ASCII, what: msg}
	}
	if d.Unicode == "" || d.Unicode == d.ASCII {
		return nil
	}
	return d.validateUnicode()
}

// validateUnicode checks d.Unicode, not empty, for Validate, once d.ASCII
// has passed: String and log records print it, so it must be text without
// control characters, and it must name the same domain as d.ASCII.
func (d Domain) validateUnicode() error {
	u := d.Unicode
	for i := 0; i < len(u); {
		r, size := utf8.DecodeRuneInString(u[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return &domainError{input: u, what: fmt.Sprintf("Unicode form: invalid byte %s at byte %d, expected UTF-8", quoteChar(u, i), i)}
		case unicode.IsControl(r):
			// C0, DEL and C1 controls: ESC would start a terminal
			// escape sequence in a log line.
			return &domainError{input: u, what: fmt.Sprintf("Unicode form: control character %s at byte %d", quoteChar(u, i), i)}
		}
		i += size
	}
	// RFC 5890 2.3.2.1: the U-label and A-label of a name are two forms of
	// one label, each obtained from the other; the Unicode form must be
	// the one d.ASCII gives, so that what is shown is what is looked up.
	want, err := idnaProfile.ToUnicode(d.ASCII)
	if err != nil {
		return &domainError{input: d.ASCII, cause: err}
	}
	if u != want {
		return &domainError{input: u, what: "Unicode form is not the Unicode form of the ASCII form " + quote(d.ASCII) + ", which is " + quote(want)}
	}
	return nil
}

// checkHostName returns what is wrong with name as a host name in A-label
// form and lower case, or "" when nothing is. It is a loop over bytes, and allocates only to
// describe a fault.
func checkHostName(name string) string {
	// RFC 1035 2.3.4: 255 octets on the wire are 253 characters in
	// text, without the trailing dot.
	switch {
	case name == "":
		return "empty name"
	case len(name) > 253:
		return "longer than 253 bytes"
	}
	labelStart := 0
	numeric := true
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			// RFC 1035 2.3.1 and RFC 1123 2.1: letters, digits and
			// hyphens; a label may start with a digit.
			c := name[i]
			switch {
			case '0' <= c && c <= '9':
			case charClass[c]&classLDH != 0:
				numeric = false
			case 'A' <= c && c <= 'Z':
				// RFC 4343: the same name as in lower case; a
				// Domain holds that one spelling.
				return fmt.Sprintf("upper-case letter %s at byte %d, expected lower case (ParseDomain lower-cases)", quoteChar(name, i), i)
			default:
				return fmt.Sprintf("invalid character %s at byte %d, expected letters, digits, \"-\" and \".\"", quoteChar(name, i), i)
			}
			continue
		}
		label := name[labelStart:i]
		switch {
		case label == "" && i == len(name):
			return "trailing dot"
		case label == "":
			return "empty label"
		case len(label) > 63:
			return "label longer than 63 bytes"
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Sprintf("label %s starts or ends with \"-\"", quote(label))
		}
		if i < len(name) {
			labelStart = i + 1
			numeric = true
		}
	}
	if numeric {
		// RFC 3696 2: a top-level domain is not all-numeric; such a
		// name reads as an IPv4 address.
		return "all-numeric last label, expected a domain name, not an address"
	}
	return ""
}

// domainError is an invalid domain name, given to ParseDomain or found by
// Validate.
type domainError struct {
	input string // the name as given
	what  string // what is wrong, when cause does not say
	cause error  // from IDNA conversion, or nil
}

func (e *domainError) Error() string {
	s := "mtasts: invalid domain name " + quote(e.input) + ": "
	if e.cause != nil {
		// The IDNA error repeats the label at fault, already shown.
		return s + string(appendEscaped(nil, e.cause.Error(), 2*maxQuoted, 0))
	}
	return s + e.what
}

// Unwrap returns ErrInvalidDomain and the cause, if any.
func (e *domainError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrInvalidDomain}
	}
	return []error{ErrInvalidDomain, e.cause}
}

// String returns the name for display: the Unicode form when the name is
// internationalized, else the ASCII form.
func (d Domain) String() string {
	if d.Unicode != "" {
		return d.Unicode
	}
	return d.ASCII
}

// equalFoldASCII reports whether a and b are equal under ASCII case folding.
// Domain names compare case-insensitively (RFC 4343); their A-label form is
// ASCII, so no Unicode folding is needed. It does not allocate.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
