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
	"strconv"
	"strings"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/quoted"
)

// maxInputSize is the largest message or gzip file the readers take: 15 MiB.
// RFC 8460 5.2 names ten megabytes as "a commonly observed receiver limit";
// this leaves room for the base64 of a gzip file that size.
const maxInputSize = 15 << 20

// Media types of RFC 8460 6.4 and 6.5.
const (
	mediaTypeJSON = "application/tlsrpt+json"
	mediaTypeGzip = "application/tlsrpt+gzip"
)

// ReadReport reads a received report in any of the forms of RFC 8460 5: its
// JSON, that JSON compressed with gzip (as posted over HTTPS, 5.4), or a
// whole e-mail message (5.3). The form is told from the first bytes: the
// gzip magic number 0x1f 0x8b (RFC 8460 6.5), a "{" after any whitespace
// (and a byte order mark), or else a message. With the zero ReadOptions it
// forgives what real senders get wrong, and returns a Warning per deviation
// forgiven; with Strict it reads as ParseReport does.
//
// A message is read as RFC 8460 5.3 sends it: of media type
// multipart/report with the parameter report-type="tlsrpt", holding one
// part of media type application/tlsrpt+json or application/tlsrpt+gzip.
// Parts of other types, such as the human-readable text/plain, are skipped;
// the part's transfer encoding may be base64, quoted-printable, 7bit, 8bit
// or binary. The message headers (Subject, TLS-Report-Domain, the file
// name) are not compared with the report: "the report MUST be considered
// the authoritative source" (RFC 8460 5.6); TLS-Report-Domain only stands
// in for a policy-domain left out. Nor is the DKIM signature RFC 8460 3
// requires checked: verify it with VerifyDKIM, or take messages with a
// Collector, before trusting the report.
//
// It reads at most 20 MiB of JSON, and at most 15 MiB of a gzip file or
// message, which leaves room for the base64 of a gzip file of the ten
// megabytes RFC 8460 5.2 names as "a commonly observed receiver limit";
// more gives an error wrapping ErrTooLarge. Other errors wrap
// ErrInvalidReport (a *SyntaxError for the JSON, naming its path; or a
// second report part, a corrupt encoding) or ErrNoReport (a message that is
// not a TLSRPT report), or are the reader's.
func ReadReport(r io.Reader, opts ReadOptions) (*Report, []Warning, error) {
	rd := &reading{strict: opts.Strict}
	report, err := rd.read(r)
	if err != nil {
		return nil, nil, err
	}
	return report, rd.warns.result(), nil
}

// ReadOptions says how ReadReport reads a received report. The zero value
// reads as receivers must, liberal in what they accept: the report as real
// senders write it, each deviation from RFC 8460 forgiven with a Warning.
// These are:
//
//   - organization-name or contact-info null or missing: read as empty.
//   - a contact-info that is not a bare e-mail address, such as one with a
//     name ("Reports <tlsrpt@example.com>") or a web address: kept as sent,
//     when it is at most 255 bytes without control characters.
//   - a date-range whose start-datetime is after its end-datetime: read
//     with the two swapped.
//   - control characters in a policy-string line: escaped as Go escapes
//     them ("\x1b"), as Target.FromCache writes them.
//   - a date-time without a time zone offset: read as UTC.
//   - a UTF-8 byte order mark before the JSON: skipped, as RFC 8259 8.1
//     allows.
//   - policy-domain in upper case or with a trailing dot: made lower case,
//     without the dot.
//   - a no-policy-found policy without policy-domain (or null): the domain
//     of the message's TLS-Report-Domain header where there is one, else
//     left empty.
//   - an mx-host entry or receiving-mx-hostname that is not a domain name,
//     such as an address: kept as text, its control characters escaped.
//     These fields are for display; the text is at most 255 bytes, a
//     domain name's most.
//   - control characters in receiving-mx-helo, failure-reason-code or
//     additional-information: escaped as Go escapes them ("\x1b").
//   - a multipart/report message that ends without its closing delimiter
//     after the report part: the end of the input ends it.
//
// All else that ParseReport refuses stays an error, among them a missing
// date-range, counts that are negative, not integers or above 2^53-1, no
// policies, and the size bounds. A report read with warnings may not pass
// Report.Validate, which is for reports we send: each field that fails it
// has a warning of its path.
type ReadOptions struct {
	// Strict reads as RFC 8460 says and nothing more, as ParseReport
	// does, for those who check their own senders: every deviation is an
	// error, and no Warning is given.
	Strict bool
}

