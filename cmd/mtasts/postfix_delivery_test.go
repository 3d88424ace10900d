//go:build linux

package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mtasts-go/mtasts/internal/netlab"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// The delivery test runs a real Postfix, configured in a temporary folder,
// that delivers through smtp_tls_policy_maps = socketmap:... to an SMTP
// server of the test's own. Postfix finds the MX hosts with the system's
// resolver and connects to port 25, so the test runs in a private network
// and mount namespace (netlab): a loopback interface of its own, a
// resolv.conf naming 127.0.0.1 bind-mounted there only, the test kit's DNS
// server forwarded to 127.0.0.1:53 and the SMTP server on 127.0.0.2:25.
// Nothing listens outside that namespace.

// skipOrFail skips the test saying why, or fails it when
// MTASTS_INTEGRATION=1 requires the integration tests to run.
func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("MTASTS_INTEGRATION") == "1" {
		t.Fatal(msg + "; MTASTS_INTEGRATION=1 requires it")
	}
	t.Skip(msg)
}

// runInNetns runs the test named name again, in this test binary, inside a
// private network and mount namespace, and fails t when it fails there. It
// skips when not root, the namespace's requirement.
func runInNetns(t *testing.T, name string) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root, to run Postfix in a private network namespace")
	}
	if _, err := os.Stat("/usr/sbin/postfix"); err != nil {
		skipOrFail(t, "postfix not found: apt-get install postfix")
	}
	var out bytes.Buffer
	cmd := netlab.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.v", "-test.timeout=4m")
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		// The namespace could not be made: a container without
		// CAP_SYS_ADMIN, say.
		skipOrFail(t, fmt.Sprintf("cannot make a private network namespace: %v", err))
	}
	t.Logf("in a private network namespace:\n%s", out.String())
	if err != nil {
		t.Fatalf("failed in the namespace: %v", err)
	}
	if !strings.Contains(out.String(), "--- PASS: "+name) {
		t.Fatal("did not pass in the namespace")
	}
}

// receivedMessage is a message that deliveryMX accepted.
type receivedMessage struct {
	rcpt       []string
	data       string
	tls        bool
	serverName string // the SNI of the TLS handshake
}

// deliveryMX is an SMTP server (go-smtp) offering STARTTLS with a
// certificate chosen by the SNI the client sends, recording what it is
// given.
type deliveryMX struct {
	mu       sync.Mutex
	received []receivedMessage
}

type deliverySession struct {
	mx   *deliveryMX
	conn *smtp.Conn
	msg  receivedMessage
}

func (s *deliverySession) Reset()                               { s.msg = receivedMessage{} }
func (s *deliverySession) Logout() error                        { return nil }
func (s *deliverySession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *deliverySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.rcpt = append(s.msg.rcpt, to)
	return nil
}

func (s *deliverySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = string(b)
	if cs, ok := s.conn.TLSConnectionState(); ok {
		s.msg.tls, s.msg.serverName = true, cs.ServerName
	}
	s.mx.mu.Lock()
	s.mx.received = append(s.mx.received, s.msg)
	s.mx.mu.Unlock()
	return nil
}

// receivedFor returns the messages received for rcpt.
func (mx *deliveryMX) receivedFor(rcpt string) []receivedMessage {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	var out []receivedMessage
	for _, m := range mx.received {
		for _, r := range m.rcpt {
			if r == rcpt {
				out = append(out, m)
			}
		}
	}
	return out
}

// startDeliveryMX serves SMTP on addr, presenting certs[SNI].
func startDeliveryMX(t *testing.T, addr string, certs map[string]tls.Certificate) *deliveryMX {
	t.Helper()
	mx := &deliveryMX{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &deliverySession{mx: mx, conn: c}, nil
	}))
	srv.Domain = "mx.test"
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLSConfig = &tls.Config{GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if c, ok := certs[hello.ServerName]; ok {
			return &c, nil
		}
		return nil, fmt.Errorf("no certificate for %q", hello.ServerName)
	}}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		srv.Serve(ln)
		close(done)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return mx
}

// postfixInstance is a Postfix whose configuration, queue and log are in
// one temporary folder.
type postfixInstance struct {
	dir, conf, log string
}

