package mtasts

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The parsers below are loops over bytes with an offset, one rule of the
// ABNF (RFC 8461 3.1 and 3.2, with the core rules of RFC 5234 B.1) per
// helper. They do no I/O, keep substrings of their input instead of copying,
// and return a *SyntaxError for anything the grammar does not allow.

const recordVersion = "v=STSv1"

// ParseRecord parses an MTA-STS TXT record (RFC 8461 3.1), given as the
// concatenation of the record's strings.
//
// A record that does not start with the version field "v=STSv1" is not an
// MTA-STS record: ParseRecord returns ismtasts false and no error, and the
// caller ignores the record. A record that starts with it but breaks the
// grammar gives ismtasts true and a *SyntaxError wrapping ErrRecordSyntax
// that names the field at fault.
//
// Of a repeated field, the first is used and the others are checked for
// syntax only (RFC 8461 3.2, last paragraph).
func ParseRecord(txt string) (record *Record, ismtasts bool, err error) {
	// RFC 8461 3.1: "The TXT record MUST begin with the sts-version field".
	// The version field ends at a delimiter or the end; "v=STSv10" is a
	// record of another version, not an invalid STSv1 record.
	if !strings.HasPrefix(txt, recordVersion) {
		return nil, false, nil
	}
	i := len(recordVersion)
	if i < len(txt) && txt[i] != ';' && !isWSP(txt[i]) {
		return nil, false, nil
	}

	rerr := func(field, format string, args ...any) (*Record, bool, error) {
		return nil, true, &SyntaxError{Kind: ErrRecordSyntax, Field: field, Msg: fmt.Sprintf(format, args...)}
	}

	r := &Record{Version: "STSv1"}
	var exts extensions
	prev := "v"
	nfields := 0
	for {
		// sts-field-delim = *WSP ";" *WSP. Whitespace is allowed only
		// around a semicolon.
		j := skipWSP(txt, i)
		if j == len(txt) {
			if j > i {
				return rerr(prev, "whitespace at the end of the record, expected \";\" or nothing after the field")
			}
			break
		}
		if txt[j] != ';' {
			return rerr(prev, "unexpected %s after the field, expected \";\" between fields", quoteChar(txt, j))
		}
		i = skipWSP(txt, j+1)
		if i == len(txt) {
			// The optional trailing sts-field-delim.
			break
		}

		// sts-field = sts-id / sts-extension; both are name "=" value.
		start := i
		for i < len(txt) && isExtNameChar(txt[i]) {
			i++
		}
		name := txt[start:i]
		if name == "" || !isAlnum(name[0]) || len(name) > 32 {
			return rerr(name, "invalid field name, expected a letter or digit followed by up to 31 letters, digits, \"_\", \"-\" or \".\"")
		}
		if i == len(txt) || txt[i] != '=' {
			return rerr(name, "expected \"=\" after the field name")
		}
		i++
		start = i
		for i < len(txt) && isRecordValueChar(txt[i]) {
			i++
		}
		value := txt[start:i]
		if i < len(txt) && txt[i] != ';' && !isWSP(txt[i]) {
			return rerr(name, "invalid character %s in value, expected printable US-ASCII other than \"=\" and \";\"", quoteChar(txt, i))
		}
		if value == "" {
			return rerr(name, "empty value")
		}
		prev = name
		nfields++

		switch {
		case name == "id" && r.ID == "":
			// sts-id = %s"id=" 1*32(ALPHA / DIGIT)
			if len(value) > 32 || !isAlnumString(value) {
				return rerr(name, "invalid id %s, expected 1 to 32 letters and digits", quote(value))
			}
			r.ID = value
		case name == "id" || name == "v":
			// RFC 8461 3.2: for a duplicated field, all entries except
			// the first SHALL be ignored.
		default:
			exts.add(name, value)
		}
	}
	r.Extensions = exts.list
	if nfields == 0 || r.ID == "" {
		// sts-text-record requires at least one field, and sts-id is
		// required.
		return rerr("id", "missing, expected \"v=STSv1; id=<1 to 32 letters and digits>\"")
	}
	return r, true, nil
}

