package main

import (
	"strings"
	"testing"

	"github.com/mtasts-go/mtasts"
)

// lintPolicy never panics, agrees with mtasts.ParsePolicy on validity, and
// puts every finding on a line of the input.
func FuzzLintPolicy(f *testing.F) {
	f.Add(policyText("enforce", "604800", "mail.example.com"))
	f.Add("version: STSv1\n\nmode: testing\r\nmx: a.example\nmode: none\nfoo: bar \nmax_age: 99999999999\n")
	f.Add("version: STSv1\nmode: enforce\nmax_age: 1\n")
	f.Add(":\n\r\n \t\n")
	f.Fuzz(func(t *testing.T, text string) {
		res := lintPolicy("f", text)
		_, err := mtasts.ParsePolicy(text)
		if res.Valid != (err == nil) {
			t.Fatalf("valid %v, ParsePolicy error %v", res.Valid, err)
		}
		lines := strings.Count(text, "\n") + 1
		for _, f := range res.Findings {
			if f.Line < 0 || f.Line > lines || f.Message == "" {
				t.Fatalf("finding %+v outside %d lines", f, lines)
			}
		}
		if res.Valid {
			if _, err := mtasts.ParsePolicy(res.Normalised); err != nil {
				t.Fatalf("normalised policy %q does not parse: %v", res.Normalised, err)
			}
		}
	})
}

// parseTLSRPT never panics, and what it accepts has rua URIs of the two
// schemes RFC 8460 3 allows.
func FuzzParseTLSRPT(f *testing.F) {
	f.Add("v=TLSRPTv1; rua=mailto:a@example.com")
	f.Add("v=TLSRPTv1;rua=mailto:a@example.com,https://r.example/x;")
	f.Add("v=TLSRPTv1; ; rua=")
	f.Fuzz(func(t *testing.T, txt string) {
		rua, msg := parseTLSRPT(txt)
		if (msg == "") != (len(rua) > 0) {
			t.Fatalf("rua %q with message %q", rua, msg)
		}
		for _, u := range rua {
			if !strings.HasPrefix(u, "mailto:") && !strings.HasPrefix(u, "https://") {
				t.Fatalf("accepted rua %q", u)
			}
		}
	})
}

func TestParseTLSRPT(t *testing.T) {
	tests := []struct {
		txt string
		rua string // joined by " "; "" for an error
		msg string
	}{
		{"v=TLSRPTv1; rua=mailto:a@example.com", "mailto:a@example.com", ""},
		{"v=TLSRPTv1;rua=mailto:a@example.com, https://r.example/x;", "mailto:a@example.com https://r.example/x", ""},
		{"v=TLSRPTv1; ext=1; rua=https://r.example", "https://r.example", ""},
		{"v=TLSRPTv1", "", "no rua field"},
		{"v=TLSRPTv1; rua=http://r.example", "", "expected mailto: or https:"},
		{"v=TLSRPTv1; ; rua=mailto:a@example.com", "", "empty field"},
		{"v=TLSRPTv1; rua", "", "not name=value"},
	}
	for _, tc := range tests {
		rua, msg := parseTLSRPT(tc.txt)
		if strings.Join(rua, " ") != tc.rua || !strings.Contains(msg, tc.msg) || (tc.msg == "") != (msg == "") {
			t.Errorf("parseTLSRPT(%q) = %q, %q; want %q, %q", tc.txt, rua, msg, tc.rua, tc.msg)
		}
	}
}
