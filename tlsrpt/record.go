package tlsrpt

import (
	"fmt"
	"strings"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/quoted"
)

// Record is a TLSRPT TXT record, published at _smtp._tls.<domain> (RFC 8460
// 3).
// Its version is always TLSRPTv1, the only one ParseRecord accepts and the
// one String writes.
type Record struct {
	// RUA lists the URIs reports are to be sent to, in the order
	// published. RFC 8460 3 supports the schemes mailto and https; URIs
	// of other schemes are valid in the record and kept here, but
	// reporters skip them (see SupportedRUA).
	RUA []string
	// Extensions holds the fields other than v and rua, in the order
	// published; of a repeated field only the first is kept. RFC 8460 3:
	// "unknown fields SHALL be ignored".
	Extensions []mtasts.Pair
}

// String returns the record in the form to publish in DNS, e.g.
// "v=TLSRPTv1; rua=mailto:tlsrpt@example.com". ParseRecord gives back an
// equal Record.
func (r Record) String() string {
	var b strings.Builder
	b.WriteString(recordVersion)
	b.WriteString("; rua=")
	b.WriteString(strings.Join(r.RUA, ","))
	for _, e := range r.Extensions {
		b.WriteString("; ")
		b.WriteString(e.Key)
		b.WriteByte('=')
		b.WriteString(e.Value)
	}
	return b.String()
}

// SupportedRUA returns the rua URIs of the two schemes RFC 8460 3 supports,
// "mailto" and "https" (compared case-insensitively, RFC 3986 3.1), in the
// order published. A record whose list is empty asks for reports that no
// reporter can send.
func (r *Record) SupportedRUA() []string {
	var l []string
	for _, u := range r.RUA {
		if isSupportedURI(u) {
			l = append(l, u)
		}
	}
	return l
}

// isSupportedURI reports whether uri, a rua URI, has one of the schemes RFC
// 8460 3 supports: "mailto" or "https", in any case (RFC 3986 3.1).
func isSupportedURI(uri string) bool {
	scheme, _, ok := strings.Cut(uri, ":")
	return ok && (strings.EqualFold(scheme, "mailto") || strings.EqualFold(scheme, "https"))
}

// recordVersion is tlsrpt-version = %s"v=TLSRPTv1", case-sensitive (RFC 7405).
const recordVersion = "v=TLSRPTv1"

// The parser below is a loop over bytes with an offset, one rule of the
// ABNF of RFC 8460 3 (with URI from RFC 3986 3 and the core rules of RFC
// 5234 B.1) per helper. It does no I/O, keeps substrings of its input, and
// returns a *SyntaxError for anything the grammar does not allow.

// ParseRecord parses a TLSRPT TXT record (RFC 8460 3), given as the
// concatenation of the record's strings.
//
// A record that does not start with the version field "v=TLSRPTv1" is not a
// TLSRPT record: ParseRecord returns istlsrpt false and no error, and the
// caller ignores the record. A record that starts with it but breaks the
// grammar gives istlsrpt true and a *SyntaxError wrapping ErrRecordSyntax
// that names the field at fault.
//
// Unknown fields are kept as extensions (RFC 8460 3: "unknown fields SHALL be
// ignored"). The rua field is required. A field named rua must hold a valid
// URI list, though its text might also pass as an extension value: the name
// says what the publisher meant. Of a repeated field the first is used and
// the others are checked for syntax only, as RFC 8461 3.2 rules for the
// sibling MTA-STS record; RFC 8460 says nothing of repeated fields.
func ParseRecord(txt string) (record *Record, istlsrpt bool, err error) {
	// RFC 8460 3: "records that do not begin with "v=TLSRPTv1;" are
	// discarded". The grammar allows whitespace before the ";"
	// (field-delim = *WSP ";" *WSP), so a record is one when the version
	// is followed by a delimiter, whitespace or the end; "v=TLSRPTv10" is
	// a record of another version.
	if !strings.HasPrefix(txt, recordVersion) {
		return nil, false, nil
	}
	p := &recordParser{s: txt, i: len(recordVersion)}
	if !p.end() && p.s[p.i] != ';' && !isWSP(p.s[p.i]) {
		return nil, false, nil
	}
	r, err := p.record()
	if err != nil {
		return nil, true, err
	}
	return r, true, nil
}

// recordParser holds the input and the offset of the next byte.
type recordParser struct {
	s string
	i int
}

func (p *recordParser) end() bool { return p.i >= len(p.s) }

