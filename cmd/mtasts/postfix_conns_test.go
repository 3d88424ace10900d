package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts/internal/netlab"
)

// The daemon closes the connection of each policy fetch once it has the
// policy. A policy host is asked about once a day, so an idle connection
// kept for reuse is never reused, and HTTP/2 connections are kept whatever
// the transport's MaxIdleConns says: a burst of domains not yet cached
// would hold one socket and TLS session per domain for 30 s (thousands,
// in the benchmark of docs/postfix.md, until the file limit is reached).
func TestPostfixDaemonClosesPolicyConnections(t *testing.T) {
	lab := newPostfixLab(t)
	// The policy host behind a forwarder that counts the connections.
	fwd, err := netlab.Forward("127.0.0.1:0", lab.policies.Addr(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fwd.Close)
	_, port, _ := net.SplitHostPort(fwd.Addr())
	flags := append([]string(nil), lab.flags...)
	for i := range flags {
		if flags[i] == "--https-port" {
			flags[i+1] = port
		}
	}
	r := startPostfixRun(t, 1, append([]string{"--listen", "127.0.0.1:0", "--store", ""}, flags...)...)
	const n = 5
	for i := range n {
		d := fmt.Sprintf("d%d.example", i)
		lab.publish(d, "enforce", "mx."+d)
		if got := socketmapQuery(t, r.addrs[0], "postfix", d); !strings.HasPrefix(got, "OK secure") {
			t.Fatalf("%s: %q, want OK secure", d, got)
		}
	}
	// Kept connections would stay for the transport's IdleConnTimeout,
	// 30 s; closed ones are gone at once. Wait a third of that.
	deadline := time.Now().Add(10 * time.Second)
	for fwd.Active() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to the policy host still open 10 s after %d fetches, want 0", fwd.Active()/2, n)
		}
		time.Sleep(10 * time.Millisecond) // polling, not timing
	}
}
