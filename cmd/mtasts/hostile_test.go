package main

import (
	"encoding/json"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// What a hostile domain puts in front of the operator: a terminal title
// change, a bell and a screen clear, seen in a real policy.
const (
	hostileSeq = "\x1b]0;pwned\x07\x1b[2J"
	// hostileShown is how the text output must show it.
	hostileShown = `\x1b]0;pwned\x07\x1b[2J`
	// hostileMore are runes that are no bytes below 0x20, and that JSON
	// encoding leaves alone: DEL, the C1 CSI, a right-to-left override.
	hostileMore = "\x7f\u009b\u202e"
)

var (
	hostilePolicy   = "version: STSv1\r\nmode: enforce\r\nmx: mail.hostile.example\r\nmax_age: 604800\r\nnote: " + hostileSeq + hostileMore + "\r\n"
	hostileCertName = hostileSeq + "\x7f.hostile.example" // x509 takes only ASCII
	hostileZones    = map[string]zone{
		"hostile.example.":            {mx: []mxRecord{{10, "mail.hostile.example."}}},
		"_mta-sts.hostile.example.":   {txt: [][]string{{"v=STSv1; id=1" + hostileSeq + hostileMore}}},
		"_smtp._tls.hostile.example.": {txt: [][]string{{"v=TLSRPTv1; rua=mailto:tls@hostile.example\x1b[2J\x07" + hostileMore}}},
		"mta-sts.hostile.example.":    {a: loopback},
		"mail.hostile.example.":       {a: loopback},
	}
)

// rawControl returns the first byte or rune of s that must not reach a
// terminal, and its offset, or -1: bytes below 0x20 other than tab and
// newline (and a carriage return before a newline, as the normalised
// policy ends its lines), DEL, C1 controls, bidirectional controls, and bytes that are not
// UTF-8.
func rawControl(s string) (string, int) {
	for i, r := range s {
		bad := false
		switch {
		case r == utf8.RuneError:
			_, size := utf8.DecodeRuneInString(s[i:])
			bad = size == 1
		case r == '\r':
			bad = !strings.HasPrefix(s[i:], "\r\n")
		case r < 0x20:
			bad = r != '\t' && r != '\n'
		case r >= 0x7f && r <= 0x9f:
			bad = true
		case r >= 0x200e && r <= 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			bad = true
		}
		if bad {
			return s[i : i+max(1, utf8.RuneLen(r))], i
		}
	}
	return "", -1
}

func assertNoRawControl(t *testing.T, what, out string) {
	t.Helper()
	if c, i := rawControl(out); i >= 0 {
		lo, hi := max(0, i-60), min(len(out), i+60)
		t.Errorf("%s: raw %q at offset %d, in %q", what, c, i, out[lo:hi])
	}
}

// Everything check shows from the network is escaped in text output:
// policy text, record text, certificate names, TLS-RPT addresses, SMTP
// banners, error messages.
func TestCheckHostileText(t *testing.T) {
	w := newWorld(t)
	code, out, stderr := runMain(t, nil, append(append([]string{"check", "--starttls"}, w.flags...), "hostile.example")...)
	if code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	assertNoRawControl(t, "stdout", out)
	assertNoRawControl(t, "stderr", stderr)
	for _, want := range []string{
		"note: " + hostileShown + `\x7f\u009b\u202e`,     // the policy text
		"names " + hostileShown + `\x7f.hostile.example`, // the certificate
		`tls@hostile.example\x1b[2J\a\x7f\u009b\u202e`,   // the TLS-RPT record, refused as invalid
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// An SMTP server whose banner is hostile.
	port := startHostileSMTP(t, "554 "+hostileSeq+hostileMore+" go away\r\n")
	flags := append([]string{}, w.flags...)
	flags[len(flags)-1] = port
	code, out, stderr = runMain(t, nil, append(append([]string{"check", "--starttls"}, flags...), "hostile.example")...)
	assertNoRawControl(t, "stdout", out)
	assertNoRawControl(t, "stderr", stderr)
	// Go 1.26's net/textproto quotes the reply itself, older ones do not:
	// ask only for the line, escaped one way or the other.
	if code != exitFail || !regexp.MustCompile(`(?m)^FAIL  STARTTLS .*reading the greeting: 554 .*pwned.*go away`).MatchString(out) {
		t.Errorf("hostile banner: exit %d, output lacks the banner:\n%s", code, out)
	}
}

// The JSON output keeps the exact strings for programs, in escapes that
// leave no raw control character for a terminal.
func TestCheckHostileJSON(t *testing.T) {
	w := newWorld(t)
	code, out, stderr := runMain(t, nil, append(append([]string{"check", "--json", "--starttls"}, w.flags...), "hostile.example")...)
	if code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	assertNoRawControl(t, "stdout", out)
	assertNoRawControl(t, "stderr", stderr)
	_, _, steps := checkJSON(t, w, "--starttls", "hostile.example")
	var fetch fetchData
	if err := json.Unmarshal(steps["hostile.example"]["fetch"].Data, &fetch); err != nil {
		t.Fatal(err)
	}
	if fetch.Text != hostilePolicy || fetch.Cert == nil || len(fetch.Cert.DNSNames) == 0 || fetch.Cert.DNSNames[0] != hostileCertName {
		t.Errorf("fetch data does not keep the exact strings: text %q, certificate %+v", fetch.Text, fetch.Cert)
	}
}

// "mtasts policy" escapes the file it lints, in text and JSON.
func TestPolicyHostile(t *testing.T) {
	for _, args := range [][]string{{"policy"}, {"policy", "--json"}} {
		var out, errb strings.Builder
		code := run(t.Context(), args, &stdio{in: strings.NewReader(hostilePolicy + "mx" + hostileSeq + ": x\n"), out: &out, err: &errb, getenv: func(string) string { return "" }})
		if code != exitFail {
			t.Errorf("%v: exit %d, want %d", args, code, exitFail)
		}
		assertNoRawControl(t, strings.Join(args, " ")+": stdout", out.String())
		assertNoRawControl(t, strings.Join(args, " ")+": stderr", errb.String())
	}
	// A valid policy whose extension value holds a bidi override and a C1
	// control: the normalised policy is escaped too.
	valid := policyText("enforce", "604800", "mail.example.com") + "note: a\u202eb\u009bc\r\n"
	var out strings.Builder
	code := run(t.Context(), []string{"policy"}, &stdio{in: strings.NewReader(valid), out: &out, err: io.Discard, getenv: func(string) string { return "" }})
	if code != exitOK {
		t.Errorf("valid policy: exit %d", code)
	}
	assertNoRawControl(t, "valid policy", out.String())
	if !strings.Contains(out.String(), `note: a\u202eb\u009bc`+"\r\n") {
		t.Errorf("normalised policy not escaped as expected:\n%s", out.String())
	}
}

// startHostileSMTP starts an SMTP server on loopback that greets every
// client with banner and hangs up; it returns its port.
func startHostileSMTP(t *testing.T, banner string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(conn, banner)
			conn.Close()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
