package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mtasts-go/mtasts"
)

// shortMaxAge is the max_age below which an enforce policy gets a warning:
// RFC 8461 3.2 expects "weeks or greater", and a policy that expires within
// a day leaves senders without protection whenever a refresh is blocked.
const shortMaxAge = 24 * 60 * 60

// lintFinding is one remark about a policy file.
type lintFinding struct {
	Status  status `json:"status"`
	Line    int    `json:"line,omitempty"` // 1-based; 0 for the whole file
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

// policyJSON is a parsed policy in JSON output.
type policyJSON struct {
	Version       string   `json:"version"`
	Mode          string   `json:"mode"`
	MaxAgeSeconds int      `json:"max_age"`
	MaxAge        string   `json:"max_age_text"`
	MX            []string `json:"mx"`
	Extensions    []string `json:"extensions,omitempty"`
}

func newPolicyJSON(p *mtasts.Policy) *policyJSON {
	j := &policyJSON{Version: p.Version, Mode: string(p.Mode), MaxAgeSeconds: p.MaxAgeSeconds, MaxAge: humanDuration(time.Duration(p.MaxAgeSeconds) * time.Second), MX: []string{}}
	for _, mx := range p.MX {
		j.MX = append(j.MX, mx.String())
	}
	for _, e := range p.Extensions {
		j.Extensions = append(j.Extensions, e.Key+": "+e.Value)
	}
	return j
}

// lintResult is the outcome of "mtasts policy", and its JSON form.
type lintResult struct {
	File       string        `json:"file"`
	Valid      bool          `json:"valid"`
	Findings   []lintFinding `json:"findings"`
	Policy     *policyJSON   `json:"policy,omitempty"`
	Normalised string        `json:"normalised,omitempty"`
}

func policyFlags() (fs *flag.FlagSet, jsonOut *bool) {
	fs = flag.NewFlagSet("policy", flag.ContinueOnError)
	return fs, fs.Bool("json", false, "")
}

func runPolicy(args []string, sio *stdio) (int, error) {
	fs, jsonOut := policyFlags()
	args, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage, err
	}
	name, data, err := readInputArg("policy", args, sio.in, maxLintInput)
	if err != nil {
		return exitUsage, err
	}
	res := lintPolicy(name, string(data))
	code := exitOK
	if !res.Valid {
		code = exitFail
	}
	if *jsonOut {
		return code, writeJSON(sio.out, res)
	}
	p := &printer{w: sio.out, color: useColor(sio.out, sio.getenv)}
	printLint(p, res)
	return code, nil
}

// maxLintInput is the most "mtasts policy" reads, from a file or standard
// input: room to lint a policy well over the 64 KiB senders accept (RFC 8461
// 3.3), while a mistaken argument cannot exhaust memory.
const maxLintInput = 16 * mtasts.MaxPolicySize

// readFileLimited reads at most limit bytes of a file; a larger file is an
// error, so a mistaken argument (a device, a huge log) cannot exhaust memory.
func readFileLimited(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, name, limit)
}

// readInputArg reads the input of subcommand cmd: the file its one
// argument names, or standard input for none or "-", refusing more than
// limit bytes from either. It returns the input's name, and a usage error.
func readInputArg(cmd string, args []string, in io.Reader, limit int64) (name string, data []byte, err error) {
	name = "-"
	switch len(args) {
	case 0:
	case 1:
		name = args[0]
	default:
		return "", nil, usagef("%s: one file expected, got %d arguments", cmd, len(args))
	}
	if name == "-" {
		data, err = readLimited(in, "standard input", limit)
	} else {
		data, err = readFileLimited(name, limit)
	}
	if err != nil {
		return name, nil, usagef("%s: %v", cmd, err)
	}
	return name, data, nil
}

// readLimited reads r, named name in errors, to its end. More than limit
// bytes is an error, not input cut short: a check of the first part of a
// file would pass judgement on something other than what was given.
func readLimited(r io.Reader, name string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	return data, nil
}

