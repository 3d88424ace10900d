package tlsrpt

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// quirkReport is a valid report written for these tests; each test changes
// one thing in it, as a real sender was seen to.
const quirkReport = `{
  "organization-name": "Sender Org",
  "date-range": {"start-datetime": "2026-11-01T00:00:00Z", "end-datetime": "2026-11-01T23:59:59Z"},
  "contact-info": "tlsrpt@sender.example",
  "report-id": "2026-11-01T00:00:00Z_recv.example",
  "policies": [{
    "policy": {
      "policy-type": "sts",
      "policy-string": ["version: STSv1", "mode: enforce", "mx: mx1.recv.example", "max_age: 86400"],
      "policy-domain": "recv.example",
      "mx-host": ["mx1.recv.example"]
    },
    "summary": {"total-successful-session-count": 10, "total-failure-session-count": 2},
    "failure-details": [{
      "result-type": "certificate-expired",
      "sending-mta-ip": "192.0.2.7",
      "receiving-mx-hostname": "mx1.recv.example",
      "receiving-mx-helo": "mx1.recv.example",
      "receiving-ip": "198.51.100.25",
      "failed-session-count": 2,
      "additional-information": "https://sender.example/tlsrpt/info",
      "failure-reason-code": "X509_V_ERR_CERT_HAS_EXPIRED"
    }]
  }]
}`

// quirk returns quirkReport with old replaced by new, once.
func quirk(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(quirkReport, old) {
		t.Fatalf("test report has no %q", old)
	}
	return strings.Replace(quirkReport, old, new, 1)
}

// readLenient reads in as ReadReport does, failing t on an error; it checks
// the warnings' bounds.
func readLenient(t *testing.T, in string) *readResult {
	t.Helper()
	res, err := readWith(ReadOptions{}, strings.NewReader(in))
	if err != nil {
		t.Fatalf("lenient read: %v", err)
	}
	for _, w := range res.Warnings {
		if !isShortPrintable(w.String(), 400) {
			t.Errorf("warning text of %d bytes, not short printable US-ASCII: %.500q", len(w.String()), w.String())
		}
	}
	// ReadReport reads it too.
	if _, _, err := ReadReport(strings.NewReader(in), ReadOptions{}); err != nil {
		t.Errorf("ReadReport: %v", err)
	}
	return res
}

// wantWarning fails t unless res has a warning at path whose text has each
// of texts.
func wantWarning(t *testing.T, res *readResult, path string, texts ...string) {
	t.Helper()
	for _, w := range res.Warnings {
		if w.Path != path {
			continue
		}
		for _, s := range texts {
			if !strings.Contains(w.Msg, s) {
				t.Errorf("warning %q does not say %q", w, s)
			}
		}
		return
	}
	t.Errorf("no warning at %q; warnings: %q", path, res.Warnings)
}

// wantStrictError fails t unless the strict reader refuses in with an error
// wrapping want that has text.
func wantStrictError(t *testing.T, in string, want error, text string) {
	t.Helper()
	res, err := readWith(ReadOptions{Strict: true}, strings.NewReader(in))
	if res != nil || !errors.Is(err, want) || !strings.Contains(err.Error(), text) {
		t.Errorf("strict read: %v, %v; want %v with %q", res, err, want, text)
	}
}

// "contact-info": null (Stalwart's mail-auth writes it for an unset
// contact), or no contact-info at all.
func TestReadQuirkContactInfoNull(t *testing.T) {
	for name, in := range map[string]string{
		"null":    quirk(t, `"tlsrpt@sender.example"`, `null`),
		"missing": quirk(t, `"contact-info": "tlsrpt@sender.example",`, ``),
		"empty":   quirk(t, `"tlsrpt@sender.example"`, `""`),
	} {
		t.Run(name, func(t *testing.T) {
			res := readLenient(t, in)
			if res.Report.ContactInfo != "" || res.Report.OrganizationName != "Sender Org" {
				t.Errorf("report %+v", res.Report)
			}
			wantWarning(t, res, "contact-info", name)
			if len(res.Warnings) != 1 {
				t.Errorf("warnings %q, want one", res.Warnings)
			}
			wantStrictError(t, in, ErrInvalidReport, "contact-info")
		})
	}
}

