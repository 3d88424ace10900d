package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mtasts-go/mtasts/internal/quoted"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// "mtasts report" reads a TLS report that another domain's MTA sent (RFC
// 8460): the JSON, the JSON gzip-compressed as posted over HTTPS, or a
// whole e-mail message. It reads it as receivers must, with
// tlsrpt.ReadReport: what real senders get wrong is forgiven, with a warning
// each, printed under the report; --strict reads it as RFC 8460 says and
// nothing more. It prints what the report says, each policy with its
// failures as a table. Everything in a report is the sender's text, escaped on output,
// and in the text summary cut at maxShown bytes: a value of megabytes is
// valid, but not for a terminal. --json gives the report exact.

// maxReportInput bounds a report file read: 20 MiB, the most JSON
// tlsrpt.ReadReport reads, and more than it reads of a gzip file or message.
const maxReportInput = 20 << 20

// maxShown is how many bytes of a report's value the text summary shows.
const maxShown = 256

// shown returns s for the text summary: s, or its first maxShown bytes and
// its length.
func shown(s string) string {
	c := quoted.Cut(s, maxShown)
	if len(c) == len(s) {
		return s
	}
	return c + "...(" + strconv.Itoa(len(s)) + " bytes)"
}

// shownAll returns the elements of l as shown gives them.
func shownAll(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = shown(s)
	}
	return out
}

// reportOptions are the flags of report, described in usageText.
type reportOptions struct {
	json     bool
	strict   bool
	resolver string
}

func reportFlags() (*flag.FlagSet, *reportOptions) {
	o := &reportOptions{}
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.BoolVar(&o.json, "json", false, "")
	fs.BoolVar(&o.strict, "strict", false, "")
	fs.StringVar(&o.resolver, "resolver", "", "")
	return fs, o
}

// reportResult is the outcome of "mtasts report", and its JSON form.
type reportResult struct {
	File string `json:"file"`
	// Form is how the report came: "json", "gzip" or "message".
	Form  string       `json:"form"`
	Valid bool         `json:"valid"`
	Error *reportError `json:"error,omitempty"`
	// Report is the report as read, marshalled anew: the normalised
	// form (mx-host an array, addresses in their canonical form).
	Report *tlsrpt.Report `json:"report,omitempty"`
	// Warnings names each deviation from RFC 8460 that the reader
	// forgave, with its JSON path or MIME part.
	Warnings []tlsrpt.Warning `json:"warnings,omitempty"`
	// DKIM is the verdict on each DKIM signature of a message; DKIMValid
	// whether one is valid by RFC 8460 3. Both are only for messages.
	DKIM      []tlsrpt.DKIMResult `json:"dkim,omitempty"`
	DKIMValid *bool               `json:"dkim-valid,omitempty"`
}

// reportError says why a report is invalid, and where.
type reportError struct {
	// Path is the JSON path at fault, e.g.
	// "policies[0].summary.total-failure-session-count"; empty when the
	// fault is not in the JSON.
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

func runReport(args []string, sio *stdio) (int, error) {
	fs, o := reportFlags()
	args, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage, err
	}
	if isSummary(args) {
		return runReportSummary(args, o, sio)
	}
	name, data, err := readInputArg("report", args, sio.in, maxReportInput)
	if err != nil {
		return exitUsage, err
	}

	res := &reportResult{File: name, Form: reportForm(data)}
	report, warnings, err := tlsrpt.ReadReport(bytes.NewReader(data), tlsrpt.ReadOptions{Strict: o.strict})
	switch {
	case errors.Is(err, tlsrpt.ErrTooLarge):
		// A gzip file or message that decompresses past the bound:
		// refused unread, as over-long input is.
		return exitUsage, usagef("report: %s: %s", name, strings.TrimPrefix(err.Error(), "tlsrpt: "))
	case err != nil:
		res.Error = &reportError{Message: strings.TrimPrefix(err.Error(), "tlsrpt: ")}
		var serr *tlsrpt.SyntaxError
		if errors.As(err, &serr) {
			res.Error.Path = serr.Field
		}
	default:
		res.Valid, res.Report, res.Warnings = true, report, warnings
		if res.Form == "message" {
			if err := verifyReportDKIM(res, o.resolver, data); err != nil {
				return exitUsage, err
			}
		}
	}
	code := exitOK
	if !res.Valid {
		code = exitFail
	}
	if o.json {
		return code, writeJSON(sio.out, res)
	}
	printReport(&printer{w: sio.out, color: useColor(sio.out, sio.getenv)}, res)
	return code, nil
}

