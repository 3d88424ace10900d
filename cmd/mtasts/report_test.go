package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

const appendixBFile = "../../tlsrpt/testdata/rfc8460-appendix-b.json"

// reportForms writes RFC 8460's example report in the three forms a report
// comes in, and returns their files by form.
func reportForms(t *testing.T) (map[string]string, *tlsrpt.Report) {
	t.Helper()
	data, err := os.ReadFile(appendixBFile)
	if err != nil {
		t.Fatal(err)
	}
	report, err := tlsrpt.ParseReport(data)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	// The message, as a Sender mails it to the rua address of
	// company-y.example.
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_smtp._tls.company-y.example", "v=TLSRPTv1; rua=mailto:tlsrpt@company-y.example")
	var msg *tlsrpt.Message
	sender, err := tlsrpt.NewSender(tlsrpt.SenderOptions{
		Resolver: resolver,
		Submit: func(_ context.Context, m *tlsrpt.Message) error {
			msg = m
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sender.Send(t.Context(), report); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"json":    appendixBFile,
		"gzip":    filepath.Join(dir, "report.json.gz"),
		"message": filepath.Join(dir, "report.eml"),
	}
	os.WriteFile(files["gzip"], gz.Bytes(), 0o644)
	os.WriteFile(files["message"], msg.Data, 0o644)
	return files, report
}

// The example report of RFC 8460 Appendix B reads the same in each form:
// the text summary names each policy and its failure rows, and --json gives
// the report in normalised form.
func TestReportCommand(t *testing.T) {
	files, report := reportForms(t)
	want, _ := json.Marshal(report)
	for form, file := range files {
		t.Run(form, func(t *testing.T) {
			code, out, stderr := runMain(t, nil, "report", "--json", file)
			if code != exitOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			var res struct {
				File   string          `json:"file"`
				Form   string          `json:"form"`
				Valid  bool            `json:"valid"`
				Report json.RawMessage `json:"report"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			if res.File != file || res.Form != form || !res.Valid {
				t.Errorf("file %q, form %q, valid %v", res.File, res.Form, res.Valid)
			}
			got, err := tlsrpt.ParseReport(res.Report)
			if err != nil {
				t.Fatalf("the normalised report does not parse: %v", err)
			}
			if g, _ := json.Marshal(got); !bytes.Equal(g, want) {
				t.Errorf("normalised report\n %s, want\n %s", g, want)
			}
			// Appendix B's single mx-host string is an array now.
			if !strings.Contains(string(res.Report), `"mx-host": [`) {
				t.Errorf("mx-host is not normalised to an array:\n%s", res.Report)
			}

			code, text, _ := runMain(t, nil, "report", file)
			if code != exitOK {
				t.Errorf("text: exit %d", code)
			}
			for _, want := range []string{
				"PASS  report        " + file + ": valid TLS report (RFC 8460), " + formNames[form] + ", 1 policy\n",
				"organization Company-X\n",
				"report-id    5065427c-23d3-47ca-b6e0-946ea0e8c4be\n",
				"date range   2016-04-01T00:00:00Z to 2016-04-01T23:59:59Z\n",
				"WARN  policy 1      sts company-y.example: 5326 successful, 303 failed sessions\n",
				"mx hosts     *.mail.company-y.example\n",
				"policy       version: STSv1\n",
				"successes    5326\n",
				"failures     303\n",
				"SESSIONS  RESULT TYPE             MX HOST                           RECEIVING IP  SENDING MTA IP       REASON                                 ADDITIONAL INFORMATION\n",
				"     100  certificate-expired     mx1.mail.company-y.example        -             2001:db8:abcd:12::1  -                                      -\n",
				"       3  validation-failure      mx-backup.mail.company-y.example  203.0.113.58  198.51.100.62        X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED  -\n",
			} {
				if !strings.Contains(text, want) {
					t.Errorf("text output lacks %q:\n%s", want, text)
				}
			}
		})
	}
}

// Standard input is read for "-" or no file.
func TestReportStdin(t *testing.T) {
	data, err := os.ReadFile(appendixBFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"report"}, {"report", "-"}} {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &stdio{in: bytes.NewReader(data), out: &out, err: &errb, getenv: func(string) string { return "" }})
		if code != exitOK || !strings.Contains(out.String(), "standard input: valid TLS report") {
			t.Errorf("%v: exit %d, stdout:\n%s\nstderr: %s", args, code, out.String(), errb.String())
		}
	}
}

// An invalid report exits 1, and the error names the JSON path at fault.
func TestReportInvalid(t *testing.T) {
	data, err := os.ReadFile(appendixBFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tests := []struct {
		name, text string
		path       string // the JSON path; "" when the fault is not in the JSON
		msg        string // in the message
	}{
		{"negative count", strings.Replace(string(data), "303", "-303", 1),
			"policies[0].summary.total-failure-session-count", "-303, expected a count of 0 or more"},
		{"count as string", strings.Replace(string(data), `"failed-session-count": 3`, `"failed-session-count": "3"`, 1),
			"policies[0].failure-details[2].failed-session-count", "expected"},
		{"missing report-id", strings.Replace(string(data), `"report-id"`, `"report-idx"`, 1), "", "report-id"},
		{"not a report", "From: a@example.com\r\nSubject: hello\r\n\r\nhi\r\n", "", "no tlsrpt report"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			os.WriteFile(file, []byte(tc.text), 0o644)
			code, out, stderr := runMain(t, nil, "report", "--json", file)
			if code != exitFail || stderr != "" {
				t.Fatalf("exit %d, stderr %q; want %d", code, stderr, exitFail)
			}
			var res reportResult
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			if res.Valid || res.Report != nil || res.Error == nil {
				t.Fatalf("result %+v, want invalid with an error", res)
			}
			if tc.path != "" && res.Error.Path != tc.path {
				t.Errorf("path %q, want %q", res.Error.Path, tc.path)
			}
			if !strings.Contains(res.Error.Message, tc.msg) {
				t.Errorf("message %q does not say %q", res.Error.Message, tc.msg)
			}

			code, text, _ := runMain(t, nil, "report", file)
			if code != exitFail || !strings.HasPrefix(text, "FAIL  report        "+file) || !strings.Contains(text, res.Error.Path) {
				t.Errorf("text: exit %d:\n%s", code, text)
			}
		})
	}
}

// A report is the sender's text: control characters and bidi overrides in
// it are escaped in the text output and written as \u escapes in JSON. (A
// report with control characters in a failure detail is invalid, see
// tlsrpt.Report.Validate; a bidi override there is not.)
func TestReportHostileText(t *testing.T) {
	data, err := os.ReadFile(appendixBFile)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), `"Company-X"`, `"Company\u001b]0;pwned\u0007-X\u202e"`, 1)
	text = strings.Replace(text, `"X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"`, `"bad\u202ecode"`, 1)
	file := filepath.Join(t.TempDir(), "hostile.json")
	os.WriteFile(file, []byte(text), 0o644)

	code, out, _ := runMain(t, nil, "report", file)
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if strings.ContainsAny(out, "\x1b\x07\u202e") {
		t.Errorf("raw control characters in the output: %q", out)
	}
	for _, want := range []string{`Company\x1b]0;pwned\x07-X\u202e`, `bad\u202ecode`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks the escaped %q:\n%s", want, out)
		}
	}

	code, out, _ = runMain(t, nil, "report", "--json", file)
	if code != exitOK || strings.ContainsAny(out, "\x1b\x07\u202e") {
		t.Errorf("JSON: exit %d, raw control characters: %q", code, out)
	}
	var res reportResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Report.OrganizationName != "Company\x1b]0;pwned\x07-X\u202e" {
		t.Errorf("JSON does not decode to the exact text: %v", err)
	}
}

// Bad command lines, unreadable input and input too large to read: exit
// status 2, one line on stderr.
func TestReportUsageErrors(t *testing.T) {
	dir := t.TempDir()
	// A gzip file that decompresses past maxReportInput.
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zw.Write(make([]byte, maxReportInput+1))
	zw.Close()
	bombFile := filepath.Join(dir, "bomb.json.gz")
	os.WriteFile(bombFile, bomb.Bytes(), 0o644)

	tests := []struct {
		args []string
		want string
	}{
		{[]string{"report", filepath.Join(dir, "missing.json")}, "no such file"},
		// A folder or several files are summed up (report_summary_test.go);
		// one missing is a usage error still.
		{[]string{"report", appendixBFile, filepath.Join(dir, "missing.json")}, "no such file"},
		{[]string{"report", "--bogus", appendixBFile}, "flag provided but not defined: -bogus"},
		{[]string{"report", bombFile}, "decompressed report larger than the maximum"},
	}
	for _, tc := range tests {
		code, out, stderr := runMain(t, nil, tc.args...)
		if code != exitUsage || out != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, stderr, tc.want)
		}
	}

	var out, errb bytes.Buffer
	big := bytes.NewReader(make([]byte, maxReportInput+1))
	code := run(context.Background(), []string{"report"}, &stdio{in: big, out: &out, err: &errb, getenv: func(string) string { return "" }})
	if code != exitUsage || !strings.Contains(errb.String(), "larger than") {
		t.Errorf("input over the bound: exit %d, stderr %q", code, errb.String())
	}
}

// A report with a 20 MB value gives an error that quotes 64 bytes of it:
// no line of the output, text or JSON, is longer than a few hundred bytes.
func TestReportHugeValue(t *testing.T) {
	data, err := os.ReadFile(appendixBFile)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), `"sts-reporting@company-x.example"`, `"\u001b[2J`+strings.Repeat("x", 20_000_000)+`"`, 1)
	file := filepath.Join(t.TempDir(), "huge.json")
	os.WriteFile(file, []byte(text), 0o644)
	for _, args := range [][]string{{"report", file}, {"report", "--json", file}} {
		code, out, stderr := runMain(t, nil, args...)
		if code != exitFail {
			t.Errorf("%v: exit %d, want %d; stderr %.300q", args, code, exitFail, stderr)
		}
		for _, line := range strings.Split(out+stderr, "\n") {
			if len(line) > 500 || strings.Contains(line, "\x1b") {
				t.Errorf("%v: a line of %d bytes: %.300q", args, len(line), line)
			}
		}
	}
}

// A valid report may hold values of megabytes: the text summary shows the
// first bytes of each and its length, no line of megabytes; --json gives
// the exact report.
func TestReportHugeValidValue(t *testing.T) {
	data, err := os.ReadFile(appendixBFile)
	if err != nil {
		t.Fatal(err)
	}
	org := "Company-\u00e9" + strings.Repeat("x", 12_500_000)
	text := strings.Replace(string(data), `"Company-X"`, `"`+org+`"`, 1)
	text = strings.Replace(text, `"5065427c-23d3-47ca-b6e0-946ea0e8c4be"`, `"`+strings.Repeat("r", 1_000_000)+`"`, 1)
	// A failure reason has at most 2048 bytes (tlsrpt.Report.Validate).
	text = strings.Replace(text, `"X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"`, `"`+strings.Repeat("y", 2000)+`"`, 1)
	file := filepath.Join(t.TempDir(), "huge.json")
	os.WriteFile(file, []byte(text), 0o644)
	code, out, _ := runMain(t, nil, "report", file)
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > 500 {
			t.Errorf("a line of %d bytes: %.300q", len(line), line)
		}
	}
	if !strings.Contains(out, "Company-\u00e9xxx") || !strings.Contains(out, "(12500010 bytes)") {
		t.Errorf("the organization is not shown cut with its length:\n%.2000s", out)
	}

	code, out, _ = runMain(t, nil, "report", "--json", file)
	var res reportResult
	if err := json.Unmarshal([]byte(out), &res); code != exitOK || err != nil || res.Report.OrganizationName != org {
		t.Errorf("JSON: exit %d, %v, or not the exact organization", code, err)
	}
}

// A report with what real senders get wrong is read, exit 0, with a warning
// per deviation under the report, naming its JSON path; --json has them;
// --strict refuses the report as RFC 8460 reads it.
func TestReportWarnings(t *testing.T) {
	const report = "\ufeff" + `{"organization-name": "Sender Org", "contact-info": null, "report-id": "r1",
  "date-range": {"start-datetime": "2026-11-01T00:00:00", "end-datetime": "2026-11-02T00:00:00Z"},
  "policies": [
    {"policy": {"policy-type": "sts", "policy-domain": "RECV.Example.", "mx-host": ["mx: mx.recv.example"]},
     "summary": {"total-successful-session-count": 3, "total-failure-session-count": 1},
     "failure-details": [{"result-type": "certificate-expired", "failed-session-count": 1, "failure-reason-code": "expired\u001b[2J"}]},
    {"policy": {"policy-type": "no-policy-found"},
     "summary": {"total-successful-session-count": 1, "total-failure-session-count": 0}}]}`
	file := filepath.Join(t.TempDir(), "quirks.json")
	os.WriteFile(file, []byte(report), 0o644)
	wantWarnings := []tlsrpt.Warning{
		{Path: "", Msg: "UTF-8 byte order mark before the JSON"},
		{Path: "contact-info", Msg: "null"},
		{Path: "date-range.start-datetime", Msg: "no time zone offset"},
		{Path: "policies[0].policy.policy-domain", Msg: `"recv.example"`},
		{Path: "policies[0].policy.mx-host[0]", Msg: "not a domain name"},
		{Path: "policies[0].failure-details[0].failure-reason-code", Msg: "control character"},
		{Path: "policies[1].policy.policy-domain", Msg: "left empty"},
	}

	code, out, stderr := runMain(t, nil, "report", file)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q:\n%s", code, stderr, out)
	}
	if !strings.Contains(out, "WARN  report        "+file+": TLS report read with 7 warnings, JSON, 2 policies\n") {
		t.Errorf("first line does not say the report was read with warnings, of 2 policies:\n%s", out)
	}
	if strings.Contains(out, "\x1b") || !strings.Contains(out, `expired\x1b[2J`) {
		t.Errorf("the failure reason is not shown escaped:\n%s", out)
	}
	// The warnings come under the report, after its policies.
	after := out[strings.LastIndex(out, "policy 2"):]
	for _, w := range wantWarnings {
		line := "WARN  warning       " + w.Path
		if !strings.Contains(after, line) || !strings.Contains(after, w.Msg) {
			t.Errorf("no warning %q with %q after the policies:\n%s", line, w.Msg, after)
		}
	}

	code, out, _ = runMain(t, nil, "report", "--json", file)
	// The report is not valid by RFC 8460, and tlsrpt.Report's
	// UnmarshalJSON is strict: it is read as raw JSON here.
	var res struct {
		Valid    bool             `json:"valid"`
		Report   json.RawMessage  `json:"report"`
		Warnings []tlsrpt.Warning `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitOK || !res.Valid || len(res.Report) == 0 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	if len(res.Warnings) != len(wantWarnings) {
		t.Fatalf("warnings %q, want %d", res.Warnings, len(wantWarnings))
	}
	for i, w := range wantWarnings {
		if res.Warnings[i].Path != w.Path || !strings.Contains(res.Warnings[i].Msg, w.Msg) {
			t.Errorf("warning %d: %q, want path %q with %q", i, res.Warnings[i], w.Path, w.Msg)
		}
	}
	if !strings.Contains(out, `"warnings": [`) || !strings.Contains(out, `"path": "contact-info"`) {
		t.Errorf("JSON lacks the warnings with their paths:\n%s", out)
	}

	for _, args := range [][]string{{"report", "--strict", file}, {"report", "--strict", "--json", file}} {
		code, out, _ = runMain(t, nil, args...)
		if code != exitFail || !strings.Contains(out, "byte order mark") {
			t.Errorf("%v: exit %d, want %d and the byte order mark refused:\n%s", args, code, exitFail, out)
		}
	}
	// Without the byte order mark, the strict reader names the next fault.
	os.WriteFile(file, []byte(strings.TrimPrefix(report, "\ufeff")), 0o644)
	code, out, _ = runMain(t, nil, "report", "--strict", file)
	if code != exitFail || !strings.Contains(out, "contact-info: null") {
		t.Errorf("--strict: exit %d:\n%s", code, out)
	}
}