// "organization-name": null, from the same sender.
func TestReadQuirkOrganizationNameNull(t *testing.T) {
	for name, in := range map[string]string{
		"null":    quirk(t, `"Sender Org"`, `null`),
		"missing": quirk(t, `"organization-name": "Sender Org",`, ``),
	} {
		t.Run(name, func(t *testing.T) {
			res := readLenient(t, in)
			if res.Report.OrganizationName != "" || res.Report.ContactInfo != "tlsrpt@sender.example" {
				t.Errorf("report %+v", res.Report)
			}
			wantWarning(t, res, "organization-name", name)
			wantStrictError(t, in, ErrInvalidReport, "organization-name")
		})
	}
	// A string is still a string.
	_, _, err := ReadReport(strings.NewReader(quirk(t, `"Sender Org"`, `7`)), ReadOptions{})
	if !errors.Is(err, ErrInvalidReport) {
		t.Errorf("organization-name 7: %v", err)
	}
}

// A multipart/report message whose closing delimiter is missing after the
// report part: the report was read whole, and the end of the input ends the
// message.
func TestReadQuirkNoClosingDelimiter(t *testing.T) {
	full := reportMessage(reportType, textPart, part{"Content-Type: application/tlsrpt+json\r\n", quirkReport})
	cut, ok := strings.CutSuffix(full, "\r\n--"+boundary+"--\r\n")
	if !ok {
		t.Fatal("test message has no closing delimiter")
	}
	gz := reportMessage(reportType, textPart, gzipPart(t, []byte(quirkReport)))
	gzCut, _ := strings.CutSuffix(gz, "\r\n--"+boundary+"--\r\n")
	for name, in := range map[string]string{
		"json":                      cut,
		"json and line end":         cut + "\r\n",
		"gzip base64":               gzCut,
		"delimiter without its end": full[:len(full)-len("--\r\n")],
	} {
		t.Run(name, func(t *testing.T) {
			res := readLenient(t, in)
			if res.Report.ReportID != "2026-11-01T00:00:00Z_recv.example" {
				t.Errorf("report %+v", res.Report)
			}
			if len(res.Warnings) != 1 || !strings.HasPrefix(res.Warnings[0].Path, "MIME part ") ||
				!strings.Contains(res.Warnings[0].Msg, "closing delimiter") {
				t.Errorf("warnings %q, want one of the MIME part that ends without its closing delimiter", res.Warnings)
			}
			wantStrictError(t, in, ErrInvalidReport, "part")
		})
	}
	// A message cut inside the report still is an error.
	mid := full[:strings.Index(full, `"policies"`)]
	if _, _, err := ReadReport(strings.NewReader(mid), ReadOptions{}); !errors.Is(err, ErrInvalidReport) {
		t.Errorf("message cut in the report: %v", err)
	}
	// The well-formed message gives no warning.
	if res := readLenient(t, full); len(res.Warnings) != 0 {
		t.Errorf("warnings %q", res.Warnings)
	}
}

// A no-policy-found policy without policy-domain (Postfix with sys4's
// tlsrpt-reporter): the domain is the message's TLS-Report-Domain where
// there is one, else empty.
func TestReadQuirkNoPolicyDomain(t *testing.T) {
	const path = "policies[0].policy.policy-domain"
	nopol := func(domain string) string {
		return quirk(t, `"policy-type": "sts",
      "policy-string": ["version: STSv1", "mode: enforce", "mx: mx1.recv.example", "max_age: 86400"],
      "policy-domain": "recv.example",
      "mx-host": ["mx1.recv.example"]`, `"policy-type": "no-policy-found"`+domain)
	}
	for name, in := range map[string]string{"missing": nopol(""), "null": nopol(`, "policy-domain": null`)} {
		t.Run(name, func(t *testing.T) {
			res := readLenient(t, in)
			if d := res.Report.Policies[0].Policy.PolicyDomain; d != "" {
				t.Errorf("policy-domain %q, want empty", d)
			}
			wantWarning(t, res, path, "no-policy-found", "left empty")

			// reportMessage's TLS-Report-Domain is example.net.
			msg := reportMessage(reportType, textPart, part{"Content-Type: application/tlsrpt+json\r\n", in})
			res = readLenient(t, msg)
			if d := res.Report.Policies[0].Policy.PolicyDomain; d != "example.net" {
				t.Errorf("policy-domain %q, want example.net from TLS-Report-Domain", d)
			}
			wantWarning(t, res, path, "TLS-Report-Domain", `"example.net"`)
			wantStrictError(t, in, ErrInvalidReport, "policy-domain")
			wantStrictError(t, msg, ErrInvalidReport, "policy-domain")
		})
	}
	// A TLS-Report-Domain that is no domain is not taken.
	msg := strings.Replace(reportMessage(reportType, part{"Content-Type: application/tlsrpt+json\r\n", nopol("")}),
		"TLS-Report-Domain: example.net", "TLS-Report-Domain: <not a domain>", 1)
	res := readLenient(t, msg)
	if d := res.Report.Policies[0].Policy.PolicyDomain; d != "" {
		t.Errorf("policy-domain %q from a bad TLS-Report-Domain", d)
	}
	wantWarning(t, res, path, "left empty")

	// An sts policy names its domain, still.
	_, _, err := ReadReport(strings.NewReader(quirk(t, `"policy-domain": "recv.example",`, ``)), ReadOptions{})
	if !errors.Is(err, ErrInvalidReport) || !strings.Contains(err.Error(), `"policy-domain" missing`) {
		t.Errorf("sts policy without policy-domain: %v", err)
	}
}