// lintPolicy parses text with mtasts.ParsePolicy, the parser senders use,
// and adds what the parser accepts but a careful publisher avoids.
func lintPolicy(name, text string) *lintResult {
	res := &lintResult{File: name, Findings: []lintFinding{}}
	add := func(s status, line int, key, format string, args ...any) {
		res.Findings = append(res.Findings, lintFinding{s, line, key, fmt.Sprintf(format, args...)})
	}

	policy, err := mtasts.ParsePolicy(text)
	if err != nil {
		var serr *mtasts.SyntaxError
		if errors.As(err, &serr) {
			add(statusFail, serr.Line, serr.Field, "%s", serr.Msg)
		} else {
			add(statusFail, 0, "", "%v", err)
		}
	}
	// RFC 8461 3.3: senders may refuse a policy over 64 KiB.
	if len(text) > mtasts.MaxPolicySize {
		add(statusFail, 0, "", "%d bytes, more than the %d senders accept (RFC 8461 3.3)", len(text), mtasts.MaxPolicySize)
	}

	// The line-level remarks: the parser skips or tolerates these.
	var crlf, lf int
	first := map[string]int{} // key: line of its first occurrence
	mxSeen := map[string]int{}
	lines := strings.SplitAfter(text, "\n")
	for i, raw := range lines {
		n := i + 1
		if raw == "" {
			continue // after the final newline
		}
		line := raw
		switch {
		case strings.HasSuffix(line, "\r\n"):
			crlf++
			line = strings.TrimSuffix(line, "\r\n")
		case strings.HasSuffix(line, "\n"):
			lf++
			line = strings.TrimSuffix(line, "\n")
		}
		if strings.Trim(line, " \t") == "" {
			// Outside the RFC 8461 3.2 grammar; this parser skips it,
			// stricter ones may not.
			add(statusWarn, n, "", "blank line: outside the RFC 8461 grammar, some senders may reject the policy")
			continue
		}
		if t := strings.TrimRight(line, " \t"); t != line {
			add(statusWarn, n, "", "whitespace at the end of the line")
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue // the parser's error says it
		}
		value = strings.Trim(value, " \t")
		switch key {
		case "mx":
			v := strings.ToLower(value)
			if prev, dup := mxSeen[v]; dup {
				add(statusWarn, n, key, "mx %q repeats line %d", value, prev)
			} else {
				mxSeen[v] = n
			}
			continue
		case "version", "mode", "max_age":
		default:
			// RFC 8461 3.2: other keys are extensions, which senders
			// ignore; most often a typo of a known key.
			if strings.TrimLeft(key, " \t") == key {
				add(statusWarn, n, key, "unknown key %q: senders ignore it%s", key, didYouMean(key))
			}
		}
		if prev, dup := first[key]; dup {
			// RFC 8461 3.2: all but the first of a repeated field are
			// ignored.
			add(statusWarn, n, key, "duplicate key %q: ignored, the value of line %d is used", key, prev)
		} else {
			first[key] = n
		}
	}
	if crlf > 0 && lf > 0 {
		add(statusWarn, 0, "", "mixed line endings: %d CRLF and %d LF; use one (CRLF is the form RFC 8461 3.2 writes)", crlf, lf)
	}

	if policy != nil {
		// RFC 8461 3.2: "maximum value of 31557600".
		if policy.MaxAgeSeconds > mtasts.MaxAgeLimit {
			add(statusWarn, first["max_age"], "max_age", "max_age %d is above the RFC 8461 maximum of %d (a year); senders use %d", policy.MaxAgeSeconds, mtasts.MaxAgeLimit, mtasts.MaxAgeLimit)
		}
		if policy.Mode == mtasts.ModeEnforce && policy.MaxAgeSeconds < shortMaxAge {
			add(statusWarn, first["max_age"], "max_age", "max_age %d (%s) is very short for enforce mode: RFC 8461 3.2 expects weeks or more", policy.MaxAgeSeconds, humanDuration(time.Duration(policy.MaxAgeSeconds)*time.Second))
		}
		if policy.Mode == mtasts.ModeNone && len(policy.MX) > 0 {
			add(statusInfo, first["mode"], "mode", "mode none: the mx lines have no effect")
		}
		res.Valid = true
		res.Policy = newPolicyJSON(policy)
		res.Normalised = policy.String()
	}
	return res
}

// didYouMean suggests the known key that an unknown one is likely a typo
// of: equal but for case and the characters "_", "-" and ".".
func didYouMean(key string) string {
	squash := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '_' || r == '-' || r == '.' {
				return -1
			}
			return unicode.ToLower(r)
		}, s)
	}
	for _, k := range []string{"version", "mode", "mx", "max_age"} {
		if squash(key) == squash(k) {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return ""
}

func printLint(p *printer, res *lintResult) {
	name := res.File
	if name == "-" {
		name = "standard input"
	}
	nwarn := 0
	for _, f := range res.Findings {
		if f.Status == statusWarn {
			nwarn++
		}
	}
	if res.Valid {
		msg := "valid policy"
		if nwarn > 0 {
			msg += fmt.Sprintf(", %d %s", nwarn, plural(nwarn, "warning"))
		}
		p.finding(statusPass, "policy", name+": "+msg)
	}
	for _, f := range res.Findings {
		where := name
		if f.Line > 0 {
			where += ":" + strconv.Itoa(f.Line)
		}
		if f.Key != "" {
			where += ": " + f.Key
		}
		p.finding(f.Status, "policy", where+": "+f.Message)
	}
	if res.Policy != nil {
		pol := res.Policy
		p.field("mode", pol.Mode)
		p.field("max_age", fmt.Sprintf("%d (%s)", pol.MaxAgeSeconds, pol.MaxAge))
		p.field("mx", pol.MX...)
		fmt.Fprintln(p.w)
		fmt.Fprintln(p.w, "Normalised (CRLF line ends, as RFC 8461 3.2 writes it):")
		// RFC 8461 3.2 allows UTF-8 in extension values: escape each
		// line, keeping its CRLF.
		for _, l := range strings.SplitAfter(res.Normalised, "\r\n") {
			body, crlf := strings.CutSuffix(l, "\r\n")
			fmt.Fprint(p.w, escapeText(body))
			if crlf {
				fmt.Fprint(p.w, "\r\n")
			}
		}
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	// A "y" after a consonant becomes "ies": policy, policies; day,
	// days.
	if stem, ok := strings.CutSuffix(word, "y"); ok && stem != "" && !strings.ContainsRune("aeiou", rune(stem[len(stem)-1])) {
		return stem + "ies"
	}
	return word + "s"
}

// humanDuration writes d in the largest whole units that fit, up to two:
// "7 days", "1 day 2 hours", "365 days 6 hours", "90 seconds" as "1 minute 30
// seconds".
func humanDuration(d time.Duration) string {
	secs := int64(d / time.Second)
	if secs == 0 {
		return "0 seconds"
	}
	units := []struct {
		n    int64
		name string
	}{{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}}
	var parts []string
	for _, u := range units {
		if len(parts) == 2 {
			break
		}
		if q := secs / u.n; q > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", q, plural(int(q), u.name)))
			secs -= q * u.n
		} else if len(parts) > 0 {
			break
		}
	}
	return strings.Join(parts, " ")
}
