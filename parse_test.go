package mtasts

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/mtasts-go/mtasts/internal/logname"
)

func TestParseRecord(t *testing.T) {
	ext := func(kv ...string) []Pair {
		var l []Pair
		for i := 0; i < len(kv); i += 2 {
			l = append(l, Pair{kv[i], kv[i+1]})
		}
		return l
	}
	good := []struct {
		txt  string
		want Record
	}{
		// RFC 8461 3.1 example.
		{"v=STSv1; id=20160831085700Z;", Record{"STSv1", "20160831085700Z", nil}},
		{"v=STSv1; id=20160831085700Z", Record{"STSv1", "20160831085700Z", nil}},
		{"v=STSv1;id=1", Record{"STSv1", "1", nil}},
		{"v=STSv1 \t;\t id=a ; ", Record{"STSv1", "a", nil}},
		{"v=STSv1; id=" + strings.Repeat("a", 32), Record{"STSv1", strings.Repeat("a", 32), nil}},
		{"v=STSv1; ext=x:y!; id=abc", Record{"STSv1", "abc", ext("ext", "x:y!")}},
		{"v=STSv1; id=abc; a_b-c.d=~<>", Record{"STSv1", "abc", ext("a_b-c.d", "~<>")}},
		// RFC 8461 3.2: of a repeated field only the first counts.
		{"v=STSv1; id=first; id=second", Record{"STSv1", "first", nil}},
		{"v=STSv1; id=a; x=1; x=2; v=STSv2", Record{"STSv1", "a", ext("x", "1")}},
		// Later duplicates are only checked against the extension grammar.
		{"v=STSv1; id=a; id=not-alnum", Record{"STSv1", "a", nil}},
	}
	for _, tc := range good {
		r, ismtasts, err := ParseRecord(tc.txt)
		if err != nil || !ismtasts {
			t.Errorf("ParseRecord(%q): ismtasts %v, err %v; want a record", tc.txt, ismtasts, err)
			continue
		}
		if !reflect.DeepEqual(*r, tc.want) {
			t.Errorf("ParseRecord(%q) = %#v, want %#v", tc.txt, *r, tc.want)
		}
	}

	notSTS := []string{
		"",
		"v=spf1 -all",
		"v=STSv2; id=1",
		"v=STSv10; id=1",
		"V=STSv1; id=1",  // %s"v=STSv1" is case-sensitive
		"v=stsv1; id=1",  // idem
		" v=STSv1; id=1", // the record must begin with the version
		"id=1; v=STSv1",
	}
	for _, txt := range notSTS {
		r, ismtasts, err := ParseRecord(txt)
		if ismtasts || r != nil || err != nil {
			t.Errorf("ParseRecord(%q) = %v, %v, %v; want not an MTA-STS record", txt, r, ismtasts, err)
		}
	}

	bad := []struct {
		txt, field, msg string
	}{
		{"v=STSv1", "id", "missing"},
		{"v=STSv1;", "id", "missing"},
		{"v=STSv1; ", "id", "missing"},
		{"v=STSv1; x=1", "id", "missing"},
		{"v=STSv1; ID=1", "id", "missing"}, // %s"id=" is case-sensitive
		{"v=STSv1; id=", "id", "empty value"},
		{"v=STSv1; id=abc-def", "id", "1 to 32 letters and digits"},
		{"v=STSv1; id=" + strings.Repeat("a", 33), "id", "1 to 32"},
		{"v=STSv1 id=1", "v", `unexpected 'i'`},
		{"v=STSv1; id=1 ", "id", "whitespace at the end"},
		{"v=STSv1; id=1;;", "", "invalid field name"},
		{"v=STSv1; id=1; =x", "", "invalid field name"},
		{"v=STSv1; id=1; _x=1", "_x", "invalid field name"},
		{"v=STSv1; id=1; " + strings.Repeat("x", 33) + "=1", strings.Repeat("x", 33), "invalid field name"},
		{"v=STSv1; id=1; x", "x", `expected "="`},
		{"v=STSv1; id=1; x=a=b", "x", `invalid character '='`},
		{"v=STSv1; id=1; x=\x01", "x", "invalid character"},
		{"v=STSv1; id=1; x=é", "x", "invalid character"}, // RFC 8461 3.1: US-ASCII
		{"v=STSv1; id=1 x=2", "id", `unexpected 'x'`},
	}
	for _, tc := range bad {
		r, ismtasts, err := ParseRecord(tc.txt)
		var serr *SyntaxError
		if r != nil || !ismtasts || !errors.Is(err, ErrRecordSyntax) || !errors.As(err, &serr) {
			t.Errorf("ParseRecord(%q) = %v, %v, %v; want an ErrRecordSyntax *SyntaxError", tc.txt, r, ismtasts, err)
			continue
		}
		if serr.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseRecord(%q): error %q, field %q; want field %q and %q in the message", tc.txt, err, serr.Field, tc.field, tc.msg)
		}
	}
}

