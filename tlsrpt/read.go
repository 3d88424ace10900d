package tlsrpt

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"

	"github.com/mtasts-go/mtasts/internal/quoted"
)

// MaxInputSize is the largest message or gzip file the readers take: 15 MiB.
// RFC 8460 5.2 names ten megabytes as "a commonly observed receiver limit";
// this leaves room for the base64 of a gzip file that size.
const MaxInputSize = 15 << 20

// Media types of RFC 8460 6.4 and 6.5.
const (
	MediaTypeJSON = "application/tlsrpt+json"
	MediaTypeGzip = "application/tlsrpt+gzip"
)

// ReadReport reads a received report in any of the forms of RFC 8460 5: its
// JSON, that JSON compressed with gzip (as posted over HTTPS, 5.4), or a
// whole e-mail message (5.3, see ReadMessage). The form is told from the
// first bytes: the gzip magic number 0x1f 0x8b (RFC 8460 6.5), a "{" after
// any whitespace, or else a message.
//
// It reads at most MaxReportSize bytes of JSON, or MaxInputSize bytes of a
// gzip file or message and MaxReportSize bytes of JSON within it; more gives
// an error wrapping ErrTooLarge. The report is parsed as ParseReport does;
// errors wrap ErrInvalidReport (a *ReportError for the JSON), ErrTooLarge or
// ErrNoReport, or are the reader's.
func ReadReport(r io.Reader) (*Report, error) {
	data, err := readMax(r, MaxReportSize, "input")
	if err != nil {
		return nil, err
	}
	switch {
	case isGzip(data):
		if len(data) > MaxInputSize {
			return nil, fmt.Errorf("%w: gzip file larger than the maximum of %d bytes", ErrTooLarge, MaxInputSize)
		}
		return gunzipReport(bytes.NewReader(data))
	case bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{")):
		return ParseReport(data)
	}
	if len(data) > MaxInputSize {
		return nil, fmt.Errorf("%w: message larger than the maximum of %d bytes", ErrTooLarge, MaxInputSize)
	}
	return ReadMessage(bytes.NewReader(data))
}

// ReadMessage reads a report from an e-mail message as RFC 8460 5.3 sends
// it: a message of media type multipart/report with the parameter
// report-type="tlsrpt", holding one part of media type
// application/tlsrpt+json or application/tlsrpt+gzip. Parts of other types,
// such as the human-readable text/plain, are skipped; the part's transfer
// encoding may be base64, quoted-printable, 7bit, 8bit or binary.
//
// It reads at most MaxInputSize bytes of message and MaxReportSize bytes of
// JSON. The message headers (Subject, TLS-Report-Domain, the file name) are
// not compared with the report: "the report MUST be considered the
// authoritative source" (RFC 8460 5.6). Nor is the DKIM signature RFC 8460 3
// requires checked: verify it before trusting the report.
//
// Errors wrap ErrNoReport for a message that is not a TLSRPT report,
// ErrInvalidReport for a second report part, a corrupt encoding or invalid
// JSON (a *ReportError), and ErrTooLarge; or are the reader's.
func ReadMessage(r io.Reader) (*Report, error) {
	data, err := readMax(r, MaxInputSize, "message")
	if err != nil {
		return nil, err
	}
	msg, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return nil, fmt.Errorf("%w: reading message header: %w", ErrNoReport, quoted.Cause(err))
	}
	ct := msg.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, fmt.Errorf("%w: content-type %s: %w", ErrNoReport, quoted.String(ct), quoted.Cause(err))
	}
	// RFC 8460 5.3: "a top-level media type "multipart/report" with a
	// new parameter "report-type="tlsrpt""".
	if mt != "multipart/report" || !strings.EqualFold(params["report-type"], "tlsrpt") {
		return nil, fmt.Errorf("%w: content-type %s, expected multipart/report; report-type=\"tlsrpt\"", ErrNoReport, quoted.String(ct))
	}
	if params["boundary"] == "" {
		return nil, fmt.Errorf("%w: content-type %s has no boundary", ErrNoReport, quoted.String(ct))
	}

	var report *Report
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for i := 1; ; i++ {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: part %d: %w", ErrInvalidReport, i, quoted.Cause(err))
		}
		pmt, _, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil || pmt != MediaTypeJSON && pmt != MediaTypeGzip {
			// "extract MIME parts with the prescribed media type
			// and filename, and ignore the rest" (RFC 8460 5.3).
			continue
		}
		if report != nil {
			return nil, fmt.Errorf("%w: part %d is a second report", ErrInvalidReport, i)
		}
		if report, err = readPart(part, pmt); err != nil {
			return nil, err
		}
	}
	if report == nil {
		return nil, fmt.Errorf("%w: no part of media type %s or %s", ErrNoReport, MediaTypeJSON, MediaTypeGzip)
	}
	return report, nil
}

// readPart decodes a report part of media type mt.
func readPart(part *multipart.Part, mt string) (*Report, error) {
	var body io.Reader = part
	switch cte := strings.ToLower(strings.TrimSpace(part.Header.Get("Content-Transfer-Encoding"))); cte {
	case "base64":
		// The example of RFC 8460 5.3.1 sends the report base64.
		body = base64.NewDecoder(base64.StdEncoding, part)
	case "quoted-printable":
		body = quotedprintable.NewReader(part)
	case "", "7bit", "8bit", "binary":
	default:
		return nil, fmt.Errorf("%w: report part: unknown content-transfer-encoding %s", ErrInvalidReport, quoted.String(cte))
	}
	// The message is at most MaxInputSize bytes, and so is its decoded
	// part.
	data, err := readMax(body, MaxInputSize, "report part")
	if err != nil {
		return nil, fmt.Errorf("%w: report part: %w", ErrInvalidReport, quoted.Cause(err))
	}
	if mt == MediaTypeGzip {
		return gunzipReport(bytes.NewReader(data))
	}
	return ParseReport(data)
}

// gunzipReport decompresses and parses a report, reading at most
// MaxReportSize bytes of JSON. A gzip file of several members is read whole,
// as RFC 1952 2.2 allows; the file name a member may carry is ignored.
func gunzipReport(r io.Reader) (*Report, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: gzip: %w", ErrInvalidReport, quoted.Cause(err))
	}
	data, err := readMax(zr, MaxReportSize, "decompressed report")
	if errors.Is(err, ErrTooLarge) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: gzip: %w", ErrInvalidReport, quoted.Cause(err))
	}
	return ParseReport(data)
}

// readMax reads r to its end, failing with ErrTooLarge past max bytes.
func readMax(r io.Reader, max int, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > max {
		return nil, fmt.Errorf("%w: %s larger than the maximum of %d bytes", ErrTooLarge, what, max)
	}
	return data, nil
}

func isGzip(data []byte) bool {
	return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
}
