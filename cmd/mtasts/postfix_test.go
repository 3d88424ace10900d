package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts/internal/testkit"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// postfixLab is the test kit's DNS server and policy host, with flags that
// point "mtasts postfix" at them.
type postfixLab struct {
	dns      *mtaststest.DNSServer
	policies *mtaststest.PolicyServer
	flags    []string
}

func newPostfixLab(t *testing.T) *postfixLab {
	t.Helper()
	lab := &postfixLab{dns: testkit.DNSServer(t), policies: testkit.PolicyServer(t)}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, lab.policies.CACertificatePEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(lab.policies.Addr())
	lab.flags = []string{"--resolver", lab.dns.Addr(), "--ca", ca, "--https-port", port, "--allow-private"}
	return lab
}

// publish publishes domain's TXT record and its policy host, serving a
// policy with mode and the mx patterns.
func (lab *postfixLab) publish(domain, mode string, mx ...string) {
	lab.dns.Set("_mta-sts."+domain, mtaststest.DNSRecords{TXT: [][]string{{"v=STSv1; id=20260101"}}})
	lab.dns.Set("mta-sts."+domain, mtaststest.DNSRecords{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	text := "version: STSv1\nmode: " + mode + "\n"
	for _, m := range mx {
		text += "mx: " + m + "\n"
	}
	lab.policies.SetPolicy(domain, text+"max_age: 86400\n")
}

// postfixRun is a running "mtasts postfix".
type postfixRun struct {
	addrs  []string         // as logged: host:port or unix:/path
	logs   <-chan string    // lines logged after the listening ones
	hup    chan<- os.Signal // stands in for the process's SIGHUPs
	cancel context.CancelFunc
	done   <-chan int
}

var listeningLine = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startPostfixRun runs "mtasts postfix" with args until the test ends or
// stop is called, and waits until it listens on each of n addresses.
func startPostfixRun(t *testing.T, n int, args ...string) *postfixRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	hups := make(chan chan<- os.Signal, 1)
	sio := &stdio{in: strings.NewReader(""), out: io.Discard, err: pw, getenv: func(string) string { return "" },
		notifyHUP: func(c chan<- os.Signal) func() {
			hups <- c
			return func() {}
		}}
	go func() {
		done <- run(ctx, append([]string{"postfix"}, args...), sio)
		close(done)
		pw.Close()
	}()
	r := &postfixRun{cancel: cancel, done: done}
	t.Cleanup(func() {
		cancel()
		if code, ok := <-done; ok && code != exitOK {
			t.Errorf("postfix exited with %d after cancel, want 0", code)
		}
	})
	br := bufio.NewReader(pr)
	for len(r.addrs) < n {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("postfix ended before listening: %q, %v", line, err)
		}
		if m := listeningLine.FindStringSubmatch(line); m != nil {
			r.addrs = append(r.addrs, m[1])
		}
	}
	logs := make(chan string, 64)
	go func() {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			select {
			case logs <- line:
			default:
			}
		}
	}()
	r.logs = logs
	select {
	case r.hup = <-hups:
	case <-time.After(10 * time.Second):
		t.Fatal("postfix did not ask for SIGHUP")
	}
	return r
}

// stop ends the run as SIGTERM does and returns its exit status.
func (r *postfixRun) stop() int {
	r.cancel()
	return <-r.done
}

func (r *postfixRun) waitLog(t *testing.T, want string) string {
	t.Helper()
	return waitLogLine(t, r.logs, "postfix", want)
}

// socketmapQuery sends one request to addr (host:port or unix:/path) and
// returns the reply.
func socketmapQuery(t *testing.T, addr, name, key string) string {
	t.Helper()
	network := "tcp"
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", p
	}
	conn, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return exchange(t, conn, bufio.NewReader(conn), string(appendNetstring(nil, name+" "+key)))
}

func TestPostfixDaemon(t *testing.T) {
	lab := newPostfixLab(t)
	lab.publish("good.example", "enforce", "mx1.good.example")
	lab.publish("wild.example", "enforce", "*.mx.wild.example")
	lab.publish("testing.example", "testing", "mx.testing.example")
	sock := filepath.Join(t.TempDir(), "pf.sock")
	args := append([]string{"--listen", "127.0.0.1:0", "--listen", "unix:" + sock, "--name", "postfix", "--name", "sts",
		"--store", "", "--metrics", "127.0.0.1:0"}, lab.flags...)
	r := startPostfixRun(t, 2, args...)
	if r.addrs[1] != "unix:"+sock {
		t.Fatalf("listening on %q, want the unix socket second", r.addrs)
	}
	for _, addr := range r.addrs {
		for _, tt := range []struct{ name, key, want string }{
			{"postfix", "good.example", "OK secure match=mx1.good.example servername=hostname"},
			{"sts", "wild.example", "OK secure match=.mx.wild.example servername=hostname"},
			{"postfix", "testing.example", "NOTFOUND "},
			{"postfix", "nosts.example", "NOTFOUND "},
			{"other", "good.example", `PERM unknown socketmap name "other"; this server answers postfix, sts`},
		} {
			if got := socketmapQuery(t, addr, tt.name, tt.key); got != tt.want {
				t.Errorf("%s: %s %s: got %q, want %q", addr, tt.name, tt.key, got, tt.want)
			}
		}
	}
	// One TXT lookup per domain: answers come from the cache, also for
	// the domain without MTA-STS.
	if n := lab.dns.Queries("_mta-sts.nosts.example"); n != 1 {
		t.Errorf("%d queries of _mta-sts.nosts.example for two lookups, want 1", n)
	}
}

