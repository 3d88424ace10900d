package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
)

// startServe runs "mtasts serve" with args until the test ends, and returns
// the address it listens on, read from its first line on stderr.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	return startServeWith(t, false, args...).addr
}

// serveRun is a running "mtasts serve".
type serveRun struct {
	addr string
	logs <-chan string    // the lines it writes on stderr after the first
	hup  chan<- os.Signal // where a SIGHUP would be relayed, with hup
}

// startServeWith runs "mtasts serve" with args until the test ends. With
// hup, it gives serve a stand-in for the process's SIGHUPs: signals sent
// on the returned hup reach serve as a real one would.
func startServeWith(t *testing.T, hup bool, args ...string) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	hups := make(chan chan<- os.Signal, 1)
	sio := &stdio{in: strings.NewReader(""), out: io.Discard, err: pw, getenv: func(string) string { return "" }}
	if hup {
		sio.notifyHUP = func(c chan<- os.Signal) func() {
			hups <- c
			return func() {}
		}
	}
	go func() {
		done <- run(ctx, append([]string{"serve"}, args...), sio)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve exited with %d after cancel, want 0", code)
		}
	})
	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	m := regexp.MustCompile(`at https?://(\S+)/\.well-known/mta-sts\.txt$`).FindStringSubmatch(strings.TrimSpace(line))
	if err != nil || m == nil {
		go io.Copy(io.Discard, pr)
		t.Fatalf("serve said %q, %v", line, err)
	}
	logs := make(chan string, 16)
	go func() {
		// Later lines, dropped when the test does not read them.
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
	r := &serveRun{addr: m[1], logs: logs}
	if hup {
		select {
		case r.hup = <-hups:
		case <-time.After(10 * time.Second):
			t.Fatal("serve did not ask for SIGHUP")
		}
	}
	return r
}

// waitLog returns the first line serve logs that contains want; it fails
// the test if none comes within 10 seconds.
func (r *serveRun) waitLog(t *testing.T, want string) string {
	t.Helper()
	return waitLogLine(t, r.logs, "serve", want)
}

// waitLogLine returns the first line from logs, which the command named
// who writes, that contains want; it fails the test if none comes within
// 10 seconds.
func waitLogLine(t *testing.T, logs <-chan string, who, want string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line := <-logs:
			if strings.Contains(line, want) {
				return line
			}
		case <-timeout:
			t.Fatalf("%s did not log %q", who, want)
		}
	}
}

// get returns the body of the policy served at addr.
func getPolicy(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + mtasts.WellKnownPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	return string(body)
}

// On SIGHUP serve reads the policy file again: a valid policy replaces the
// one served, an invalid one is logged and the previous one kept.
func TestServeReloadOnHUP(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.txt")
	first := policyText("testing", "86400", "mail.example.com")
	second := policyText("enforce", "1209600", "mail.example.com", "backup.example.com")
	os.WriteFile(file, []byte(first), 0o644)
	r := startServeWith(t, true, "--policy", file, "--addr", "127.0.0.1:0")
	if got := getPolicy(t, r.addr); got != first {
		t.Fatalf("serves %q, want %q", got, first)
	}

	os.WriteFile(file, []byte(second), 0o644)
	r.hup <- syscall.SIGHUP
	r.waitLog(t, "reloaded "+file+" (mode enforce)")
	if got := getPolicy(t, r.addr); got != second {
		t.Errorf("after reload: serves %q, want %q", got, second)
	}

	os.WriteFile(file, []byte("version: STSv1\nmode: enforce\nmax_age: 86400\n"), 0o644)
	r.hup <- syscall.SIGHUP
	line := r.waitLog(t, "still serving")
	if !strings.Contains(line, file) || !strings.Contains(line, `"mx": missing`) {
		t.Errorf("log %q does not name the file and the problem", line)
	}
	if got := getPolicy(t, r.addr); got != second {
		t.Errorf("after a bad reload: serves %q, want the previous %q", got, second)
	}
}

func TestServeHTTP(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.txt")
	// Served normalised, whatever the file's line ends and blank lines.
	os.WriteFile(file, []byte("version: STSv1\nmode: testing\n\nmx: mail.example.com\nmax_age: 86400\n"), 0o644)
	addr := startServe(t, "--policy", file, "--addr", "127.0.0.1:0")

	resp, err := http.Get("http://" + addr + mtasts.WellKnownPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := policyText("testing", "86400", "mail.example.com")
	if resp.StatusCode != 200 || string(body) != want || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, err = http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /: %d, want 404", resp.StatusCode)
	}
}

