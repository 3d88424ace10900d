package mtasts_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/mtasts-go/mtasts"
)

// netTXT answers TXT lookups as a *net.Resolver does: from a map, with a
// *net.DNSError for other names, not found unless fail is set.
type netTXT struct {
	txts  map[string][]string
	fail  error // returned for every name when set
	calls []string
}

func (r *netTXT) LookupTXT(ctx context.Context, name string) ([]string, error) {
	r.calls = append(r.calls, name)
	if r.fail != nil {
		return nil, r.fail
	}
	if txts, ok := r.txts[name]; ok {
		return txts, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// A resolver shaped like *net.Resolver serves LookupRecord through
// ResolverFrom: an answer is parsed, a name that does not exist is no record,
// any other failure a DNS failure; and no answer counts as DNSSEC-validated.
func TestResolverFrom(t *testing.T) {
	ctx := context.Background()
	domain, err := mtasts.ParseDomain("example.com")
	if err != nil {
		t.Fatal(err)
	}
	found := &netTXT{txts: map[string][]string{"_mta-sts.example.com.": {"v=spf1 -all", "v=STSv1; id=20240101;"}}}

	t.Run("found", func(t *testing.T) {
		record, text, err := mtasts.LookupRecord(ctx, mtasts.ResolverFrom(found), domain)
		if err != nil || record.ID != "20240101" || text != "v=STSv1; id=20240101;" {
			t.Errorf("LookupRecord: %+v, %q, %v; want id 20240101", record, text, err)
		}
		if len(found.calls) == 0 || found.calls[len(found.calls)-1] != "_mta-sts.example.com." {
			t.Errorf("looked up %q, want _mta-sts.example.com.", found.calls)
		}
	})

	t.Run("nxdomain", func(t *testing.T) {
		_, _, err := mtasts.LookupRecord(ctx, mtasts.ResolverFrom(&netTXT{}), domain)
		if !errors.Is(err, mtasts.ErrNoRecord) || errors.Is(err, mtasts.ErrDNS) {
			t.Errorf("LookupRecord of a name that does not exist: %v; want ErrNoRecord", err)
		}
	})

	t.Run("wrapped nxdomain", func(t *testing.T) {
		nx := fmt.Errorf("resolving: %w", &net.DNSError{Err: "no such host", Name: "_mta-sts.example.com.", IsNotFound: true})
		_, _, err := mtasts.LookupRecord(ctx, mtasts.ResolverFrom(&netTXT{fail: nx}), domain)
		if !errors.Is(err, mtasts.ErrNoRecord) {
			t.Errorf("LookupRecord with a wrapped not-found error: %v; want ErrNoRecord", err)
		}
	})

	t.Run("servfail", func(t *testing.T) {
		servfail := &net.DNSError{Err: "server misbehaving", Name: "_mta-sts.example.com.", Server: "127.0.0.1:53"}
		_, _, err := mtasts.LookupRecord(ctx, mtasts.ResolverFrom(&netTXT{fail: servfail}), domain)
		if !errors.Is(err, mtasts.ErrDNS) || errors.Is(err, mtasts.ErrNoRecord) {
			t.Errorf("LookupRecord on a server failure: %v; want ErrDNS", err)
		}
		var nerr *net.DNSError
		if !errors.As(err, &nerr) || nerr != servfail {
			t.Errorf("LookupRecord on a server failure: %v does not wrap the resolver's error", err)
		}
	})

	t.Run("dnssec unknown", func(t *testing.T) {
		txts, result, err := mtasts.ResolverFrom(found).LookupTXT(ctx, "_mta-sts.example.com.")
		if err != nil || len(txts) != 2 || result.Authentic {
			t.Errorf("LookupTXT: %q, %+v, %v; want two strings, not authentic", txts, result, err)
		}
		// A Client logs the lookup as not DNSSEC-validated.
		var buf bytes.Buffer
		client := &mtasts.Client{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		if _, _, err := client.LookupRecord(ctx, mtasts.ResolverFrom(found), domain); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "dnssec=false") {
			t.Errorf("log of the lookup does not say dnssec=false:\n%s", buf.String())
		}
	})

	t.Run("nil", func(t *testing.T) {
		_, _, err := mtasts.LookupRecord(ctx, mtasts.ResolverFrom(nil), domain)
		if !errors.Is(err, mtasts.ErrDNS) {
			t.Errorf("LookupRecord through ResolverFrom(nil): %v; want ErrDNS", err)
		}
	})
}
