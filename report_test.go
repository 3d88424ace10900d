package mtasts_test

import (
	"reflect"
	"testing"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/policytext"
)

// The policy of RFC 8460 4.5's example gives its policy-string, one "mx"
// element per pattern ("rather than as a single nested "mx" sub-array"),
// and the patterns as mx-host (RFC 8460 4.4).
func TestPolicyReportLines(t *testing.T) {
	text := "version: STSv1\nmode: testing\nmx: mx1.example.com\nmx: mx2.example.com\nmx: mx.backup-example.com\nmax_age: 604800\n"
	p, err := mtasts.ParsePolicy(text)
	if err != nil {
		t.Fatal(err)
	}
	wantLines := []string{
		"version: STSv1",
		"mode: testing",
		"mx: mx1.example.com",
		"mx: mx2.example.com",
		"mx: mx.backup-example.com",
		"max_age: 604800",
	}
	if got := p.ReportLines(); !reflect.DeepEqual(got, wantLines) {
		t.Errorf("ReportLines() = %q\nwant %q", got, wantLines)
	}
	if got := policytext.ReportLines(text); !reflect.DeepEqual(got, wantLines) {
		t.Errorf("ReportLines(text) = %q\nwant %q", got, wantLines)
	}
	wantMX := []string{"mx1.example.com", "mx2.example.com", "mx.backup-example.com"}
	if got := p.ReportMXHosts(); !reflect.DeepEqual(got, wantMX) {
		t.Errorf("ReportMXHosts() = %q, want %q", got, wantMX)
	}
}

// The lines of a policy as served are kept as declared, "including any
// errors that may be present" (RFC 8460 4.5): line endings (LF or CRLF) are
// cut, blank lines skipped, everything else kept, also what does not parse.
func TestReportLinesOfText(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"", []string{}},
		{"\r\n\n  \n", []string{}},
		{"version: STSv1\r\nmode: enforce\r\n\r\nmx: *.example.net\nmax_age: 86400", []string{"version: STSv1", "mode: enforce", "mx: *.example.net", "max_age: 86400"}},
		{"version: STSv1\nmode: enforced\nmx:  MX.Example.COM \n\t\nmax_age: 86400\n", []string{"version: STSv1", "mode: enforced", "mx:  MX.Example.COM ", "max_age: 86400"}},
		{"<html>\r\n <body>oops</body>\r\n</html>", []string{"<html>", " <body>oops</body>", "</html>"}},
		{"a\rb\n", []string{"a\rb"}},
	} {
		if got := policytext.ReportLines(tc.text); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ReportLines(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

// Names are reported in A-labels (RFC 8460 4.4: "the domain MUST consist of
// the Punycode-encoded A-labels"), wildcards with their "*.", in policy
// order; extensions follow in the policy-string as published.
func TestPolicyReportInternationalized(t *testing.T) {
	p := &mtasts.Policy{
		Version:       "STSv1",
		Mode:          mtasts.ModeEnforce,
		MX:            []mtasts.STSMX{{Domain: mustDomain(t, "mail.bücher.example")}, {Wildcard: true, Domain: mustDomain(t, "münchen.example")}},
		MaxAgeSeconds: 86400,
		Extensions:    []mtasts.Pair{{Key: "ext", Value: "a b"}},
	}
	wantMX := []string{"mail.xn--bcher-kva.example", "*.xn--mnchen-3ya.example"}
	if got := p.ReportMXHosts(); !reflect.DeepEqual(got, wantMX) {
		t.Errorf("ReportMXHosts() = %q, want %q", got, wantMX)
	}
	wantLines := []string{"version: STSv1", "mode: enforce", "mx: mail.xn--bcher-kva.example", "mx: *.xn--mnchen-3ya.example", "max_age: 86400", "ext: a b"}
	if got := p.ReportLines(); !reflect.DeepEqual(got, wantLines) {
		t.Errorf("ReportLines() = %q\nwant %q", got, wantLines)
	}
}

// A policy without mx patterns (mode none) has an empty, non-nil mx-host
// list, which JSON writes as [] rather than null.
func TestPolicyReportNoMX(t *testing.T) {
	p, err := mtasts.ParsePolicy("version: STSv1\nmode: none\nmax_age: 86400\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.ReportMXHosts(); got == nil || len(got) != 0 {
		t.Errorf("ReportMXHosts() = %#v, want empty", got)
	}
	if got := p.ReportLines(); len(got) != 3 {
		t.Errorf("ReportLines() = %q", got)
	}
}