// postfixMasterCf runs the services a sending Postfix needs, without
// chroot, and no listener: mail comes in through sendmail(1).
const postfixMasterCf = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// startPostfixInstance configures a Postfix in a new folder, with the
// main.cf lines extra, starts it and stops it when the test ends.
func startPostfixInstance(t *testing.T, extra string) *postfixInstance {
	t.Helper()
	// Postfix's processes run as the postfix user, which must reach the
	// queue: a folder of its own, not t.TempDir's, which only root reads.
	dir, err := os.MkdirTemp("", "mtasts-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &postfixInstance{dir: dir, conf: filepath.Join(dir, "conf"), log: filepath.Join(dir, "maillog")}
	data := filepath.Join(dir, "data")
	for _, d := range []string{p.conf, filepath.Join(dir, "queue"), data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if u, err := lookupUID("postfix"); err != nil {
		t.Fatal(err)
	} else if err := os.Chown(data, u, -1); err != nil {
		t.Fatal(err)
	}
	mainCf := "compatibility_level = 3.6\n" +
		"queue_directory = " + filepath.Join(dir, "queue") + "\n" +
		"data_directory = " + data + "\n" +
		// Postfix 3.4 and later log to a file through postlogd.
		"maillog_file = " + p.log + "\n" +
		"maillog_file_prefixes = " + dir + "\n" +
		"myhostname = sender.test\nmyorigin = sender.test\nmydestination =\n" +
		// Postfix's own address is 127.0.0.1: the MX at 127.0.0.2 is
		// not taken for itself ("mail loops back to myself").
		"inet_interfaces = loopback-only\ninet_protocols = ipv4\n" +
		"smtp_tls_security_level = may\nsmtp_tls_loglevel = 1\n" +
		extra
	if err := os.WriteFile(filepath.Join(p.conf, "main.cf"), []byte(mainCf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.conf, "master.cf"), []byte(postfixMasterCf), 0o644); err != nil {
		t.Fatal(err)
	}
	// start-fg keeps the master process in the foreground, a child of
	// the test, so that it cannot outlive it.
	master := exec.Command("/usr/sbin/postfix", "-c", p.conf, "start-fg")
	var out bytes.Buffer
	master.Stdout, master.Stderr = &out, &out
	master.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var masterErr error
	go func() {
		masterErr = master.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		// "postfix stop" ends the master, which ends its children.
		if b, err := exec.Command("/usr/sbin/postfix", "-c", p.conf, "stop").CombinedOutput(); err != nil {
			t.Logf("postfix stop: %v: %s", err, b)
		}
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Errorf("postfix did not stop in 30 s; killing it")
			master.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("postfix start-fg: %s\nmaillog:\n%s", out.String(), b)
		}
	})
	// Mail submitted before the master runs waits for pickup's next
	// scan of the maildrop queue, a minute: wait until it runs.
	deadline := time.Now().Add(30 * time.Second)
	for !p.logHas("daemon started") {
		select {
		case <-exited:
			t.Fatalf("postfix start-fg: %v: %s", masterErr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("postfix did not start in 30 s")
		}
		time.Sleep(50 * time.Millisecond) // polling, not timing
	}
	return p
}

// lookupUID returns the user id of name from /etc/passwd.
func lookupUID(name string) (int, error) {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Split(line, ":")
		if len(f) > 2 && f[0] == name {
			var uid int
			_, err := fmt.Sscan(f[2], &uid)
			return uid, err
		}
	}
	return 0, fmt.Errorf("no user %q in /etc/passwd: Postfix's package creates it", name)
}

// send submits a message to rcpt with Postfix's sendmail(1).
func (p *postfixInstance) send(t *testing.T, rcpt, body string) {
	t.Helper()
	cmd := exec.Command("/usr/sbin/sendmail", "-C", p.conf, "-i", "-f", "sender@sender.test", rcpt)
	cmd.Stdin = strings.NewReader("From: sender@sender.test\nTo: " + rcpt + "\nSubject: delivery test\n\n" + body + "\n")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sendmail %s: %v: %s", rcpt, err, b)
	}
}

// outcome waits until Postfix's log says what became of the message to
// rcpt, and returns that log line, e.g. "... status=sent (250 ...)".
func (p *postfixInstance) outcome(t *testing.T, rcpt string) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, _ := os.ReadFile(p.log)
		for line := range strings.Lines(string(b)) {
			if strings.Contains(line, " to=<"+rcpt+">") && strings.Contains(line, " status=") {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix logged no outcome for %s in 2 minutes; log:\n%s", rcpt, b)
		}
		time.Sleep(100 * time.Millisecond) // polling a file, not timing
	}
}

// logHas reports whether Postfix's log has a line holding all of parts.
func (p *postfixInstance) logHas(parts ...string) bool {
	b, _ := os.ReadFile(p.log)
	for line := range strings.Lines(string(b)) {
		all := true
		for _, s := range parts {
			all = all && strings.Contains(line, s)
		}
		if all {
			return true
		}
	}
	return false
}