// reportForm names the form of a report as tlsrpt.ReadReport tells it
// apart: gzip by its magic number (RFC 8460 6.5), JSON by its "{" (after
// any byte order mark), else an e-mail message.
func reportForm(data []byte) string {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	switch {
	case len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b:
		return "gzip"
	case bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{")):
		return "json"
	}
	return "message"
}

var formNames = map[string]string{"json": "JSON", "gzip": "JSON compressed with gzip", "message": "e-mail message"}

func printReport(p *printer, res *reportResult) {
	name := res.File
	if name == "-" {
		name = "standard input"
	}
	if !res.Valid {
		p.finding(statusFail, "report", name+" ("+formNames[res.Form]+"): "+res.Error.Message)
		return
	}
	r := res.Report
	if n := len(res.Warnings); n > 0 {
		p.finding(statusWarn, "report", fmt.Sprintf("%s: TLS report read with %d %s, %s, %d %s",
			name, n, plural(n, "warning"), formNames[res.Form], len(r.Policies), plural(len(r.Policies), "policy")))
	} else {
		p.finding(statusPass, "report", fmt.Sprintf("%s: valid TLS report (RFC 8460), %s, %d %s",
			name, formNames[res.Form], len(r.Policies), plural(len(r.Policies), "policy")))
	}
	printDKIM(p, res)
	p.field("organization", orNone(shown(r.OrganizationName)))
	p.field("contact", orNone(shown(r.ContactInfo)))
	p.field("report-id", shown(r.ReportID))
	p.field("date range", r.DateRange.Start.Format(time.RFC3339)+" to "+r.DateRange.End.Format(time.RFC3339))
	for i, pr := range r.Policies {
		printPolicyResult(p, i, &pr)
	}
	// Under the report, what the reader forgave, each deviation from RFC
	// 8460 with its JSON path or MIME part.
	if len(res.Warnings) > 0 {
		fmt.Fprintln(p.w)
	}
	for _, w := range res.Warnings {
		p.finding(statusWarn, "warning", escapeText(w.String()))
	}
}

// orNone returns s, or "-" for a value a report read leniently left empty.
func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printPolicyResult prints one policy of a report: what it is, its counts,
// and its failure details as a table.
func printPolicyResult(p *printer, i int, pr *tlsrpt.PolicyResult) {
	pol := pr.Policy
	s := pr.Summary
	st := statusPass
	if s.TotalFailureSessionCount > 0 {
		st = statusWarn
	}
	fmt.Fprintln(p.w)
	what := shown(string(pol.PolicyType))
	if pol.PolicyDomain != "" {
		what += " " + shown(pol.PolicyDomain)
	}
	p.finding(st, "policy "+strconv.Itoa(i+1), fmt.Sprintf("%s: %d successful, %d failed %s",
		what, s.TotalSuccessfulSessionCount, s.TotalFailureSessionCount,
		plural(int(min(s.TotalFailureSessionCount, 2)), "session")))
	p.field("type", shown(string(pol.PolicyType)))
	p.field("domain", orNone(shown(pol.PolicyDomain)))
	if len(pol.MXHost) > 0 {
		p.field("mx hosts", shownAll(pol.MXHost)...)
	}
	if len(pol.PolicyString) > 0 {
		p.field("policy", shownAll(pol.PolicyString)...)
	}
	p.field("successes", strconv.FormatInt(s.TotalSuccessfulSessionCount, 10))
	p.field("failures", strconv.FormatInt(s.TotalFailureSessionCount, 10))
	if len(pr.FailureDetails) > 0 {
		fmt.Fprintln(p.w)
		printFailureTable(p, pr.FailureDetails)
	}
}

// failureColumns are the columns of the failure-details table, each with
// its cell of a row.
var failureColumns = []struct {
	head  string
	right bool // right-aligned, for numbers
	cell  func(fd *tlsrpt.FailureDetail) string
}{
	{"SESSIONS", true, func(fd *tlsrpt.FailureDetail) string { return strconv.FormatInt(fd.FailedSessionCount, 10) }},
	{"RESULT TYPE", false, func(fd *tlsrpt.FailureDetail) string { return string(fd.ResultType) }},
	{"MX HOST", false, func(fd *tlsrpt.FailureDetail) string { return fd.ReceivingMXHostname }},
	{"MX HELO", false, func(fd *tlsrpt.FailureDetail) string { return fd.ReceivingMXHelo }},
	{"RECEIVING IP", false, func(fd *tlsrpt.FailureDetail) string { return addrText(fd.ReceivingIP) }},
	{"SENDING MTA IP", false, func(fd *tlsrpt.FailureDetail) string { return addrText(fd.SendingMTAIP) }},
	{"REASON", false, func(fd *tlsrpt.FailureDetail) string { return fd.FailureReasonCode }},
	{"ADDITIONAL INFORMATION", false, func(fd *tlsrpt.FailureDetail) string { return fd.AdditionalInformation }},
}

// addrText returns a, or "" for an address the report did not give.
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// printFailureTable prints the failure-details rows as a table, indented
// under the findings, leaving out the columns empty in every row. Every
// cell is escaped: it is the report sender's text.
func printFailureTable(p *printer, rows []tlsrpt.FailureDetail) {
	cells := make([][]string, len(rows))
	used := make([]bool, len(failureColumns))
	widths := make([]int, len(failureColumns))
	for c, col := range failureColumns {
		widths[c] = len(col.head)
	}
	for r := range rows {
		cells[r] = make([]string, len(failureColumns))
		for c, col := range failureColumns {
			v := escapeText(shown(col.cell(&rows[r])))
			cells[r][c] = v
			if v != "" {
				used[c] = true
			}
			widths[c] = max(widths[c], utf8.RuneCountInString(v))
		}
	}
	line := func(texts []string, head bool) {
		var b strings.Builder
		b.WriteString(msgIndent)
		var last int
		for c := range failureColumns {
			if used[c] {
				last = c
			}
		}
		for c, col := range failureColumns {
			if !used[c] {
				continue
			}
			v := texts[c]
			if v == "" {
				v = "-"
			}
			gap := strings.Repeat(" ", widths[c]-utf8.RuneCountInString(v))
			switch {
			case col.right:
				b.WriteString(gap + v)
			case c == last:
				b.WriteString(v)
			default:
				b.WriteString(v + gap)
			}
			if c != last {
				b.WriteString("  ")
			}
		}
		// A cell's trailing spaces are invisible; the line keeps none.
		s := strings.TrimRight(b.String(), " ")
		if head {
			s = p.paint(ansiDim, s)
		}
		fmt.Fprintln(p.w, s)
	}
	heads := make([]string, len(failureColumns))
	for c, col := range failureColumns {
		heads[c] = col.head
	}
	line(heads, true)
	for r := range rows {
		line(cells[r], false)
	}
}
