package tlsrpt

import (
	"reflect"
	"strings"
	"testing"
)

// ParseRecord never panics; what it accepts has URIs free of the characters
// RFC 8460 3 wants encoded, and prints back to an equal record.
func FuzzParseRecord(f *testing.F) {
	f.Add("v=TLSRPTv1;rua=mailto:reports@example.com")
	f.Add("v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt")
	f.Add("v=TLSRPTv1;rua=mailto:a@example.com, https://r.example/x;")
	f.Add("v=TLSRPTv1; ext=1; rua=https://[2001:db8::1]:8443/r?a=b#c; ext=2")
	f.Add("v=TLSRPTv1; ; rua=")
	f.Add("v=TLSRPTv1 ;\trua=mailto:a%2Cb@example.com ; ")
	f.Fuzz(func(t *testing.T, txt string) {
		r, ok, err := ParseRecord(txt)
		if !ok {
			if r != nil || err != nil {
				t.Fatalf("not a record, but %v, %v", r, err)
			}
			return
		}
		if (r == nil) == (err == nil) {
			t.Fatalf("record %v with error %v", r, err)
		}
		if err != nil {
			return
		}
		if len(r.RUA) == 0 {
			t.Fatalf("accepted without rua")
		}
		for _, u := range r.RUA {
			if u == "" || strings.ContainsAny(u, ",;! \t") || checkURI(u) != "" {
				t.Fatalf("accepted rua URI %q", u)
			}
		}
		r2, ok, err := ParseRecord(r.String())
		if !ok || err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("String() = %q parses to %+v, %v; want %+v", r.String(), r2, err, r)
		}
	})
}
