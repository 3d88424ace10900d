package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"io"
	"mime/quotedprintable"
	"os"
	"strings"
	"testing"
)

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Name = "../../etc/passwd" // never used as a path
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// base64Lines encodes data in lines of 76 characters, as mail does.
func base64Lines(data []byte) string {
	s := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	b.WriteString(s + "\r\n")
	return b.String()
}

// part is a MIME part: its header lines and body.
type part struct{ header, body string }

const boundary = "----=_NextPart_000_024E_01CC9B0A.AFE54C00"

// reportMessage returns a message shaped as RFC 8460 5.3.1's example, with
// contentType for its top-level Content-Type and the parts given.
func reportMessage(contentType string, parts ...part) string {
	var b strings.Builder
	b.WriteString("From: tlsrpt@mail.sender.example.com\r\n" +
		"Date: Fri, 09 May 2017 16:54:30 -0800\r\n" +
		"To: mts-sts-tlsrpt@example.net\r\n" +
		"Subject: Report Domain: example.net\r\n" +
		"    Submitter: mail.sender.example.com\r\n" +
		"    Report-ID: <735ff.e317+bf22029@example.net>\r\n" +
		"TLS-Report-Domain: example.net\r\n" +
		"TLS-Report-Submitter: mail.sender.example.com\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: " + contentType + "\r\n" +
		"Content-Language: en-us\r\n" +
		"\r\n" +
		"This is a multipart message in MIME format.\r\n")
	for _, p := range parts {
		b.WriteString("\r\n--" + boundary + "\r\n" + p.header + "\r\n" + p.body)
	}
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.String()
}

const reportType = "multipart/report; report-type=\"tlsrpt\";\r\n    boundary=\"" + boundary + "\""

var textPart = part{"Content-Type: text/plain; charset=\"us-ascii\"\r\nContent-Transfer-Encoding: 7bit\r\n",
	"This is an aggregate TLS report from mail.sender.example.com\r\n"}

func gzipPart(t testing.TB, data []byte) part {
	return part{"Content-Type: application/tlsrpt+gzip\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment;\r\n" +
		"    filename=\"mail.sender.example!example.com!1013662812!1013749130.json.gz\"\r\n",
		base64Lines(gzipped(t, data))}
}

func TestReadMessage(t *testing.T) {
	ex := rfcExample(t)
	var qp bytes.Buffer
	qw := quotedprintable.NewWriter(&qp)
	qw.Write(ex)
	qw.Close()
	tests := []struct {
		name string
		msg  string
	}{
		// RFC 8460 5.3.1, with the report of Appendix B.
		{"rfc example", reportMessage(reportType, textPart, gzipPart(t, ex))},
		{"json 7bit", reportMessage(reportType, textPart, part{"Content-Type: application/tlsrpt+json\r\n", string(ex)})},
		{"json base64", reportMessage(reportType, part{"Content-Type: application/tlsrpt+json\r\nContent-Transfer-Encoding: BASE64\r\n", base64Lines(ex)})},
		{"json quoted-printable", reportMessage(reportType, part{"Content-Type: application/tlsrpt+json\r\nContent-Transfer-Encoding: quoted-printable\r\n", qp.String()})},
		// Media types and report-type are case-insensitive (RFC 2045
		// 5.1); other parts, whatever they are, are skipped.
		{"case", reportMessage("Multipart/Report; Report-Type=TLSRPT; boundary=\""+boundary+"\"",
			part{"Content-Type: message/rfc822\r\n", "Subject: x\r\n\r\nnot a report\r\n"},
			part{"Content-Type: Application/TLSRPT+JSON; charset=utf-8\r\n", string(ex)})},
		{"no content-type on another part", reportMessage(reportType, part{"", "text\r\n"}, gzipPart(t, ex))},
	}
	for _, tc := range tests {
		r, err := (&reading{}).message(strings.NewReader(tc.msg))
		if err != nil || r.ReportID != "5065427c-23d3-47ca-b6e0-946ea0e8c4be" || len(r.Policies[0].FailureDetails) != 3 {
			t.Errorf("%s: %+v, %v", tc.name, r, err)
		}
		// ReadReport tells a message from the first bytes.
		if r2, _, err := ReadReport(strings.NewReader(tc.msg), ReadOptions{}); err != nil || r2.ReportID != r.ReportID {
			t.Errorf("%s: ReadReport: %v", tc.name, err)
		}
	}
}

