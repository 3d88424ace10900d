package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/mtasts-go/mtasts/mtaststest"
)

// The demo runs check, unchanged, against servers it starts on 127.0.0.1
// for the run: a DNS server, the test kit's HTTPS policy host and its CA,
// and an SMTP server with STARTTLS. A first run thus shows the main job
// working on a machine without internet, where checking a real domain can
// only report that DNS has no answer.

// demoCase is a domain the demo checks, and check's exit status it is set
// up for.
type demoCase struct {
	domain string
	want   int
}

// demoCases: one domain set up to pass, one to fail. The failure is the
// point of the second: the demo succeeds when both come out as intended.
var demoCases = []demoCase{
	{"good.example", exitOK},
	{"broken.example", exitFail},
}

const demoIntro = `mtasts demo: checks two domains as a sending MTA would, against servers
started for this run on 127.0.0.1: DNS, the HTTPS policy hosts and an SMTP
server with STARTTLS, with certificates from a CA made for the run. Nothing
leaves this machine. good.example is set up to pass; broken.example to fail,
with mistakes seen in real deployments.
`

// demoOutro is printed after the demo, with the command that runs this
// program, from programCommand.
const demoOutro = `
The demo ran as intended: good.example passed, broken.example failed on
purpose. To check a real domain, which needs DNS and HTTPS to the internet
(and outgoing port 25 for --starttls):
  %[1]s check example.com
  %[1]s check --starttls example.com
`

// mtastsPackage is this program's package path, for go run.
const mtastsPackage = "github.com/mtasts-go/mtasts/cmd/mtasts"

// programCommand returns a command line that runs this program again, for
// the hints the demo prints: see demoCommand.
func programCommand() string {
	exe, _ := os.Executable()
	var version string
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
	}
	return demoCommand(os.Args[0], exe, mtastsPackage, version)
}

// demoCommand returns a command line that runs the program at path exe,
// run as arg0, built from package pkg of a module at version. A binary that
// go run built lives in <tmp>/go-build<n>/b<n>/exe/ and is deleted when it
// exits, so its command is go run again: of pkg, which works anywhere in a
// clone, or of pkg@version, which works anywhere, when version is a
// published one. Otherwise it is arg0, as the user typed it.
func demoCommand(arg0, exe, pkg, version string) string {
	if builtByGoRun(exe) {
		cmd := "go run " + pkg
		// (devel) is a build inside the module; a +dirty or other
		// build suffix is no version a module proxy has.
		if version != "" && version != "(devel)" && !strings.Contains(version, "+") {
			cmd += "@" + version
		}
		return cmd
	}
	if arg0 == "" {
		return "mtasts"
	}
	return shellQuote(arg0)
}

// builtByGoRun reports whether exe is in a directory where go run puts the
// binary it builds: go-build<n>/b<n>/exe, under GOTMPDIR or the system's
// temporary directory, with either path separator.
func builtByGoRun(exe string) bool {
	parts := strings.FieldsFunc(exe, func(r rune) bool { return r == '/' || r == '\\' })
	n := len(parts)
	return n >= 4 && parts[n-2] == "exe" && strings.HasPrefix(parts[n-3], "b") && strings.HasPrefix(parts[n-4], "go-build")
}

// The policies of the demo's domains (RFC 8461 3.2).
const (
	demoGoodPolicy   = "version: STSv1\r\nmode: enforce\r\nmx: mail.good.example\r\nmax_age: 604800\r\n"
	demoBrokenPolicy = "version: STSv1\r\nmode: enforce\r\nmx: mail.broken.example\r\nmax_age: 604800\r\n"
)

// demoLab is the demo's set-up on loopback.
type demoLab struct {
	policy *mtaststest.PolicyServer
	dns    *mtaststest.DNSServer
	smtp   *smtpServer
	dir    string // temporary directory holding caFile
	caFile string // the CA certificate, for check --ca
}

func runDemo(ctx context.Context, args []string, sio *stdio) (int, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	args, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage, err
	}
	if len(args) > 0 {
		return exitUsage, usagef("demo: takes no arguments; to check a domain, run \"%s check %s\"", programCommand(), args[0])
	}
	lab, err := startDemoLab()
	if err != nil {
		return exitFail, fmt.Errorf("starting the servers on 127.0.0.1: %w", err)
	}
	defer lab.close()
	return lab.run(ctx, sio)
}

// run checks each of demoCases with check, as a user would from the
// command line, and writes what check writes. It returns exitOK when each
// domain came out as intended, else exitFail and an error naming the
// domains that did not.
func (lab *demoLab) run(ctx context.Context, sio *stdio) (int, error) {
	fmt.Fprint(sio.out, demoIntro)
	var wrong []string
	for _, c := range demoCases {
		args := lab.checkArgs(c.domain)
		fmt.Fprintf(sio.out, "\n$ mtasts check %s\n", escapeText(shellJoin(args)))
		code, err := runCheck(ctx, args, sio)
		if ctx.Err() != nil {
			return exitFail, errors.New("interrupted")
		}
		if err != nil {
			return exitFail, fmt.Errorf("check %s: %v", c.domain, err)
		}
		switch {
		case code == c.want:
		case c.want == exitOK:
			wrong = append(wrong, c.domain+" should pass but did not")
		default:
			wrong = append(wrong, c.domain+" should fail but did not")
		}
	}
	if len(wrong) > 0 {
		return exitFail, fmt.Errorf("not as intended: %s; the report above says why", strings.Join(wrong, ", "))
	}
	fmt.Fprintf(sio.out, demoOutro, programCommand())
	return exitOK, nil
}

