package mtasts_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mtasts-go/mtasts"
)

// Policy.String's output is a published format: web servers serve it and
// stores keep it. The golden files hold it byte for byte (CRLF line endings,
// key order version, mode, mx, max_age, extensions); a change to them is a
// change of format, to be made on purpose.
func TestPolicyStringGolden(t *testing.T) {
	parse := func(text string) *mtasts.Policy {
		t.Helper()
		p, err := mtasts.ParsePolicy(text)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		policy *mtasts.Policy
	}{
		// Published in another order, with LF and a blank line: String
		// puts the keys in its own order.
		{"enforce", parse("max_age: 604800\nmx: mail.example.com\n\nmode: enforce\nmx: *.example.net\nversion: STSv1\nmx: backupmx.example.com\n")},
		{"none", parse("version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n")},
		// Built by hand: Unicode names are written as A-labels,
		// max_age as held (not capped at MaxAgeLimit), extensions in
		// their order.
		{"extensions", &mtasts.Policy{
			Version:       "STSv1",
			Mode:          mtasts.ModeTesting,
			MX:            []mtasts.STSMX{{Domain: mustDomain(t, "mail.bücher.example")}, {Wildcard: true, Domain: mustDomain(t, "münchen.example")}},
			MaxAgeSeconds: 99999999,
			Extensions:    []mtasts.Pair{{Key: "report", Value: "see https://example.com/mta-sts"}, {Key: "contact", Value: "postmaster@example.com"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", "policystring", tc.name+".golden"))
			if err != nil {
				t.Fatal(err)
			}
			got := tc.policy.String()
			if got != string(want) {
				t.Fatalf("String() = %q\nwant      %q", got, want)
			}
			// Every line, the last included, ends in CRLF; no blank
			// lines.
			if !strings.HasSuffix(got, "\r\n") || strings.Count(got, "\n") != strings.Count(got, "\r\n") || strings.Contains(got, "\r\n\r\n") {
				t.Errorf("String() = %q: lines not each ended by one CRLF", got)
			}
			// ParsePolicy gives back an equal policy.
			again, err := mtasts.ParsePolicy(got)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, tc.policy) {
				t.Errorf("ParsePolicy(String()) = %#v\nwant %#v", again, tc.policy)
			}
		})
	}
}