// extensions collects extension fields, keeping the first of each name
// (RFC 8461 3.2). A short list is searched; past a few dozen names, as in a
// hostile policy full of distinct keys, a set keeps the work linear.
type extensions struct {
	list []Pair
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
	x.list = append(x.list, Pair{key, value})
}

// policyAlloc lets a typical policy, with up to four mx lines, be parsed with
// a single allocation: the Policy and its first MX entries share one block.
type policyAlloc struct {
	p  Policy
	mx [4]STSMX
}

// ParsePolicy parses a policy resource (RFC 8461 3.2).
//
// It accepts exactly what the grammar allows, with two allowances for
// hand-written files: lines may end in LF or CRLF, mixed, and blank lines
// (empty or only whitespace) are skipped wherever they are. Keys and the
// values of version and mode are case-sensitive. Unknown keys are kept as
// extensions; of a repeated key other than mx the first is used and the
// others are checked for syntax only. version, mode and max_age are required,
// and at least one mx unless the mode is none. A max_age above MaxAgeLimit is
// kept as published (see Policy.MaxAge).
//
// Errors are *SyntaxError values wrapping ErrPolicySyntax, giving the line and
// key at fault and what was expected.
func ParsePolicy(s string) (*Policy, error) {
	pa := &policyAlloc{}
	pp := policyParser{p: &pa.p}
	pp.p.MX = pa.mx[:0]
	if len(s) > 1024 {
		// A long policy is a long mx list: size it once instead of
		// growing it line by line. Counting lines is a vector
		// instruction loop; it bounds the number of mx lines.
		if n := strings.Count(s, "\n") + 1; n > len(pa.mx) {
			pp.p.MX = make([]STSMX, 0, n)
		}
	}

	// Domain names are case-insensitive; mx names with upper case are
	// kept in lower case, copied into one buffer for all such names. The
	// buffer and its index are local here, where the compiler can place
	// the first appends on the stack.
	var (
		lower []byte // lower-cased mx names, see folds
		folds []foldedName
	)
	// The loop holds the path every line takes, with the helpers it calls
	// small enough to be inlined; what is wrong is described by helpers
	// called only on failure. ParsePolicy runs once a policy fetch, and
	// a cache hit does not run it, but a call per line costs a fifth of
	// its time (BenchmarkParsePolicy).
	for pos := 0; pos < len(s); {
		// sts-policy-term = LF / CRLF
		text := s[pos:]
		if end := strings.IndexByte(text, '\n'); end >= 0 {
			text = text[:end]
			pos += end + 1
		} else {
			pos = len(s)
		}
		if n := len(text) - 1; n >= 0 && text[n] == '\r' {
			text = text[:n]
		}
		pp.line++
		if pp.line == 1 && strings.HasPrefix(text, "\uFEFF") {
			return nil, pp.errorf("", "byte order mark at the start, expected a key")
		}
		// A blank line is outside the grammar; hand-written policies
		// have them, and they carry nothing, so they are skipped.
		if skipWSP(text, 0) == len(text) {
			continue
		}
		// sts-policy-field = sts-policy-ext-name sts-policy-field-delim value
		// sts-policy-ext-name = sts-policy-alphanum
		//                       *31(sts-policy-alphanum / "_" / "-" / ".")
		// sts-policy-field-delim = ":" *WSP
		// The names of the known fields follow the sts-policy-ext-name
		// rule too. The *WSP after sts-policy-field ends the value.
		i := 0
		for i < len(text) && isExtNameChar(text[i]) {
			i++
		}
		if i == 0 || i > 32 || i == len(text) || text[i] != ':' || !isAlnum(text[0]) {
			return nil, pp.fieldError(text)
		}
		key := text[:i]
		value := trimWSPRight(text[skipWSP(text, i+1):])
		if value == "" {
			return nil, pp.errorf(key, "empty value")
		}
		// RFC 8461 3.2: of a repeated key other than mx, the first is
		// used; the others are checked as extensions.
		switch key {
		case "version":
			if pp.p.Version != "" {
				break
			}
			// sts-policy-version-value = %s"STSv1"
			if value != "STSv1" {
				return nil, pp.errorf(key, "unsupported version %s, expected \"STSv1\"", quote(value))
			}
			pp.p.Version = "STSv1"
			continue
		case "mode":
			if pp.p.Mode != "" {
				break
			}
			mode, ok := parseMode(value)
			if !ok {
				return nil, pp.errorf(key, "invalid mode %s, expected \"enforce\", \"testing\" or \"none\"", quote(value))
			}
			pp.p.Mode = mode
			continue
		case "max_age":
			if pp.haveMaxAge {
				break
			}
			n, ok := parseMaxAge(value)
			if !ok {
				return nil, pp.errorf(key, "invalid max_age %s, expected 1 to 10 digits", quote(value))
			}
			pp.p.MaxAgeSeconds = n
			pp.haveMaxAge = true
			continue
		case "mx":
			// sts-policy-mx-value = ["*."] Domain; mx may repeat.
			mx, mustFold, msg := parseMXPattern(value)
			if msg != "" {
				return nil, pp.errorf(key, "invalid mx pattern %s: %s", quote(value), msg)
			}
			if mustFold {
				start := len(lower)
				lower = append(lower, mx.Domain.ASCII...)
				for i := start; i < len(lower); i++ {
					lower[i] = toLowerASCII(lower[i])
				}
				folds = append(folds, foldedName{len(pp.p.MX), start, len(lower)})
			}
			pp.p.MX = append(pp.p.MX, mx)
			continue
		}
		if err := pp.parseExtension(key, value); err != nil {
			return nil, err
		}
	}
	if err := pp.checkRequired(); err != nil {
		return nil, err
	}
	finishPolicy(pp.p, pp.exts.list, lower, folds)
	return pp.p, nil
}

