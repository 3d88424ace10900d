package tlsrpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/mtasts-go/mtasts"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// rfcExample is RFC 8460 Appendix B as printed, without the page break and
// with the wrapped additional-information line joined.
func rfcExample(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/rfc8460-appendix-b.json")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseReportRFCExample(t *testing.T) {
	r, err := ParseReport(rfcExample(t))
	if err != nil {
		t.Fatal(err)
	}
	want := &Report{
		OrganizationName: "Company-X",
		DateRange: DateRange{
			Start: time.Date(2016, 4, 1, 0, 0, 0, 0, time.UTC),
			End:   time.Date(2016, 4, 1, 23, 59, 59, 0, time.UTC),
		},
		ContactInfo: "sts-reporting@company-x.example",
		ReportID:    "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
		Policies: []PolicyResult{{
			Policy: Policy{
				PolicyType:   PolicyTypeSTS,
				PolicyString: []string{"version: STSv1", "mode: testing", "mx: *.mail.company-y.example", "max_age: 86400"},
				PolicyDomain: "company-y.example",
				MXHost:       []string{"*.mail.company-y.example"},
			},
			Summary: Summary{TotalSuccessfulSessionCount: 5326, TotalFailureSessionCount: 303},
			FailureDetails: []FailureDetail{{
				ResultType:          mtasts.ResultCertificateExpired,
				SendingMTAIP:        netip.MustParseAddr("2001:db8:abcd:12::1"),
				ReceivingMXHostname: "mx1.mail.company-y.example",
				FailedSessionCount:  100,
			}, {
				ResultType:            mtasts.ResultSTARTTLSNotSupported,
				SendingMTAIP:          netip.MustParseAddr("2001:db8:abcd:13::1"),
				ReceivingMXHostname:   "mx2.mail.company-y.example",
				ReceivingIP:           netip.MustParseAddr("203.0.113.56"),
				FailedSessionCount:    200,
				AdditionalInformation: "https://reports.company-x.example/report_info ? id = 5065427 c - 23 d3# StarttlsNotSupported ",
			}, {
				ResultType:          mtasts.ResultValidationFailure,
				SendingMTAIP:        netip.MustParseAddr("198.51.100.62"),
				ReceivingIP:         netip.MustParseAddr("203.0.113.58"),
				ReceivingMXHostname: "mx-backup.mail.company-y.example",
				FailedSessionCount:  3,
				FailureReasonCode:   "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED",
			}},
		}},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("ParseReport(Appendix B) =\n%+v\nwant\n%+v", r, want)
	}
}

// The example marshals back to the same JSON, with the same member names,
// but for two normalisations: mx-host as the array RFC 8460 4.4 defines, and
// IPv6 addresses in the RFC 5952 form. It then parses to the same Report.
func TestReportRoundTripRFCExample(t *testing.T) {
	orig := rfcExample(t)
	r, err := ParseReport(orig)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}

	var want, got any
	if err := json.Unmarshal(orig, &want); err != nil {
		t.Fatal(err)
	}
	pol := want.(map[string]any)["policies"].([]any)[0].(map[string]any)
	pol["policy"].(map[string]any)["mx-host"] = []any{"*.mail.company-y.example"}
	fds := pol["failure-details"].([]any)
	fds[0].(map[string]any)["sending-mta-ip"] = "2001:db8:abcd:12::1"
	fds[1].(map[string]any)["sending-mta-ip"] = "2001:db8:abcd:13::1"
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("marshalled report differs from Appendix B:\n%s", out)
	}

	r2, err := ParseReport(out)
	if err != nil {
		t.Fatalf("marshalled report does not parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(r, r2) {
		t.Errorf("round trip changed the report:\n%+v\n%+v", r, r2)
	}
	out2, _ := json.Marshal(r2)
	if !bytes.Equal(out, out2) {
		t.Errorf("second marshal differs:\n%s\n%s", out, out2)
	}

	// json.Unmarshal reads as strictly, through UnmarshalJSON.
	var r3 Report
	if err := json.Unmarshal(orig, &r3); err != nil || !reflect.DeepEqual(&r3, r) {
		t.Errorf("json.Unmarshal: %v, %+v", err, r3)
	}
}

