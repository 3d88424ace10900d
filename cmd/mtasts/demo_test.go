package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mtasts-go/mtasts"
)

// The demo runs check on its loopback set-up: exit 0, the passing domain's
// PASS lines, the failing domain's FAIL lines, and afterwards nothing
// listens on its ports and its CA file is gone.
func TestDemo(t *testing.T) {
	code, out, stderr := runMain(t, nil, "demo")
	if code != exitOK {
		t.Fatalf("exit %d, want %d: the failing domain is meant to fail\nstdout:\n%s\nstderr:\n%s", code, exitOK, out, stderr)
	}
	for _, want := range []string{
		// The passing domain, step by step.
		"PASS  TXT record    _mta-sts.good.example: \"v=STSv1; id=",
		"PASS  policy fetch  https://mta-sts.good.example/.well-known/mta-sts.txt\n",
		"PASS  policy        mode enforce, max_age 604800 (7 days)\n",
		"PASS  MX            mail.good.example (preference 10): allowed by mx mail.good.example\n",
		"PASS  STARTTLS      mail.good.example (127.0.0.1:",
		"PASS  TLS-RPT       _smtp._tls.good.example: ",
		"good.example: PASS, 0 failures, 0 warnings\n",
		// The failing domain: its policy and record are fine...
		"PASS  TXT record    _mta-sts.broken.example: ",
		"PASS  policy fetch  https://mta-sts.broken.example/.well-known/mta-sts.txt\n",
		"PASS  MX            mail.broken.example (preference 10): allowed by mx mail.broken.example\n",
		// ...but these are not.
		"FAIL  MX            backup.broken.example (preference 20): not allowed by the policy",
		"FAIL  STARTTLS      mail.broken.example (127.0.0.1:",
		"FAIL  STARTTLS      backup.broken.example (127.0.0.1:",
		"WARN  TLS-RPT       _smtp._tls.broken.example: no TLS-RPT record",
		"broken.example: FAIL, 3 failures, 1 warning\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, want := range []string{"certificate not valid for mail.broken.example", "mx.hosting.example", "certificate not valid for backup.broken.example", "expired"} {
		if !strings.Contains(out, want) {
			t.Errorf("the STARTTLS failures do not say %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
	if strings.Contains(stderr, "mtasts demo:") {
		t.Errorf("stderr: %s", stderr)
	}
	compareREADME(t, out)

	// Each check is shown as the command a user would type, with the
	// set-up's addresses.
	cmds := regexp.MustCompile(`(?m)^\$ mtasts check (.*)$`).FindAllStringSubmatch(out, -1)
	if len(cmds) != 2 || !strings.HasSuffix(cmds[0][1], " good.example") || !strings.HasSuffix(cmds[1][1], " broken.example") {
		t.Fatalf("commands shown: %q, want one for good.example, then one for broken.example", cmds)
	}
	fs, o := checkFlags()
	if _, err := parseFlags(fs, strings.Fields(cmds[0][1])); err != nil {
		t.Fatalf("the command shown is not check's: %v", err)
	}
	if !o.starttls {
		t.Error("the demo does not check with --starttls")
	}
	if fs.Lookup("allow-private") != nil && !strings.Contains(cmds[0][1], "--allow-private") {
		t.Error("check has --allow-private, and the demo does not allow its loopback servers with it")
	}

	// Afterwards: nothing listens, nothing is left on disk.
	ports := map[string]string{"DNS": o.resolver}
	ports["HTTPS"] = net.JoinHostPort("127.0.0.1", itoa(o.httpsPort))
	ports["SMTP"] = net.JoinHostPort("127.0.0.1", itoa(o.smtpPort))
	for what, addr := range ports {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("%s server still listens at %s after the demo", what, addr)
		}
	}
	if pc, err := net.ListenPacket("udp", o.resolver); err != nil {
		t.Errorf("DNS server's UDP port %s still bound after the demo: %v", o.resolver, err)
	} else {
		pc.Close()
	}
	if _, err := os.Stat(o.ca); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CA file %s left behind: %v", o.ca, err)
	}
}

func itoa(u uint) string {
	return strconv.FormatUint(uint64(u), 10)
}

// Every server of the set-up listens on 127.0.0.1, every name it serves
// points there, and every name was asked of its DNS server, not the
// system's: no packet of the demo leaves the machine.
func TestDemoStaysOnLoopback(t *testing.T) {
	lab, err := startDemoLab()
	if err != nil {
		t.Fatal(err)
	}
	defer lab.close()
	loop := netip.MustParseAddr("127.0.0.1")
	for what, addr := range map[string]string{"DNS": lab.dns.Addr(), "HTTPS": lab.policy.Addr(), "SMTP": lab.smtp.addr()} {
		if ap, err := netip.ParseAddrPort(addr); err != nil || ap.Addr() != loop {
			t.Errorf("%s server listens at %s, want 127.0.0.1", what, addr)
		}
	}
	zones := lab.zones()
	for name, r := range zones {
		for _, a := range r.Addrs {
			if a != loop {
				t.Errorf("%s has address %s, want 127.0.0.1 only", name, a)
			}
		}
		for _, mx := range r.MX {
			if z, ok := zones[mx.Host]; !ok || len(z.Addrs) == 0 {
				t.Errorf("MX host %s of %s has no address in the set-up", mx.Host, name)
			}
		}
	}
	for _, c := range demoCases {
		if z, ok := zones["mta-sts."+c.domain]; !ok || len(z.Addrs) == 0 {
			t.Errorf("policy host of %s has no address in the set-up", c.domain)
		}
		if args := strings.Join(lab.checkArgs(c.domain), " "); !strings.Contains(args, "--resolver "+lab.dns.Addr()+" ") {
			t.Errorf("check of %s does not ask the set-up's DNS server: %s", c.domain, args)
		}
	}

	var out bytes.Buffer
	code, err := lab.run(context.Background(), &stdio{out: &out, err: &out, getenv: func(string) string { return "" }})
	restoreHTTPClient(t)
	if code != exitOK || err != nil {
		t.Fatalf("exit %d, %v\n%s", code, err, out.String())
	}
	for name := range zones {
		if lab.dns.Queries(name) == 0 {
			t.Errorf("the checks never asked the set-up's DNS server for %s", name)
		}
	}
}

// restoreHTTPClient puts back mtasts.HTTPClient when the test ends: check
// sets it, as a process may.
func restoreHTTPClient(t *testing.T) {
	orig := mtasts.HTTPClient
	t.Cleanup(func() { mtasts.HTTPClient = orig })
}

// The exit status says whether the demo went as intended, not whether
// every domain passed: 1 when the passing domain fails, with a message
// naming it.
func TestDemoNotAsIntended(t *testing.T) {
	lab, err := startDemoLab()
	if err != nil {
		t.Fatal(err)
	}
	defer lab.close()
	restoreHTTPClient(t)
	lab.dns.Remove("_mta-sts.good.example")
	var out bytes.Buffer
	code, err := lab.run(context.Background(), &stdio{out: &out, err: &out, getenv: func(string) string { return "" }})
	if code != exitFail || err == nil || !strings.Contains(err.Error(), "good.example") {
		t.Errorf("exit %d, %v; want %d and an error naming good.example", code, err, exitFail)
	}
	if !strings.Contains(out.String(), "FAIL  TXT record    _mta-sts.good.example: no MTA-STS record") {
		t.Errorf("output does not show the failure:\n%s", out.String())
	}
}

// An interrupted demo stops, says so, and leaves nothing running.
func TestDemoInterrupted(t *testing.T) {
	restoreHTTPClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"demo"}, &stdio{out: &out, err: &errb, getenv: func(string) string { return "" }})
	if code != exitFail || !strings.Contains(errb.String(), "mtasts demo: interrupted") {
		t.Errorf("exit %d, stderr %q; want %d and \"interrupted\"", code, errb.String(), exitFail)
	}
}