// checkArgs returns check's command line for domain on the set-up: its DNS
// server as --resolver, its CA as --ca, the ports of its policy host and
// SMTP server, and --starttls.
func (lab *demoLab) checkArgs(domain string) []string {
	_, httpsPort, _ := net.SplitHostPort(lab.policy.Addr())
	_, smtpPort, _ := net.SplitHostPort(lab.smtp.addr())
	// The servers are on loopback, which check refuses unless told, as a
	// user checking a private deployment tells it: --allow-private.
	return []string{"--starttls", "--resolver", lab.dns.Addr(), "--ca", lab.caFile, "--https-port", httpsPort,
		"--smtp-port", smtpPort, "--timeout", "10s", "--allow-private", domain}
}

// startDemoLab starts the demo's servers, and writes its CA certificate to
// a new temporary directory. It returns an error, having stopped whatever
// it started, when a server cannot start.
func startDemoLab() (lab *demoLab, err error) {
	lab = &demoLab{}
	defer func() {
		if err != nil {
			lab.close()
			lab = nil
		}
	}()
	if lab.policy, err = mtaststest.StartPolicyServer(); err != nil {
		return nil, err
	}
	if ap, perr := netip.ParseAddrPort(lab.policy.Addr()); perr != nil || !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("the policy host listens at %s, not on loopback", lab.policy.Addr())
	}

	now := time.Now()
	// The kit issues certificates valid for a day, which check warns
	// about; these last 90 days, as many CAs issue them.
	valid := func(name string) (tls.Certificate, error) {
		return lab.policy.IssueCertificate(now.Add(-time.Hour), now.Add(90*24*time.Hour), name)
	}
	for _, p := range []struct{ domain, text string }{
		{"good.example", demoGoodPolicy},
		{"broken.example", demoBrokenPolicy},
	} {
		cert, err := valid("mta-sts." + p.domain)
		if err != nil {
			return nil, err
		}
		lab.policy.SetCertificate(p.domain, cert)
		lab.policy.SetPolicy(p.domain, p.text)
	}

	certs := map[string]tls.Certificate{}
	if certs["mail.good.example"], err = valid("mail.good.example"); err != nil {
		return nil, err
	}
	// broken.example's mistakes at its MX hosts: one presents a
	// certificate for its provider's name instead of its own, the other
	// one that expired ten days ago.
	if certs["mail.broken.example"], err = valid("mx.hosting.example"); err != nil {
		return nil, err
	}
	if certs["backup.broken.example"], err = lab.policy.IssueCertificate(now.Add(-100*24*time.Hour), now.Add(-10*24*time.Hour), "backup.broken.example"); err != nil {
		return nil, err
	}
	if lab.smtp, err = startSMTPServer(certs); err != nil {
		return nil, err
	}

	if lab.dns, err = mtaststest.StartDNSServer(); err != nil {
		return nil, err
	}
	for name, r := range lab.zones() {
		lab.dns.Set(name, r)
	}

	if lab.dir, err = os.MkdirTemp("", "mtasts-demo-"); err != nil {
		return nil, err
	}
	lab.caFile = filepath.Join(lab.dir, "ca.pem")
	if err := os.WriteFile(lab.caFile, lab.policy.CACertificatePEM(), 0o644); err != nil {
		return nil, err
	}
	return lab, nil
}

// zones returns what the demo's DNS server answers, by name: every host
// resolves to the server that plays it, on loopback.
func (lab *demoLab) zones() map[string]mtaststest.DNSRecords {
	addrOf := func(hostport string) []netip.Addr {
		ap, _ := netip.ParseAddrPort(hostport)
		return []netip.Addr{ap.Addr()}
	}
	policyHost := mtaststest.DNSRecords{Addrs: addrOf(lab.policy.Addr())}
	mailHost := mtaststest.DNSRecords{Addrs: addrOf(lab.smtp.addr())}
	txt := func(s string) mtaststest.DNSRecords { return mtaststest.DNSRecords{TXT: [][]string{{s}}} }
	return map[string]mtaststest.DNSRecords{
		// A domain that does it all right.
		"_mta-sts.good.example":   txt("v=STSv1; id=20250601T000000"),
		"mta-sts.good.example":    policyHost,
		"good.example":            {MX: []*net.MX{{Host: "mail.good.example", Pref: 10}}},
		"mail.good.example":       mailHost,
		"_smtp._tls.good.example": txt("v=TLSRPTv1; rua=mailto:tlsrpt@good.example"),

		// A domain whose record and policy are fine, but whose backup MX
		// host is missing from the policy, and which publishes no TLS-RPT
		// record; the certificates of its MX hosts are bad too.
		"_mta-sts.broken.example": txt("v=STSv1; id=20250601T000000"),
		"mta-sts.broken.example":  policyHost,
		"broken.example":          {MX: []*net.MX{{Host: "mail.broken.example", Pref: 10}, {Host: "backup.broken.example", Pref: 20}}},
		"mail.broken.example":     mailHost,
		"backup.broken.example":   mailHost,
	}
}

// close stops the servers that were started and removes the CA file.
func (lab *demoLab) close() {
	if lab.dns != nil {
		lab.dns.Close()
	}
	if lab.smtp != nil {
		lab.smtp.close()
	}
	if lab.policy != nil {
		lab.policy.Close()
	}
	if lab.dir != "" {
		os.RemoveAll(lab.dir)
	}
}

// shellJoin joins args into a command line a POSIX shell reads back as
// args, quoting those that need it.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_./:=@%+,", c) >= 0) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}
