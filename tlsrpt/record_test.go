package tlsrpt

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/mtasts-go/mtasts"
)

func TestParseRecord(t *testing.T) {
	tests := []struct {
		txt  string
		rua  []string
		exts []mtasts.Pair
	}{
		// RFC 8460 3.1.1 and 3.1.2, and Appendix A (the backslash of the
		// zone file joins the two strings without a space).
		{"v=TLSRPTv1;rua=mailto:reports@example.com", []string{"mailto:reports@example.com"}, nil},
		{"v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt", []string{"https://reporting.example.com/v1/tlsrpt"}, nil},
		{"v=TLSRPTv1;rua=https://reporting.example.com/v1/tlsrpt", []string{"https://reporting.example.com/v1/tlsrpt"}, nil},

		// field-delim = *WSP ";" *WSP, an optional last one.
		{"v=TLSRPTv1 ;\trua=mailto:a@example.com ; ", []string{"mailto:a@example.com"}, nil},
		{"v=TLSRPTv1;rua=mailto:a@example.com;", []string{"mailto:a@example.com"}, nil},
		// *WSP "," *WSP between URIs.
		{"v=TLSRPTv1; rua=mailto:a@example.com , https://r.example/x,mailto:b@example.com",
			[]string{"mailto:a@example.com", "https://r.example/x", "mailto:b@example.com"}, nil},
		// Encoded commas, "!" and ";"; queries with "=", fragments.
		{"v=TLSRPTv1; rua=mailto:a%2Cb@example.com?subject=TLS%21%3B,https://r.example:8443/t?a=b&c=d#f",
			[]string{"mailto:a%2Cb@example.com?subject=TLS%21%3B", "https://r.example:8443/t?a=b&c=d#f"}, nil},
		{"v=TLSRPTv1; rua=https://[2001:db8::1]:443/r", []string{"https://[2001:db8::1]:443/r"}, nil},
		// Schemes other than mailto and https are valid URIs.
		{"v=TLSRPTv1; rua=http://r.example/x", []string{"http://r.example/x"}, nil},
		// RFC 8460 3: unknown fields SHALL be ignored; they are kept,
		// the first of each name.
		{"v=TLSRPTv1; foo=bar; rua=mailto:a@example.com; a.b_c-d=x:y; foo=baz",
			[]string{"mailto:a@example.com"}, []mtasts.Pair{{Key: "foo", Value: "bar"}, {Key: "a.b_c-d", Value: "x:y"}}},
		// %s"rua=" is case-sensitive: "RUA" is an extension.
		{"v=TLSRPTv1; RUA=x; rua=mailto:a@example.com", []string{"mailto:a@example.com"}, []mtasts.Pair{{Key: "RUA", Value: "x"}}},
		// A repeated rua: the first is used, the second checked.
		{"v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com", []string{"mailto:a@example.com"}, nil},
		// A repeated v is an extension by the grammar, and ignored.
		{"v=TLSRPTv1; v=TLSRPTv2; rua=mailto:a@example.com", []string{"mailto:a@example.com"}, nil},
		// 32 characters of extension name.
		{"v=TLSRPTv1; rua=mailto:a@example.com; a1234567890123456789012345678901=1",
			[]string{"mailto:a@example.com"}, []mtasts.Pair{{Key: "a1234567890123456789012345678901", Value: "1"}}},
	}
	for _, tc := range tests {
		r, ok, err := ParseRecord(tc.txt)
		if err != nil || !ok {
			t.Errorf("ParseRecord(%q): %v, %v", tc.txt, ok, err)
			continue
		}
		if !strings.HasPrefix(r.String(), "v=TLSRPTv1; ") || !reflect.DeepEqual(r.RUA, tc.rua) || !reflect.DeepEqual(r.Extensions, tc.exts) {
			t.Errorf("ParseRecord(%q) = %+v, want rua %q, extensions %v", tc.txt, r, tc.rua, tc.exts)
		}
		// String gives back an equal record.
		r2, ok, err := ParseRecord(r.String())
		if err != nil || !ok || !reflect.DeepEqual(r, r2) {
			t.Errorf("ParseRecord(%q.String() = %q) = %+v, %v, %v", tc.txt, r.String(), r2, ok, err)
		}
	}
}