// check finds what serve serves: the receiving side and the sending side of
// the command agree, over TLS.
func TestServeTLSCheck(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	cert := ca.issue(t, time.Now().Add(30*24*time.Hour), "mta-sts.served.example")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	keyDER, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	policyFile := filepath.Join(dir, "policy.txt")
	os.WriteFile(policyFile, []byte(policyText("enforce", "1209600", "mx.served.example")), 0o644)

	addr := startServe(t, "--policy", policyFile, "--cert", certFile, "--key", keyFile, "--addr", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(addr)
	lo := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	dns := startDNS(t, map[string]zone{
		"served.example.":            {mx: []mxRecord{{10, "mx.served.example."}}},
		"_mta-sts.served.example.":   {txt: [][]string{{"v=STSv1; id=1"}}},
		"_smtp._tls.served.example.": {txt: [][]string{{"v=TLSRPTv1;rua=mailto:r@served.example,https://r.served.example/tlsrpt"}}},
		"mta-sts.served.example.":    {a: lo},
	})
	code, out, stderr := runMain(t, nil, "check", "--resolver", dns.addr, "--ca", ca.pemFile, "--allow-private", "--https-port", port, "served.example")
	if code != exitOK {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{
		"status       200 OK (HTTP/2.0)",
		"PASS  policy        mode enforce, max_age 1209600 (14 days)",
		"PASS  MX            mx.served.example (preference 10): allowed by mx mx.served.example",
		"reports to   mailto:r@served.example",
		"https://r.served.example/tlsrpt",
		"served.example: PASS, 0 failures, 0 warnings",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

// An invalid policy is refused before listening.
func TestServeInvalidPolicy(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.txt")
	os.WriteFile(file, []byte("version: STSv1\nmode: enforce\nmax_age: 86400\n"), 0o644)
	code, _, stderr := runMain(t, nil, "serve", "--policy", file, "--addr", "127.0.0.1:0")
	if code != exitFail || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, `"mx": missing`) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// reload swaps a valid policy in and keeps the old one for an invalid,
// missing or oversized file, saying so in the log.
func TestPolicySwitchReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.txt")
	first := policyText("testing", "86400", "mail.example.com")
	second := policyText("enforce", "1209600", "mail.example.com")
	p1, _ := mtasts.ParsePolicy(first)
	var logs strings.Builder
	ps := newPolicySwitch(file, p1, log.New(&logs, "", 0))
	serve := func() string {
		rec := httptest.NewRecorder()
		ps.ServeHTTP(rec, httptest.NewRequest("GET", "https://mta-sts.example.com"+mtasts.WellKnownPath, nil))
		return rec.Body.String()
	}

	steps := []struct {
		name  string
		write func()
		ok    bool
		serve string
		log   string
	}{
		{"the same policy", func() { os.WriteFile(file, []byte(first), 0o644) }, true, first, "reloaded " + file + " (mode testing)\n"},
		{"a new policy", func() { os.WriteFile(file, []byte(second), 0o644) }, true, second, "reloaded " + file + " (mode enforce); publish a new id"},
		{"invalid", func() {
			os.WriteFile(file, []byte("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1w\n"), 0o644)
		}, false, second,
			"reloading " + file + `: invalid policy: line 4: "max_age"`},
		{"hostile", func() {
			os.WriteFile(file, []byte("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1"+hostileSeq+"\n"), 0o644)
		}, false, second,
			"pwned"}, // escaped, whether by the library or here
		{"too large", func() { os.WriteFile(file, []byte(second+strings.Repeat("x", mtasts.MaxPolicySize)), 0o644) }, false, second, "larger than 65536 bytes"},
		{"missing", func() { os.Remove(file) }, false, second, "no such file"},
		{"back", func() { os.WriteFile(file, []byte(first), 0o644) }, true, first, "reloaded"},
	}
	for _, st := range steps {
		logs.Reset()
		st.write()
		err := ps.reload()
		if (err == nil) != st.ok {
			t.Errorf("%s: reload error %v", st.name, err)
		}
		if got := serve(); got != st.serve {
			t.Errorf("%s: serves %q, want %q", st.name, got, st.serve)
		}
		if !strings.Contains(logs.String(), st.log) || strings.Count(logs.String(), "\n") != 1 {
			t.Errorf("%s: logged %q, want one line with %q", st.name, logs.String(), st.log)
		}
		if !st.ok && !strings.Contains(logs.String(), "still serving the previous policy (mode enforce)") {
			t.Errorf("%s: logged %q, does not say the previous policy is kept", st.name, logs.String())
		}
		assertNoRawControl(t, st.name, logs.String())
	}
}

// Requests served while the policy is reloaded get one policy or the other,
// whole (run with -race).
func TestPolicySwitchConcurrent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.txt")
	texts := []string{policyText("testing", "86400", "mail.example.com"), policyText("enforce", "1209600", "mx1.example.com", "mx2.example.com")}
	p, _ := mtasts.ParsePolicy(texts[0])
	ps := newPolicySwitch(file, p, log.New(io.Discard, "", 0))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rec := httptest.NewRecorder()
				ps.ServeHTTP(rec, httptest.NewRequest("GET", mtasts.WellKnownPath, nil))
				if b := rec.Body.String(); b != texts[0] && b != texts[1] {
					t.Errorf("served %q", b)
					return
				}
			}
		})
	}
	for i := range 50 {
		// Write to a new file and rename it over the old, as an editor
		// or a deployment would, so that reload never reads a half.
		tmp := file + ".new"
		os.WriteFile(tmp, []byte(texts[i%2]), 0o644)
		os.Rename(tmp, file)
		if err := ps.reload(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

// notifyHUP, which main gives serve, relays a real SIGHUP sent to this
// process, and stops relaying when asked. Safe: the signal is caught before
// it is sent, so it never has its default effect of ending the process.
func TestNotifyHUP(t *testing.T) {
	c := make(chan os.Signal, 1)
	stop := notifyHUP(c)
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case sig := <-c:
		if sig != syscall.SIGHUP {
			t.Errorf("got %v, want SIGHUP", sig)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no SIGHUP relayed")
	}
}

// A client that holds a request half sent when serve is asked to stop does
// not make it fail: after the grace period its connection is closed, and
// serve exits 0 (checked by startServeWith's cleanup).
func TestServeStopsWithHalfSentRequest(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.txt")
	os.WriteFile(policyFile, []byte(policyText("enforce", "604800", "mail.example.com")), 0o644)
	// Closed after serve has stopped: cleanups run last first.
	var conn net.Conn
	t.Cleanup(func() { conn.Close() })
	run := startServeWith(t, false, "--policy", policyFile, "--addr", "127.0.0.1:0")
	conn, err := net.Dial("tcp", run.addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.com\r\n")
}