// Warning names a deviation from RFC 8460 that a lenient read forgave, and
// where it is. The sender's text it quotes is at most 64 bytes, escaped.
// ReadReport returns at most 100, and one more that counts the rest.
type Warning struct {
	// Path is the JSON path of the deviation, e.g.
	// "policies[0].policy.policy-domain", or the MIME part of the
	// message, e.g. "MIME part 2"; empty for the whole input.
	Path string `json:"path,omitempty"`
	// Msg says what was found, and what was read instead.
	Msg string `json:"message"`
}

// String returns the warning with its path, as "path: message".
func (w Warning) String() string {
	if w.Path == "" {
		return w.Msg
	}
	return w.Path + ": " + w.Msg
}

// reading is one read of a received report: how strictly, and what it
// forgave.
type reading struct {
	strict bool
	// reportDomain is the domain of the message's TLS-Report-Domain
	// header, in A-labels, or "".
	reportDomain string
	warns        warnings
}

// maxWarnings bounds the warnings of one read.
const maxWarnings = 100

// warnings holds the first maxWarnings warnings, and counts the rest.
type warnings struct {
	list []Warning
	more int
}

func (w *warnings) add(path, format string, args ...any) {
	if len(w.list) >= maxWarnings {
		w.more++
		return
	}
	w.list = append(w.list, Warning{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// has reports whether a warning at path was given.
func (w *warnings) has(path string) bool {
	for _, x := range w.list {
		if x.Path == path {
			return true
		}
	}
	return false
}

func (w *warnings) result() []Warning {
	if w.more > 0 {
		return append(w.list, Warning{Msg: fmt.Sprintf("%d more warnings not shown", w.more)})
	}
	return w.list
}

func (rd *reading) read(r io.Reader) (*Report, error) {
	data, err := readMax(r, maxReportSize, "input")
	if err != nil {
		return nil, err
	}
	switch {
	case isGzip(data):
		if len(data) > maxInputSize {
			return nil, fmt.Errorf("%w: gzip file larger than the maximum of %d bytes", ErrTooLarge, maxInputSize)
		}
		return rd.gunzip(bytes.NewReader(data))
	case isJSON(data):
		return rd.json(data)
	}
	if len(data) > maxInputSize {
		return nil, fmt.Errorf("%w: message larger than the maximum of %d bytes", ErrTooLarge, maxInputSize)
	}
	return rd.message(bytes.NewReader(data))
}

// isJSON reports whether data starts as a JSON object: a "{" after any
// whitespace, and after a byte order mark (RFC 8259 8.1), which the JSON
// reader then refuses or skips.
func isJSON(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte(byteOrderMark))
	return bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{"))
}

// json parses the JSON of a report.
func (rd *reading) json(data []byte) (*Report, error) {
	if rd.strict {
		return ParseReport(data)
	}
	if len(data) > maxReportSize {
		return nil, fmt.Errorf("%w: %d bytes of JSON, more than the maximum of %d", ErrTooLarge, len(data), maxReportSize)
	}
	r := &Report{}
	if err := decodeReport(data, r, rd); err != nil {
		return nil, err
	}
	return r, nil
}

// message reads a report message; see ReadReport.
func (rd *reading) message(r io.Reader) (*Report, error) {
	data, err := readMax(r, maxInputSize, "message")
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
	// RFC 8460 5.3: "TLS-Report-Domain: Contains the domain for which
	// the report was generated".
	if d, err := mtasts.ParseDomain(strings.TrimSpace(msg.Header.Get("TLS-Report-Domain"))); err == nil {
		rd.reportDomain = d.ASCII
	}

	var report *Report
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for i := 1; ; i++ {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if report != nil && !rd.strict && isEOF(err) {
				// A delimiter line, then the end: RFC 2046 5.1.1 wants
				// the closing delimiter.
				rd.unclosed(i-1, params["boundary"])
				break
			}
			return nil, fmt.Errorf("%w: part %d: %w", ErrInvalidReport, i, quoted.Cause(err))
		}
		pmt, _, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil || pmt != mediaTypeJSON && pmt != mediaTypeGzip {
			// "extract MIME parts with the prescribed media type
			// and filename, and ignore the rest" (RFC 8460 5.3).
			continue
		}
		if report != nil {
			return nil, fmt.Errorf("%w: part %d is a second report", ErrInvalidReport, i)
		}
		var ended bool
		if report, ended, err = rd.part(part, pmt); err != nil {
			return nil, err
		}
		if ended {
			// Mail.ru was seen to leave the closing delimiter out.
			rd.unclosed(i, params["boundary"])
			break
		}
	}
	if report == nil {
		return nil, fmt.Errorf("%w: no part of media type %s or %s", ErrNoReport, mediaTypeJSON, mediaTypeGzip)
	}
	return report, nil
}

// unclosed warns that the message ends in part i, without the closing
// delimiter of RFC 2046 5.1.1: "The boundary delimiter line following the
// last body part is a distinguished delimiter that indicates that no
// further body parts will follow."
func (rd *reading) unclosed(i int, boundary string) {
	rd.warns.add("MIME part "+strconv.Itoa(i), "the message ends without the closing delimiter %s (RFC 2046 5.1.1); the report was read whole",
		quoted.String("--"+boundary+"--"))
}

// isEOF reports whether err is the end of the input.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// part decodes a report part of media type mt. Reading laxly, a part that
// the end of the message ends, not a delimiter, is read with ended set.
func (rd *reading) part(part *multipart.Part, mt string) (report *Report, ended bool, err error) {
	cte := strings.ToLower(strings.TrimSpace(part.Header.Get("Content-Transfer-Encoding")))
	switch cte {
	case "base64", "quoted-printable", "", "7bit", "8bit", "binary":
	default:
		return nil, false, fmt.Errorf("%w: report part: unknown content-transfer-encoding %s", ErrInvalidReport, quoted.String(cte))
	}
	// The message is at most maxInputSize bytes, and so is its part.
	raw, err := readMax(part, maxInputSize, "report part")
	if err != nil && !rd.strict && errors.Is(err, io.ErrUnexpectedEOF) {
		ended, err = true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: report part: %w", ErrInvalidReport, quoted.Cause(err))
	}
	var body io.Reader = bytes.NewReader(raw)
	switch cte {
	case "base64":
		// The example of RFC 8460 5.3.1 sends the report base64.
		body = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	}
	data, err := readMax(body, maxInputSize, "report part")
	if err != nil {
		return nil, false, fmt.Errorf("%w: report part: %w", ErrInvalidReport, quoted.Cause(err))
	}
	if mt == mediaTypeGzip {
		report, err = rd.gunzip(bytes.NewReader(data))
	} else {
		report, err = rd.json(data)
	}
	return report, ended, err
}

// gunzip decompresses and parses a report, reading at most maxReportSize
// bytes of JSON. A gzip file of several members is read whole, as RFC 1952
// 2.2 allows; the file name a member may carry is ignored.
func (rd *reading) gunzip(r io.Reader) (*Report, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: gzip: %w", ErrInvalidReport, quoted.Cause(err))
	}
	data, err := readMax(zr, maxReportSize, "decompressed report")
	if errors.Is(err, ErrTooLarge) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: gzip: %w", ErrInvalidReport, quoted.Cause(err))
	}
	return rd.json(data)
}

// readMax reads r to its end, failing with ErrTooLarge past max bytes. On
// a read error, it returns what it read with the error.
func readMax(r io.Reader, max int, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return data, err
	}
	if len(data) > max {
		return nil, fmt.Errorf("%w: %s larger than the maximum of %d bytes", ErrTooLarge, what, max)
	}
	return data, nil
}

func isGzip(data []byte) bool {
	return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
}
