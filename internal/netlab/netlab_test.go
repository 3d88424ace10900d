package netlab

import (
	"context"
	"net"
	"slices"
	"testing"

	"github.com/mtasts-go/mtasts/internal/testkit"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// A resolver asking the forwarder, over UDP and over TCP, gets the DNS
// server's answers; each query reaches the server.
func TestForwardDNS(t *testing.T) {
	dns := testkit.DNSServer(t)
	dns.Set("a.example", mtaststest.DNSRecords{TXT: [][]string{{"hello"}}})
	f, err := Forward("127.0.0.1:0", dns.Addr(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, network := range []string{"udp", "tcp"} {
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, f.Addr())
		}}
		before := dns.Queries("a.example")
		txt, err := r.LookupTXT(context.Background(), "a.example")
		if err != nil || !slices.Equal(txt, []string{"hello"}) {
			t.Errorf("%s: %q, %v; want [hello]", network, txt, err)
		}
		if dns.Queries("a.example") == before {
			t.Errorf("%s: the query did not reach the server", network)
		}
	}
}

// Close ends the connections being relayed.
func TestForwardClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	f, err := Forward("127.0.0.1:0", ln.Addr().String(), false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	up := <-accepted
	defer up.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := up.Read(buf); err != nil || string(buf) != "ping" {
		t.Fatalf("upstream read %q, %v", buf, err)
	}
	if f.Active() != 2 {
		t.Errorf("Active() = %d, want 2", f.Active())
	}
	f.Close() // returns only once the relay's goroutines ended
	if f.Active() != 0 {
		t.Errorf("after Close, Active() = %d, want 0", f.Active())
	}
	if n, err := c.Read(buf); err == nil {
		t.Errorf("client read %d bytes after Close, want the connection closed", n)
	}
}