func TestReadMessageErrors(t *testing.T) {
	ex := rfcExample(t)
	bomb := gzipped(t, make([]byte, maxReportSize+1))
	tests := []struct {
		name string
		msg  string
		err  error
		text string
	}{
		{"other report type", reportMessage(`multipart/report; report-type=disposition-notification; boundary="`+boundary+`"`, gzipPart(t, ex)), ErrNoReport, "expected multipart/report"},
		{"no report type", reportMessage(`multipart/report; boundary="`+boundary+`"`, gzipPart(t, ex)), ErrNoReport, "expected multipart/report"},
		{"mixed", reportMessage(`multipart/mixed; report-type=tlsrpt; boundary="`+boundary+`"`, gzipPart(t, ex)), ErrNoReport, "expected multipart/report"},
		{"not multipart", "Content-Type: application/tlsrpt+gzip\r\n\r\n" + base64Lines(gzipped(t, ex)), ErrNoReport, "expected multipart/report"},
		{"no boundary", reportMessage(`multipart/report; report-type=tlsrpt`, gzipPart(t, ex)), ErrNoReport, "no boundary"},
		{"no report part", reportMessage(reportType, textPart), ErrNoReport, "no part of media type"},
		{"not a message", "{not a message", ErrNoReport, "reading message header"},
		{"two reports", reportMessage(reportType, gzipPart(t, ex), gzipPart(t, ex)), ErrInvalidReport, "part 2 is a second report"},
		{"bad base64", reportMessage(reportType, part{"Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n", "!!!!\r\n"}), ErrInvalidReport, "report part: illegal base64 data"},
		{"not gzip", reportMessage(reportType, part{"Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n", base64Lines(ex)}), ErrInvalidReport, "gzip: invalid header"},
		{"truncated gzip", reportMessage(reportType, part{"Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n", base64Lines(gzipped(t, ex)[:100])}), ErrInvalidReport, "gzip: unexpected EOF"},
		{"json gzipped as +json", reportMessage(reportType, part{"Content-Type: application/tlsrpt+json\r\nContent-Transfer-Encoding: base64\r\n", base64Lines(gzipped(t, ex))}), ErrInvalidReport, "invalid UTF-8"},
		{"invalid json", reportMessage(reportType, part{"Content-Type: application/tlsrpt+json\r\n", strings.Replace(string(ex), "5326", "-5326", 1)}), ErrInvalidReport, "policies[0].summary.total-successful-session-count"},
		{"unknown encoding", reportMessage(reportType, part{"Content-Type: application/tlsrpt+json\r\nContent-Transfer-Encoding: x-uuencode\r\n", "x"}), ErrInvalidReport, "x-uuencode"},
		{"gzip bomb", reportMessage(reportType, part{"Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n", base64Lines(bomb)}), ErrTooLarge, "decompressed report larger than"},
		{"large message", reportMessage(reportType, textPart, part{"Content-Type: text/plain\r\n", strings.Repeat("a", maxInputSize)}), ErrTooLarge, "message larger than"},
	}
	for _, tc := range tests {
		r, err := (&reading{}).message(strings.NewReader(tc.msg))
		if r != nil || !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %v, %v; want %v with %q", tc.name, r, err, tc.err, tc.text)
		}
	}
}

func TestReadReport(t *testing.T) {
	ex := rfcExample(t)
	// Two gzip members make one file (RFC 1952 2.2).
	half := len(ex) / 2
	multi := append(gzipped(t, ex[:half]), gzipped(t, ex[half:])...)
	for name, in := range map[string][]byte{
		"json":                 ex,
		"json after space":     append([]byte("\r\n \t"), ex...),
		"gzip":                 gzipped(t, ex),
		"gzip of two members":  multi,
		"message (RFC 8460 5)": []byte(reportMessage(reportType, textPart, gzipPart(t, ex))),
	} {
		r, _, err := ReadReport(bytes.NewReader(in), ReadOptions{})
		if err != nil || r.OrganizationName != "Company-X" {
			t.Errorf("%s: %+v, %v", name, r, err)
		}
	}
}

func TestReadReportErrors(t *testing.T) {
	ex := rfcExample(t)
	tests := []struct {
		name string
		in   io.Reader
		err  error
	}{
		{"json too large", io.MultiReader(strings.NewReader("{"), strings.NewReader(strings.Repeat(" ", maxReportSize))), ErrTooLarge},
		{"gzip bomb", bytes.NewReader(gzipped(t, append(ex, make([]byte, maxReportSize)...))), ErrTooLarge},
		{"gzip too large", io.MultiReader(bytes.NewReader(gzipped(t, ex)), strings.NewReader(strings.Repeat("x", maxInputSize))), ErrTooLarge},
		{"message too large", strings.NewReader("Subject: x\r\n\r\n" + strings.Repeat("x", maxInputSize)), ErrTooLarge},
		{"invalid json", strings.NewReader(`{"organization-name": 1}`), ErrInvalidReport},
		{"corrupt gzip", bytes.NewReader(gzipped(t, ex)[:50]), ErrInvalidReport},
		{"nothing", strings.NewReader(""), ErrNoReport},
		{"reader error", io.MultiReader(strings.NewReader("{"), errReader{}), errRead},
	}
	for _, tc := range tests {
		r, _, err := ReadReport(tc.in, ReadOptions{})
		if r != nil || !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, %v; want %v", tc.name, r, err, tc.err)
		}
	}
}

