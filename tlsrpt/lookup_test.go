package tlsrpt

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/mjl-/adns"
	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
)

func TestLookupRecord(t *testing.T) {
	res := mtaststest.NewResolver()
	res.SetTXT("_smtp._tls.good.example", "v=spf1 -all", "v=TLSRPTv1;rua=mailto:reports@good.example")
	res.SetTXT("_smtp._tls.two.example", "v=TLSRPTv1; rua=mailto:a@two.example", "v=TLSRPTv1; rua=mailto:b@two.example")
	res.SetTXT("_smtp._tls.other.example", "v=TLSRPTv10; rua=mailto:a@other.example", "something else")
	res.SetTXT("_smtp._tls.bad.example", "v=TLSRPTv1; rua=reports")
	res.SetTXT("_smtp._tls.empty.example")
	res.ServFail("_smtp._tls.servfail.example")
	res.ServFail("_smtp._tls.bogus.example", adns.ErrorCode(6))
	res.SetTXT("_smtp._tls.xn--bcher-kva.example", "v=TLSRPTv1; rua=https://r.example/t")

	tests := []struct {
		domain string
		rua    string
		err    error
	}{
		{"good.example", "mailto:reports@good.example", nil},
		{"bücher.example", "https://r.example/t", nil},
		{"two.example", "", ErrMultipleRecords},
		{"other.example", "", ErrNoRecord},
		{"bad.example", "", ErrRecordSyntax},
		{"empty.example", "", ErrNoRecord},
		{"missing.example", "", ErrNoRecord},
		{"nx.example", "", ErrNoRecord},
		{"servfail.example", "", ErrDNS},
		{"bogus.example", "", ErrDNS},
	}
	for _, tc := range tests {
		d, err := mtasts.ParseDomain(tc.domain)
		if err != nil {
			t.Fatal(err)
		}
		// nx.example fails as the standard library's resolver says a name
		// does not exist.
		nx := failingResolver{res, "_smtp._tls.nx.example.", &net.DNSError{Err: "no such host", Name: "_smtp._tls.nx.example.", IsNotFound: true}}
		r, text, err := LookupRecord(context.Background(), nx, d)
		if tc.err != nil {
			if !errors.Is(err, tc.err) || r != nil {
				t.Errorf("%s: %v, %v; want %v", tc.domain, r, err, tc.err)
			}
			if tc.err == ErrRecordSyntax && text != "v=TLSRPTv1; rua=reports" {
				t.Errorf("%s: text %q, want the invalid record", tc.domain, text)
			}
			continue
		}
		if err != nil || len(r.RUA) != 1 || r.RUA[0] != tc.rua || text == "" {
			t.Errorf("%s: %+v, %q, %v; want rua %s", tc.domain, r, text, err, tc.rua)
		}
	}
	if n := res.Lookups("_smtp._tls.xn--bcher-kva.example."); n != 1 {
		t.Errorf("%d lookups of the A-label name, want 1", n)
	}

	// The resolver's error stays reachable.
	d, _ := mtasts.ParseDomain("bogus.example")
	_, _, err := LookupRecord(context.Background(), res, d)
	var ede adns.ExtendedError
	if !errors.As(err, &ede) || ede.InfoCode != 6 {
		t.Errorf("error %v does not wrap the extended DNS error", err)
	}
}

func TestLookupRecordArguments(t *testing.T) {
	d, _ := mtasts.ParseDomain("good.example")
	if _, _, err := LookupRecord(context.Background(), nil, d); !errors.Is(err, ErrDNS) {
		t.Errorf("nil resolver: %v", err)
	}
	if _, _, err := LookupRecord(context.Background(), mtaststest.NewResolver(), mtasts.Domain{}); !errors.Is(err, mtasts.ErrInvalidDomain) {
		t.Errorf("zero domain: %v", err)
	}
}

// A lookup ends with its context.
func TestLookupRecordCanceled(t *testing.T) {
	res := mtaststest.NewResolver()
	res.Hold("_smtp._tls.slow.example") // never released: lookups hang until their context ends
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, _ := mtasts.ParseDomain("slow.example")
	_, _, err := LookupRecord(ctx, res, d)
	if !errors.Is(err, ErrDNS) || !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want ErrDNS wrapping context.Canceled", err)
	}
}

func TestRecordName(t *testing.T) {
	d, _ := mtasts.ParseDomain("Bücher.Example.")
	if got, want := recordName(d), "_smtp._tls.xn--bcher-kva.example."; got != want {
		t.Errorf("recordName = %q, want %q", got, want)
	}
}

// failResolver fails the test when it is asked anything.
type failResolver struct{ t *testing.T }

func (r failResolver) LookupTXT(_ context.Context, name string) ([]string, adns.Result, error) {
	r.t.Errorf("resolver asked for %q", name)
	return nil, adns.Result{}, errors.New("unexpected lookup")
}

// A domain that is no host name never reaches the resolver, and its raw
// bytes do not reach the error (RFC 8460 3 puts it in a DNS name).
func TestLookupRecordInvalidDomain(t *testing.T) {
	for _, name := range []string{
		"evil.example/path",
		"nul\x00.example",
		strings.Repeat("a", 300),
		strings.Repeat("abcdefghi.", 30) + "example",
		"a..example",
		".example",
		"",
		"esc\x1b[2J.example",
	} {
		_, _, err := LookupRecord(context.Background(), failResolver{t}, mtasts.Domain{ASCII: name})
		if !errors.Is(err, mtasts.ErrInvalidDomain) {
			t.Errorf("%q: error %v, want one wrapping mtasts.ErrInvalidDomain", name, err)
			continue
		}
		if msg := err.Error(); len(msg) > 300 || strings.IndexFunc(msg, func(r rune) bool { return r < 0x20 || r >= 0x7f }) >= 0 {
			t.Errorf("%q: error text %q is not short printable US-ASCII", name, msg)
		}
	}
}

// failingResolver answers as Resolver does, but fails lookups of name with
// err.
type failingResolver struct {
	*mtaststest.Resolver
	name string
	err  error
}

func (r failingResolver) LookupTXT(ctx context.Context, name string) ([]string, adns.Result, error) {
	if name == r.name {
		return nil, adns.Result{}, r.err
	}
	return r.Resolver.LookupTXT(ctx, name)
}
