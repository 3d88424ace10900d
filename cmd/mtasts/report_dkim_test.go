package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// report shows the DKIM verdict of a message and still the report: signed
// by the reporting domain, by another domain, and unsigned. Exit status is
// 0 each time: the report was read.
func TestReportDKIM(t *testing.T) {
	files, _ := reportForms(t)
	msg, err := os.ReadFile(files["message"])
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	record := "v=DKIM1; k=ed25519; s=tlsrpt; p=" + base64.StdEncoding.EncodeToString(pub)
	dns := startDNS(t, map[string]zone{
		"sel._domainkey.company-x.example.": {txt: [][]string{{record}}},
		"sel._domainkey.other.example.":     {txt: [][]string{{record}}},
	})
	sign := func(domain string) string {
		var b bytes.Buffer
		if err := dkim.Sign(&b, bytes.NewReader(msg), &dkim.SignOptions{Domain: domain, Selector: "sel", Signer: priv}); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), domain+".eml")
		os.WriteFile(f, b.Bytes(), 0o644)
		return f
	}
	tests := []struct {
		file  string
		valid bool
		text  []string
	}{
		{sign("company-x.example"), true, []string{"PASS  dkim          d=company-x.example s=sel: pass; the reporting domain; key s=tlsrpt\n"}},
		{sign("other.example"), false, []string{
			"FAIL  dkim          d=other.example s=sel: pass; not the reporting domain; key s=tlsrpt\n",
			"WARN  dkim          no valid DKIM signature by the reporting domain: RFC 8460 3 says to ignore this report; shown as read\n",
		}},
		{files["message"], false, []string{"WARN  dkim          unsigned: RFC 8460 3 says to ignore this report; shown as read\n"}},
	}
	for _, tt := range tests {
		code, text, stderr := runMain(t, nil, "report", "--resolver", dns.addr, tt.file)
		if code != exitOK || stderr != "" {
			t.Errorf("%s: exit %d, stderr %q", tt.file, code, stderr)
		}
		for _, want := range append(tt.text, "policy 1      sts company-y.example") {
			if !strings.Contains(text, want) {
				t.Errorf("%s: output lacks %q:\n%s", tt.file, want, text)
			}
		}
		_, out, _ := runMain(t, nil, "report", "--json", "--resolver", dns.addr, tt.file)
		var res struct {
			DKIMValid *bool             `json:"dkim-valid"`
			DKIM      []json.RawMessage `json:"dkim"`
			Report    json.RawMessage   `json:"report"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		if res.DKIMValid == nil || *res.DKIMValid != tt.valid || res.Report == nil {
			t.Errorf("%s: JSON dkim-valid %v, report %s", tt.file, res.DKIMValid, res.Report)
		}
	}
	// JSON and gzip forms carry no signature and no verdict.
	_, out, _ := runMain(t, nil, "report", "--json", files["json"])
	if strings.Contains(out, "dkim") {
		t.Errorf("JSON form has a DKIM verdict:\n%s", out)
	}
}