// finishPolicy completes p: its extensions, a nil MX for none, and the
// lower-cased mx names as substrings of one string.
func finishPolicy(p *Policy, exts []Pair, lower []byte, folds []foldedName) {
	p.Extensions = exts
	if len(p.MX) == 0 {
		p.MX = nil
	}
	if len(folds) > 0 {
		all := string(lower)
		for _, f := range folds {
			p.MX[f.mx].Domain.ASCII = all[f.start:f.end]
		}
	}
}

// policyParser is ParsePolicy's state from one line to the next.
type policyParser struct {
	p          *Policy
	line       int // of the line being parsed, from 1
	haveMaxAge bool
	exts       extensions
}

// errorf returns the *SyntaxError for key on the current line. It is kept
// out of line: it runs only on failure, and inlined it would make each
// caller too large to inline.
//
//go:noinline
func (pp *policyParser) errorf(key, format string, args ...any) error {
	return &SyntaxError{Kind: ErrPolicySyntax, Line: pp.line, Field: key, Msg: fmt.Sprintf(format, args...)}
}

// fieldError returns the error for a line, not blank, that is not
// sts-policy-ext-name followed by ":", saying what is wrong.
func (pp *policyParser) fieldError(text string) error {
	i := 0
	for i < len(text) && isExtNameChar(text[i]) {
		i++
	}
	key := text[:i]
	switch {
	case key == "" || !isAlnum(key[0]):
		if isWSP(text[0]) {
			return pp.errorf("", "whitespace at the start of the line, expected a key")
		}
		return pp.errorf("", "expected a key (a letter or digit followed by letters, digits, \"_\", \"-\" or \".\") at the start of the line")
	case len(key) > 32:
		return pp.errorf(key, "key longer than 32 characters")
	case i < len(text) && text[i] != ':':
		// sts-policy-field-delim = ":" *WSP
		return pp.errorf(key, "unexpected %s after the key, expected \"key: value\"", quoteChar(text, i))
	}
	return pp.errorf(key, "expected \"key: value\"")
}