func (p *recordParser) errorf(field, format string, args ...any) error {
	return &SyntaxError{Kind: ErrRecordSyntax, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// record parses the rest of
//
//	tlsrpt-record = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
//
// after the version.
func (p *recordParser) record() (*Record, error) {
	r := &Record{}
	var exts extensions
	prev := "v"
	for {
		more, err := p.fieldDelim(prev)
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		name, err := p.field(r, &exts)
		if err != nil {
			return nil, err
		}
		prev = name
	}
	r.Extensions = exts.list
	if r.RUA == nil {
		// tlsrpt-field: "Note that the tlsrpt-rua record is required."
		return nil, p.errorf("rua", "missing, expected \"rua=\" and a comma-separated list of mailto: or https: URIs")
	}
	return r, nil
}

// fieldDelim parses field-delim = *WSP ";" *WSP, or the end of the record.
// It reports whether a field follows. prev names the field before, for
// errors. The final field-delim of a record is optional.
func (p *recordParser) fieldDelim(prev string) (more bool, err error) {
	start := p.i
	p.skipWSP()
	if p.end() {
		if p.i > start {
			return false, p.errorf(prev, "whitespace at the end of the record, expected \";\" or nothing after the field")
		}
		return false, nil
	}
	if p.s[p.i] != ';' {
		return false, p.errorf(prev, "unexpected %s after the field, expected \";\" between fields", quoted.Char(p.s, p.i))
	}
	p.i++
	p.skipWSP()
	// The optional trailing field-delim.
	return !p.end(), nil
}

// field parses tlsrpt-field = tlsrpt-rua / tlsrpt-extension, storing it in r
// or exts, and returns its name.
func (p *recordParser) field(r *Record, exts *extensions) (string, error) {
	name, err := p.extName()
	if err != nil {
		return name, err
	}
	if p.end() || p.s[p.i] != '=' {
		return name, p.errorf(name, "expected \"=\" after the field name")
	}
	p.i++
	if name == "rua" {
		// tlsrpt-rua = %s"rua=" ..., case-sensitive: "RUA=" is an
		// extension.
		rua, err := p.ruaValue()
		if err != nil {
			return name, err
		}
		if r.RUA == nil {
			r.RUA = rua
		}
		return name, nil
	}
	value, err := p.extValue(name)
	if err != nil {
		return name, err
	}
	if name != "v" {
		// A repeated v is a valid extension by the grammar; the
		// version was read already.
		exts.add(name, value)
	}
	return name, nil
}

// extName parses tlsrpt-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" /
// "-" / "."). The names v and rua follow this rule too.
func (p *recordParser) extName() (string, error) {
	start := p.i
	for !p.end() && isExtNameChar(p.s[p.i]) {
		p.i++
	}
	name := p.s[start:p.i]
	switch {
	case name == "" && !p.end():
		return name, p.errorf("", "unexpected %s, expected a field name (a letter or digit followed by letters, digits, \"_\", \"-\" or \".\")", quoted.Char(p.s, p.i))
	case name == "" || !isAlnum(name[0]):
		return name, p.errorf(name, "invalid field name, expected a letter or digit followed by up to 31 letters, digits, \"_\", \"-\" or \".\"")
	case len(name) > 32:
		return name, p.errorf(name, "field name longer than 32 characters")
	}
	return name, nil
}

// extValue parses tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E): printable
// US-ASCII other than "=" and ";", no spaces.
func (p *recordParser) extValue(name string) (string, error) {
	start := p.i
	for !p.end() && isExtValueChar(p.s[p.i]) {
		p.i++
	}
	value := p.s[start:p.i]
	if !p.end() && p.s[p.i] != ';' && !isWSP(p.s[p.i]) {
		return value, p.errorf(name, "invalid character %s in value, expected printable US-ASCII other than \"=\", \";\" and space", quoted.Char(p.s, p.i))
	}
	if value == "" {
		return value, p.errorf(name, "empty value")
	}
	return value, nil
}

// ruaValue parses the value of
//
//	tlsrpt-rua = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
func (p *recordParser) ruaValue() ([]string, error) {
	var rua []string
	for {
		u, err := p.uri()
		if err != nil {
			return nil, err
		}
		rua = append(rua, u)
		// *WSP "," *WSP, or the end of the field.
		save := p.i
		p.skipWSP()
		if p.end() || p.s[p.i] != ',' {
			p.i = save
			return rua, nil
		}
		p.i++
		p.skipWSP()
	}
}

// uri parses tlsrpt-uri = URI (RFC 3986 3), in which "commas (ASCII 0x2C),
// exclamation points (ASCII 0x21), and semicolons (ASCII 0x3B) MUST be
// encoded" (RFC 8460 3). It takes the longest run of URI characters, then
// checks it against the URI grammar.
func (p *recordParser) uri() (string, error) {
	start := p.i
	for !p.end() && isURIChar(p.s[p.i]) {
		p.i++
	}
	u := p.s[start:p.i]
	if !p.end() {
		switch c := p.s[p.i]; {
		case c == '!':
			end := p.i
			for end < len(p.s) && (isURIChar(p.s[end]) || p.s[end] == '!') {
				end++
			}
			return "", p.errorf("rua", "%q in URI %s must be percent-encoded as %%21 (RFC 8460 3)", c, quoted.String(p.s[start:end]))
		case c != ';' && c != ',' && !isWSP(c):
			return "", p.errorf("rua", "invalid character %s in URI %s, expected a URI (RFC 3986) ended by \",\", \";\" or the end", quoted.Char(p.s, p.i), quoted.String(u))
		}
	}
	if u == "" {
		return "", p.errorf("rua", "empty URI, expected a mailto: or https: URI")
	}
	if msg := checkURI(u); msg != "" {
		return "", p.errorf("rua", "invalid URI %s: %s", quoted.String(u), msg)
	}
	return u, nil
}

func (p *recordParser) skipWSP() {
	for !p.end() && isWSP(p.s[p.i]) {
		p.i++
	}
}

// checkURI checks u, made of URI characters only, against
//
//	URI       = scheme ":" hier-part [ "?" query ] [ "#" fragment ]
//	hier-part = "//" authority path-abempty / path-absolute
//	          / path-rootless / path-empty
//
// (RFC 3986 3). It returns what is wrong, or "".
func checkURI(u string) string {
	n, msg := uriScheme(u)
	if msg != "" {
		return msg
	}
	rest := u[n+1:]
	// fragment = *( pchar / "/" / "?" ), after the one "#".
	rest, fragment, hasFragment := strings.Cut(rest, "#")
	if hasFragment {
		if msg := checkPchars(fragment, "/?", "fragment"); msg != "" {
			return msg
		}
	}
	// query = *( pchar / "/" / "?" ), after the first "?".
	rest, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery {
		if msg := checkPchars(query, "/?", "query"); msg != "" {
			return msg
		}
	}
	path := rest
	if strings.HasPrefix(rest, "//") {
		// "//" authority path-abempty; the authority ends at the first
		// "/" (the query and fragment are cut off already).
		authority := rest[2:]
		path = ""
		if i := strings.IndexByte(authority, '/'); i >= 0 {
			authority, path = authority[:i], authority[i:]
		}
		if msg := uriAuthority(authority); msg != "" {
			return msg
		}
	}
	// path-abempty, path-absolute, path-rootless and path-empty are all
	// pchar and "/"; the "//" case was taken above.
	return checkPchars(path, "/", "path")
}

// uriScheme parses scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) and
// the ":" after it, returning the offset of the ":".
func uriScheme(u string) (int, string) {
	i := strings.IndexByte(u, ':')
	if i <= 0 {
		return 0, "no scheme, expected a URI such as mailto:reports@example.com"
	}
	if !isAlpha(u[0]) {
		return 0, fmt.Sprintf("invalid scheme %s, expected a letter followed by letters, digits, \"+\", \"-\" or \".\"", quoted.String(u[:i]))
	}
	for j := 1; j < i; j++ {
		if c := u[j]; !isAlnum(c) && c != '+' && c != '-' && c != '.' {
			return 0, fmt.Sprintf("invalid scheme %s, expected a letter followed by letters, digits, \"+\", \"-\" or \".\"", quoted.String(u[:i]))
		}
	}
	return i, ""
}

// uriAuthority checks authority = [ userinfo "@" ] host [ ":" port ] (RFC
// 3986 3.2), with
//
//	userinfo   = *( unreserved / pct-encoded / sub-delims / ":" )
//	host       = IP-literal / IPv4address / reg-name
//	IP-literal = "[" ( IPv6address / IPvFuture  ) "]"
//	reg-name   = *( unreserved / pct-encoded / sub-delims )
//	port       = *DIGIT
//
// An IP literal is checked for its characters only.
func uriAuthority(a string) string {
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		if msg := checkChars(a[:i], ":", "userinfo"); msg != "" {
			return msg
		}
		a = a[i+1:]
	}
	host, port := a, ""
	if strings.HasPrefix(a, "[") {
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "\"[\" without \"]\" in the host"
		}
		for j := 1; j < end; j++ {
			if c := a[j]; !isHexDigit(c) && c != ':' && c != '.' && !isUnreserved(c) && !isSubDelim(c) {
				return fmt.Sprintf("invalid character %s in the IP literal", quoted.Char(a, j))
			}
		}
		host, a = "", a[end+1:]
		if a != "" && a[0] != ':' {
			return fmt.Sprintf("unexpected %s after the IP literal, expected \":\" and a port", quoted.Char(a, 0))
		}
		if a != "" {
			port = a[1:]
		}
	} else if i := strings.IndexByte(a, ':'); i >= 0 {
		host, port = a[:i], a[i+1:]
	}
	if msg := checkChars(host, "", "host"); msg != "" {
		return msg
	}
	for j := 0; j < len(port); j++ {
		if !isDigit(port[j]) {
			return fmt.Sprintf("invalid port %s, expected digits", quoted.String(port))
		}
	}
	return ""
}