// Date-times without a zone offset (Microsoft sent these) read as UTC.
func TestReadQuirkDateTimeWithoutZone(t *testing.T) {
	in := strings.Replace(quirk(t, `"2026-11-01T00:00:00Z"`, `"2026-11-01T00:00:00"`), `"2026-11-01T23:59:59Z"`, `"2026-11-01T23:59:59.5"`, 1)
	res := readLenient(t, in)
	dr := res.Report.DateRange
	if !dr.Start.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) || !dr.End.Equal(time.Date(2026, 11, 1, 23, 59, 59, 5e8, time.UTC)) {
		t.Errorf("date range %v to %v", dr.Start, dr.End)
	}
	wantWarning(t, res, "date-range.start-datetime", "no time zone offset", "UTC")
	wantWarning(t, res, "date-range.end-datetime", "no time zone offset", "UTC")
	wantStrictError(t, in, ErrInvalidReport, "date-range.start-datetime")

	// Other faults of a date-time stay errors.
	for _, bad := range []string{`"2026-11-01"`, `"2026-11-01 00:00:00"`, `"2026-11-01T00:00:00+01"`, `"2026-11-31T00:00:00"`} {
		_, _, err := ReadReport(strings.NewReader(quirk(t, `"2026-11-01T00:00:00Z"`, bad)), ReadOptions{})
		if !errors.Is(err, ErrInvalidReport) {
			t.Errorf("start-datetime %s: %v", bad, err)
		}
	}
}

// A UTF-8 byte order mark before the JSON is skipped (RFC 8259 8.1), in
// each form; the strict reader says what it is, not that the report is no
// e-mail message.
func TestReadQuirkByteOrderMark(t *testing.T) {
	const bom = "\ufeff"
	for name, in := range map[string]string{
		"json":         bom + quirkReport,
		"json space":   bom + "\r\n" + quirkReport,
		"gzip":         string(gzipped(t, []byte(bom+quirkReport))),
		"message part": reportMessage(reportType, part{"Content-Type: application/tlsrpt+json\r\n", bom + quirkReport}),
	} {
		t.Run(name, func(t *testing.T) {
			res := readLenient(t, in)
			if res.Report.OrganizationName != "Sender Org" {
				t.Errorf("report %+v", res.Report)
			}
			if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Msg, "byte order mark") {
				t.Errorf("warnings %q, want one of the byte order mark", res.Warnings)
			}
			wantStrictError(t, in, ErrInvalidReport, "byte order mark")
		})
	}
}