func TestDemoUsage(t *testing.T) {
	if !strings.Contains(usageText, "\n  mtasts demo\n") {
		t.Error("help does not list the demo")
	}
	code, out, stderr := runMain(t, nil, "demo", "good.example")
	if code != exitUsage || out != "" || !strings.Contains(stderr, "demo: takes no arguments") {
		t.Errorf("demo with an argument: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	code, out, _ = runMain(t, nil, "demo", "-h")
	if code != exitOK || out != usageText {
		t.Errorf("demo -h: exit %d, stdout is the help: %v", code, out == usageText)
	}
	// check without a domain points to the demo: the first thing a new
	// user may type.
	code, _, stderr = runMain(t, nil, "check")
	if code != exitUsage || !strings.Contains(stderr, `"mtasts demo"`) {
		t.Errorf("check without a domain: exit %d, stderr %q; want it to point to the demo", code, stderr)
	}
}

// compareREADME checks that docs/operators.md, where the README sends its
// readers for the demo's output, shows what the demo prints, but for what
// changes from run to run: ports, the CA file's path, dates.
func compareREADME(t *testing.T, out string) {
	t.Helper()
	readme, err := os.ReadFile("../../docs/operators.md")
	if err != nil {
		t.Fatal(err)
	}
	const start = "$ go run ./cmd/mtasts demo\n"
	i := bytes.Index(readme, []byte(start))
	if i < 0 {
		t.Fatalf("docs/operators.md does not show %q", start)
	}
	shown, _, ok := strings.Cut(string(readme[i+len(start):]), "```")
	if !ok {
		t.Fatal("docs/operators.md: the demo's output has no end")
	}
	// The page shows the hint as go run prints it; this test binary
	// names itself.
	out = strings.ReplaceAll(out, "  "+programCommand()+" check ", "  go run "+mtastsPackage+" check ")
	got, want := strings.Split(varying(out), "\n"), strings.Split(varying(shown), "\n")
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Fatalf("docs/operators.md shows another output than the demo's: line %d of it is\n\t%q\nthe demo prints\n\t%q\n"+
				"Paste the output of \"go run ./cmd/mtasts demo\" into docs/operators.md.", i+1, w, g)
		}
	}
}

