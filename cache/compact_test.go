package cache

import (
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/mtasts-go/mtasts"
)

// compactPolicies are policy texts for the round trip of the compact form:
// each field at its bounds, IDNs, and lengths that take more than one byte.
var compactPolicies = []string{
	"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 604800\r\n",
	"version: STSv1\nmode: testing\nmx: mail.example.com\nmx: *.mx.example.net\nmax_age: 86400\n",
	"version: STSv1\nmode: none\nmax_age: 0\n",
	"version: STSv1\nmode: enforce\nmx: *.xn--bcher-kva.example\nmx: xn--mnchen-3ya.example\nmx: MAIL.Example.COM\nmax_age: 9999999999\n",
	"version: STSv1\nmode: testing\nmx: a.example\nmax_age: 31557600\nfoo: bär baz\nx-long: " + strings.Repeat("v", 300) + "\nmode: x\n",
	"version: STSv1\nmode: enforce\nmx: " + strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + ".example\nmax_age: 1\n",
	"version: STSv1\nmode: enforce\n" + strings.Repeat("mx: m.example\n", 200) + "max_age: 1\n",
}

// TestCompactPolicyRoundTrip: what a snapshot keeps of a policy gives back
// an equal policy, and the record id, without copying their strings.
func TestCompactPolicyRoundTrip(t *testing.T) {
	for _, text := range compactPolicies {
		for _, id := range []string{"", "1", "20240101000000", strings.Repeat("z", 200)} {
			p, err := mtasts.ParsePolicy(text)
			if err != nil {
				t.Fatalf("ParsePolicy(%q): %v", text, err)
			}
			enc, gotID := encodePolicy(p, id)
			if gotID != id || !within(gotID, enc) {
				t.Errorf("encodePolicy(%q, %q): id %q, want %q in the compact form", text, id, gotID, id)
			}
			q := decodePolicy(enc)
			if !reflect.DeepEqual(p, q) {
				t.Errorf("round trip of %q: %#v, want %#v", text, q, p)
			}
			if got := compactMode(enc); got != p.Mode {
				t.Errorf("compactMode of %q = %q, want %q", text, got, p.Mode)
			}
			for _, mx := range q.MX {
				if !within(mx.Domain.ASCII, enc) || !within(mx.Domain.Unicode, enc) {
					t.Errorf("decodePolicy of %q: mx %q copied, want a substring of the compact form", text, mx)
				}
			}
			for _, e := range q.Extensions {
				if !within(e.Key, enc) || !within(e.Value, enc) {
					t.Errorf("decodePolicy of %q: extension %q copied, want a substring of the compact form", text, e)
				}
			}
		}
	}
}

// TestCompactPolicyAllocs: encoding takes one allocation, the compact
// string; decoding one for the Policy with up to two mx patterns, and one
// more for more patterns and for the extensions.
func TestCompactPolicyAllocs(t *testing.T) {
	for _, tc := range []struct {
		text   string
		decode float64
	}{
		{compactPolicies[0], 1}, // one mx
		{compactPolicies[1], 1}, // two
		{compactPolicies[2], 1}, // none
		{compactPolicies[3], 2}, // three
		{compactPolicies[4], 2}, // one, and extensions
	} {
		p, err := mtasts.ParsePolicy(tc.text)
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { encodePolicy(p, "20240101000000") }); n != 1 {
			t.Errorf("encodePolicy(%q): %v allocations, want 1", tc.text, n)
		}
		enc, _ := encodePolicy(p, "20240101000000")
		if n := testing.AllocsPerRun(100, func() { decodePolicy(enc) }); n != tc.decode {
			t.Errorf("decodePolicy of %q: %v allocations, want %v", tc.text, n, tc.decode)
		}
	}
}

// within reports whether s, when not empty, lies in the memory of outer.
func within(s, outer string) bool {
	if s == "" {
		return true
	}
	start := uintptr(unsafe.Pointer(unsafe.StringData(outer)))
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	return p >= start && p+uintptr(len(s)) <= start+uintptr(len(outer))
}

// FuzzCompactPolicy: for any text that mtasts.ParsePolicy accepts, the
// compact form gives back an equal policy and the record id.
func FuzzCompactPolicy(f *testing.F) {
	for _, s := range compactPolicies {
		f.Add(s, "1")
	}
	f.Fuzz(func(t *testing.T, text, id string) {
		p, err := mtasts.ParsePolicy(text)
		if err != nil {
			return
		}
		enc, gotID := encodePolicy(p, id)
		if gotID != id {
			t.Fatalf("encodePolicy(%q, %q): id %q", text, id, gotID)
		}
		if q := decodePolicy(enc); !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip of %q: %#v, want %#v", text, q, p)
		}
		if got := compactMode(enc); got != p.Mode {
			t.Fatalf("compactMode of %q = %q, want %q", text, got, p.Mode)
		}
	})
}