// An mx-host entry or receiving-mx-hostname that is no domain name is kept
// as text, escaped, with a warning: these fields are for display.
func TestReadQuirkMXHostNotADomain(t *testing.T) {
	tests := []struct {
		name, old, new string
		path, want     string
		get            func(r *Report) string
	}{
		{"mx-host ip", `"mx-host": ["mx1.recv.example"]`, `"mx-host": ["192.0.2.25"]`,
			"policies[0].policy.mx-host[0]", "192.0.2.25", func(r *Report) string { return r.Policies[0].Policy.MXHost[0] }},
		{"mx-host junk", `"mx-host": ["mx1.recv.example"]`, `"mx-host": ["mx1.recv.example", "mx: mx.example.com"]`,
			"policies[0].policy.mx-host[1]", "mx: mx.example.com", func(r *Report) string { return r.Policies[0].Policy.MXHost[1] }},
		{"mx-host control", `"mx-host": ["mx1.recv.example"]`, `"mx-host": "mx\u001b[2J.example"`,
			"policies[0].policy.mx-host[0]", `mx\x1b[2J.example`, func(r *Report) string { return r.Policies[0].Policy.MXHost[0] }},
		{"receiving-mx-hostname literal", `"receiving-mx-hostname": "mx1.recv.example"`, `"receiving-mx-hostname": "[198.51.100.25]"`,
			"policies[0].failure-details[0].receiving-mx-hostname", "[198.51.100.25]",
			func(r *Report) string { return r.Policies[0].FailureDetails[0].ReceivingMXHostname }},
		{"receiving-mx-hostname ipv6", `"receiving-mx-hostname": "mx1.recv.example"`, `"receiving-mx-hostname": "2001:db8::25"`,
			"policies[0].failure-details[0].receiving-mx-hostname", "2001:db8::25",
			func(r *Report) string { return r.Policies[0].FailureDetails[0].ReceivingMXHostname }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := quirk(t, tc.old, tc.new)
			res := readLenient(t, in)
			if got := tc.get(res.Report); got != tc.want {
				t.Errorf("kept %q, want %q", got, tc.want)
			}
			wantWarning(t, res, tc.path, "not a domain name", "kept as text")
			wantStrictError(t, in, ErrInvalidReport, tc.path)
		})
	}
	// Past a domain name's length it is too large to be one, and refused.
	_, _, err := ReadReport(strings.NewReader(quirk(t, `"receiving-mx-hostname": "mx1.recv.example"`,
		`"receiving-mx-hostname": "`+strings.Repeat("x ", 200)+`"`)), ReadOptions{})
	if !errors.Is(err, ErrInvalidReport) || !strings.Contains(err.Error(), "receiving-mx-hostname") {
		t.Errorf("400 bytes of receiving-mx-hostname: %v", err)
	}
}

// A policy-domain in upper case or with a trailing dot is normalised.
func TestReadQuirkPolicyDomainForm(t *testing.T) {
	for _, d := range []string{"RECV.example", "recv.example.", "Recv.Example."} {
		t.Run(d, func(t *testing.T) {
			in := quirk(t, `"policy-domain": "recv.example"`, `"policy-domain": "`+d+`"`)
			res := readLenient(t, in)
			if got := res.Report.Policies[0].Policy.PolicyDomain; got != "recv.example" {
				t.Errorf("policy-domain %q, want recv.example", got)
			}
			wantWarning(t, res, "policies[0].policy.policy-domain", `"`+d+`"`, `"recv.example"`)
			// The strict reader keeps it as given, as RFC 8460 4.4
			// has no rule of case.
			s, err := readWith(ReadOptions{Strict: true}, strings.NewReader(in))
			if err != nil || s.Report.Policies[0].Policy.PolicyDomain != d || len(s.Warnings) != 0 {
				t.Errorf("strict: %+v, %v", s, err)
			}
		})
	}
}

// Control characters in the failure details' free text of a received report
// are kept escaped, with a warning; Report.Validate, for reports we send,
// still refuses them.
func TestReadQuirkControlCharacters(t *testing.T) {
	tests := []struct {
		field, value, want string
		get                func(fd *FailureDetail) string
	}{
		{"failure-reason-code", `\u001b[31mEXPIRED\u001b[0m`, `\x1b[31mEXPIRED\x1b[0m`, func(fd *FailureDetail) string { return fd.FailureReasonCode }},
		{"additional-information", `see\r\nhttps://x.example/\u0007`, `see\r\nhttps://x.example/\x07`, func(fd *FailureDetail) string { return fd.AdditionalInformation }},
		{"receiving-mx-helo", `mx1.recv.example\u0085 ESMTP \u00e9`, `mx1.recv.example\u0085 ESMTP é`, func(fd *FailureDetail) string { return fd.ReceivingMXHelo }},
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			start := strings.Index(quirkReport, `"`+tc.field+`": "`) + len(tc.field) + 5
			end := start + strings.IndexByte(quirkReport[start:], '"')
			in := quirkReport[:start] + tc.value + quirkReport[end:]
			res := readLenient(t, in)
			fd := &res.Report.Policies[0].FailureDetails[0]
			if got := tc.get(fd); got != tc.want {
				t.Errorf("kept %q, want %q", got, tc.want)
			}
			wantWarning(t, res, "policies[0].failure-details[0]."+tc.field, "control character", "escaped")
			wantStrictError(t, in, ErrInvalidReport, "control character")
			if err := res.Report.Validate(); err != nil {
				t.Errorf("the escaped report does not validate: %v", err)
			}
		})
	}
	// Past the bound, it is refused.
	in := quirk(t, `"X509_V_ERR_CERT_HAS_EXPIRED"`, `"\u001b`+strings.Repeat("x", maxRowText)+`"`)
	if _, _, err := ReadReport(strings.NewReader(in), ReadOptions{}); !errors.Is(err, ErrInvalidReport) {
		t.Errorf("long failure-reason-code: %v", err)
	}
}

