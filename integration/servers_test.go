package integration

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/mtasts-go/mtasts/internal/testkit"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// binary returns the path of a server program from a Debian package. When it
// is missing, the test skips, saying what to install, unless
// MTASTS_INTEGRATION=1 asks for the integration tests to run: then it fails.
func binary(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found: install the Debian package %s (apt-get install %s)", name, pkg, pkg)
	if os.Getenv("MTASTS_INTEGRATION") == "1" {
		t.Fatal(msg + "; MTASTS_INTEGRATION=1 requires it")
	}
	t.Skip(msg)
	return ""
}

// freePort returns a loopback port that is free for both TCP and UDP now.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// startProcess runs a server until the test ends; its output goes to a log
// file in dir, shown when the test fails.
func startProcess(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, filepath.Base(name)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A process group of its own, so that stopping it stops its children
	// (nginx's workers) too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		pgid := -cmd.Process.Pid
		syscall.Kill(pgid, syscall.SIGTERM)
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(pgid, syscall.SIGKILL)
			<-exited
		}
		// Workers still shutting down go with the group.
		syscall.Kill(pgid, syscall.SIGKILL)
		logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("%s output:\n%s", name, out)
		}
	})
}

// waitFor polls ready until it returns nil, for at most ten seconds.
func waitFor(t *testing.T, what string, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a starting server, not timing a test
	}
}

// testCA issues certificates as PEM files, from the test kit's in-memory CA.
type testCA struct {
	kit  *mtaststest.PolicyServer
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	kit := testkit.PolicyServer(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(kit.CACertificatePEM())
	return &testCA{kit: kit, pool: pool}
}

// issue writes a certificate for names, valid from notBefore to notAfter,
// and its key to dir/<file>.pem and dir/<file>-key.pem, and returns both
// paths.
func (ca *testCA) issue(t *testing.T, dir, file string, notBefore, notAfter time.Time, names ...string) (certPath, keyPath string) {
	t.Helper()
	cert, err := ca.kit.IssueCertificate(notBefore, notAfter, names...)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	certPath, keyPath = filepath.Join(dir, file+".pem"), filepath.Join(dir, file+"-key.pem")
	write(certPath, "CERTIFICATE", cert.Certificate[0])
	write(keyPath, "PRIVATE KEY", keyDER)
	return certPath, keyPath
}

// dialTCP reports whether something listens on addr.
func dialTCP(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// rcode asks the DNS server at addr for name over UDP and returns the
// response code of its answer.
func rcode(t *testing.T, addr, name string, qtype dnsmessage.Type) dnsmessage.RCode {
	t.Helper()
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 4711, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: qtype, Class: dnsmessage.ClassINET}},
	}
	packet, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	if _, err := conn.Write(packet); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("query %s: %v", name, err)
		}
		var m dnsmessage.Message
		if err := m.Unpack(buf[:n]); err != nil || m.ID != q.ID || !m.Response {
			continue // not the answer to our query
		}
		return m.RCode
	}
}

// stopped checks, when the test ends and after the server started next was
// stopped (cleanups run last first), that nothing listens on addr any more.
func stopped(t *testing.T, name, addr string) {
	t.Helper()
	t.Cleanup(func() {
		if err := dialTCP(addr); err == nil {
			t.Errorf("%s still listens on %s after the test", name, addr)
		}
	})
}
