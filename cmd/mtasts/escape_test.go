package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestEscapeText(t *testing.T) {
	tests := map[string]string{
		"":                         "",
		"plain text, tab\there":    "plain text, tab\there",
		"bücher.example ✓ 日本":      "bücher.example ✓ 日本",
		`back\slash`:               `back\slash`,
		hostileSeq:                 `\x1b]0;pwned\x07\x1b[2J`,
		"a\nb\rc\x00d\x7f":         `a\nb\rc\x00d\x7f`,
		"\u0085\u009b":             `\u0085\u009b`,
		"ab\u202ecd\u2066\u200b":   `ab\u202ecd\u2066\u200b`,
		"\u2028\u00a0\ufeff":       `\u2028\u00a0\ufeff`,
		"bad \xff\xc3 utf-8":       `bad \xff\xc3 utf-8`,
		"private \U000F0000 plane": `private \U000f0000 plane`,
	}
	for in, want := range tests {
		if got := escapeText(in); got != want {
			t.Errorf("escapeText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEscapeJSON(t *testing.T) {
	v := map[string]string{"k\u202e": "x" + hostileSeq + hostileMore + "\U000F0000\u2028é"}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got := escapeJSON(data)
	want := `{` + "\n" + `  "k\u202e": "x\u001b]0;pwned\u0007\u001b[2J\u007f\u009b\u202e\udb80\udc00\u2028é"` + "\n}"
	if string(got) != want {
		t.Errorf("escapeJSON = %s, want %s", got, want)
	}
	clean := []byte(`{"a": "b"}`)
	if got := escapeJSON(clean); &got[0] != &clean[0] {
		t.Errorf("escapeJSON copied clean input")
	}
}

// escapeText leaves nothing a terminal acts on, and changes nothing else;
// escapeJSON keeps the decoded value exactly.
func FuzzEscape(f *testing.F) {
	f.Add(hostileSeq + hostileMore)
	f.Add("plain")
	f.Add("\xff\xfe\u2028\U000F0000")
	f.Fuzz(func(t *testing.T, s string) {
		e := escapeText(s)
		if c, i := rawControl(e); i >= 0 {
			t.Fatalf("escapeText(%q) = %q: raw %q", s, e, c)
		}
		if strings.ContainsAny(e, "\n\r") {
			t.Fatalf("escapeText(%q) = %q holds a line end", s, e)
		}
		if !strings.ContainsRune(s, '\\') && strings.Count(e, `\`) == 0 && e != s {
			t.Fatalf("escapeText(%q) = %q changed text without escapes", s, e)
		}
		data, err := json.Marshal([]string{s})
		if err != nil {
			t.Fatal(err)
		}
		j := escapeJSON(data)
		if c, i := rawControl(string(j)); i >= 0 {
			t.Fatalf("escapeJSON(%s) = %s: raw %q", data, j, c)
		}
		var a, b []string
		if err := json.Unmarshal(data, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(j, &b); err != nil || len(b) != 1 || a[0] != b[0] {
			t.Fatalf("escapeJSON(%s) = %s decodes to %q, %v; want %q", data, j, b, err, a)
		}
		if !bytes.Equal(escapeJSON(j), j) {
			t.Fatalf("escapeJSON not idempotent on %s", j)
		}
	})
}
