package mtasts

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
)

func BenchmarkParseRecord(b *testing.B) {
	const txt = "v=STSv1; id=20160831085700Z;"
	for b.Loop() {
		if _, _, err := ParseRecord(txt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParsePolicy parses the typical policy: the example of RFC 8461 3.2.
func BenchmarkParsePolicy(b *testing.B) {
	b.SetBytes(int64(len(examplePolicy)))
	for b.Loop() {
		if _, err := ParsePolicy(examplePolicy); err != nil {
			b.Fatal(err)
		}
	}
}

// largePolicy returns a policy of about 60 KB, the shape a large hoster's
// would have: a long list of mx lines, plain and wildcard, one in eight in
// mixed case, with CRLF line endings and a few extensions.
func largePolicy() string {
	var sb strings.Builder
	sb.WriteString("version: STSv1\r\nmode: enforce\r\nmax_age: 604800\r\nreport: see https://example.com/mta-sts\r\n")
	for i := 0; sb.Len() < 60_000; i++ {
		switch {
		case i%8 == 7:
			sb.WriteString("mx: Backup-" + strconv.Itoa(i) + ".Example.ORG\r\n")
		case i%2 == 1:
			sb.WriteString("mx: *.relay" + strconv.Itoa(i) + ".example.net\r\n")
		default:
			sb.WriteString("mx: mx" + strconv.Itoa(i) + ".mail.example.com\r\n")
		}
	}
	sb.WriteString("contact: postmaster@example.com\r\n")
	return sb.String()
}

// BenchmarkParsePolicyManyExtensions parses a hostile policy: 64 KB of
// distinct extension keys, which must stay linear.
func BenchmarkParsePolicyManyExtensions(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("version: STSv1\nmode: none\nmax_age: 1\n")
	for i := 0; sb.Len() < MaxPolicySize-32; i++ {
		sb.WriteString("k" + strconv.Itoa(i) + ": v\n")
	}
	text := sb.String()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := ParsePolicy(text); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePolicyLarge(b *testing.B) {
	text := largePolicy()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := ParsePolicy(text); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMatches(b *testing.B) {
	p, err := ParsePolicy(examplePolicy)
	if err != nil {
		b.Fatal(err)
	}
	// The worst case of the typical policy: a host that matches only the
	// last pattern, after a wildcard was tried.
	host := Domain{ASCII: "backupmx.example.com"}
	for b.Loop() {
		if !p.Matches(host) {
			b.Fatal("no match")
		}
	}
}

// BenchmarkLookupRecord measures a lookup with an in-memory resolver: the
// cost of the library around DNS, without logging.
func BenchmarkLookupRecord(b *testing.B) {
	ctx := context.Background()
	d := Domain{ASCII: "example.com"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := LookupRecord(ctx, oneRecordResolver{}, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientLookupRecordLogged is BenchmarkLookupRecord through a
// Client that logs at debug level, as text, to io.Discard: what logging
// adds to each lookup.
func BenchmarkClientLookupRecordLogged(b *testing.B) {
	ctx := context.Background()
	d := Domain{ASCII: "example.com"}
	c := &Client{Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug})).With("msgid", "m1")}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.LookupRecord(ctx, oneRecordResolver{}, d); err != nil {
			b.Fatal(err)
		}
	}
}