// The metrics endpoint counts the replies.
func TestPostfixDaemonMetrics(t *testing.T) {
	lab := newPostfixLab(t)
	lab.publish("good.example", "enforce", "mx1.good.example")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	r := startPostfixRun(t, 1, append([]string{"--listen", "127.0.0.1:0", "--store", "", "--metrics", metricsAddr}, lab.flags...)...)
	socketmapQuery(t, r.addrs[0], "postfix", "good.example")
	socketmapQuery(t, r.addrs[0], "postfix", "nosts.example")
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`mtastsgo_socketmap_requests_total{status="OK"} 1`,
		`mtastsgo_socketmap_requests_total{status="NOTFOUND"} 1`,
		`mtastsgo_socketmap_connections `,
		`mtastsgo_cache_entries 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// The file store keeps policies across a restart: the policy applies while
// the policy host is gone (RFC 8461 5.1).
func TestPostfixDaemonStoreSurvivesRestart(t *testing.T) {
	lab := newPostfixLab(t)
	lab.publish("good.example", "enforce", "mx1.good.example")
	store := filepath.Join(t.TempDir(), "policies")
	args := append([]string{"--listen", "127.0.0.1:0", "--store", store}, lab.flags...)
	r := startPostfixRun(t, 1, args...)
	want := "OK secure match=mx1.good.example servername=hostname"
	if got := socketmapQuery(t, r.addrs[0], "postfix", "good.example"); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if code := r.stop(); code != exitOK {
		t.Fatalf("exit status %d", code)
	}
	lab.policies.Remove("good.example")
	lab.dns.Remove("_mta-sts.good.example")
	r = startPostfixRun(t, 1, args...)
	if got := socketmapQuery(t, r.addrs[0], "postfix", "good.example"); got != want {
		t.Errorf("after a restart without the policy host: got %q, want %q", got, want)
	}
}

// SIGHUP reads the trusted roots again; a missing --ca file keeps the old.
func TestPostfixDaemonReload(t *testing.T) {
	lab := newPostfixLab(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, lab.policies.CACertificatePEM(), 0o644)
	args := append(append([]string{"--listen", "127.0.0.1:0", "--store", ""}, lab.flags...), "--ca", ca)
	r := startPostfixRun(t, 1, args...)
	r.hup <- syscall.SIGHUP
	r.waitLog(t, "reloaded the trusted roots")
	os.Remove(ca)
	r.hup <- syscall.SIGHUP
	if line := r.waitLog(t, "keeping the trusted roots"); !strings.Contains(line, "ca.pem") {
		t.Errorf("log %q does not name the file", line)
	}
	lab.publish("good.example", "enforce", "mx1.good.example")
	if got := socketmapQuery(t, r.addrs[0], "postfix", "good.example"); got != "OK secure match=mx1.good.example servername=hostname" {
		t.Errorf("after a failed reload: got %q", got)
	}
}

func TestPostfixFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--name", "a b"}, "a socketmap name has no spaces"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--unix-mode", "999"}, "--unix-mode"},
		{[]string{"--lookup-timeout", "0s"}, "--lookup-timeout must be positive"},
		{[]string{"--max-connections", "0"}, "--max-connections"},
		{[]string{"--https-port", "70000"}, "--https-port"},
		{[]string{"--listen", "nonsense", "--store", ""}, `--listen "nonsense": expected HOST:PORT or unix:/PATH`},
		{[]string{"--listen", "unix:", "--store", ""}, "no path after unix:"},
	} {
		var stderr strings.Builder
		sio := &stdio{in: strings.NewReader(""), out: io.Discard, err: &stderr, getenv: func(string) string { return "" }}
		code := run(context.Background(), append([]string{"postfix"}, tt.args...), sio)
		if code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr.String(), tt.want)
		}
	}
}

// A socket file a previous run left is replaced; one a running daemon
// holds is not.
func TestPostfixUnixSocketLeftOver(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "pf.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	r := startPostfixRun(t, 1, "--listen", "unix:"+sock, "--store", "")
	if got := socketmapQuery(t, r.addrs[0], "postfix", "[mx.example]:25"); got != "NOTFOUND " {
		t.Errorf("got %q", got)
	}
	var stderr strings.Builder
	sio := &stdio{in: strings.NewReader(""), out: io.Discard, err: &stderr, getenv: func(string) string { return "" }}
	if code := run(context.Background(), []string{"postfix", "--listen", "unix:" + sock, "--store", ""}, sio); code != exitFail || !strings.Contains(stderr.String(), "another process is listening there") {
		t.Errorf("second daemon on the socket: exit %d, stderr %q", code, stderr.String())
	}
	if got := socketmapQuery(t, r.addrs[0], "postfix", "[mx.example]:25"); got != "NOTFOUND " {
		t.Errorf("first daemon after the second tried: got %q", got)
	}
}

// --gc-percent sets the collector's target; without it, GOGC from the
// environment wins over the default.
func TestPostfixGCPercent(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	current := func() int {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}
	tests := []struct {
		args []string
		gogc string
		want int
	}{
		{nil, "", defaultPostfixGCPercent},
		{[]string{"--gc-percent", "30"}, "", 30},
		{nil, "200", 100}, // GOGC decides: left as it was
		{[]string{"--gc-percent", "30"}, "200", 30},
	}
	for _, tt := range tests {
		debug.SetGCPercent(100)
		t.Setenv("GOGC", tt.gogc)
		fs, o := postfixFlags()
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		setGCPercent(fs, o.gcPercent)
		if got := current(); got != tt.want {
			t.Errorf("%v with GOGC=%q: GC percent %d, want %d", tt.args, tt.gogc, got, tt.want)
		}
	}
}
