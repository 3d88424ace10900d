package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/mtasts-go/mtasts/tlsrpt"
)

// "mtasts report DIR" (or several files) sums up many reports, as "serve
// --collect" writes them: per policy domain and day, the sessions, the
// failures and their rate, the result types failing most, and the
// organisations that sent reports. A message among the files is counted
// without its DKIM verdict: the files are the operator's own archive, and
// "mtasts report FILE" shows the verdict of one.

// maxSummaryFiles bounds the files a summary reads.
const maxSummaryFiles = 100000

// topResultTypes is how many result types a summary row names.
const topResultTypes = 3

// summaryResult is the outcome of a summary, and its JSON form.
type summaryResult struct {
	// Files counts the files read as reports.
	Files  int           `json:"files"`
	Errors []reportError `json:"errors"`
	Days   []summaryDay  `json:"days"`
}

// summaryDay sums up the reports of one policy domain and day.
type summaryDay struct {
	PolicyDomain  string       `json:"policy-domain"`
	Day           string       `json:"day"`
	Reports       int          `json:"reports"`
	Sessions      int64        `json:"sessions"`
	Failures      int64        `json:"failures"`
	FailureRate   float64      `json:"failure-rate"`
	ResultTypes   []typeCount  `json:"result-types"`
	Organizations []orgReports `json:"organizations"`
}

type typeCount struct {
	ResultType string `json:"result-type"`
	Sessions   int64  `json:"sessions"`
}

type orgReports struct {
	Name    string `json:"name"`
	Reports int    `json:"reports"`
}

// isSummary reports whether report's arguments ask for a summary: several
// files, or a folder.
func isSummary(args []string) bool {
	if len(args) > 1 {
		return true
	}
	if len(args) == 1 && args[0] != "-" {
		fi, err := os.Stat(args[0])
		return err == nil && fi.IsDir()
	}
	return false
}

func runReportSummary(args []string, o *reportOptions, sio *stdio) (int, error) {
	files, err := summaryFiles(args)
	if err != nil {
		return exitUsage, err
	}
	res := summarize(files)
	code := exitOK
	if len(res.Errors) > 0 {
		code = exitFail
	}
	if o.json {
		return code, writeJSON(sio.out, res)
	}
	printSummary(&printer{w: sio.out, color: useColor(sio.out, sio.getenv)}, res)
	return code, nil
}

// summaryFiles lists the files of args, a folder's regular files in name
// order but for hidden ones (serve's temporary files among them).
func summaryFiles(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, usagef("report: %v", err)
		}
		if !fi.IsDir() {
			files = append(files, a)
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return nil, usagef("report: %v", err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(a, e.Name()))
			}
		}
		if len(files) > maxSummaryFiles {
			return nil, usagef("report: more than %d files", maxSummaryFiles)
		}
	}
	return files, nil
}

// dayKey is a summary row's key.
type dayKey struct{ domain, day string }

