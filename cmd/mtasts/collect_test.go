package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts/tlsrpt"
)

// serve --collect takes reports posted to /tlsrpt and writes each into the
// folder, one file per report, next to serving the policy.
func TestServeCollect(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.txt")
	os.WriteFile(policyFile, []byte(policyText("enforce", "604800", "mail.example.com")), 0o644)
	reports := filepath.Join(dir, "reports")
	os.Mkdir(reports, 0o755)
	run := startServeWith(t, false, "--policy", policyFile, "--addr", "127.0.0.1:0", "--collect", reports)

	data, err := os.ReadFile(appendixBFile)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	resp, err := http.Post("http://"+run.addr+"/tlsrpt", "application/tlsrpt+gzip", &gz)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("post: %d", resp.StatusCode)
	}
	resp, err = http.Post("http://"+run.addr+"/tlsrpt", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("post of text/plain: %d", resp.StatusCode)
	}
	run.waitLog(t, "collected report 5065427c-23d3-47ca-b6e0-946ea0e8c4be from Company-X")

	entries, _ := os.ReadDir(reports)
	const name = "company-y.example_20160401T000000Z-20160401T235959Z_5065427c-23d3-47ca-b6e0-946ea0e8c4be.json"
	if len(entries) != 1 || entries[0].Name() != name {
		t.Fatalf("files %v, want %s", entries, name)
	}
	stored, err := os.ReadFile(filepath.Join(reports, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tlsrpt.ParseReport(stored); err != nil {
		t.Errorf("the stored report does not parse: %v", err)
	}

	// The policy is still served.
	resp, err = http.Get("http://" + run.addr + "/.well-known/mta-sts.txt")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "mx: mail.example.com") {
		t.Errorf("policy: %d %q", resp.StatusCode, body)
	}
}

// A folder serve cannot write into is a usage error, found at start.
func TestServeCollectBadDir(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.txt")
	os.WriteFile(policyFile, []byte(policyText("enforce", "604800", "mail.example.com")), 0o644)
	code, _, stderr := runMain(t, nil, "serve", "--policy", policyFile, "--addr", "127.0.0.1:0", "--collect", filepath.Join(dir, "missing"))
	if code != exitUsage || !strings.Contains(stderr, "--collect") {
		t.Errorf("exit %d, %q", code, stderr)
	}
}

// A file name holds no path, control character or leading dot from the
// sender's text, is bounded, and keeps distinct reports apart.
func TestReportFileName(t *testing.T) {
	day := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	report := func(domain, id string) *tlsrpt.Report {
		return &tlsrpt.Report{
			ReportID:  id,
			DateRange: tlsrpt.DateRange{Start: day, End: day.Add(24*time.Hour - time.Second)},
			Policies:  []tlsrpt.PolicyResult{{Policy: tlsrpt.Policy{PolicyDomain: domain}}},
		}
	}
	names := map[string]bool{}
	for _, r := range []*tlsrpt.Report{
		report("example.com", "2026-12-05T00:00:00Z_example.com@sender.example"),
		report("example.com", "../../etc/passwd"),
		report("example.com", "..\\..\\etc\\passwd"),
		report("example.com", "a/b"),
		report("example.com", "a\x1b[2Jb"),
		report("example.com", strings.Repeat("x", 10000)),
		report("example.com", strings.Repeat("x", 10001)),
		report(".hidden", "id"),
		{ReportID: "no policies"},
	} {
		name := reportFileName(r)
		if strings.ContainsAny(name, "/\\\x00\x1b") || strings.HasPrefix(name, ".") || len(name) > 200 || !strings.HasSuffix(name, ".json") {
			t.Errorf("%q: name %q", r.ReportID, name)
		}
		if names[name] {
			t.Errorf("%q: name %q taken by another report", r.ReportID, name)
		}
		names[name] = true
	}
	if got, want := reportFileName(report("example.com", "id-1")), "example.com_20261205T000000Z-20261205T235959Z_id-1.json"; got != want {
		t.Errorf("%s, want %s", got, want)
	}
}
