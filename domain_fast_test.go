package mtasts

import (
	"strings"
	"testing"
)

// The shortcut of idnaForms for plain names gives what IDNA gives, for the
// names ParseDomain goes on to accept: the same forms, and an error where
// IDNA has one.
func FuzzIDNAShortcut(f *testing.F) {
	for _, s := range []string{"example.com", "ab--cd.example", "xn--bcher-kva.example", "a-.example", "-a.example",
		"a--b.example", "abc--d.example", "ab-c.example", "1.2.3.4", "a..b", "bücher.example", "EXAMPLE.com", strings.Repeat("a", 64) + ".example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !plainLDH(name) {
			return
		}
		fast, _ := idnaForms(name)
		slow, err := idnaConvert(name)
		if checkHostName(fast.ASCII) != "" {
			return // refused either way
		}
		if err != nil || fast != slow {
			t.Fatalf("%q: shortcut %+v, IDNA %+v, %v", name, fast, slow, err)
		}
	})
}

// A plain name is parsed without an allocation.
func TestParseDomainPlainAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		if _, err := ParseDomain("mail.example.com"); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ParseDomain allocates %v times for a plain name, want 0", n)
	}
}
