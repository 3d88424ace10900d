package cache_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
)

// A policy that did not parse is kept, its start at least, for the
// policy-string of a TLS report (RFC 8460 4.5); other failures and valid
// policies keep no text.
func TestPolicyText(t *testing.T) {
	long := strings.Repeat("mx: mx.example.com\n", 200)      // 3,800 bytes of lines
	oneLine := "version: STSv1 " + strings.Repeat("é", 2000) // no line end, 2-byte runes
	for _, tc := range []struct {
		name, served string
		fetchErr     error
		want         string
	}{
		{"invalid", "version: STSv1\nmode: enforce\nmax_age: forever\n", nil, "version: STSv1\nmode: enforce\nmax_age: forever\n"},
		{"long", "version: STSv1\n" + long, nil, ("version: STSv1\n" + long)[:strings.LastIndexByte(("version: STSv1\n" + long)[:cache.MaxPolicyText], '\n')+1]},
		{"one long line", oneLine, nil, oneLine[:cache.MaxPolicyText-1]},
		{"valid", "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n", nil, ""},
		{"fetch failed", "", errors.New("connection refused"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			w.publish("example.com", "1", tc.served)
			c := w.newCache(t, cache.Fake(cache.Options{}, nil, func(ctx context.Context, d mtasts.Domain) (*mtasts.Policy, string, error) {
				if tc.fetchErr != nil {
					return nil, "", tc.fetchErr
				}
				p, err := mtasts.ParsePolicy(tc.served)
				return p, tc.served, err
			}))
			for _, attempt := range []string{"fetch", "remembered"} {
				res := c.Get(context.Background(), mtasts.Domain{ASCII: "example.com", Unicode: "example.com"})
				if res.PolicyText != tc.want {
					t.Errorf("%s: PolicyText of %d bytes %q..., want %d bytes", attempt, len(res.PolicyText), res.PolicyText[:min(len(res.PolicyText), 40)], len(tc.want))
				}
				if len(res.PolicyText) > cache.MaxPolicyText || !utf8.ValidString(res.PolicyText) {
					t.Errorf("%s: PolicyText of %d bytes, valid UTF-8 %v", attempt, len(res.PolicyText), utf8.ValidString(res.PolicyText))
				}
			}
		})
	}
}