// parseMode parses
// sts-policy-mode-value = %s"testing" / %s"enforce" / %s"none".
func parseMode(value string) (Mode, bool) {
	switch Mode(value) {
	case ModeEnforce:
		return ModeEnforce, true
	case ModeTesting:
		return ModeTesting, true
	case ModeNone:
		return ModeNone, true
	}
	return "", false
}

// parseExtension checks sts-policy-extension = sts-policy-ext-name
// sts-policy-field-delim sts-policy-ext-value, and keeps the first of each
// name (RFC 8461 3.2). A repeated known key, which is ignored, must be a
// valid sts-policy-extension too.
func (pp *policyParser) parseExtension(key, value string) error {
	if msg := checkExtValue(value); msg != "" {
		return pp.errorf(key, "%s", msg)
	}
	if !knownPolicyKey(key) {
		pp.exts.add(key, value)
	}
	return nil
}

// checkRequired checks the keys RFC 8461 3.2 requires: version, mode and
// max_age are "required once"; mx is "required at least once, except when
// mode is none". The errors name no line.
func (pp *policyParser) checkRequired() error {
	missing := func(key string) error {
		return &SyntaxError{Kind: ErrPolicySyntax, Field: key, Msg: "missing, the key is required"}
	}
	p := pp.p
	switch {
	case p.Version == "":
		return missing("version")
	case p.Mode == "":
		return missing("mode")
	case !pp.haveMaxAge:
		return missing("max_age")
	case len(p.MX) == 0 && p.Mode != ModeNone:
		return &SyntaxError{Kind: ErrPolicySyntax, Field: "mx", Msg: "missing, at least one is required unless mode is none"}
	}
	return nil
}

// foldedName says where the lower-cased name of p.MX[mx] is in ParsePolicy's
// buffer.
type foldedName struct{ mx, start, end int }

func toLowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func knownPolicyKey(key string) bool {
	return key == "version" || key == "mode" || key == "max_age" || key == "mx"
}

// parseMaxAge parses sts-policy-max-age-value = 1*10(DIGIT).
func parseMaxAge(s string) (int, bool) {
	if len(s) == 0 || len(s) > 10 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	// Ten digits fit an int on 64-bit platforms; on 32-bit ones the value
	// saturates, which MaxAge caps anyway.
	return int(min(n, uint64(maxInt))), true
}

const maxInt = int(^uint(0) >> 1)