// examplePolicy is the policy of RFC 8461 3.2.
const examplePolicy = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n"

func mxs(patterns ...string) []STSMX {
	var l []STSMX
	for _, s := range patterns {
		mx := STSMX{}
		if rest, ok := strings.CutPrefix(s, "*."); ok {
			mx.Wildcard = true
			s = rest
		}
		ascii, unicode, _ := strings.Cut(s, "/")
		mx.Domain = Domain{ASCII: ascii, Unicode: unicode}
		l = append(l, mx)
	}
	return l
}

func TestParsePolicy(t *testing.T) {
	rfc := Policy{Version: "STSv1", Mode: ModeEnforce, MX: mxs("mail.example.com", "*.example.net", "backupmx.example.com"), MaxAgeSeconds: 604800}
	good := []struct {
		name, text string
		want       Policy
	}{
		{"rfc 8461 3.2 example", examplePolicy, rfc},
		{"no final newline", strings.TrimSuffix(examplePolicy, "\n"), rfc},
		{"crlf", strings.ReplaceAll(examplePolicy, "\n", "\r\n"), rfc},
		{"mixed lf and crlf", "version: STSv1\r\nmode: enforce\nmx: mail.example.com\r\nmx: *.example.net\nmx: backupmx.example.com\r\nmax_age: 604800", rfc},
		{"extra final newline", examplePolicy + "\n", rfc},
		{"blank lines", "\nversion: STSv1\n\nmode: enforce\n \t\nmx: mail.example.com\r\n\r\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n\n\n", rfc},
		{"whitespace after colon and at end", "version:STSv1\nmode:\t enforce \t\nmx:  mail.example.com \nmx: *.example.net\nmx: backupmx.example.com\t\nmax_age:604800  ", rfc},
		{"fields in any order", "mx: mail.example.com\nmax_age: 604800\nmx: *.example.net\nmode: enforce\nmx: backupmx.example.com\nversion: STSv1\n", rfc},
		{
			"appendix a, testing",
			"version: STSv1\nmode: testing\nmx: mx1.example.com\nmx: mx2.example.com\nmx: mx.backup-example.com\nmax_age: 1296000\n",
			Policy{Version: "STSv1", Mode: ModeTesting, MX: mxs("mx1.example.com", "mx2.example.com", "mx.backup-example.com"), MaxAgeSeconds: 1296000},
		},
		{"mode none without mx", "version: STSv1\nmode: none\nmax_age: 86400\n", Policy{Version: "STSv1", Mode: ModeNone, MaxAgeSeconds: 86400}},
		{"max_age zero", "version: STSv1\nmode: none\nmax_age: 0\n", Policy{Version: "STSv1", Mode: ModeNone, MaxAgeSeconds: 0}},
		{"max_age ten digits above the limit kept", "version: STSv1\nmode: none\nmax_age: 9999999999\n", Policy{Version: "STSv1", Mode: ModeNone, MaxAgeSeconds: 9999999999}},
		{"max_age leading zeros", "version: STSv1\nmode: none\nmax_age: 0000000060\n", Policy{Version: "STSv1", Mode: ModeNone, MaxAgeSeconds: 60}},
		{
			"upper-case mx folded, a-label decoded",
			"version: STSv1\nmode: enforce\nmx: MAIL.Example.COM\nmx: *.xn--bcher-kva.example\nmax_age: 60\n",
			Policy{Version: "STSv1", Mode: ModeEnforce, MX: mxs("mail.example.com", "*.xn--bcher-kva.example/bücher.example"), MaxAgeSeconds: 60},
		},
		{
			"extensions kept, first of duplicates",
			"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 60\nfoo: bar baz\nx_y-z.1: ünï cödé\nfoo: second\n",
			Policy{Version: "STSv1", Mode: ModeEnforce, MX: mxs("a.example"), MaxAgeSeconds: 60, Extensions: []Pair{{"foo", "bar baz"}, {"x_y-z.1", "ünï cödé"}}},
		},
		{
			"duplicate known keys: first wins, later ones only need extension syntax",
			"version: STSv1\nmode: testing\nmode: enforce\nmode: bogus\nversion: STSv9\nmax_age: 60\nmax_age: 1x\nmx: a.example\n",
			Policy{Version: "STSv1", Mode: ModeTesting, MX: mxs("a.example"), MaxAgeSeconds: 60},
		},
		{
			"many mx",
			"version: STSv1\nmode: enforce\nmax_age: 60\nmx: a.example\nmx: b.example\nmx: c.example\nmx: d.example\nmx: e.example\nmx: a.example\n",
			Policy{Version: "STSv1", Mode: ModeEnforce, MX: mxs("a.example", "b.example", "c.example", "d.example", "e.example", "a.example"), MaxAgeSeconds: 60},
		},
		{"single-label and digit mx", "version: STSv1\nmode: enforce\nmx: localhost\nmx: 1.2.3.4\nmax_age: 1\n", Policy{Version: "STSv1", Mode: ModeEnforce, MX: mxs("localhost", "1.2.3.4"), MaxAgeSeconds: 1}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy(tc.text)
			if err != nil {
				t.Fatalf("ParsePolicy: %v", err)
			}
			if !reflect.DeepEqual(*p, tc.want) {
				t.Fatalf("ParsePolicy:\n got %#v\nwant %#v", *p, tc.want)
			}
		})
	}

	const head = "version: STSv1\nmode: enforce\nmax_age: 60\n"
	bad := []struct {
		name, text string
		line       int
		key, msg   string
	}{
		{"empty", "", 0, "version", "missing"},
		{"only blank lines", "\n\r\n  \n", 0, "version", "missing"},
		{"no version", "mode: enforce\nmx: a.example\nmax_age: 60\n", 0, "version", "missing"},
		{"no mode", "version: STSv1\nmx: a.example\nmax_age: 60\n", 0, "mode", "missing"},
		{"no max_age", "version: STSv1\nmode: enforce\nmx: a.example\n", 0, "max_age", "missing"},
		{"no mx in enforce", head, 0, "mx", "at least one"},
		{"no mx in testing", "version: STSv1\nmode: testing\nmax_age: 60\n", 0, "mx", "at least one"},
		{"version case", "version: stsv1\n", 1, "version", `expected "STSv1"`},
		{"version other", "version: STSv2\n", 1, "version", "unsupported version"},
		{"key case", "Version: STSv1\nmode: none\nmax_age: 1\n", 0, "version", "missing"},
		{"mode case", "version: STSv1\nmode: Enforce\n", 2, "mode", "invalid mode"},
		{"mode unknown", "version: STSv1\nmode: strict\n", 2, "mode", "invalid mode"},
		{"max_age 11 digits", "version: STSv1\nmode: none\nmax_age: 12345678901\n", 3, "max_age", "1 to 10 digits"},
		{"max_age negative", "max_age: -1\n", 1, "max_age", "1 to 10 digits"},
		{"max_age space inside", "max_age: 60 0\n", 1, "max_age", "1 to 10 digits"},
		{"max_age unit", "max_age: 60s\n", 1, "max_age", "1 to 10 digits"},
		{"empty value", "version:\n", 1, "version", "empty value"},
		{"empty value with space", "version:  \t\n", 1, "version", "empty value"},
		{"no colon", head + "mx a.example\n", 4, "mx", "unexpected ' '"},
		{"only a key", head + "mx\n", 4, "mx", `expected "key: value"`},
		{"space before colon", "version : STSv1\n", 1, "version", "unexpected ' '"},
		{"leading whitespace", " version: STSv1\n", 1, "", "whitespace at the start"},
		{"key starts with underscore", "_x: y\n", 1, "", "expected a key"},
		{"key too long", strings.Repeat("k", 33) + ": v\n", 1, strings.Repeat("k", 33), "longer than 32"},
		{"bad key char", "ver$ion: STSv1\n", 1, "ver", "unexpected '$'"},
		{"bom", "\uFEFFversion: STSv1\nmode: none\nmax_age: 1\n", 1, "", "byte order mark"},
		{"bare cr inside", "version: STSv1\rmode: none\nmax_age: 1\n", 1, "version", "unsupported version"},
		{"cr only line endings", "version: STSv1\rmode: none\rmax_age: 1\r", 1, "version", "unsupported version"},
		{"control char in extension", head + "x: a\x00b\n", 4, "x", "control character"},
		{"tab inside extension", head + "x: a\tb\n", 4, "x", "control character"},
		{"invalid utf-8 in extension", head + "x: a\xffb\n", 4, "x", "invalid UTF-8"},
		{"del in extension", head + "x: a\x7f\n", 4, "x", "control character"},
		{"control char in ignored duplicate", head + "mode: a\x01\n", 4, "mode", "control character"},
		{"mx u-label", head + "mx: bücher.example\n", 4, "mx", "A-label"},
		{"mx trailing dot", head + "mx: a.example.\n", 4, "mx", "empty label"},
		{"mx empty label", head + "mx: a..example\n", 4, "mx", "empty label"},
		{"mx only wildcard", head + "mx: *.\n", 4, "mx", "empty label"},
		{"mx bare star", head + "mx: *\n", 4, "mx", "wildcard"},
		{"mx inner wildcard", head + "mx: a.*.example\n", 4, "mx", "wildcard"},
		{"mx double wildcard", head + "mx: *.*.example\n", 4, "mx", "wildcard"},
		{"mx partial wildcard", head + "mx: mx*.example\n", 4, "mx", "wildcard"},
		{"mx leading hyphen", head + "mx: -a.example\n", 4, "mx", `starts or ends with "-"`},
		{"mx trailing hyphen", head + "mx: a-.example\n", 4, "mx", `starts or ends with "-"`},
		{"mx underscore", head + "mx: a_b.example\n", 4, "mx", "invalid character '_'"},
		{"mx with port", head + "mx: a.example:25\n", 4, "mx", "invalid character ':'"},
		{"mx space inside", head + "mx: a.example b.example\n", 4, "mx", "invalid character ' '"},
		{"mx label too long", head + "mx: " + strings.Repeat("a", 64) + ".example\n", 4, "mx", "longer than 63"},
		{"mx name too long", head + "mx: " + strings.Repeat("a.", 127) + "ab\n", 4, "mx", "longer than 253"},
		{"mx bad a-label", head + "mx: xn--a.example\n", 4, "mx", "invalid A-label"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy(tc.text)
			var serr *SyntaxError
			if p != nil || !errors.Is(err, ErrPolicySyntax) || !errors.As(err, &serr) {
				t.Fatalf("ParsePolicy = %v, %v; want an ErrPolicySyntax *SyntaxError", p, err)
			}
			if serr.Line != tc.line || serr.Field != tc.key || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q (line %d, key %q); want line %d, key %q and %q in the message", err, serr.Line, serr.Field, tc.line, tc.key, tc.msg)
			}
		})
	}
}

