package main

import (
	"strings"
	"testing"
)

// check judges the TLS-RPT record with the tlsrpt package's parser: to the
// grammar of RFC 8460 3, not by splitting on ";".
func TestCheckTLSRPTRecord(t *testing.T) {
	records := map[string]string{
		"ok.example":        "v=TLSRPTv1; rua=mailto:r@ok.example, https://r.ok.example/t; ext=1",
		"upper.example":     "v=TLSRPTv1; rua=HTTPS://r.upper.example/t",
		"badext.example":    "v=TLSRPTv1; rua=mailto:r@badext.example; bad ext=1",
		"badname.example":   "v=TLSRPTv1; rua=mailto:r@badname.example; _x=1",
		"space.example":     "v=TLSRPTv1; rua=mailto:r @space.example",
		"bang.example":      "v=TLSRPTv1; rua=mailto:r!x@bang.example",
		"http.example":      "v=TLSRPTv1; rua=http://r.http.example/t",
		"some.example":      "v=TLSRPTv1; rua=mailto:r@some.example,ftp://r.some.example/x",
		"otherv.example":    "v=TLSRPTv10; rua=mailto:r@otherv.example",
		"concat.example":    "", // two strings, below
		"trailing.example":  "v=TLSRPTv1; rua=mailto:r@trailing.example;",
		"badpct.example":    "v=TLSRPTv1; rua=https://r.badpct.example/%zz",
		"norua.example":     "v=TLSRPTv1; RUA=mailto:r@norua.example",
		"emptyext.example":  "v=TLSRPTv1; rua=mailto:r@emptyext.example; ext=",
		"badscheme.example": "v=TLSRPTv1; rua=1mailto:r@badscheme.example",
	}
	zones := map[string]zone{}
	for d, txt := range records {
		zones["_smtp._tls."+d+"."] = zone{txt: [][]string{{txt}}}
	}
	zones["_smtp._tls.concat.example."] = zone{txt: [][]string{{"v=TLSRPTv1;", "rua=mailto:r@concat.example"}}}
	dns := startDNS(t, zones)
	w := &world{dns: dns, flags: []string{"--resolver", dns.addr, "--timeout", "5s"}}

	tests := []struct {
		domain string
		status status
		text   string
	}{
		{"ok.example", statusPass, `"v=TLSRPTv1; rua=mailto:r@ok.example, https://r.ok.example/t; ext=1"`},
		{"upper.example", statusPass, "upper.example"}, // URI schemes are case-insensitive (RFC 3986 3.1)
		{"badext.example", statusFail, `"bad": `},
		{"badname.example", statusFail, `"_x"`},
		{"space.example", statusFail, `"rua"`},
		{"bang.example", statusFail, `must be percent-encoded`},
		{"http.example", statusFail, "no mailto: or https: URI"},
		{"some.example", statusWarn, `"ftp://r.some.example/x": scheme not supported`},
		{"otherv.example", statusWarn, "no TLS-RPT record"},
		{"concat.example", statusPass, `"v=TLSRPTv1;rua=mailto:r@concat.example"`},
		{"trailing.example", statusPass, "trailing.example"},
		{"badpct.example", statusFail, "percent"},
		{"norua.example", statusFail, `"rua": missing`},
		{"emptyext.example", statusFail, `"ext": empty value`},
		{"badscheme.example", statusFail, `invalid scheme "1mailto"`},
	}
	args := []string{}
	for _, tc := range tests {
		args = append(args, tc.domain)
	}
	_, _, steps := checkJSON(t, w, args...)
	for _, tc := range tests {
		s := steps[tc.domain]["tlsrpt"]
		if s == nil {
			t.Errorf("%s: no tlsrpt step", tc.domain)
			continue
		}
		all := s.messages(statusInfo) + s.messages(statusPass) + s.messages(statusWarn) + s.messages(statusFail)
		if s.Status != tc.status || !strings.Contains(all, tc.text) {
			t.Errorf("%s: tlsrpt step %s %q, want %s with %q", tc.domain, s.Status, all, tc.status, tc.text)
		}
	}
}