// checkPchars checks a run of pchar = unreserved / pct-encoded / sub-delims /
// ":" / "@" and the characters of extra.
func checkPchars(s, extra, what string) string {
	return checkChars(s, ":@"+extra, what)
}

// checkChars checks a run of unreserved / pct-encoded / sub-delims and the
// characters of extra, naming what in its message.
func checkChars(s, extra, what string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isUnreserved(c) || isSubDelim(c) || strings.IndexByte(extra, c) >= 0:
		case c == '%':
			// pct-encoded = "%" HEXDIG HEXDIG
			if i+2 >= len(s) || !isHexDigit(s[i+1]) || !isHexDigit(s[i+2]) {
				return fmt.Sprintf("\"%%\" not followed by two hex digits in the %s, expected percent-encoding", what)
			}
			i += 2
		default:
			return fmt.Sprintf("invalid character %s in the %s", quoted.Char(s, i), what)
		}
	}
	return ""
}

// extensions collects extension fields, keeping the first of each name. A
// short list is searched; past a few dozen names a set keeps the work
// linear.
type extensions struct {
	list []mtasts.Pair
	seen map[string]struct{}
}

// add appends the field unless one with its name is present.
func (x *extensions) add(key, value string) {
	const listMax = 32
	if x.seen != nil {
		if _, ok := x.seen[key]; ok {
			return
		}
		x.seen[key] = struct{}{}
	} else {
		for _, e := range x.list {
			if e.Key == key {
				return
			}
		}
		if len(x.list) == listMax {
			x.seen = make(map[string]struct{}, 2*listMax)
			for _, e := range x.list {
				x.seen[e.Key] = struct{}{}
			}
			x.seen[key] = struct{}{}
		}
	}
	x.list = append(x.list, mtasts.Pair{Key: key, Value: value})
}