// The JSON member names are exactly those of the schema of RFC 8460 4.4, and
// "policies" and "policy-string" are arrays even when empty.
func TestReportMemberNames(t *testing.T) {
	r := Report{
		DateRange: DateRange{Start: time.Date(2016, 4, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2016, 4, 2, 0, 0, 0, 0, time.UTC)},
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"organization-name":"","date-range":{"start-datetime":"2016-04-01T00:00:00Z","end-datetime":"2016-04-02T00:00:00Z"},"contact-info":"","report-id":"","policies":[]}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}

	pr := PolicyResult{
		Policy: Policy{PolicyType: PolicyTypeNoPolicyFound, PolicyDomain: "example.com"},
		FailureDetails: []FailureDetail{{
			ResultType: mtasts.ResultValidationFailure, SendingMTAIP: netip.MustParseAddr("192.0.2.1"), ReceivingMXHostname: "mx.example.com",
			ReceivingMXHelo: "mx.example.com", ReceivingIP: netip.MustParseAddr("2001:db8::25"), FailedSessionCount: 1,
			AdditionalInformation: "https://r.example/1", FailureReasonCode: "x",
		}, {ResultType: mtasts.ResultSTSPolicyFetchError, FailedSessionCount: 2}},
	}
	out, err = json.Marshal(pr)
	if err != nil {
		t.Fatal(err)
	}
	want = `{"policy":{"policy-type":"no-policy-found","policy-string":[],"policy-domain":"example.com"},` +
		`"summary":{"total-successful-session-count":0,"total-failure-session-count":0},` +
		`"failure-details":[{"result-type":"validation-failure","sending-mta-ip":"192.0.2.1","receiving-mx-hostname":"mx.example.com",` +
		`"receiving-mx-helo":"mx.example.com","receiving-ip":"2001:db8::25","failed-session-count":1,` +
		`"additional-information":"https://r.example/1","failure-reason-code":"x"},` +
		`{"result-type":"sts-policy-fetch-error","failed-session-count":2}]}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}

// The result types are exactly the eleven of RFC 8460 4.3, as registered in
// 6.6.
func TestResultTypes(t *testing.T) {
	got := []mtasts.ResultType{
		mtasts.ResultSTARTTLSNotSupported, mtasts.ResultCertificateHostMismatch, mtasts.ResultCertificateExpired,
		mtasts.ResultTLSAInvalid, mtasts.ResultDNSSECInvalid, mtasts.ResultDANERequired, mtasts.ResultCertificateNotTrusted,
		mtasts.ResultSTSPolicyInvalid, mtasts.ResultSTSWebPKIInvalid, mtasts.ResultValidationFailure, mtasts.ResultSTSPolicyFetchError,
	}
	// RFC 8460 6.6, in the registry's order.
	want := []mtasts.ResultType{
		"starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
		"tlsa-invalid", "dnssec-invalid", "dane-required", "certificate-not-trusted",
		"sts-policy-invalid", "sts-webpki-invalid", "validation-failure", "sts-policy-fetch-error",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("result types %q, want %q", got, want)
	}
	if PolicyTypeSTS != "sts" || PolicyTypeTLSA != "tlsa" || PolicyTypeNoPolicyFound != "no-policy-found" {
		t.Errorf("policy types %q %q %q", PolicyTypeSTS, PolicyTypeTLSA, PolicyTypeNoPolicyFound)
	}
}

// minimal returns a valid report with policies as given.
func minimal(policies string) string {
	return `{"organization-name":"O","date-range":{"start-datetime":"2024-01-01T00:00:00Z","end-datetime":"2024-01-02T00:00:00Z"},` +
		`"contact-info":"r@o.example","report-id":"1","policies":` + policies + `}`
}

const minimalPolicy = `{"policy":{"policy-type":"no-policy-found","policy-domain":"example.com"},` +
	`"summary":{"total-successful-session-count":1,"total-failure-session-count":0}}`

func TestParseReportAccepts(t *testing.T) {
	ex := string(rfcExample(t))
	tests := []struct {
		name string
		json string
		test func(*Report) bool
	}{
		{"minimal", minimal("[" + minimalPolicy + "]"), nil},
		// Members the schema does not name are ignored (RFC 7493 4.3).
		{"unknown members", strings.Replace(strings.Replace(ex, `"report-id"`, `"x-new":{"a":[1,{"b":null}],"report-id":2},"report-id"`, 1),
			`"failed-session-count": 3,`, `"failed-session-count": 3, "x": [true],`, 1), nil},
		// Unregistered types of the registered form are kept.
		{"new result type", strings.Replace(ex, `"validation-failure"`, `"new-type-2"`, 1),
			func(r *Report) bool { return r.Policies[0].FailureDetails[2].ResultType == "new-type-2" }},
		{"mx-host array", strings.Replace(ex, `"mx-host": "*.mail.company-y.example"`, `"mx-host": ["mx.company-y.example", "*.mail.company-y.example"]`, 1),
			func(r *Report) bool { return len(r.Policies[0].Policy.MXHost) == 2 }},
		{"mx-host null", strings.Replace(ex, `"mx-host": "*.mail.company-y.example"`, `"mx-host": null`, 1),
			func(r *Report) bool { return r.Policies[0].Policy.MXHost == nil }},
		{"no failure details", minimal(`[{"policy":{"policy-type":"sts","policy-string":[],"policy-domain":"a.example"},"summary":{"total-successful-session-count":0,"total-failure-session-count":0},"failure-details":null}]`), nil},
		// Unknown IPs as some reporters write them; null optional strings.
		{"empty ips", strings.Replace(ex, `"receiving-ip": "203.0.113.56"`, `"receiving-ip": "", "receiving-mx-helo": null, "failure-reason-code": null`, 1),
			func(r *Report) bool { return !r.Policies[0].FailureDetails[1].ReceivingIP.IsValid() }},
		{"largest count", strings.Replace(ex, `5326`, `9007199254740991`, 1),
			func(r *Report) bool { return r.Policies[0].Summary.TotalSuccessfulSessionCount == 1<<53-1 }},
		{"zero count", strings.Replace(ex, `5326`, `0`, 1), nil},
		// RFC 3339: offsets, fractions, lower-case t and z.
		{"offsets", strings.Replace(strings.Replace(ex, `"2016-04-01T00:00:00Z"`, `"2016-04-01t02:00:00.5+02:00"`, 1), `"2016-04-01T23:59:59Z"`, `"2016-04-02T00:00:00z"`, 1),
			func(r *Report) bool {
				return r.DateRange.Start.Equal(time.Date(2016, 4, 1, 0, 0, 0, 5e8, time.UTC)) && r.DateRange.End.Equal(time.Date(2016, 4, 2, 0, 0, 0, 0, time.UTC))
			}},
		{"leap day", strings.Replace(ex, `"2016-04-01T00:00:00Z"`, `"2016-02-29T00:00:00Z"`, 1), nil},
		// Escapes, a surrogate pair, and UTF-8 in free text.
		{"escapes", strings.Replace(ex, `"Company-X"`, `"Comp\u00e4ny \ud83d\ude00 \"X\" \\ö"`, 1),
			func(r *Report) bool { return r.OrganizationName == "Compäny \U0001F600 \"X\" \\ö" }},
		{"trailing whitespace", ex + "\n\n", nil},
		{"trailing dot", strings.Replace(ex, `"company-y.example"`, `"Company-Y.example."`, 1), nil},
	}
	for _, tc := range tests {
		r, err := ParseReport([]byte(tc.json))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if tc.test != nil && !tc.test(r) {
			t.Errorf("%s: %+v", tc.name, r)
		}
	}
}

func TestParseReportErrors(t *testing.T) {
	ex := string(rfcExample(t))
	repl := func(old, new string) string {
		if !strings.Contains(ex, old) {
			t.Fatalf("example lacks %q", old)
		}
		return strings.Replace(ex, old, new, 1)
	}
	deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	tests := []struct {
		name string
		json string
		path string
		msg  string
	}{
		{"count as string", repl(`303`, `"303"`), "policies[0].summary.total-failure-session-count", "a string, expected a count"},
		{"count with fraction", repl(`303`, `303.0`), "policies[0].summary.total-failure-session-count", "without fraction or exponent"},
		{"count with exponent", repl(`303`, `3e2`), "policies[0].summary.total-failure-session-count", "without fraction or exponent"},
		{"negative count", repl(`303`, `-1`), "policies[0].summary.total-failure-session-count", "0 or more"},
		{"huge count", repl(`303`, `9007199254740992`), "policies[0].summary.total-failure-session-count", "2^53-1"},
		{"count null", repl(`"failed-session-count": 200`, `"failed-session-count": null`), "policies[0].failure-details[1].failed-session-count", "null, expected a count"},
		{"missing count", repl(`"failed-session-count": 200,`, ``), "policies[0].failure-details[1]", `"failed-session-count" missing`},
		{"missing summary count", repl(`"total-successful-session-count": 5326,`, ``), "policies[0].summary", `"total-successful-session-count" missing`},
		{"missing report-id", repl(`"report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",`, ``), "", `"report-id" missing`},
		{"member name case", repl(`"organization-name"`, `"Organization-Name"`), "", `"organization-name" missing`},
		{"missing policy", minimal(`[{"summary":{"total-successful-session-count":1,"total-failure-session-count":0}}]`), "policies[0]", `"policy" missing`},
		{"missing policy-domain", repl(`"policy-domain": "company-y.example",`, ``), "policies[0].policy", `"policy-domain" missing`},
		{"missing result-type", repl(`"result-type": "certificate-expired",`, ``), "policies[0].failure-details[0]", `"result-type" missing`},
		{"missing end", repl(`,
    "end-datetime": "2016-04-01T23:59:59Z"`, ``), "date-range", `"end-datetime" missing`},
		{"summary null", repl(`"summary": {`, `"summary": null, "x": {`), "policies[0].summary", "null, expected an object"},
		{"duplicate member", repl(`"report-id"`, `"report-id": "a", "report-id"`), "", `member "report-id" appears twice`},
		{"duplicate in unknown member", repl(`"report-id"`, `"x": {"a": 1, "a": 2}, "report-id"`), "x", `member "a" appears twice`},
		{"no zone", repl(`"2016-04-01T00:00:00Z"`, `"2016-04-01T00:00:00"`), "date-range.start-datetime", "no time zone offset"},
		{"space for T", repl(`"2016-04-01T00:00:00Z"`, `"2016-04-01 00:00:00Z"`), "date-range.start-datetime", `expected "T"`},
		{"day 30 of February", repl(`"2016-04-01T00:00:00Z"`, `"2016-02-30T00:00:00Z"`), "date-range.start-datetime", "past the end of the month"},
		{"February 29 of 2015", repl(`"2016-04-01T00:00:00Z"`, `"2015-02-29T00:00:00Z"`), "date-range.start-datetime", "past the end of the month"},
		{"hour 24", repl(`"2016-04-01T23:59:59Z"`, `"2016-04-01T24:00:00Z"`), "date-range.end-datetime", "hour 24 out of range"},
		{"leap second", repl(`"2016-04-01T23:59:59Z"`, `"2016-12-31T23:59:60Z"`), "date-range.end-datetime", "leap second"},
		{"offset without colon", repl(`"2016-04-01T23:59:59Z"`, `"2016-04-01T23:59:59+0000"`), "date-range.end-datetime", `":" in the offset`},
		{"bare fraction", repl(`"2016-04-01T23:59:59Z"`, `"2016-04-01T23:59:59.Z"`), "date-range.end-datetime", `digits after "."`},
		{"date as number", repl(`"2016-04-01T23:59:59Z"`, `1459555199`), "date-range.end-datetime", "a number, expected a string"},
		{"end before start", repl(`"2016-04-01T23:59:59Z"`, `"2016-03-31T23:59:59Z"`), "date-range", "is not before"},
		{"empty range", repl(`"2016-04-01T23:59:59Z"`, `"2016-04-01T00:00:00Z"`), "date-range", "is not before"},
		{"display name", repl(`"sts-reporting@company-x.example"`, `"Reports <sts-reporting@company-x.example>"`), "contact-info", "bare addr-spec"},
		{"not an address", repl(`"sts-reporting@company-x.example"`, `"mailto:sts-reporting@company-x.example"`), "contact-info", "not an e-mail address"},
		{"empty organization", repl(`"Company-X"`, `""`), "organization-name", "empty"},
		{"policies not an array", minimal(minimalPolicy), "policies", "an object, expected an array"},
		{"policies empty", minimal(`[]`), "policies", "at least one policy"},
		{"u-label domain", repl(`"policy-domain": "company-y.example"`, `"policy-domain": "bücher.example"`), "policies[0].policy.policy-domain", "expected A-labels"},
		{"bad domain", repl(`"policy-domain": "company-y.example"`, `"policy-domain": "a..example"`), "policies[0].policy.policy-domain", "not a valid domain name"},
		{"upper-case type", repl(`"policy-type": "sts"`, `"policy-type": "STS"`), "policies[0].policy.policy-type", `expected "sts", "tlsa" or "no-policy-found"`},
		{"unknown policy type", repl(`"policy-type": "sts"`, `"policy-type": "dane"`), "policies[0].policy.policy-type", "RFC 8460 4.4"},
		{"empty result type", repl(`"certificate-expired"`, `""`), "policies[0].failure-details[0].result-type", "empty"},
		{"mx-host number", repl(`"mx-host": "*.mail.company-y.example"`, `"mx-host": 5`), "policies[0].policy.mx-host", "a number, expected an array"},
		{"mx-host pattern", repl(`"mx-host": "*.mail.company-y.example"`, `"mx-host": ["a.example", "*.*.b.example"]`), "policies[0].policy.mx-host[1]", "not a valid domain name"},
		{"policy-string string", repl(`["version: STSv1","mode: testing",
            "mx: *.mail.company-y.example","max_age: 86400"]`, `"version: STSv1"`), "policies[0].policy.policy-string", "a string, expected an array"},
		{"policy-string element", repl(`"mode: testing"`, `7`), "policies[0].policy.policy-string[1]", "a number, expected a string"},
		{"ipv4 leading zero", repl(`"198.51.100.62"`, `"198.051.100.62"`), "policies[0].failure-details[2].sending-mta-ip", "not an IPv4 or IPv6 address"},
		{"ip with zone", repl(`"203.0.113.56"`, `"fe80::1%eth0"`), "policies[0].failure-details[1].receiving-ip", "not an IPv4 or IPv6 address"},
		{"ip as number", repl(`"203.0.113.56"`, `1`), "policies[0].failure-details[1].receiving-ip", "a number, expected a string"},
		{"bad mx hostname", repl(`"mx1.mail.company-y.example"`, `"mx1 mail"`), "policies[0].failure-details[0].receiving-mx-hostname", "not a valid domain name"},
		{"too deep", repl(`"report-id"`, `"x": `+deep+`, "report-id"`), "x" + strings.Repeat("[0]", maxDepth-1), "nested deeper than 16"},
		{"data after", ex + "{}", "", "data after the report"},
		{"syntax", repl(`"Company-X",`, `"Company-X"`), "", "invalid JSON at byte"},
		{"truncated", ex[:200], "contact-info", "unexpected end"},
		{"empty", "", "", "unexpected end"},
		{"array", "[]", "", "an array, expected an object"},
		{"invalid UTF-8", repl(`Company-X`, "Company-\xff"), "", "invalid UTF-8"},
		{"lone surrogate", repl(`Company-X`, `Company-\ud800`), "", "unpaired surrogate U+D800"},
		{"lone low surrogate", repl(`Company-X`, `Company-\uDC00\u0041`), "", "unpaired surrogate U+DC00"},
		{"escaped noncharacter", repl(`Company-X`, `Company-\uFFFE`), "", "noncharacter U+FFFE"},
		{"noncharacter", repl(`Company-X`, "Company-\uFDD0"), "", "noncharacter U+FDD0"},
		{"byte order mark", "\uFEFF" + ex, "", "byte order mark before the JSON"},
	}
	for _, tc := range tests {
		r, err := ParseReport([]byte(tc.json))
		var rerr *SyntaxError
		if r != nil || !errors.As(err, &rerr) || !errors.Is(err, ErrInvalidReport) {
			t.Errorf("%s: %v, %v; want a *SyntaxError", tc.name, r, err)
			continue
		}
		if rerr.Field != tc.path || !strings.Contains(rerr.Msg, tc.msg) {
			t.Errorf("%s: path %q, %q; want path %q, message with %q", tc.name, rerr.Field, rerr.Msg, tc.path, tc.msg)
		}
		// json.Unmarshal gives the same error.
		var r2 Report
		if err2 := json.Unmarshal([]byte(tc.json), &r2); err2 == nil {
			t.Errorf("%s: json.Unmarshal accepts it", tc.name)
		}
	}
}

func TestReportErrorText(t *testing.T) {
	_, err := ParseReport([]byte(strings.Replace(string(rfcExample(t)), `303`, `"303"`, 1)))
	want := `tlsrpt: invalid report: policies[0].summary.total-failure-session-count: a string, expected a count: an integer as a JSON number`
	if err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestParseReportTooLarge(t *testing.T) {
	data := append(bytes.Repeat([]byte(" "), maxReportSize), minimal("["+minimalPolicy+"]")...)
	if _, err := ParseReport(data); !errors.Is(err, ErrTooLarge) {
		t.Errorf("error %v, want ErrTooLarge", err)
	}
}

// Validate checks reports built in code, as a reporter would.
func TestValidate(t *testing.T) {
	valid := func() *Report {
		r, err := ParseReport(rfcExample(t))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		edit func(*Report)
		path string
	}{
		{func(r *Report) {}, ""},
		{func(r *Report) { r.DateRange.Start = time.Time{} }, "date-range.start-datetime"},
		{func(r *Report) { r.DateRange.End = time.Time{} }, "date-range.end-datetime"},
		{func(r *Report) { r.ContactInfo = "" }, "contact-info"},
		{func(r *Report) { r.ReportID = "" }, "report-id"},
		{func(r *Report) { r.Policies = nil }, "policies"},
		{func(r *Report) { r.Policies[0].Summary.TotalSuccessfulSessionCount = -1 }, "policies[0].summary.total-successful-session-count"},
		{func(r *Report) { r.Policies[0].FailureDetails[2].FailedSessionCount = -5 }, "policies[0].failure-details[2].failed-session-count"},
		{func(r *Report) {
			r.Policies[0].FailureDetails[1].SendingMTAIP = netip.MustParseAddr("fe80::1%eth0")
		}, "policies[0].failure-details[1].sending-mta-ip"},
		{func(r *Report) { r.Policies[0].Policy.PolicyDomain = "" }, "policies[0].policy.policy-domain"},
		{func(r *Report) { r.Policies[0].Policy.MXHost = []string{"xn--bcher-kva.example", "bücher.example"} }, "policies[0].policy.mx-host[1]"},
		{func(r *Report) { r.Policies[0].Policy.PolicyType = "" }, "policies[0].policy.policy-type"},
	}
	for _, tc := range tests {
		r := valid()
		tc.edit(r)
		err := r.Validate()
		var rerr *SyntaxError
		switch {
		case tc.path == "" && err != nil:
			t.Errorf("valid report: %v", err)
		case tc.path != "" && (!errors.As(err, &rerr) || rerr.Field != tc.path):
			t.Errorf("error %v, want one at %s", err, tc.path)
		}
	}
}

// Validate catches what the Recorder refuses or escapes, in reports built
// or received: a policy type other than RFC 8460 4.4's three, a policy-string
// larger than a policy may be, a HELO longer than a domain name, control
// characters in the text of a row, and a failure reason or additional
// information of megabytes.
func TestValidateGarbage(t *testing.T) {
	valid := func() *Report {
		r, err := ParseReport(rfcExample(t))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	huge := strings.Repeat("x", 10<<20)
	tests := []struct {
		edit func(*Report)
		path string
	}{
		{func(r *Report) { r.Policies[0].Policy.PolicyType = "bogus" }, "policies[0].policy.policy-type"},
		{func(r *Report) { r.Policies[0].Policy.PolicyString = []string{huge} }, "policies[0].policy.policy-string"},
		{func(r *Report) { r.Policies[0].Policy.PolicyString[1] = "mode: \x1b[2J" }, "policies[0].policy.policy-string[1]"},
		{func(r *Report) { r.Policies[0].FailureDetails[0].ReceivingMXHelo = huge }, "policies[0].failure-details[0].receiving-mx-helo"},
		{func(r *Report) { r.Policies[0].FailureDetails[0].ReceivingMXHelo = "mx\r\n.example" }, "policies[0].failure-details[0].receiving-mx-helo"},
		{func(r *Report) { r.Policies[0].FailureDetails[2].FailureReasonCode = "a\rb" }, "policies[0].failure-details[2].failure-reason-code"},
		{func(r *Report) { r.Policies[0].FailureDetails[2].FailureReasonCode = "a\nb" }, "policies[0].failure-details[2].failure-reason-code"},
		{func(r *Report) { r.Policies[0].FailureDetails[2].FailureReasonCode = "a\x1b[2Jb" }, "policies[0].failure-details[2].failure-reason-code"},
		{func(r *Report) { r.Policies[0].FailureDetails[2].FailureReasonCode = huge }, "policies[0].failure-details[2].failure-reason-code"},
		{func(r *Report) { r.Policies[0].FailureDetails[1].AdditionalInformation = huge }, "policies[0].failure-details[1].additional-information"},
		{func(r *Report) { r.Policies[0].FailureDetails[1].AdditionalInformation = "x\u0085y" }, "policies[0].failure-details[1].additional-information"},
	}
	for _, tc := range tests {
		r := valid()
		tc.edit(r)
		err := r.Validate()
		var rerr *SyntaxError
		if !errors.As(err, &rerr) || rerr.Field != tc.path || !isShortPrintable(err.Error(), 400) {
			t.Errorf("error %.300v, want a short one at %s", err, tc.path)
		}
	}
}
