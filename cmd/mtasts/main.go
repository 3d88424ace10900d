// Command mtasts checks, lints, generates and serves MTA-STS (RFC 8461)
// configuration, and reads TLS reports (RFC 8460).
//
//	mtasts check [flags] DOMAIN...   check a domain as a sending MTA sees it
//	mtasts policy [flags] [FILE|-]   lint a policy file, print it normalised
//	mtasts record [--id ID] [DOMAIN] print a TXT record to publish
//	mtasts serve --policy FILE ...   serve a policy over HTTPS
//	mtasts report [flags] [FILE|-]   read a TLS report others sent
//	mtasts demo                      check two sample domains, offline
//	mtasts postfix [flags]           answer Postfix's smtp_tls_policy_maps
//
// Run "mtasts help" for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit statuses.
const (
	exitOK    = 0 // all checks passed (warnings allowed)
	exitFail  = 1 // a check failed
	exitUsage = 2 // bad command line or unreadable input
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr, getenv: os.Getenv, notifyHUP: notifyHUP})
	stop()
	os.Exit(code)
}

// stdio is the process's environment as the subcommands see it, so tests
// can run them with their own streams, variables and signals.
type stdio struct {
	in     io.Reader
	out    io.Writer
	err    io.Writer
	getenv func(string) string
	// notifyHUP, when set, relays the SIGHUPs the process receives to c
	// until stop is called; serve reloads its policy on each.
	notifyHUP func(c chan<- os.Signal) (stop func())
}

// notifyHUP relays the process's SIGHUPs to c until stop is called. Only
// serve asks for them, so that other commands keep the default of ending on
// a hang-up.
func notifyHUP(c chan<- os.Signal) (stop func()) {
	signal.Notify(c, syscall.SIGHUP)
	return func() { signal.Stop(c) }
}

const usageText = `mtasts checks, lints, generates and serves MTA-STS (RFC 8461) configuration,
and reads TLS reports (RFC 8460).

Usage:
  mtasts check [flags] DOMAIN...
        Check each domain as a sending MTA sees it: the _mta-sts TXT record,
        the HTTPS policy fetch, the policy, the MX records against the
        policy, with --starttls STARTTLS on each MX host, and the TLS-RPT
        record. Exit status 0 when all pass (warnings allowed), 1 when a
        check fails, 2 for usage errors.
  mtasts policy [flags] [FILE|-]
        Parse and lint a policy file (standard input for "-" or no FILE),
        then print it normalised. Exit status 0 for a valid policy, 1 for an
        invalid one, 2 for usage errors and input that cannot be read or is
        over 1 MiB, from a file or standard input alike.
  mtasts record [--id ID] [DOMAIN]
        Print a TXT record to publish at _mta-sts.DOMAIN, with a fresh id
        (the current UTC time) unless --id is given. With DOMAIN, print it
        as a zone file line.
  mtasts serve --policy FILE [--addr ADDR] [--cert FILE --key FILE] [--collect DIR]
        Serve the policy in FILE at /.well-known/mta-sts.txt, as the host
        mta-sts.<domain> must. Without --cert and --key it speaks plain HTTP,
        for use behind a TLS-terminating proxy. On SIGHUP it reads FILE
        again and serves the new policy if it is valid; if not, it logs why
        and keeps serving the previous one. With --collect, it also takes
        TLS reports posted to /tlsrpt (RFC 8460 5.4) and writes each into
        DIR, for a TLSRPT record of rua=https://mta-sts.<domain>/tlsrpt.
  mtasts report [flags] [FILE|-|DIR|FILE...]
        Read a TLS report (RFC 8460) that another domain's MTA sent: its
        JSON, the JSON compressed with gzip, or the whole e-mail message
        (standard input for "-" or no FILE). Read it as receivers must,
        forgiving what real senders get wrong with a warning each, then
        print each policy: type, domain, mx hosts, successful and failed
        sessions, and the failure details as a table, and the warnings
        under the report, each with its JSON path or MIME part. Of a
        message, verify its DKIM signatures (RFC 8460 3) and show each; a
        report without a valid one by the reporting domain is still shown,
        with a warning. Given a folder or several files, sum them up
        instead: per policy domain and day, the reports, sessions, failures
        and failure rate, the result types failing most and the sending
        organisations (exit status 1 when a file is not a valid report).
        Exit status 0 for a report read, with or without warnings, 1 for
        an invalid one (the error names the JSON path), 2 for usage errors
        and input that cannot be read or is over 20 MiB, or over that once
        decompressed.
  mtasts demo
        Show check at work without a network: start a DNS server, HTTPS
        policy hosts and an SMTP server on 127.0.0.1, then check two domains
        there with --starttls, one set up to pass and one to fail. Exit
        status 0 when both come out as intended (the failure is on purpose),
        1 when not.
  mtasts postfix [flags]
        Answer Postfix's smtp_tls_policy_maps over the socketmap protocol
        from a policy cache (see docs/postfix.md):
          smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:postfix
        SIGHUP reads the --ca file and the system's roots again; SIGTERM
        stops accepting, answers the requests in flight, and exits.
  mtasts help
        Print this help.

Flags of check:
  --json               print the results as JSON
  --starttls           also connect to every address (IPv4 and IPv6) of each MX host
                       and check STARTTLS and its certificate as a sending MTA does
                       (RFC 8461 4.2), with each failure's TLS-RPT result type
  --resolver HOST:PORT send DNS queries to this server instead of the system's
  --ca FILE            trust the CA certificates in this PEM file too
  --timeout DURATION   limit for each network step (default 1m0s, RFC 8461 3.3)
  --https-port PORT    connect to this port for the policy fetch instead of 443,
                       for tests and private deployments; the certificate is
                       still verified for mta-sts.<domain>
  --smtp-port PORT     connect to this port for --starttls instead of 25
  --allow-private      connect to loopback and private addresses (127.0.0.0/8, ::1,
                       RFC 1918, fc00::/7, 100.64.0.0/10) too; without it, check
                       refuses them, and all other special-purpose addresses, as
                       the library does by default
  --ehlo NAME          host name to send in EHLO (default localhost)

Flags of policy:
  --json               print the findings and the policy as JSON

Flags of record:
  --id ID              the policy id: 1 to 32 letters and digits

Flags of report:
  --json               print the report in normalised form as JSON, with its
                       warnings, or the error
  --strict             read the report as RFC 8460 says and nothing more: every
                       deviation is an error, for checking your own senders
  --resolver HOST:PORT look up DKIM keys through this DNS server instead of the system's

Flags of serve:
  --policy FILE        the policy to serve (required)
  --addr ADDR          address to listen on (default :443 with --cert, else 127.0.0.1:8080)
  --cert FILE          PEM certificate chain for mta-sts.<domain>
  --key FILE           PEM private key of the certificate
  --collect DIR        take reports posted to /tlsrpt, one JSON file each in DIR, named
                       by policy domain, date range and report-id

Flags of postfix:
  --listen ADDR        HOST:PORT or unix:/PATH to listen on; repeatable
                       (default 127.0.0.1:8461)
  --name NAME          the socketmap name to answer; repeatable (default postfix)
  --store DIR          keep policies in DIR across restarts; "" for memory only
                       (default /var/lib/mtasts/policies)
  --tlsrpt             add the TLSRPT and mx_host_pattern attributes of Postfix
                       3.10 and later; older Postfix refuses them
  --strict-testing     enforce policies in testing mode too
  --lookup-timeout D   wait at most D for a policy not cached, then answer
                       TIMEOUT so that Postfix defers (default 20s)
  --check-interval D   check a cached policy's TXT record at most every D
                       (default 1h0m0s)
  --max-entries N      domains held in memory (default 100000)
  --gc-percent N       the Go heap may grow N% over its live data between
                       collections, as GOGC (default 25, or GOGC when set)
  --max-connections N  client connections held; beyond, the longest idle one
                       is closed (default 1000)
  --idle-timeout D     close a connection idle for D (default 2m0s)
  --read-timeout D     time allowed for the rest of a request (default 10s)
  --drain-timeout D    on SIGTERM, time for requests in flight (default 10s)
  --unix-mode MODE     file mode of unix sockets (default 0666)
  --metrics ADDR       serve Prometheus metrics at http://ADDR/metrics
  --log-level LEVEL    debug, info, warn or error (default info)
  --resolver, --ca, --https-port, --allow-private
                       as for check, for tests and private deployments

Output is coloured only on a terminal, and never when NO_COLOR is set.
Control characters and other non-printing characters in text from the
network or the linted file are shown escaped (\x1b, \u202e), in JSON as
\u escapes.
Flags may come before or after the arguments; "--" ends the flags.
`