// varying replaces what differs between runs of the demo by placeholders.
func varying(s string) string {
	for _, r := range []struct{ re, with string }{
		{`127\.0\.0\.1:[0-9]+`, "127.0.0.1:PORT"},
		{`--(https|smtp)-port [0-9]+`, "--$1-port PORT"},
		{`--ca \S+`, "--ca CAFILE"},
		{`[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} UTC`, "DATE"},
		{`[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z`, "TIME"},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
	}
	return s
}

// The command lines the demo shows read back as the arguments it ran,
// whatever the temporary directory is called.
func TestShellJoin(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ca", "/tmp/mtasts-demo-1/ca.pem", "--resolver", "127.0.0.1:53"}, "--ca /tmp/mtasts-demo-1/ca.pem --resolver 127.0.0.1:53"},
		{[]string{"--ca", "/tmp/my dir/ca.pem"}, "--ca '/tmp/my dir/ca.pem'"},
		{[]string{"it's", ""}, `'it'\''s' ''`},
		{[]string{"$HOME", "a;b"}, `'$HOME' 'a;b'`},
	} {
		if got := shellJoin(tc.args); got != tc.want {
			t.Errorf("shellJoin(%q) = %s, want %s", tc.args, got, tc.want)
		}
	}
}

// The demo's closing hint names a command that runs: go run deletes the
// binary it built when the program exits, so after `go run ... demo` the
// hint is a go run command line; after an installed binary, the name it was
// run by.
func TestDemoHintCommand(t *testing.T) {
	const pkg = "github.com/mtasts-go/mtasts/cmd/mtasts"
	for _, c := range []struct {
		arg0, exe, version string
		want               string
	}{
		// go run inside a clone: the package path works anywhere in the
		// module.
		{"/tmp/go-build2667314364/b001/exe/mtasts", "/tmp/go-build2667314364/b001/exe/mtasts", "(devel)", "go run " + pkg},
		// go run pkg@version from outside a clone.
		{"/tmp/go-build1/b001/exe/mtasts", "/tmp/go-build1/b001/exe/mtasts", "v0.2.0", "go run " + pkg + "@v0.2.0"},
		{"/tmp/go-build1/b001/exe/mtasts", "/tmp/go-build1/b001/exe/mtasts", "v0.0.0-20260101000000-abcdefabcdef+dirty", "go run " + pkg},
		// GOTMPDIR elsewhere, on Windows.
		{`C:\Temp\go-build42\b001\exe\mtasts.exe`, `C:\Temp\go-build42\b001\exe\mtasts.exe`, "", "go run " + pkg},
		// Installed, and run as the user typed it.
		{"mtasts", "/home/u/go/bin/mtasts", "v0.2.0", "mtasts"},
		{"./mtasts", "/home/u/src/mtasts/mtasts", "(devel)", "./mtasts"},
		{"/opt/my tools/mtasts", "/opt/my tools/mtasts", "", "'/opt/my tools/mtasts'"},
		{"", "/home/u/go/bin/mtasts", "", "mtasts"},
	} {
		if got := demoCommand(c.arg0, c.exe, pkg, c.version); got != c.want {
			t.Errorf("demoCommand(%q, %q, %q) = %q, want %q", c.arg0, c.exe, c.version, got, c.want)
		}
	}

	// The hint itself uses it.
	_, out, _ := runMain(t, nil, "demo")
	if !strings.Contains(out, "\n  "+programCommand()+" check example.com\n") {
		t.Errorf("the closing hint does not name %q:\n%s", programCommand(), out)
	}
}
