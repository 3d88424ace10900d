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
