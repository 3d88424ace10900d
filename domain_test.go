package mtasts_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mjl-/adns"

	"github.com/mtasts-go/mtasts"
)

// countingResolver counts lookups and finds nothing.
type countingResolver struct{ n atomic.Int32 }

func (r *countingResolver) LookupTXT(ctx context.Context, name string) ([]string, adns.Result, error) {
	r.n.Add(1)
	return nil, adns.Result{}, &adns.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// countingTransport counts requests and fails them.
type countingTransport struct{ n atomic.Int32 }

func (t *countingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	t.n.Add(1)
	return nil, errors.New("no network in this test")
}

// badDomains are hand-built Domains whose ASCII form is not a host name,
// with a word the error must say.
var badDomains = []struct {
	ascii, want string
}{
	{"", "empty"},
	{"evil.com@127.0.0.1", `'@' at byte 8`},
	{"evil.com:1234", `':'`},
	{"evil.com/x?", `'/'`},
	{"evil.com?x", `'?'`},
	{"evil.com#x", `'#'`},
	{"ex%41mple.com", `'%'`},
	{"exa mple.com", `' '`},
	{"example.com\x00", `'\x00'`},
	{"example.com\r\nHost: x", `'\r'`},
	{"[::1]", `'['`},
	{"a_b.example", `'_'`},
	{"bücher.example", `'\u00fc'`},
	{"example.com.", "trailing dot"},
	{".example.com", "empty label"},
	{"a..example", "empty label"},
	{"-a.example", `"-a"`},
	{"a-.example", `"a-"`},
	{strings.Repeat("a", 64) + ".example", "label longer than 63"},
	{strings.Repeat("a.", 126) + "ab", "longer than 253"},
	{"127.0.0.1", "all-numeric"},
	{"example.123", "all-numeric"},
	{strings.Repeat("x", 60_000), "longer than 253"},
}

// TestInvalidDomainRefused checks that LookupRecord, FetchPolicy and Get
// refuse a Domain that is not a host name, before any DNS or network use.
func TestInvalidDomainRefused(t *testing.T) {
	orig := mtasts.HTTPClient
	t.Cleanup(func() { mtasts.HTTPClient = orig })
	transport := &countingTransport{}
	mtasts.HTTPClient = &http.Client{Transport: transport}
	resolver := &countingResolver{}
	ctx := context.Background()

	for _, tc := range badDomains {
		d := mtasts.Domain{ASCII: tc.ascii}
		_, _, lerr := mtasts.LookupRecord(ctx, resolver, d)
		_, _, ferr := mtasts.FetchPolicy(ctx, d)
		_, _, _, gerr := mtasts.Get(ctx, resolver, d)
		verr := d.Validate()
		for _, err := range []error{lerr, ferr, gerr, verr} {
			if !errors.Is(err, mtasts.ErrInvalidDomain) {
				t.Errorf("%.80q: error %.300v, want ErrInvalidDomain", tc.ascii, err)
				continue
			}
			checkFailure(t, err, mtasts.ErrInvalidDomain, "")
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || len(msg) > 300 || !isPrintableASCII(msg) {
				t.Errorf("%.80q: error %.400q, want a short message saying %q", tc.ascii, msg, tc.want)
			}
			if got := mtasts.TLSReportResultType(err); got != "" {
				t.Errorf("%.80q: TLSReportResultType = %q, want none: there is no policy domain to report on", tc.ascii, got)
			}
			if got := mtasts.ResultLabel(err); got != "invalid-domain" {
				t.Errorf("%.80q: ResultLabel = %q, want invalid-domain", tc.ascii, got)
			}
		}
	}
	if n, m := resolver.n.Load(), transport.n.Load(); n != 0 || m != 0 {
		t.Errorf("%d lookups and %d requests made for invalid domains; want none", n, m)
	}

	// A Unicode form does not stand in for a missing ASCII form.
	if err := (mtasts.Domain{Unicode: "example.com"}).Validate(); !errors.Is(err, mtasts.ErrInvalidDomain) {
		t.Errorf("Domain with only a Unicode form: %v, want ErrInvalidDomain", err)
	}
}

func TestDomainValidate(t *testing.T) {
	good := []string{
		"example.com",
		"xn--bcher-kva.example",
		"localhost",
		"a",
		"1a.example",
		"123.example",
		"a-b--c.example",
		strings.Repeat("a", 63) + ".example",
		strings.Repeat("a.", 125) + "abc", // 253 bytes
	}
	for _, s := range good {
		if err := (mtasts.Domain{ASCII: s}).Validate(); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", s, err)
		}
	}

	// Every name ParseDomain returns is valid; the errors of ParseDomain
	// wrap ErrInvalidDomain and quote the input cut and escaped.
	for _, s := range []string{"bücher.example", "EXAMPLE.com.", "xn--bcher-kva.example"} {
		if err := mustDomain(t, s).Validate(); err != nil {
			t.Errorf("Validate of ParseDomain(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "a..b", "a\x1b]0;x\x07.example", strings.Repeat("x", 60_000), strings.Repeat("é", 30_000)} {
		_, err := mtasts.ParseDomain(s)
		if !errors.Is(err, mtasts.ErrInvalidDomain) || len(err.Error()) > 300 || !isPrintableASCII(err.Error()) {
			t.Errorf("ParseDomain(%.80q) error %.400q; want a short ErrInvalidDomain in printable ASCII", s, err)
		}
	}
}

// TestDomainValidateCaseAndUnicode checks that Validate refuses what the
// Domain type rules out: an upper-case ASCII form, which would make a cache
// keep one entry per casing, and a Unicode form that is not UTF-8, carries
// control characters for String and LogString to print, or is not the
// ASCII form's. Each error names the position at fault.
func TestDomainValidateCaseAndUnicode(t *testing.T) {
	bad := []struct {
		d    mtasts.Domain
		want string
	}{
		{mtasts.Domain{ASCII: "Example.com"}, `upper-case letter 'E' at byte 0`},
		{mtasts.Domain{ASCII: "example.COM"}, `upper-case letter 'C' at byte 8`},
		{mtasts.Domain{ASCII: "xn--bcher-kva.example", Unicode: "b\x1b[31mücher.example"}, `'\x1b' at byte 1`},
		{mtasts.Domain{ASCII: "xn--bcher-kva.example", Unicode: "bücher.example\u0085"}, `'\u0085' at byte 15`},
		{mtasts.Domain{ASCII: "xn--bcher-kva.example", Unicode: "b\xfccher.example"}, `'\xfc' at byte 1, expected UTF-8`},
		{mtasts.Domain{ASCII: "xn--bcher-kva.example", Unicode: "b\xc3\x28cher.example"}, `'\xc3' at byte 1, expected UTF-8`},
		{mtasts.Domain{ASCII: "xn--bcher-kva.example", Unicode: "bucher.example"}, "not the Unicode form"},
		{mtasts.Domain{ASCII: "xn--bcher-kva.example", Unicode: "Bücher.example"}, "not the Unicode form"},
		{mtasts.Domain{ASCII: "example.com", Unicode: "evil.example"}, "not the Unicode form"},
	}
	for _, tc := range bad {
		err := tc.d.Validate()
		if !errors.Is(err, mtasts.ErrInvalidDomain) {
			t.Errorf("Validate(%+q) = %v, want ErrInvalidDomain", tc.d, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.want) || len(msg) > 300 || !isPrintableASCII(msg) {
			t.Errorf("Validate(%+q) = %q, want a short message saying %q", tc.d, msg, tc.want)
		}
	}
	good := []mtasts.Domain{
		{ASCII: "example.com"},
		{ASCII: "example.com", Unicode: "example.com"},
		{ASCII: "xn--bcher-kva.example", Unicode: "bücher.example"},
		mustDomain(t, "BÜCHER.Example."),
	}
	for _, d := range good {
		if err := d.Validate(); err != nil {
			t.Errorf("Validate(%+q) = %v, want nil", d, err)
		}
	}
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// BenchmarkDomainValidate measures the check LookupRecord, FetchPolicy and
// Get make on every call: no allocation for a valid name.
func BenchmarkDomainValidate(b *testing.B) {
	d := mtasts.Domain{ASCII: "mail-relay.xn--bcher-kva.example.co.uk"}
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}
