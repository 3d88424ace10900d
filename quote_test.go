package mtasts

import (
	"errors"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	long := strings.Repeat("a", 60_000)
	tests := []struct{ in, want string }{
		{"", `""`},
		{"abc", `"abc"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"tab\there", `"tab\there"`},
		{"é", `"\u00e9"`},
		{"\xc3", `"\xc3"`}, // a lone byte that is not UTF-8
		{"\x1b]0;pwned\x07", `"\x1b]0;pwned\x07"`},
		{"\u202e", `"\u202e"`}, // right-to-left override
		{"😀", `"\U0001f600"`},
		{"\x7f\x00", `"\x7f\x00"`},
		{strings.Repeat("b", maxQuoted), `"` + strings.Repeat("b", maxQuoted) + `"`},
		{long, `"` + strings.Repeat("a", maxQuoted) + `"...(60000 bytes)`},
		// A cut does not split a character: 63 bytes and a two-byte é.
		{strings.Repeat("a", 63) + "éé", `"` + strings.Repeat("a", 63) + `"...(67 bytes)`},
	}
	for _, tc := range tests {
		if got := quote(tc.in); got != tc.want {
			t.Errorf("quote(%.80q) = %s, want %s", tc.in, got, tc.want)
		}
	}

	chars := []struct {
		in   string
		i    int
		want string
	}{
		{"a'b", 1, `'\''`},
		{`a"b`, 1, `'"'`},
		{"xé", 1, `'\u00e9'`},
		{"x\xc3(", 1, `'\xc3'`},
		{"\x1b", 0, `'\x1b'`},
	}
	for _, tc := range chars {
		if got := quoteChar(tc.in, tc.i); got != tc.want {
			t.Errorf("quoteChar(%q, %d) = %s, want %s", tc.in, tc.i, got, tc.want)
		}
	}
}

// printableASCII reports whether s holds only printable US-ASCII, the
// property every error message of the package keeps.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// TestErrorsQuoteBounded checks that errors for hostile input stay short,
// say that input was cut, and show only printable ASCII: a 60 KB record id,
// policy keys and values, non-ASCII bytes, escape sequences.
func TestErrorsQuoteBounded(t *testing.T) {
	const huge = 60_000
	long := strings.Repeat("a", huge)
	parse := func(s string) error {
		_, err := ParsePolicy(s)
		return err
	}
	record := func(s string) error {
		_, _, err := ParseRecord(s)
		return err
	}
	const head = "version: STSv1\nmode: enforce\nmax_age: 60\n"
	tests := []struct {
		name string
		err  error
		want string // in the message
	}{
		{"record id", record("v=STSv1; id=" + long), `"` + strings.Repeat("a", maxQuoted) + `"...(60000 bytes)`},
		{"record id, non-ascii", record("v=STSv1; id=abcé"), `'\u00e9'`},
		{"record field name", record("v=STSv1; id=1; " + long + "=1"), "...(60000 bytes)"},
		{"record extension value, escape", record("v=STSv1; id=1; x=a\x1b[2J"), `'\x1b'`},
		{"record after field", record("v=STSv1; id=1\xc3"), `'\xc3'`},
		{"policy key", parse(head + long + ": x\n"), "...(60000 bytes)"},
		{"policy key, bad byte", parse(head + "mx\xc3: x\n"), `'\xc3'`},
		{"policy mode", parse("version: STSv1\nmax_age: 60\nmode: " + long + "\n"), "...(60000 bytes)"},
		{"policy mode, non-ascii", parse("version: STSv1\nmax_age: 60\nmode: enforcé\n"), `"enforc\u00e9"`},
		{"policy version", parse("version: " + long + "\n"), "...(60000 bytes)"},
		{"policy max_age", parse("version: STSv1\nmode: none\nmax_age: " + long + "\n"), "...(60000 bytes)"},
		{"policy mx", parse(head + "mx: " + long + "\n"), "...(60000 bytes)"},
		{"policy mx, non-ascii", parse(head + "mx: bücher.example\n"), `"b\u00fccher.example"`},
		{"policy mx label", parse(head + "mx: -" + strings.Repeat("b", 62) + ".example\n"), `"-bbb`},
		{"policy extension control", parse(head + "mx: a.example\nx: a\x1bb\n"), `'\x1b'`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("no error")
			}
			msg := tc.err.Error()
			if len(msg) > 400 || !strings.Contains(msg, tc.want) || !printableASCII(msg) || strings.Contains(msg, "Ã") {
				t.Errorf("error %.500q (%d bytes); want at most 400 bytes of printable ASCII with %q", msg, len(msg), tc.want)
			}
		})
	}
}

// TestCauseTextBounded checks that the text of an underlying cause, which
// may carry a server's words (a certificate's names, a malformed status
// line), is cut and escaped as well.
func TestCauseTextBounded(t *testing.T) {
	cause := errors.New("x509: certificate is valid for " + strings.Repeat("evil\x1b[2J.example, ", 3000) + "not mta-sts.example.com")
	err := newError(ErrPolicyFetch, reasonPolicyFetchError, cause, "%s", "https://mta-sts.example.com/.well-known/mta-sts.txt")
	msg := err.Error()
	if len(msg) > maxCauseText+200 || !printableASCII(msg) || !strings.Contains(msg, "bytes)") || !errors.Is(err, cause) {
		t.Errorf("error %.800q (%d bytes); want the cause cut and escaped, and still reachable", msg, len(msg))
	}
}