func TestSyntaxErrorMessage(t *testing.T) {
	_, err := ParsePolicy("version: STSv1\nmode: enforce\nmx: bücher.example\nmax_age: 60\n")
	want := `mtasts: invalid policy: line 3: "mx": invalid mx pattern "b\u00fccher.example": non-ASCII name, expected the A-label (xn--) form`
	if err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	_, _, err = ParseRecord("v=STSv1; id=a-b")
	want = `mtasts: invalid txt record: "id": invalid id "a-b", expected 1 to 32 letters and digits`
	if err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestStringRoundTrip(t *testing.T) {
	r := Record{Version: "STSv1", ID: "20160831085700Z", Extensions: []Pair{{"a", "1"}, {"b.c", "x:y"}}}
	if got, want := r.String(), "v=STSv1; id=20160831085700Z; a=1; b.c=x:y"; got != want {
		t.Errorf("Record.String() = %q, want %q", got, want)
	}
	r2, _, err := ParseRecord(r.String())
	if err != nil || !reflect.DeepEqual(*r2, r) {
		t.Errorf("ParseRecord(Record.String()) = %#v, %v; want %#v", r2, err, r)
	}

	p, err := ParsePolicy(examplePolicy + "ext: a b\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\next: a b\r\n"
	if got := p.String(); got != want {
		t.Errorf("Policy.String() = %q, want %q", got, want)
	}
	p2, err := ParsePolicy(p.String())
	if err != nil || !reflect.DeepEqual(p2, p) {
		t.Errorf("ParsePolicy(Policy.String()) = %#v, %v; want %#v", p2, err, p)
	}
}

func TestMatches(t *testing.T) {
	p, err := ParsePolicy("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: *.xn--bcher-kva.example\nmax_age: 60\n")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want bool
	}{
		{"mail.example.com", true},
		{"MAIL.Example.Com", true},
		{"mail.example.com.", true},
		{"example.com", false},
		{"a.mail.example.com", false},
		{"mail.example.co", false},
		{"xmail.example.com", false},
		// RFC 8461 4.1: "*.example.com" matches "mail.example.com" but not
		// "example.com" or "foo.bar.example.com".
		{"mx1.example.net", true},
		{"MX1.EXAMPLE.NET", true},
		{"example.net", false},
		{"foo.bar.example.net", false},
		{".example.net", false},
		{"xexample.net", false},
		{"mx.bücher.example", true},
		{"mx.xn--bcher-kva.example", true},
		{"bücher.example", false},
	}
	for _, tc := range tests {
		host, err := ParseDomain(tc.host)
		if err != nil {
			// Names that ParseDomain refuses are tested in their raw
			// form: Matches must not match them either.
			host = Domain{ASCII: tc.host}
		}
		if got := p.Matches(host); got != tc.want {
			t.Errorf("Matches(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
	if (&Policy{Mode: ModeNone}).Matches(Domain{ASCII: "mail.example.com"}) {
		t.Error("a policy without mx matched a host")
	}
}

func TestParseDomain(t *testing.T) {
	good := []struct{ in, ascii, unicode string }{
		{"example.com", "example.com", ""},
		{"Example.COM.", "example.com", ""},
		{"bücher.example", "xn--bcher-kva.example", "bücher.example"},
		{"XN--BCHER-KVA.example", "xn--bcher-kva.example", "bücher.example"},
		{"BÜCHER.example", "xn--bcher-kva.example", "bücher.example"},
		{"localhost", "localhost", ""},
	}
	for _, tc := range good {
		d, err := ParseDomain(tc.in)
		if err != nil || d.ASCII != tc.ascii || d.Unicode != tc.unicode {
			t.Errorf("ParseDomain(%q) = %#v, %v; want {%q %q}", tc.in, d, err, tc.ascii, tc.unicode)
		}
	}
	bad := []string{"", ".", "a..b", "example.com..", "a b.example", "a_b.example", "xn--a.example", strings.Repeat("a", 64) + ".example", strings.Repeat("a.", 127) + "ab", "exa\x00mple.com", "-a.example"}
	for _, in := range bad {
		if d, err := ParseDomain(in); err == nil {
			t.Errorf("ParseDomain(%q) = %#v, want an error", in, d)
		} else if !strings.HasPrefix(err.Error(), "mtasts: ") {
			t.Errorf("ParseDomain(%q) error %q lacks the package prefix", in, err)
		}
	}

	d := Domain{ASCII: "xn--bcher-kva.example", Unicode: "bücher.example"}
	if got := logname.Domain(d.ASCII, d.Unicode); d.String() != "bücher.example" || got != "bücher.example/xn--bcher-kva.example" {
		t.Errorf("%#v: String %q, log name %q", d, d.String(), got)
	}
	a := Domain{ASCII: "example.com"}
	if got := logname.Domain(a.ASCII, a.Unicode); a.String() != "example.com" || got != "example.com" {
		t.Errorf("%#v: String %q, log name %q", a, a.String(), got)
	}
	mx := STSMX{Wildcard: true, Domain: d}
	if mx.String() != "*.xn--bcher-kva.example" {
		t.Errorf("STSMX String %q", mx.String())
	}
}

func TestMaxAge(t *testing.T) {
	for _, tc := range []struct {
		secs int
		want int64
	}{{0, 0}, {-5, 0}, {604800, 604800}, {MaxAgeLimit, MaxAgeLimit}, {MaxAgeLimit + 1, MaxAgeLimit}, {9999999999, MaxAgeLimit}} {
		p := Policy{MaxAgeSeconds: tc.secs}
		if got := p.MaxAge(); got.Seconds() != float64(tc.want) {
			t.Errorf("MaxAge() for %d = %v, want %ds", tc.secs, got, tc.want)
		}
	}
}

// FuzzParseRecord checks that ParseRecord never panics, that whatever parses
// round-trips through Record.String, and that errors carry the sentinel.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=STSv1; id=20160831085700Z;",
		"v=STSv1;id=1;ext=x",
		"v=STSv1 ; id=a ; id=b ; x.y-z_1=~ ;",
		"v=STSv1; id=1 ",
		"v=spf1 -all",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		r, ismtasts, err := ParseRecord(txt)
		if err != nil {
			if !ismtasts || r != nil || !errors.Is(err, ErrRecordSyntax) {
				t.Fatalf("ParseRecord(%q) = %v, %v, %v", txt, r, ismtasts, err)
			}
			checkErrorText(t, err)
			return
		}
		if !ismtasts {
			if r != nil {
				t.Fatalf("ParseRecord(%q) returned a record for a non-MTA-STS txt", txt)
			}
			return
		}
		r2, ismtasts2, err := ParseRecord(r.String())
		if err != nil || !ismtasts2 || !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip of %q via %q: %#v, %v; want %#v", txt, r.String(), r2, err, r)
		}
	})
}

