package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// postmapBinary returns Postfix's postmap, skipping the test when Postfix
// is not installed, unless MTASTS_INTEGRATION=1 requires it.
func postmapBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("postmap")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/postmap"); serr == nil {
			return "/usr/sbin/postmap"
		}
		msg := "postmap not found: apt-get install postfix"
		if os.Getenv("MTASTS_INTEGRATION") == "1" {
			t.Fatal(msg + "; MTASTS_INTEGRATION=1 requires it")
		}
		t.Skip(msg)
	}
	return bin
}

// postmapQuery runs "postmap -q key table" with its own configuration
// directory, as Postfix's smtp(8) would look the key up in
// smtp_tls_policy_maps, and returns what it prints and whether the key was
// found: exit status 0 for found, 1 for not found; anything else fails the
// test.
func postmapQuery(t *testing.T, bin, confDir, key, table string) (string, bool) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "-c", confDir, "-q", key, table)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return strings.TrimSuffix(stdout.String(), "\n"), true
	case errors.As(err, &exit) && exit.ExitCode() == 1 && stderr.Len() == 0:
		return stdout.String(), false
	}
	t.Fatalf("postmap -q %s %s: %v\n%s", key, table, err, stderr.String())
	return "", false
}

// Postfix's own socketmap client, postmap, gets the secure answer for
// domains with an enforce policy, exact and wildcard, and not-found for a
// domain without MTA-STS, over TCP and over a unix socket.
func TestPostfixPostmap(t *testing.T) {
	bin := postmapBinary(t)
	confDir := t.TempDir()
	// An empty main.cf: postmap needs one, and the defaults do.
	if err := os.WriteFile(filepath.Join(confDir, "main.cf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	lab := newPostfixLab(t)
	lab.publish("good.example", "enforce", "mx1.good.example", "mx2.good.example")
	lab.publish("wild.example", "enforce", "*.mx.wild.example")
	lab.publish("testing.example", "testing", "mx.testing.example")
	sock := filepath.Join(t.TempDir(), "mtasts.sock")
	r := startPostfixRun(t, 2, append([]string{"--listen", "127.0.0.1:0", "--listen", "unix:" + sock, "--store", ""}, lab.flags...)...)
	tables := []string{"socketmap:inet:" + r.addrs[0] + ":postfix", "socketmap:" + r.addrs[1] + ":postfix"}
	for _, table := range tables {
		for _, tt := range []struct {
			key, want string
			found     bool
		}{
			{"good.example", "secure match=mx1.good.example:mx2.good.example servername=hostname", true},
			{"wild.example", "secure match=.mx.wild.example servername=hostname", true},
			{"testing.example", "", false},
			{"nosts.example", "", false},
		} {
			got, found := postmapQuery(t, bin, confDir, tt.key, table)
			if got != tt.want || found != tt.found {
				t.Errorf("postmap -q %s %s: %q (found %v), want %q (found %v)", tt.key, table, got, found, tt.want, tt.found)
			}
		}
	}
}

// With --tlsrpt, postmap reads the whole answer, attributes included: the
// netstring framing holds for a long reply.
func TestPostfixPostmapTLSRPT(t *testing.T) {
	bin := postmapBinary(t)
	confDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(confDir, "main.cf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	lab := newPostfixLab(t)
	lab.publish("good.example", "enforce", "mx1.good.example", "*.mx.good.example")
	r := startPostfixRun(t, 1, append([]string{"--listen", "127.0.0.1:0", "--store", "", "--tlsrpt"}, lab.flags...)...)
	got, found := postmapQuery(t, bin, confDir, "good.example", "socketmap:inet:"+r.addrs[0]+":postfix")
	want := "secure match=mx1.good.example:.mx.good.example servername=hostname" +
		" policy_type=sts policy_domain=good.example policy_ttl=86400" +
		" mx_host_pattern=mx1.good.example mx_host_pattern=*.mx.good.example" +
		" { policy_string = version: STSv1 } { policy_string = mode: enforce }" +
		" { policy_string = mx: mx1.good.example } { policy_string = mx: *.mx.good.example }" +
		" { policy_string = max_age: 86400 }"
	if !found || got != want {
		t.Errorf("got %q (found %v)\nwant %q", got, found, want)
	}
}
