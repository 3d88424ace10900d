package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
)

// Bad command lines and unreadable input: exit status 2 and exactly one
// line on stderr, naming the problem; never a stack trace.
func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello\n"), 0o644)
	policyFile := filepath.Join(dir, "policy.txt")
	os.WriteFile(policyFile, []byte(policyText("enforce", "604800", "mail.example.com")), 0o644)

	tests := []struct {
		args []string
		want string // in the error line
	}{
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"check"}, "no domain given"},
		{[]string{"check", "--bogus", "example.com"}, "flag provided but not defined: -bogus"},
		{[]string{"check", "example.com", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"check", "exa mple.com"}, `invalid domain name "exa mple.com"`},
		{[]string{"check", "a..example"}, `mtasts: check: invalid domain name "a..example"`},
		{[]string{"check", "--timeout", "0s", "example.com"}, "--timeout must be positive"},
		{[]string{"check", "--timeout", "soon", "example.com"}, `invalid value "soon" for flag -timeout`},
		{[]string{"check", "--smtp-port", "70000", "example.com"}, "ports must be 1 to 65535"},
		{[]string{"check", "--ca", filepath.Join(dir, "missing.pem"), "example.com"}, "no such file"},
		{[]string{"check", "--ca", notPEM, "example.com"}, "no PEM certificates"},
		{[]string{"policy", filepath.Join(dir, "missing.txt")}, "no such file"},
		{[]string{"policy", dir}, "is a directory"},
		{[]string{"policy", policyFile, policyFile}, "one file expected"},
		{[]string{"policy", "--json=maybe", policyFile}, "invalid boolean value"},
		{[]string{"record", "--id", "a-b"}, `--id "a-b": expected 1 to 32 letters and digits`},
		{[]string{"record", "--id", strings.Repeat("a", 33)}, "expected 1 to 32 letters and digits"},
		{[]string{"record", "a..example"}, "invalid domain name"},
		{[]string{"record", "a.example", "b.example"}, "at most one domain"},
		{[]string{"serve"}, "--policy FILE is required"},
		{[]string{"serve", "--policy", filepath.Join(dir, "missing.txt")}, "no such file"},
		{[]string{"serve", "--policy", policyFile, "--cert", notPEM}, "--cert and --key go together"},
		{[]string{"serve", "--policy", policyFile, "--cert", notPEM, "--key", notPEM}, "failed to find any PEM data"},
		{[]string{"serve", "--policy", policyFile, "extra"}, `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, stderr := runMain(t, nil, tc.args...)
			if code != exitUsage {
				t.Errorf("exit status %d, want %d", code, exitUsage)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") || !strings.HasPrefix(stderr, "mtasts: ") {
				t.Errorf("stderr %q, want one line starting with \"mtasts: \"", stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not say %q", stderr, tc.want)
			}
			if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
				t.Errorf("stack trace on stderr: %q", stderr)
			}
		})
	}
}

// Help, with no arguments or asked for, lists every subcommand and every
// flag of each.
func TestHelp(t *testing.T) {
	flagSets := map[string]*flag.FlagSet{}
	flagSets["check"], _ = checkFlags()
	flagSets["policy"], _ = policyFlags()
	flagSets["record"], _ = recordFlags()
	flagSets["serve"], _ = serveFlags()
	flagSets["report"], _ = reportFlags()
	for name, fs := range flagSets {
		if !strings.Contains(usageText, "  mtasts "+name+" ") {
			t.Errorf("help does not list the subcommand %s", name)
		}
		section := usageText[strings.Index(usageText, "Flags of "+name+":"):]
		if i := strings.Index(section[1:], "Flags of "); i > 0 {
			section = section[:i+1]
		}
		fs.VisitAll(func(f *flag.Flag) {
			if !regexp.MustCompile(`(?m)^  --` + regexp.QuoteMeta(f.Name) + `\b`).MatchString(section) {
				t.Errorf("help does not describe %s --%s", name, f.Name)
			}
		})
	}

	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"check", "-h"}, {"policy", "--help"}, {"record", "-help"}, {"serve", "-h"}, {"check", "example.com", "-h"}} {
		code, out, stderr := runMain(t, nil, args...)
		if code != exitOK || out != usageText || stderr != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout is the help: %v", args, code, stderr, out == usageText)
		}
	}
	code, out, _ := runMain(t, nil)
	if code != exitUsage || out != usageText {
		t.Errorf("no arguments: exit %d, stdout is the help: %v", code, out == usageText)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args []string
		json bool
		rest []string
	}{
		{[]string{"a", "b"}, false, []string{"a", "b"}},
		{[]string{"--json", "a"}, true, []string{"a"}},
		{[]string{"a", "--json", "b"}, true, []string{"a", "b"}},
		{[]string{"a", "--", "--json"}, false, []string{"a", "--json"}},
		{[]string{"--", "-"}, false, []string{"-"}},
		{[]string{"-"}, false, []string{"-"}},
		{nil, false, nil},
	}
	for _, tc := range tests {
		fs, jsonOut := policyFlags()
		rest, err := parseFlags(fs, tc.args)
		if err != nil || *jsonOut != tc.json || strings.Join(rest, "|") != strings.Join(tc.rest, "|") {
			t.Errorf("parseFlags(%q) = %q, json %v, %v; want %q, json %v", tc.args, rest, *jsonOut, err, tc.rest, tc.json)
		}
	}
}

func TestPolicyCommand(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		text  string
		code  int
		finds []string // substrings of the findings, in order
	}{
		{"clean", policyText("enforce", "1209600", "mail.example.com", "*.example.net"), exitOK, nil},
		{"lf only", "version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 86400\n", exitOK, nil},
		{"blank line", "version: STSv1\n\nmode: testing\nmx: mail.example.com\nmax_age: 86400\n", exitOK,
			[]string{"warn :2: blank line"}},
		{"mixed line ends", "version: STSv1\r\nmode: testing\nmx: mail.example.com\r\nmax_age: 86400\n", exitOK,
			[]string{"warn :0: mixed line endings: 2 CRLF and 2 LF"}},
		{"max_age above the maximum", policyText("enforce", "31557601", "mail.example.com"), exitOK,
			[]string{"warn :4: max_age 31557601 is above the RFC 8461 maximum of 31557600"}},
		{"short max_age in enforce", policyText("enforce", "3600", "mail.example.com"), exitOK,
			[]string{"warn :4: max_age 3600 (1 hour) is very short for enforce mode"}},
		{"short max_age in testing is fine", policyText("testing", "3600", "mail.example.com"), exitOK, nil},
		{"duplicate keys", "version: STSv1\nmode: enforce\nmx: a.example\nmode: testing\nmx: A.example\nmax_age: 604800\n", exitOK,
			[]string{"warn :4: duplicate key \"mode\": ignored, the value of line 2 is used", "warn :5: mx \"A.example\" repeats line 3"}},
		{"unknown key", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 604800\nmaxage: 1\n", exitOK,
			[]string{"warn :5: unknown key \"maxage\": senders ignore it (did you mean \"max_age\"?)"}},
		{"unknown key, no suggestion", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 604800\nfoo: 1\nMode: testing\n", exitOK,
			[]string{"warn :5: unknown key \"foo\": senders ignore it\x00", "warn :6: unknown key \"Mode\": senders ignore it (did you mean \"mode\"?)"}},
		{"trailing whitespace", "version: STSv1 \nmode: enforce\nmx: a.example\nmax_age: 604800\n", exitOK,
			[]string{"warn :1: whitespace at the end of the line"}},
		{"syntax error", "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 7d\n", exitFail,
			[]string{"fail :4: invalid max_age \"7d\""}},
		{"missing key", "version: STSv1\nmode: enforce\nmax_age: 604800\n", exitFail,
			[]string{"fail :0: missing, at least one is required unless mode is none"}},
		{"bad mode", "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 604800\n", exitFail,
			[]string{"fail :2: invalid mode \"Enforce\""}},
		{"html", "<html><body>hi</body></html>\n", exitFail,
			[]string{"fail :1: expected a key"}},
		{"empty", "", exitFail, []string{"fail :0: missing"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(file, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, stderr := runMain(t, nil, "policy", "--json", file)
			if code != tc.code || stderr != "" {
				t.Fatalf("exit %d, stderr %q; want %d", code, stderr, tc.code)
			}
			var res lintResult
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			var got []string
			for _, f := range res.Findings {
				got = append(got, string(f.Status)+" :"+strconv.Itoa(f.Line)+": "+f.Message)
			}
			if len(got) != len(tc.finds) {
				t.Fatalf("findings %q, want %d like %q", got, len(tc.finds), tc.finds)
			}
			for i, want := range tc.finds {
				// A final NUL in want asks for the whole finding.
				if exact, ok := strings.CutSuffix(want, "\x00"); ok && got[i] != exact || !ok && !strings.HasPrefix(got[i], want) {
					t.Errorf("finding %q, want it to start %q", got[i], want)
				}
			}
			if res.Valid != (tc.code == exitOK) || res.File != file {
				t.Errorf("valid %v, file %q", res.Valid, res.File)
			}
			if res.Valid {
				// The normalised policy parses to the same policy.
				p1, _ := mtasts.ParsePolicy(tc.text)
				p2, err := mtasts.ParsePolicy(res.Normalised)
				if err != nil || p1.String() != p2.String() || res.Policy.Mode != string(p1.Mode) || res.Policy.MaxAgeSeconds != p1.MaxAgeSeconds {
					t.Errorf("normalised %q, policy %+v: %v", res.Normalised, res.Policy, err)
				}
			}

			// The text form says the same, and ends with the normalised
			// policy.
			code, text, _ := runMain(t, nil, "policy", file)
			if code != tc.code {
				t.Errorf("text: exit %d", code)
			}
			if res.Valid && !strings.HasSuffix(text, "\n\nNormalised (CRLF line ends, as RFC 8461 3.2 writes it):\n"+res.Normalised) {
				t.Errorf("text output does not end in the normalised policy:\n%s", text)
			}
			for _, f := range res.Findings {
				if !strings.Contains(text, f.Message) {
					t.Errorf("text output lacks %q", f.Message)
				}
			}
		})
	}
}

// The policy comes from standard input with "-" or no file.
func TestPolicyStdin(t *testing.T) {
	text := "version: STSv1\nmode: none\nmax_age: 86400\n"
	for _, args := range [][]string{{"policy"}, {"policy", "-"}} {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &stdio{in: strings.NewReader(text), out: &out, err: &errb, getenv: func(string) string { return "" }})
		if code != exitOK || !strings.Contains(out.String(), "standard input: valid policy") || !strings.HasSuffix(out.String(), "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n") {
			t.Errorf("%v: exit %d, stdout:\n%s\nstderr: %s", args, code, out.String(), errb.String())
		}
	}
}

func TestRecordCommand(t *testing.T) {
	code, out, _ := runMain(t, nil, "record")
	if code != exitOK || !regexp.MustCompile(`^v=STSv1; id=\d{14}Z\n$`).MatchString(out) {
		t.Fatalf("record: exit %d, %q", code, out)
	}
	r, ok, err := mtasts.ParseRecord(strings.TrimSpace(out))
	if !ok || err != nil || len(r.ID) != 15 {
		t.Fatalf("record %q does not parse: %v", out, err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"record", "--id", "abc123"}, "v=STSv1; id=abc123\n"},
		{[]string{"record", "--id", "abc123", "Example.COM."}, "_mta-sts.example.com. 3600 IN TXT \"v=STSv1; id=abc123\"\n"},
		{[]string{"record", "bücher.example", "--id=1"}, "_mta-sts.xn--bcher-kva.example. 3600 IN TXT \"v=STSv1; id=1\"\n"},
	}
	for _, tc := range tests {
		code, out, stderr := runMain(t, nil, tc.args...)
		if code != exitOK || out != tc.want || stderr != "" {
			t.Errorf("%v: exit %d, %q, stderr %q; want %q", tc.args, code, out, stderr, tc.want)
		}
	}
}

func TestNewID(t *testing.T) {
	a := newID(mustTime(t, "2026-11-29T01:02:03+01:00"))
	if a != "20261129000203Z" {
		t.Errorf("newID = %q, want the UTC time 20261129000203Z", a)
	}
	if b := newID(mustTime(t, "2026-11-29T01:02:04+01:00")); b == a {
		t.Errorf("ids a second apart are equal: %q", b)
	}
}

func TestHumanDuration(t *testing.T) {
	tests := map[int]string{
		0: "0 seconds", 1: "1 second", 90: "1 minute 30 seconds", 3600: "1 hour", 86400: "1 day",
		604800: "7 days", 90061: "1 day 1 hour", 31557600: "365 days 6 hours", 86401: "1 day",
	}
	for secs, want := range tests {
		if got := humanDuration(seconds(secs)); got != want {
			t.Errorf("humanDuration(%ds) = %q, want %q", secs, got, want)
		}
	}
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// --resolver takes HOST:PORT, or a bare address for port 53.
func TestResolverAddr(t *testing.T) {
	tests := map[string]string{
		"127.0.0.1:5353": "127.0.0.1:5353",
		"127.0.0.1":      "127.0.0.1:53",
		"::1":            "[::1]:53",
		"[::1]:5353":     "[::1]:5353",
		"":               "",
	}
	for in, want := range tests {
		n, err := newNetwork(in, nil)
		if err != nil || n.custom != want || (want != "") != (n.resolver.Dial != nil) {
			t.Errorf("newNetwork(%q): custom %q, %v; want %q", in, n.custom, err, want)
		}
	}
}

// Input over 1 MiB is refused, from a file or from standard input alike,
// with a usage error; input of exactly 1 MiB is linted (and fails for being
// over the 64 KiB senders accept).
func TestPolicyTooLarge(t *testing.T) {
	const limit = 1 << 20
	dir := t.TempDir()
	for _, size := range []int{limit, limit + 1} {
		text := policyText("enforce", "604800", "mail.example.com")
		text += strings.Repeat("x", size-len(text))
		file := filepath.Join(dir, strconv.Itoa(size))
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, from := range []string{"file", "stdin"} {
			args := []string{"policy", file}
			in := strings.NewReader("")
			if from == "stdin" {
				args, in = []string{"policy", "-"}, strings.NewReader(text)
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), args, &stdio{in: in, out: &out, err: &errb, getenv: func(string) string { return "" }})
			if size == limit {
				if code != exitFail || !strings.Contains(out.String(), "1048576 bytes, more than the 65536 senders accept") {
					t.Errorf("%s of %d bytes: exit %d, stdout %q, stderr %q; want it linted", from, size, code, out.String(), errb.String())
				}
				continue
			}
			name := file
			if from == "stdin" {
				name = "standard input"
			}
			want := "mtasts: policy: " + name + ": larger than 1048576 bytes"
			if code != exitUsage || out.Len() != 0 || !strings.HasPrefix(errb.String(), want) || strings.Count(errb.String(), "\n") != 1 {
				t.Errorf("%s of %d bytes: exit %d, stdout %d bytes, stderr %q; want exit %d and %q", from, size, code, out.Len(), errb.String(), exitUsage, want)
			}
		}
	}
}
