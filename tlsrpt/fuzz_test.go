package tlsrpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
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
		checkErrorText(t, err)
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

// checkErrorText fails t unless err is nil or its text is printable
// US-ASCII of a bounded length, as every error text of the package is.
func checkErrorText(t *testing.T, err error) {
	t.Helper()
	if err != nil && !isShortPrintable(err.Error(), 2048) {
		t.Fatalf("error text of %d bytes, not printable US-ASCII of at most 2048: %.3000q", len(err.Error()), err.Error())
	}
}

// ParseReport never panics; what it accepts validates, marshals, and parses
// back to a report that marshals the same.
func FuzzParseReport(f *testing.F) {
	ex, err := os.ReadFile("testdata/rfc8460-appendix-b.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ex)
	f.Add([]byte(minimal("[" + minimalPolicy + "]")))
	f.Add([]byte(minimal(`[{"policy":{"policy-type":"tlsa","policy-string":["3 1 1 AB"],"policy-domain":"mx.example","mx-host":["mx.example"]},` +
		`"summary":{"total-successful-session-count":0,"total-failure-session-count":9007199254740991},` +
		`"failure-details":[{"result-type":"dane-required","sending-mta-ip":"::ffff:192.0.2.1","receiving-ip":"","failed-session-count":1,"x":[{}]}]}]`)))
	f.Add([]byte(`{"organization-name":"\ud83d\ude00\u00e4","date-range":{"start-datetime":"2016-02-29t00:00:00.123456789123-23:59","end-datetime":"9999-12-31T23:59:59z"}}`))
	f.Add([]byte(`{"a":{"a":1,"a":2}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(data)
		checkErrorText(t, err)
		if err != nil {
			var rerr *SyntaxError
			if r != nil || !errors.As(err, &rerr) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("report %v with error %v", r, err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("accepted report does not validate: %v", err)
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		r2, err := ParseReport(out)
		if err != nil {
			t.Fatalf("marshalled report does not parse: %v\n%s", err, out)
		}
		out2, err := json.Marshal(r2)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the report:\n%s\n%s", out, out2)
		}
		if !r.DateRange.Start.Equal(r2.DateRange.Start) || !r.DateRange.End.Equal(r2.DateRange.End) {
			t.Fatalf("round trip changed the date range")
		}
	})
}

// ReadReport never panics on any input. What the strict reader accepts
// validates and has no warnings; the lenient reader accepts it too, and
// what it accepts fails Report.Validate only where it warned, with
// warnings bounded in number and text, and reads again once marshalled.
func FuzzReadReport(f *testing.F) {
	ex, err := os.ReadFile("testdata/rfc8460-appendix-b.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ex)
	f.Add(gzipped(f, ex))
	f.Add([]byte(reportMessage(reportType, textPart, gzipPart(f, ex))))
	f.Add([]byte(reportMessage(reportType, part{"Content-Type: application/tlsrpt+json\r\nContent-Transfer-Encoding: quoted-printable\r\n", "{=\r\n}"})))
	f.Add([]byte("\ufeff" + strings.NewReplacer(`"Company-X"`, "null", `"2016-04-01T00:00:00Z"`, `"2016-04-01T00:00:00"`,
		`"company-y.example"`, `"Company-Y.Example."`, `"mx1.mail.company-y.example"`, `"[192.0.2.1]"`).Replace(string(ex))))
	msg := reportMessage(reportType, part{"Content-Type: application/tlsrpt+json\r\n", `{"contact-info":null,` +
		`"policies":[{"policy":{"policy-type":"no-policy-found"},"summary":{"total-successful-session-count":1,"total-failure-session-count":1},` +
		`"failure-details":[{"result-type":"validation-failure","failed-session-count":1,"failure-reason-code":"\u001b[2J","receiving-mx-hostname":"mx: x"}]}],` +
		`"date-range":{"start-datetime":"2026-11-01T00:00:00","end-datetime":"2026-11-02T00:00:00Z"},"organization-name":"O","report-id":"1"}`})
	f.Add([]byte(strings.TrimSuffix(msg, "--\r\n")))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, _, err := ReadReport(bytes.NewReader(data), ReadOptions{})
		checkErrorText(t, err)
		if (r == nil) == (err == nil) {
			t.Fatalf("report %v with error %v", r, err)
		}
		strict, serr := readWith(ReadOptions{Strict: true}, bytes.NewReader(data))
		checkErrorText(t, serr)
		if serr == nil {
			if err != nil {
				t.Fatalf("the strict reader accepts, the lenient one refuses: %v", err)
			}
			if err := strict.Report.Validate(); err != nil || len(strict.Warnings) != 0 {
				t.Fatalf("accepted strictly, but %v, warnings %q", err, strict.Warnings)
			}
		}
		if err != nil {
			return
		}
		res, err := readWith(ReadOptions{}, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("ReadReport accepts, readWith refuses: %v", err)
		}
		if len(res.Warnings) > maxWarnings+1 {
			t.Fatalf("%d warnings", len(res.Warnings))
		}
		for _, w := range res.Warnings {
			if !isShortPrintable(w.String(), 512) {
				t.Fatalf("warning not short printable US-ASCII: %.600q", w.String())
			}
		}
		var verr *SyntaxError
		if err := res.Report.Validate(); errors.As(err, &verr) && len(res.Warnings) <= maxWarnings {
			found := false
			for _, w := range res.Warnings {
				found = found || w.Path == verr.Field
			}
			if !found {
				t.Fatalf("report fails Validate at %s without a warning there: %v; warnings %q", verr.Field, err, res.Warnings)
			}
		}
		out, err := json.Marshal(res.Report)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if _, _, err := ReadReport(bytes.NewReader(out), ReadOptions{}); err != nil {
			t.Fatalf("the marshalled report does not read: %v\n%s", err, out)
		}
	})
}
