package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// summaryReport is a report of one policy of domain on day, from org.
func summaryReport(org, domain string, day time.Time, ok, failed int64, details ...tlsrpt.FailureDetail) *tlsrpt.Report {
	return &tlsrpt.Report{
		OrganizationName: org,
		DateRange:        tlsrpt.DateRange{Start: day, End: day.Add(24*time.Hour - time.Second)},
		ContactInfo:      "tlsrpt@sender.example",
		ReportID:         org + "-" + domain + "-" + day.Format("20060102"),
		Policies: []tlsrpt.PolicyResult{{
			Policy:         tlsrpt.Policy{PolicyType: tlsrpt.PolicyTypeSTS, PolicyDomain: domain, PolicyString: []string{"version: STSv1", "mode: enforce", "mx: mx." + domain, "max_age: 86400"}},
			Summary:        tlsrpt.Summary{TotalSuccessfulSessionCount: ok, TotalFailureSessionCount: failed},
			FailureDetails: details,
		}},
	}
}

// report DIR sums up the reports per policy domain and day; --json gives the
// same as JSON. A file that is not a report is named, and makes the exit
// status 1; serve's hidden temporary files are not read.
func TestReportSummary(t *testing.T) {
	dir := t.TempDir()
	d1 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	d2 := d1.AddDate(0, 0, 1)
	fd := func(rt mtasts.ResultType, n int64) tlsrpt.FailureDetail {
		return tlsrpt.FailureDetail{ResultType: rt, ReceivingMXHostname: "mx.a.example", FailedSessionCount: n}
	}
	for _, r := range []*tlsrpt.Report{
		summaryReport("Google", "a.example", d1, 90, 10, fd(mtasts.ResultCertificateExpired, 6), fd(mtasts.ResultSTARTTLSNotSupported, 4)),
		summaryReport("Microsoft", "a.example", d1, 50, 0),
		summaryReport("Google", "a.example", d2, 100, 0),
		summaryReport("Google", "b.example", d1, 10, 30, fd(mtasts.ResultSTSPolicyFetchError, 30)),
		summaryReport("Evil\x1b[2J", "b.example", d1, 0, 0),
	} {
		if _, err := writeReportFile(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "junk.json"), []byte(`{"organization-name": 1}`), 0o644)
	os.WriteFile(filepath.Join(dir, ".tmp-123.json"), []byte(`half a rep`), 0o644)

	code, text, stderr := runMain(t, nil, "report", dir)
	if code != exitFail || stderr != "" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		"FAIL  report        5 reports read, 1 unreadable\n",
		"unreadable   " + filepath.Join(dir, "junk.json") + ": invalid report: organization-name:",
		"WARN  a.example     2026-12-04: 2 reports, 150 sessions, 10 failed (6.67%)\n",
		"failing      certificate-expired 6, starttls-not-supported 4\n",
		"senders      Google (1), Microsoft (1)\n",
		"PASS  a.example     2026-12-05: 1 report, 100 sessions, 0 failed (0.00%)\n",
		"WARN  b.example     2026-12-04: 2 reports, 40 sessions, 30 failed (75.00%)\n",
		"senders      Evil\\x1b[2J (1), Google (1)\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "tmp-123") {
		t.Errorf("read a hidden file:\n%s", text)
	}

	_, out, _ := runMain(t, nil, "report", "--json", dir)
	var res summaryResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Files != 5 || len(res.Errors) != 1 || len(res.Days) != 3 {
		t.Fatalf("%+v", res)
	}
	a := res.Days[0]
	if a.PolicyDomain != "a.example" || a.Day != "2026-12-04" || a.Reports != 2 || a.Sessions != 150 || a.Failures != 10 ||
		a.ResultTypes[0] != (typeCount{"certificate-expired", 6}) || len(a.Organizations) != 2 {
		t.Errorf("%+v", a)
	}

	// Several files, all valid.
	entries, _ := filepath.Glob(filepath.Join(dir, "a.example_*"))
	code, text, _ = runMain(t, nil, "report", entries[0], entries[1])
	if code != exitOK || !strings.Contains(text, "2 reports read, 0 unreadable") {
		t.Errorf("exit %d:\n%s", code, text)
	}
}