// FuzzParsePolicy checks that ParsePolicy never panics, that whatever parses
// round-trips through Policy.String, and that errors carry the sentinel and a
// line within the text.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		examplePolicy,
		strings.ReplaceAll(examplePolicy, "\n", "\r\n"),
		"version: STSv1\nmode: none\nmax_age: 0\n\n",
		"version: STSv1\nmode: testing\nmx: *.xn--bcher-kva.example\nmax_age: 9999999999\nfoo: bär baz\nmode: x\n",
		"\uFEFFversion: STSv1\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParsePolicy(text)
		if err != nil {
			var serr *SyntaxError
			if p != nil || !errors.Is(err, ErrPolicySyntax) || !errors.As(err, &serr) {
				t.Fatalf("ParsePolicy(%q) = %v, %v", text, p, err)
			}
			if serr.Line < 0 || serr.Line > strings.Count(text, "\n")+1 {
				t.Fatalf("ParsePolicy(%q): line %d out of range", text, serr.Line)
			}
			checkErrorText(t, err)
			return
		}
		p2, err := ParsePolicy(p.String())
		if err != nil || !reflect.DeepEqual(p, p2) {
			t.Fatalf("round trip of %q via %q: %#v, %v; want %#v", text, p.String(), p2, err, p)
		}
	})
}

// checkErrorText checks that an error's message is printable US-ASCII and
// short, whatever the input: input is quoted cut and escaped.
func checkErrorText(t *testing.T, err error) {
	t.Helper()
	if msg := err.Error(); len(msg) > 400 || !printableASCII(msg) {
		t.Fatalf("error message %.500q (%d bytes) is not short printable ASCII", msg, len(msg))
	}
}