// errText returns an error's message without the library's "mtasts: "
// prefix, which the command's own prefix already says.
func errText(err error) string {
	return strings.TrimPrefix(err.Error(), "mtasts: ")
}

// usageError is a bad command line: one line on stderr, exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// errHelp asks for the help text on stdout and exit status 0.
var errHelp = errors.New("help requested")

// run is the command: it runs the subcommand named by args[0] with the rest
// of args, and returns the exit status.
func run(ctx context.Context, args []string, sio *stdio) int {
	if len(args) == 0 {
		fmt.Fprint(sio.out, usageText)
		return exitUsage
	}
	var (
		code int
		err  error
	)
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "check":
		code, err = runCheck(ctx, rest, sio)
	case "policy":
		code, err = runPolicy(rest, sio)
	case "record":
		code, err = runRecord(rest, sio)
	case "serve":
		code, err = runServe(ctx, rest, sio)
	case "report":
		code, err = runReport(rest, sio)
	case "demo":
		code, err = runDemo(ctx, rest, sio)
	case "postfix":
		code, err = runPostfix(ctx, rest, sio)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(sio.out, usageText)
		return exitOK
	default:
		err = usagef("unknown command %q", cmd)
	}
	var uerr usageError
	switch {
	case errors.Is(err, errHelp):
		fmt.Fprint(sio.out, usageText)
		return exitOK
	case errors.As(err, &uerr):
		fmt.Fprintf(sio.err, "mtasts: %s (run \"mtasts help\" for usage)\n", escapeText(oneLine(uerr.msg)))
		return exitUsage
	case err != nil:
		fmt.Fprintf(sio.err, "mtasts %s: %s\n", escapeText(cmd), escapeText(oneLine(err.Error())))
		return exitFail
	}
	return code
}

// oneLine keeps an error message on one line of the terminal.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// parseFlags parses fs from args, allowing flags after the arguments as
// well as before, up to a "--"; it returns the arguments. A bad flag is a
// usageError, -h a request for help.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		left := fs.Args()
		if len(left) == 0 {
			return rest, nil
		}
		if n := len(args) - len(left); n > 0 && args[n-1] == "--" {
			// Parse stopped at "--": all that follows is arguments.
			return append(rest, left...), nil
		}
		rest = append(rest, left[0])
		args = left[1:]
	}
}