// What no sender may be forgiven stays an error of the lenient reader too.
func TestReadStillRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   string
		err  error
		text string
	}{
		{"no date-range", quirk(t, `"date-range": {"start-datetime": "2026-11-01T00:00:00Z", "end-datetime": "2026-11-01T23:59:59Z"},`, ``), ErrInvalidReport, "date-range"},
		{"null date-range", quirk(t, `{"start-datetime": "2026-11-01T00:00:00Z", "end-datetime": "2026-11-01T23:59:59Z"}`, `null`), ErrInvalidReport, "date-range"},
		{"no end", quirk(t, `, "end-datetime": "2026-11-01T23:59:59Z"`, ``), ErrInvalidReport, "end-datetime"},
		{"negative count", quirk(t, `"total-successful-session-count": 10`, `"total-successful-session-count": -10`), ErrInvalidReport, "count of 0 or more"},
		{"fraction", quirk(t, `"failed-session-count": 2`, `"failed-session-count": 2.5`), ErrInvalidReport, "integer"},
		{"string count", quirk(t, `"failed-session-count": 2`, `"failed-session-count": "2"`), ErrInvalidReport, "count"},
		{"count 2^53", quirk(t, `"total-failure-session-count": 2`, `"total-failure-session-count": 9007199254740992`), ErrInvalidReport, "2^53"},
		{"no policies", quirkReport[:strings.Index(quirkReport, `"policies"`)] + `"policies": []}`, ErrInvalidReport, "policies"},
		{"missing policies", `{"organization-name": "O", "date-range": {"start-datetime": "2026-11-01T00:00:00Z", "end-datetime": "2026-11-02T00:00:00Z"}, "report-id": "x"}`, ErrInvalidReport, "policies"},
		{"not json", "[1, 2]", ErrNoReport, ""},
		{"text", "hello", ErrNoReport, ""},
		{"bom then text", "\ufeffhello", ErrNoReport, ""},
		{"too large", "{" + strings.Repeat(" ", maxReportSize) + "}", ErrTooLarge, ""},
		{"unknown policy type", quirk(t, `"policy-type": "sts"`, `"policy-type": "dane"`), ErrInvalidReport, "policy-type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := readWith(ReadOptions{}, strings.NewReader(tc.in))
			if res != nil || !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("%v, %v; want %v with %q", res, err, tc.err, tc.text)
			}
		})
	}
}

// Warnings are bounded in number, and each quotes at most 64 bytes of the
// sender's text, escaped.
func TestReadWarningsBounded(t *testing.T) {
	var pols []string
	long := strings.Repeat(`\u001b`, 2000)
	for i := range 1000 {
		pols = append(pols, fmt.Sprintf(`{"policy": {"policy-type": "sts", "policy-domain": "R%d.EXAMPLE."},`+
			`"summary": {"total-successful-session-count": 1, "total-failure-session-count": 1},`+
			`"failure-details": [{"result-type": "validation-failure", "failed-session-count": 1, "failure-reason-code": "%s"}]}`, i, long))
	}
	in := quirk(t, quirkReport[strings.Index(quirkReport, `"policies"`):], `"policies": [`+strings.Join(pols, ",")+`]}`)
	res := readLenient(t, in)
	if n := len(res.Warnings); n > maxWarnings+1 || n < maxWarnings {
		t.Errorf("%d warnings, want %d and one that counts the rest", n, maxWarnings)
	}
	last := res.Warnings[len(res.Warnings)-1]
	if !strings.Contains(last.Msg, "more warnings") {
		t.Errorf("last warning %q does not count the rest", last)
	}
	total := 0
	for _, w := range res.Warnings {
		total += len(w.String())
	}
	if total > 400*len(res.Warnings) {
		t.Errorf("warnings of %d bytes in all", total)
	}
	if res.Report.Policies[999].Policy.PolicyDomain != "r999.example" {
		t.Errorf("the last policy's domain is %q", res.Report.Policies[999].Policy.PolicyDomain)
	}
}