var errRead = errors.New("read failed")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errRead }

// isShortPrintable reports whether s is printable US-ASCII of at most max
// bytes, as every error text of the package is.
func isShortPrintable(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// A report's values reach error text bounded and escaped: a 20 MB value, in
// any field whose error quotes it, gives an error of a few hundred bytes
// that shows at most 64 bytes of it, with its ESC escaped.
func TestReadReportHugeValueError(t *testing.T) {
	ex, err := os.ReadFile("testdata/rfc8460-appendix-b.json")
	if err != nil {
		t.Fatal(err)
	}
	const mb = 1_000_000
	huge := func(n int) string { return `\u001b[2J` + strings.Repeat("x", n) }
	str := func(n int) string { return `"` + huge(n) + `"` }
	tests := []struct {
		name     string
		old, new string
	}{
		{"contact-info", `"sts-reporting@company-x.example"`, str(20 * mb)},
		{"start-datetime", `"2016-04-01T00:00:00Z"`, str(20 * mb)},
		{"sending-mta-ip", `"198.51.100.62"`, str(20 * mb)},
		{"result-type", `"validation-failure"`, str(20 * mb)},
		{"policy-type", `"sts"`, str(20 * mb)},
		{"policy-domain", `"company-y.example"`, str(20 * mb)},
		// mx-host is bounded in all by the largest policy, 64 KiB.
		{"mx-host", `"*.mail.company-y.example"`, str(60_000)},
		{"receiving-mx-hostname", `"mx1.mail.company-y.example"`, str(20 * mb)},
		{"unknown member's name in the path", `"summary": {`, `"summary": {` + str(20*mb) + `: {"a": 1, "a": 2},`},
		{"duplicate member", `"report-id"`, str(10*mb) + `: 1, ` + str(10*mb) + `: 2, "report-id"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := bytes.Replace(ex, []byte(tc.old), []byte(tc.new), 1)
			if len(data) == len(ex) || len(data) > maxReportSize {
				t.Fatalf("test report of %d bytes", len(data))
			}
			_, _, err := ReadReport(bytes.NewReader(data), ReadOptions{})
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !isShortPrintable(msg, 400) {
				t.Errorf("error of %d bytes, want at most 400 of printable US-ASCII: %.500q", len(msg), msg)
			}
			if !strings.Contains(msg, `\x1b[2J`) && !strings.Contains(msg, `\u001b[2J`) {
				t.Errorf("error %.500q does not show the value's start, escaped", msg)
			}
			var rerr *SyntaxError
			if errors.As(err, &rerr) && !isShortPrintable(rerr.Field, 200) {
				t.Errorf("path of %d bytes: %.300q", len(rerr.Field), rerr.Field)
			}
		})
	}

	// The message's own headers too. The second fails in net/textproto,
	// whose error repeats the header line whole: it is cut at
	// quoted.MaxCause bytes.
	for name, msg := range map[string]string{
		"content-type": reportMessage("multipart/mixed; x=\"\x1b[2J"+strings.Repeat("x", 10*mb)+"\"", textPart),
		"content-transfer-encoding": reportMessage(reportType, part{"Content-Type: application/tlsrpt+json\r\n" +
			"Content-Transfer-Encoding: \x1b[2J" + strings.Repeat("x", 10*mb) + "\r\n", "{}\r\n"}),
	} {
		_, _, err := ReadReport(strings.NewReader(msg), ReadOptions{})
		if err == nil || !isShortPrintable(err.Error(), 700) {
			t.Errorf("%s: error %.800q, want one of at most 700 bytes of printable US-ASCII", name, err)
		}
	}
}

// readResult is what ReadReport returns, kept together for tests that
// look at both.
type readResult struct {
	Report   *Report
	Warnings []Warning
}

// readWith reads r with ReadReport and opts.
func readWith(opts ReadOptions, r io.Reader) (*readResult, error) {
	report, warnings, err := ReadReport(r, opts)
	if err != nil {
		return nil, err
	}
	return &readResult{report, warnings}, nil
}