// parseMXPattern parses sts-policy-mx-value = ["*."] Domain, with Domain from
// RFC 5321 4.1.2:
//
//	Domain     = sub-domain *("." sub-domain)
//	sub-domain = Let-dig [Ldh-str]
//	Ldh-str    = *( ALPHA / DIGIT / "-" ) Let-dig
//
// plus the DNS limits of 63 bytes a label and 253 a name (RFC 1035 2.3.4).
// RFC 8461 3.2 requires A-labels for internationalized names, so U-labels are
// rejected; A-labels must decode. A name with upper case is returned with
// mustFold set, for the caller to fold to lower case. On failure it returns a message
// saying what is wrong.
func parseMXPattern(v string) (mx STSMX, mustFold bool, msg string) {
	if strings.HasPrefix(v, "*.") {
		mx.Wildcard = true
		v = v[2:]
	}
	if len(v) > 253 {
		return mx, false, "name longer than 253 characters"
	}
	upper, idn := false, false
	labelStart := 0
	for i := 0; i <= len(v); i++ {
		if i < len(v) && v[i] != '.' {
			c := v[i]
			switch {
			case charClass[c]&classLDH != 0:
			case 'A' <= c && c <= 'Z':
				upper = true
			case c >= utf8.RuneSelf:
				return mx, false, "non-ASCII name, expected the A-label (xn--) form"
			case c == '*':
				return mx, false, "wildcard \"*\" allowed only as the whole left-most label"
			default:
				return mx, false, fmt.Sprintf("invalid character %s, expected letters, digits, \"-\" and \".\"", quoteChar(v, i))
			}
			continue
		}
		label := v[labelStart:i]
		switch {
		case label == "":
			return mx, false, "empty label"
		case len(label) > 63:
			return mx, false, "label longer than 63 characters"
		case label[0] == '-' || label[len(label)-1] == '-':
			return mx, false, fmt.Sprintf("label %s starts or ends with \"-\"", quote(label))
		}
		if len(label) >= 4 && equalFoldASCII(label[:4], "xn--") {
			idn = true
		}
		labelStart = i + 1
	}
	mx.Domain.ASCII = v
	if upper && !idn {
		// The caller folds the case, into one buffer for all names.
		return mx, true, ""
	}
	if upper {
		v = strings.ToLower(v)
		mx.Domain.ASCII = v
	}
	if idn {
		u, err := idnaProfile.ToUnicode(v)
		if err != nil {
			return mx, false, "invalid A-label: " + causeText(err)
		}
		if u != v {
			mx.Domain.Unicode = u
		}
	}
	return mx, false, ""
}

// checkExtValue checks sts-policy-ext-value: printable US-ASCII and UTF-8
// characters and spaces, no control characters, no leading or trailing space
// (the caller trimmed those). It returns what is wrong, or "".
func checkExtValue(v string) string {
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return fmt.Sprintf("control character %s in value, expected printable characters and spaces", quoteChar(v, i))
			}
			i++
			continue
		}
		// sts-policy-vchar includes UTF8-2, UTF8-3 and UTF8-4 (RFC 3629 4).
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size <= 1 {
			return fmt.Sprintf("invalid UTF-8 at byte %d of the value", i)
		}
		i += size
	}
	return ""
}

func isWSP(c byte) bool {
	return c == ' ' || c == '\t'
}

func trimWSPRight(s string) string {
	for len(s) > 0 && isWSP(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func skipWSP(s string, i int) int {
	for i < len(s) && isWSP(s[i]) {
		i++
	}
	return i
}

// Character classes of the grammars, one bit each, looked up in a table:
// the parsers' inner loops test one byte against one mask.
const (
	classAlnum     = 1 << iota // ALPHA / DIGIT
	classExtName               // ALPHA / DIGIT / "_" / "-" / "."
	classRecordVal             // %x21-3A / %x3C / %x3E-7E
	classLDH                   // lower-case letters, digits, "-": a name already in A-label form
)

var charClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		if alnum {
			t[c] |= classAlnum
		}
		if alnum || b == '_' || b == '-' || b == '.' {
			t[c] |= classExtName
		}
		if b >= 0x21 && b <= 0x7e && b != ';' && b != '=' {
			t[c] |= classRecordVal
		}
		if 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' {
			t[c] |= classLDH
		}
	}
	return t
}()

func isAlnum(c byte) bool {
	return charClass[c]&classAlnum != 0
}

func isAlnumString(s string) bool {
	for i := 0; i < len(s); i++ {
		if charClass[s[i]]&classAlnum == 0 {
			return false
		}
	}
	return true
}

// isExtNameChar reports whether c may appear in sts-ext-name and
// sts-policy-ext-name: ALPHA / DIGIT / "_" / "-" / ".".
func isExtNameChar(c byte) bool {
	return charClass[c]&classExtName != 0
}

// isRecordValueChar reports whether c may appear in sts-ext-value:
// %x21-3A / %x3C / %x3E-7E, printable US-ASCII other than ";" and "=".
func isRecordValueChar(c byte) bool {
	return charClass[c]&classRecordVal != 0
}
