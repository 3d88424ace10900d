package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
)

// startServe runs "mtasts serve" with args until the test ends, and returns
// the address it listens on, read from its first line on stderr.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve"}, args...), &stdio{strings.NewReader(""), io.Discard, pw, func(string) string { return "" }})
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve exited with %d after cancel, want 0", code)
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	go io.Copy(io.Discard, pr) // later log lines
	m := regexp.MustCompile(`at https?://(\S+)/\.well-known/mta-sts\.txt$`).FindStringSubmatch(strings.TrimSpace(line))
	if err != nil || m == nil {
		t.Fatalf("serve said %q, %v", line, err)
	}
	return m[1]
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
	code, out, stderr := runMain(t, nil, "check", "--resolver", dns.addr, "--ca", ca.pemFile, "--https-port", port, "served.example")
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