func TestParseRecordNotTLSRPT(t *testing.T) {
	for _, txt := range []string{
		"", "v=STSv1; id=1", "v=TLSRPTv10; rua=mailto:a@example.com", "v=tlsrptv1; rua=mailto:a@example.com",
		" v=TLSRPTv1; rua=mailto:a@example.com", "v=TLSRPTv1x", "rua=mailto:a@example.com; v=TLSRPTv1",
	} {
		r, ok, err := ParseRecord(txt)
		if r != nil || ok || err != nil {
			t.Errorf("ParseRecord(%q) = %v, %v, %v; want not a TLSRPT record", txt, r, ok, err)
		}
	}
}

func TestParseRecordErrors(t *testing.T) {
	tests := []struct {
		txt   string
		field string
		msg   string
	}{
		{"v=TLSRPTv1", "rua", "missing"},
		{"v=TLSRPTv1;", "rua", "missing"},
		{"v=TLSRPTv1; ext=1", "rua", "missing"},
		{"v=TLSRPTv1 ", "v", "whitespace at the end"},
		{"v=TLSRPTv1; rua=mailto:a@example.com ", "rua", "whitespace at the end"},
		{"v=TLSRPTv1; ; rua=mailto:a@example.com", "", `unexpected ';', expected a field name`},
		{"v=TLSRPTv1; rua", "rua", `expected "="`},
		{"v=TLSRPTv1; rua =mailto:a@example.com", "rua", `expected "="`},
		{"v=TLSRPTv1; rua=", "rua", "empty URI"},
		{"v=TLSRPTv1; rua=;", "rua", "empty URI"},
		{"v=TLSRPTv1; rua=mailto:a@example.com,", "rua", "empty URI"},
		{"v=TLSRPTv1; rua=mailto:a@example.com, ;", "rua", "empty URI"},
		{"v=TLSRPTv1; rua=mailto:a!b@example.com", "rua", "must be percent-encoded"},
		{"v=TLSRPTv1; rua=mailto:a@example.com\"", "rua", `invalid character '"' in URI`},
		{"v=TLSRPTv1; rua=mailto:a b@example.com", "rua", `unexpected 'b' after the field`},
		{"v=TLSRPTv1; rua=mailto:a@example.com mailto:b@example.com", "rua", `unexpected 'm' after the field`},
		{"v=TLSRPTv1; rua=reports@example.com", "rua", "no scheme"},
		{"v=TLSRPTv1; rua=:x", "rua", "no scheme"},
		{"v=TLSRPTv1; rua=1x:y", "rua", "invalid scheme"},
		{"v=TLSRPTv1; rua=ht_tps://r.example", "rua", "invalid scheme"},
		{"v=TLSRPTv1; rua=https://r.example/%2", "rua", "percent-encoding"},
		{"v=TLSRPTv1; rua=https://r.example/%zz", "rua", "percent-encoding"},
		{"v=TLSRPTv1; rua=https://r.example/a#b#c", "rua", `invalid character '#' in the fragment`},
		{"v=TLSRPTv1; rua=https://r.example/[x]", "rua", `invalid character '[' in the path`},
		{"v=TLSRPTv1; rua=https://[2001:db8::1/x", "rua", `"[" without "]"`},
		{"v=TLSRPTv1; rua=https://[2001:db8::1]x/", "rua", `after the IP literal`},
		{"v=TLSRPTv1; rua=https://r.example:44a/", "rua", `invalid port`},
		{"v=TLSRPTv1; rua=https://a[b/", "rua", `invalid character '[' in the host`},
		{"v=TLSRPTv1; rua=mailto:a@example.com; ext=", "ext", "empty value"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; ext=a b", "ext", `unexpected 'b' after the field`},
		{"v=TLSRPTv1; rua=mailto:a@example.com; ext=a=b", "ext", `invalid character '='`},
		{"v=TLSRPTv1; rua=mailto:a@example.com; ext=\x7f", "ext", `invalid character '\x7f'`},
		{"v=TLSRPTv1; rua=mailto:a@example.com; ext=\xc3\xa9", "ext", `invalid character`},
		{"v=TLSRPTv1; rua=mailto:a@example.com; _x=1", "_x", "invalid field name"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; bad ext=1", "bad", `expected "="`},
		{"v=TLSRPTv1; rua=mailto:a@example.com; a12345678901234567890123456789012=1", "a12345678901234567890123456789012", "longer than 32"},
		{"v=TLSRPTv1; rua=mailto:a@example.com; =1", "", `unexpected '=', expected a field name`},
		// A second rua is checked too.
		{"v=TLSRPTv1; rua=mailto:a@example.com; rua=x", "rua", "no scheme"},
		{"v=TLSRPTv1;; rua=mailto:a@example.com", "", `unexpected ';'`},
	}
	for _, tc := range tests {
		r, ok, err := ParseRecord(tc.txt)
		var serr *SyntaxError
		if r != nil || !ok || !errors.As(err, &serr) || !errors.Is(err, ErrRecordSyntax) {
			t.Errorf("ParseRecord(%q) = %v, %v, %v; want a *SyntaxError", tc.txt, r, ok, err)
			continue
		}
		if serr.Field != tc.field || !strings.Contains(serr.Msg, tc.msg) {
			t.Errorf("ParseRecord(%q): field %q, %q; want field %q, message with %q", tc.txt, serr.Field, serr.Msg, tc.field, tc.msg)
		}
	}
}

func TestSupportedRUA(t *testing.T) {
	r, _, err := ParseRecord("v=TLSRPTv1; rua=http://a.example,MAILTO:a@example.com,ftp://f.example,HttpS://r.example/x,mailtox:y")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"MAILTO:a@example.com", "HttpS://r.example/x"}
	if got := r.SupportedRUA(); !reflect.DeepEqual(got, want) {
		t.Errorf("SupportedRUA() = %q, want %q", got, want)
	}
}

func TestSyntaxErrorText(t *testing.T) {
	_, _, err := ParseRecord("v=TLSRPTv1; rua=mailto:a@example.com; ext=")
	if got, want := err.Error(), `tlsrpt: invalid txt record: "ext": empty value`; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}

// A record's text reaches error text bounded and escaped: a field name, a
// value or a URI of 60 KB gives an error of a few hundred bytes.
func TestParseRecordLongValueError(t *testing.T) {
	long := "\x1b" + strings.Repeat("a", 60_000)
	for _, txt := range []string{
		"v=TLSRPTv1; " + long + "=1; rua=mailto:a@example.com",
		"v=TLSRPTv1; " + strings.Repeat("b", 60_000) + "=1; rua=mailto:a@example.com",
		"v=TLSRPTv1; rua=" + strings.Repeat("a", 60_000) + "!",
		"v=TLSRPTv1; rua=https://" + strings.Repeat("a", 60_000) + ":8x",
		"v=TLSRPTv1; rua=1" + strings.Repeat("a", 60_000) + ":x",
	} {
		_, _, err := ParseRecord(txt)
		if err == nil || !isShortPrintable(err.Error(), 400) {
			t.Errorf("%.80q: error %.500q, want one of at most 400 bytes of printable US-ASCII", txt, err)
		}
	}
}

// A Record made by hand writes the one version there is.
func TestRecordStringVersion(t *testing.T) {
	r := Record{RUA: []string{"mailto:tlsrpt@example.com"}}
	if got, want := r.String(), "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