// Postfix delivers through smtp_tls_policy_maps = socketmap:... served by
// the daemon: to a domain with an enforce policy whose MX presents a
// certificate for its name, over verified TLS; to one whose MX presents a
// certificate for another name, not at all: the message is deferred and
// the MX never sees it. A domain without MTA-STS with the same wrong
// certificate gets its mail, as without MTA-STS (RFC 8461 5.1): the
// deferral is the policy's doing.
func TestPostfixDelivery(t *testing.T) {
	if !netlab.Inside() {
		runInNetns(t, "TestPostfixDelivery")
		return
	}
	if err := netlab.Setup(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	lab := newPostfixLab(t)
	fwd, err := netlab.Forward("127.0.0.1:53", lab.dns.Addr(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fwd.Close)

	// Each domain has one MX host, at 127.0.0.2.
	mxAddr := []netip.Addr{netip.MustParseAddr("127.0.0.2")}
	for _, d := range []string{"good.example", "bad.example", "nosts.example"} {
		lab.dns.Set(d, mtaststest.DNSRecords{MX: []*net.MX{{Host: "mx." + d, Pref: 10}}})
		lab.dns.Set("mx."+d, mtaststest.DNSRecords{Addrs: mxAddr})
	}
	lab.publish("good.example", "enforce", "mx.good.example")
	lab.publish("bad.example", "enforce", "mx.bad.example")

	now := time.Now()
	certs := map[string]tls.Certificate{}
	for sni, name := range map[string]string{
		"mx.good.example": "mx.good.example",
		"mx.bad.example":  "mx.hosting.example", // the provider's name, not the MX's
		// Postfix sends no SNI where it verifies no name, as for a
		// domain without a policy.
		"": "mx.hosting.example",
	} {
		c, err := lab.policies.IssueCertificate(now.Add(-time.Hour), now.Add(24*time.Hour), name)
		if err != nil {
			t.Fatal(err)
		}
		certs[sni] = c
	}
	mx := startDeliveryMX(t, "127.0.0.2:25", certs)

	r := startPostfixRun(t, 1, append([]string{"--listen", "127.0.0.1:0", "--store", ""}, lab.flags...)...)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, lab.policies.CACertificatePEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPostfixInstance(t, "smtp_tls_CAfile = "+caFile+"\n"+
		"smtp_tls_policy_maps = socketmap:inet:"+r.addrs[0]+":postfix\n")

	p.send(t, "user@good.example", "token-good")
	p.send(t, "user@bad.example", "token-bad")
	p.send(t, "user@nosts.example", "token-nosts")

	if line := p.outcome(t, "user@good.example"); !strings.Contains(line, "status=sent") {
		t.Errorf("good.example: %s", line)
	}
	if !p.logHas("Verified TLS connection established to mx.good.example[127.0.0.2]:25") {
		t.Error("good.example: Postfix logged no verified TLS connection")
	}
	if got := mx.receivedFor("user@good.example"); len(got) != 1 || !got[0].tls || got[0].serverName != "mx.good.example" || !strings.Contains(got[0].data, "token-good") {
		t.Errorf("good.example: the MX received %+v, want the message once, over TLS with SNI mx.good.example", got)
	}

	if line := p.outcome(t, "user@bad.example"); !strings.Contains(line, "status=deferred") || !strings.Contains(line, "certificate not verified") {
		t.Errorf("bad.example: %s, want deferred as the certificate is not verified", line)
	}
	if got := mx.receivedFor("user@bad.example"); len(got) != 0 {
		t.Errorf("bad.example: the MX received %+v, want nothing, neither in clear nor over TLS", got)
	}
	if q, err := exec.Command("/usr/sbin/postqueue", "-c", p.conf, "-j").Output(); err != nil {
		t.Errorf("postqueue -j: %v", err)
	} else if !strings.Contains(string(q), `"queue_name": "deferred"`) || !strings.Contains(string(q), `"address": "user@bad.example"`) {
		t.Errorf("postqueue -j: %s, want user@bad.example in the deferred queue", q)
	}

	if line := p.outcome(t, "user@nosts.example"); !strings.Contains(line, "status=sent") {
		t.Errorf("nosts.example: %s, want sent: no MTA-STS, no certificate check", line)
	}
	if got := mx.receivedFor("user@nosts.example"); len(got) != 1 || !strings.Contains(got[0].data, "token-nosts") {
		t.Errorf("nosts.example: the MX received %+v, want the message once", got)
	}
}