// summarize reads each file as a report and sums them up per policy domain
// and day, the day of the date range's start in UTC (RFC 8460 4.1: a report
// "SHOULD cover a full day, from 00:00-24:00 UTC").
func summarize(files []string) *summaryResult {
	res := &summaryResult{Errors: []reportError{}, Days: []summaryDay{}}
	days := map[dayKey]*summaryDay{}
	types := map[dayKey]map[string]int64{}
	orgs := map[dayKey]map[string]int{}
	for _, f := range files {
		data, err := readFileLimited(f, maxReportInput)
		var r *tlsrpt.Report
		if err == nil {
			r, _, err = tlsrpt.ReadReport(bytes.NewReader(data), tlsrpt.ReadOptions{})
		}
		if err != nil {
			res.Errors = append(res.Errors, reportError{Path: f, Message: strings.TrimPrefix(err.Error(), "tlsrpt: ")})
			continue
		}
		res.Files++
		day := r.DateRange.Start.UTC().Format("2006-01-02")
		seen := map[dayKey]bool{}
		for _, pr := range r.Policies {
			k := dayKey{strings.ToLower(strings.TrimSuffix(pr.Policy.PolicyDomain, ".")), day}
			d := days[k]
			if d == nil {
				d = &summaryDay{PolicyDomain: k.domain, Day: day}
				days[k], types[k], orgs[k] = d, map[string]int64{}, map[string]int{}
			}
			if !seen[k] {
				// A report naming a domain in two policies (sts and
				// tlsa) is one report of it.
				seen[k] = true
				d.Reports++
				orgs[k][r.OrganizationName]++
			}
			d.Sessions += pr.Summary.TotalSuccessfulSessionCount + pr.Summary.TotalFailureSessionCount
			d.Failures += pr.Summary.TotalFailureSessionCount
			for _, fd := range pr.FailureDetails {
				types[k][string(fd.ResultType)] += fd.FailedSessionCount
			}
		}
	}
	for k, d := range days {
		if d.Sessions > 0 {
			d.FailureRate = float64(d.Failures) / float64(d.Sessions)
		}
		d.ResultTypes = []typeCount{}
		for t, n := range types[k] {
			d.ResultTypes = append(d.ResultTypes, typeCount{t, n})
		}
		sort.Slice(d.ResultTypes, func(i, j int) bool {
			a, b := d.ResultTypes[i], d.ResultTypes[j]
			return a.Sessions > b.Sessions || a.Sessions == b.Sessions && a.ResultType < b.ResultType
		})
		if len(d.ResultTypes) > topResultTypes {
			d.ResultTypes = d.ResultTypes[:topResultTypes]
		}
		d.Organizations = []orgReports{}
		for o, n := range orgs[k] {
			d.Organizations = append(d.Organizations, orgReports{o, n})
		}
		sort.Slice(d.Organizations, func(i, j int) bool {
			a, b := d.Organizations[i], d.Organizations[j]
			return a.Reports > b.Reports || a.Reports == b.Reports && a.Name < b.Name
		})
		res.Days = append(res.Days, *d)
	}
	sort.Slice(res.Days, func(i, j int) bool {
		a, b := res.Days[i], res.Days[j]
		return a.PolicyDomain < b.PolicyDomain || a.PolicyDomain == b.PolicyDomain && a.Day < b.Day
	})
	return res
}

// printSummary prints a summary: a line per policy domain and day, with
// the result types failing most and the organisations that reported. Every
// text from a report is cut and escaped: it is the sender's.
func printSummary(p *printer, res *summaryResult) {
	st := statusPass
	if len(res.Errors) > 0 {
		st = statusFail
	}
	p.finding(st, "report", fmt.Sprintf("%d %s read, %d unreadable", res.Files, plural(res.Files, "report"), len(res.Errors)))
	for _, e := range res.Errors {
		p.field("unreadable", e.Path+": "+e.Message)
	}
	for _, d := range res.Days {
		st := statusPass
		if d.Failures > 0 {
			st = statusWarn
		}
		fmt.Fprintln(p.w)
		p.finding(st, shown(d.PolicyDomain), fmt.Sprintf("%s: %d %s, %d %s, %d failed (%.2f%%)", d.Day,
			d.Reports, plural(d.Reports, "report"), d.Sessions, plural(int(min(d.Sessions, 2)), "session"), d.Failures, 100*d.FailureRate))
		if len(d.ResultTypes) > 0 {
			var types []string
			for _, t := range d.ResultTypes {
				types = append(types, shown(t.ResultType)+" "+strconv.FormatInt(t.Sessions, 10))
			}
			p.field("failing", strings.Join(types, ", "))
		}
		var orgs []string
		for _, o := range d.Organizations {
			orgs = append(orgs, shown(o.Name)+" ("+strconv.Itoa(o.Reports)+")")
		}
		p.field("senders", strings.Join(orgs, ", "))
	}
}
