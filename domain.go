package mtasts

import (
	"errors"
	"fmt"
	"strings"

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

// errEmptyDomain is returned for an empty name.
var errEmptyDomain = errors.New("mtasts: empty domain name")

// ParseDomain parses a domain name given with U-labels, A-labels or a mix,
// in any case, with or without one trailing dot. It returns an error that
// says what is wrong for a name that is empty, too long, has an empty or
// overlong label, invalid characters or an invalid IDNA label.
func ParseDomain(s string) (Domain, error) {
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return Domain{}, errEmptyDomain
	}
	if strings.HasSuffix(name, ".") {
		return Domain{}, fmt.Errorf("mtasts: invalid domain name %q: empty label", s)
	}
	ascii, err := idnaProfile.ToASCII(name)
	if err != nil {
		return Domain{}, fmt.Errorf("mtasts: invalid domain name %q: %w", s, err)
	}
	ascii = strings.ToLower(ascii)
	unicode, err := idnaProfile.ToUnicode(ascii)
	if err != nil {
		return Domain{}, fmt.Errorf("mtasts: invalid domain name %q: %w", s, err)
	}
	if unicode == ascii {
		unicode = ""
	}
	return Domain{ASCII: ascii, Unicode: unicode}, nil
}

// Name returns the name for display: the Unicode form when the name is
// internationalized, else the ASCII form.
func (d Domain) Name() string {
	if d.Unicode != "" {
		return d.Unicode
	}
	return d.ASCII
}

// String returns d.Name().
func (d Domain) String() string {
	return d.Name()
}

// LogString returns the name for logs: "unicode/ascii" for an
// internationalized name, so both forms can be searched for, else the ASCII
// form.
func (d Domain) LogString() string {
	if d.Unicode == "" || d.Unicode == d.ASCII {
		return d.ASCII
	}
	return d.Unicode + "/" + d.ASCII
}

// IsZero reports whether d is the zero Domain.
func (d Domain) IsZero() bool {
	return d == Domain{}
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