// A report read without a quirk has no warning, in any form; and the
// strict and lenient readers give the same report.
func TestReadNoWarnings(t *testing.T) {
	ex := rfcExample(t)
	for name, in := range map[string][]byte{
		"quirk report": []byte(quirkReport),
		"rfc example":  ex,
		"gzip":         gzipped(t, ex),
		"message":      []byte(reportMessage(reportType, textPart, gzipPart(t, ex))),
	} {
		res := readLenient(t, string(in))
		s, err := readWith(ReadOptions{Strict: true}, bytes.NewReader(in))
		if err != nil || len(res.Warnings) != 0 || len(s.Warnings) != 0 || !reflect.DeepEqual(res.Report, s.Report) {
			t.Errorf("%s: %q; strict %v, %v", name, res.Warnings, s, err)
		}
	}
}

// Read leniently, a contact-info that is not a bare e-mail address, as
// senders write a name with it or a web address, is kept as sent, with a
// warning; one with control characters is still refused.
func TestQuirkContactInfoNotAnAddress(t *testing.T) {
	for _, contact := range []string{"TLS Reports <tlsrpt@sender.example>", "https://sender.example/tlsrpt", "postmaster at sender.example"} {
		in := quirk(t, `"contact-info": "tlsrpt@sender.example"`, `"contact-info": "`+contact+`"`)
		res := readLenient(t, in)
		if res.Report.ContactInfo != contact {
			t.Errorf("%q: contact-info read as %q", contact, res.Report.ContactInfo)
		}
		wantWarning(t, res, "contact-info", "e-mail address")
		if _, err := readWith(ReadOptions{Strict: true}, strings.NewReader(in)); err == nil {
			t.Errorf("%q: strict read accepted it", contact)
		}
	}
	in := quirk(t, `"contact-info": "tlsrpt@sender.example"`, `"contact-info": "tls\u001b[2Jrpt"`)
	if _, err := readWith(ReadOptions{}, strings.NewReader(in)); err == nil {
		t.Error("a contact-info with a control character was accepted")
	}
}

// Read leniently, a policy-string line with control characters is kept
// with them escaped, as Target.FromCache writes such lines, with a warning.
func TestQuirkPolicyStringControl(t *testing.T) {
	in := quirk(t, `"mode: enforce"`, `"mode: \u001b[2Jenforce"`)
	res := readLenient(t, in)
	if got := res.Report.Policies[0].Policy.PolicyString[1]; got != `mode: \x1b[2Jenforce` {
		t.Errorf("policy-string line read as %q", got)
	}
	wantWarning(t, res, "policies[0].policy.policy-string[1]", "control character")
	if _, err := readWith(ReadOptions{Strict: true}, strings.NewReader(in)); err == nil {
		t.Error("strict read accepted it")
	}
}

// Read leniently, a date-range whose start comes after its end is read
// with the two swapped, with a warning; strict reading refuses it.
func TestQuirkDateRangeReversed(t *testing.T) {
	in := quirk(t, `{"start-datetime": "2026-11-01T00:00:00Z", "end-datetime": "2026-11-01T23:59:59Z"}`,
		`{"start-datetime": "2026-11-01T23:59:59Z", "end-datetime": "2026-11-01T00:00:00Z"}`)
	res := readLenient(t, in)
	dr := res.Report.DateRange
	if !dr.Start.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) || !dr.End.Equal(time.Date(2026, 11, 1, 23, 59, 59, 0, time.UTC)) {
		t.Errorf("date-range read as %v to %v", dr.Start, dr.End)
	}
	wantWarning(t, res, "date-range", "swapped")
	if _, err := readWith(ReadOptions{Strict: true}, strings.NewReader(in)); err == nil {
		t.Error("strict read accepted it")
	}
}