// Character classes of the grammars, one bit each, looked up in a table.
const (
	classAlpha    = 1 << iota // ALPHA
	classDigit                // DIGIT
	classHex                  // HEXDIG, either case
	classExtName              // ALPHA / DIGIT / "_" / "-" / "."
	classExtValue             // %x21-3A / %x3C / %x3E-7E
	classUnreserv             // ALPHA / DIGIT / "-" / "." / "_" / "~"
	classSubDelim             // "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
	classURI                  // the characters a tlsrpt-uri may hold
)

var charClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alpha := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
		digit := '0' <= b && b <= '9'
		if alpha {
			t[c] |= classAlpha
		}
		if digit {
			t[c] |= classDigit
		}
		if digit || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F' {
			t[c] |= classHex
		}
		if alpha || digit || b == '_' || b == '-' || b == '.' {
			t[c] |= classExtName
		}
		if b >= 0x21 && b <= 0x7e && b != ';' && b != '=' {
			t[c] |= classExtValue
		}
		unreserved := alpha || digit || b == '-' || b == '.' || b == '_' || b == '~'
		if unreserved {
			t[c] |= classUnreserv
		}
		subDelim := strings.IndexByte("!$&'()*+,;=", b) >= 0
		if subDelim {
			t[c] |= classSubDelim
		}
		// unreserved / pct-encoded / reserved, less the three RFC 8460 3
		// requires encoded.
		genDelim := strings.IndexByte(":/?#[]@", b) >= 0
		if (unreserved || subDelim || genDelim || b == '%') && b != ',' && b != '!' && b != ';' {
			t[c] |= classURI
		}
	}
	return t
}()

func isWSP(c byte) bool          { return c == ' ' || c == '\t' }
func isAlpha(c byte) bool        { return charClass[c]&classAlpha != 0 }
func isDigit(c byte) bool        { return charClass[c]&classDigit != 0 }
func isAlnum(c byte) bool        { return charClass[c]&(classAlpha|classDigit) != 0 }
func isHexDigit(c byte) bool     { return charClass[c]&classHex != 0 }
func isExtNameChar(c byte) bool  { return charClass[c]&classExtName != 0 }
func isExtValueChar(c byte) bool { return charClass[c]&classExtValue != 0 }
func isUnreserved(c byte) bool   { return charClass[c]&classUnreserv != 0 }
func isSubDelim(c byte) bool     { return charClass[c]&classSubDelim != 0 }
func isURIChar(c byte) bool      { return charClass[c]&classURI != 0 }
