package mtasts_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
)

func TestAddressClass(t *testing.T) {
	tests := []struct {
		addr, class string
	}{
		// Global unicast: allowed.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"192.0.1.255", ""},
		{"198.17.255.255", ""},
		{"198.20.0.0", ""},
		{"223.255.255.255", ""},
		{"2001:4860:4860::8888", ""},
		{"2a00:1450:4001::1", ""},
		{"2001:200::1", ""}, // just past 2001::/23
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", ""},  // 6to4 of 8.8.8.8
		{"fe80::1%eth0", "link-local"},

		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"::ffff:0.0.0.0", "unspecified"},
		{"0.1.2.3", "this-network"},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.0.0.1", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"::ffff:10.1.2.3", "private"},
		{"::ffff:192.168.0.1", "private"},
		{"fc00::1", "private"},
		{"fd00:ec2::254", "private"},
		{"64:ff9b:1::a00:1", "private"},
		{"100.64.0.1", "shared"},
		{"100.127.255.255", "shared"},
		{"::ffff:100.64.0.1", "shared"},
		{"fd00::1", "private"},
		{"169.254.169.254", "link-local"},
		{"::ffff:169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"febf::1", "link-local"},
		{"fec0::1", "site-local"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"::ffff:224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"ff0e::1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"::ffff:255.255.255.255", "broadcast"},
		{"192.0.2.1", "documentation"},
		{"198.51.100.1", "documentation"},
		{"203.0.113.1", "documentation"},
		{"2001:db8::1", "documentation"},
		{"3fff::1", "documentation"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"192.0.0.1", "ietf-protocol"},
		{"2001::1", "ietf-protocol"}, // Teredo
		{"2001:2::1", "ietf-protocol"},
		{"100::1", "discard"},
		{"240.0.0.1", "reserved"},
		{"192.88.99.1", "reserved"},
		{"::ffff:240.0.0.1", "reserved"},
		{"::1.2.3.4", "reserved"}, // IPv4-compatible, deprecated
		{"4000::1", "reserved"},
		{"5f00::1", "reserved"},
		{"64:ff9b::7f00:1", "loopback"},      // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", "link-local"}, // NAT64 of 169.254.169.254
		{"2002:a00:1::1", "private"},         // 6to4 of 10.0.0.1
		{"2002:7f00:1::1", "loopback"},       // 6to4 of 127.0.0.1
	}
	for _, tc := range tests {
		addr := netip.MustParseAddr(tc.addr)
		if got := mtasts.AddressClass(addr); got != tc.class {
			t.Errorf("AddressClass(%s) = %q, want %q", tc.addr, got, tc.class)
		}
	}
	if got := mtasts.AddressClass(netip.Addr{}); got != "invalid" {
		t.Errorf("AddressClass of the zero Addr = %q, want invalid", got)
	}

	allowed := []struct {
		addr              string
		loopback, private bool
	}{
		{"127.0.0.1", true, true},
		{"::1", true, true},
		{"::ffff:127.0.0.1", true, true},
		{"10.0.0.1", false, true},
		{"fd00::1", false, true},
		{"100.64.0.1", false, true},
		{"169.254.169.254", false, false},
		{"fe80::1", false, false},
		{"0.0.0.0", false, false},
		{"224.0.0.1", false, false},
		{"127.1.2.3", true, true},
		{"::ffff:127.1.2.3", true, true},
		// An IPv4 address embedded in a NAT64 or 6to4 address is
		// reached through a translator or relay, off this host: it is
		// never loopback, whatever it embeds.
		{"64:ff9b::7f00:1", false, false},   // NAT64 of 127.0.0.1
		{"64:ff9b::7f01:203", false, false}, // NAT64 of 127.1.2.3
		{"64:ff9b::a00:1", false, true},     // NAT64 of 10.0.0.1
		{"64:ff9b::a9fe:a9fe", false, false},
		{"64:ff9b:1::7f00:1", false, true}, // local-use NAT64, private
		{"2002:7f00:1::1", false, false},   // 6to4 of 127.0.0.1
	}
	for _, tc := range allowed {
		addr := netip.MustParseAddr(tc.addr)
		if got := mtasts.AllowLoopback(addr); got != tc.loopback {
			t.Errorf("AllowLoopback(%s) = %v", tc.addr, got)
		}
		if got := mtasts.AllowPrivate(addr); got != tc.private {
			t.Errorf("AllowPrivate(%s) = %v", tc.addr, got)
		}
	}
}

// countingTLSServer starts an HTTPS server on addr ("127.0.0.1:0" or
// "[::1]:0") serving goodPolicy for mta-sts.example.com, and counts the
// connections it accepts.
func countingTLSServer(t *testing.T, ca *testCA, addr string) (srv *httptest.Server, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("no listener on %s: %v", addr, err)
	}
	conns = &atomic.Int32{}
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, goodPolicy)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.issue(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "mta-sts.example.com")}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, conns
}

// TestDefaultClientRefusesLoopback checks that the default client's own
// dialer refuses the loopback address of a server that is listening, before
// connecting.
func TestDefaultClientRefusesLoopback(t *testing.T) {
	ca := newTestCA(t)
	for _, listen := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(listen, func(t *testing.T) {
			srv, conns := countingTLSServer(t, ca, listen)
			tr := mtasts.HTTPClient.Transport.(*http.Transport)
			conn, err := tr.DialContext(context.Background(), "tcp", srv.Listener.Addr().String())
			if err == nil {
				conn.Close()
				t.Fatalf("the default transport connected to %s", srv.Listener.Addr())
			}
			var rerr *mtasts.AddressRefusedError
			if !errors.Is(err, mtasts.ErrAddressRefused) || !errors.As(err, &rerr) || rerr.Class != "loopback" || rerr.Addr.String() != srv.Listener.Addr().String() {
				t.Errorf("dial error %v (%#v), want an *AddressRefusedError for loopback", err, rerr)
			}
			if n := conns.Load(); n != 0 {
				t.Errorf("server accepted %d connections, want none", n)
			}
		})
	}
}

// TestAllowLoopbackRefusesNAT64 checks that a dialer allowing loopback
// still refuses a NAT64 or 6to4 address that embeds a loopback address:
// the translator or relay that serves it is another host. The check is
// made by the dialer's ControlContext, before any connection.
func TestAllowLoopbackRefusesNAT64(t *testing.T) {
	d := mtasts.NewDialer(mtasts.AllowLoopback)
	for _, address := range []string{"[64:ff9b::7f00:1]:443", "[64:ff9b:1::7f00:1]:443", "[2002:7f00:1::1]:443"} {
		err := d.ControlContext(context.Background(), "tcp6", address, nil)
		if !errors.Is(err, mtasts.ErrAddressRefused) {
			t.Errorf("dialer with AllowLoopback, control of %s: %v, want ErrAddressRefused", address, err)
		}
	}
	for _, address := range []string{"127.0.0.1:443", "[::1]:443", "[::ffff:127.0.0.1]:443"} {
		if err := d.ControlContext(context.Background(), "tcp", address, nil); err != nil {
			t.Errorf("dialer with AllowLoopback, control of %s: %v, want nil", address, err)
		}
	}
}

// TestGuardChecksResolvedAddress checks that the guard looks at the address
// a name resolves to, not at the name: "localhost" resolves to loopback,
// from the hosts file, without the network.
func TestGuardChecksResolvedAddress(t *testing.T) {
	ca := newTestCA(t)
	srv, conns := countingTLSServer(t, ca, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	if addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", "localhost"); err != nil || len(addrs) == 0 || !addrs[0].IsLoopback() {
		t.Skipf("localhost does not resolve to an IPv4 loopback address here: %v %v", addrs, err)
	}
	_, err := mtasts.NewDialer(nil).DialContext(context.Background(), "tcp4", net.JoinHostPort("localhost", port))
	if !errors.Is(err, mtasts.ErrAddressRefused) || conns.Load() != 0 {
		t.Errorf("dial of localhost: %v, %d connections; want ErrAddressRefused and none", err, conns.Load())
	}
	conn, err := mtasts.NewDialer(mtasts.AllowLoopback).DialContext(context.Background(), "tcp4", net.JoinHostPort("localhost", port))
	if err != nil {
		t.Fatalf("dial of localhost with AllowLoopback: %v", err)
	}
	conn.Close()
}

// useGuardedServer points mtasts.HTTPClient for the test at a transport
// made by NewTransport(allow) that trusts the test CA, and whose dialer,
// NewDialer(allow), connects to addr for every host name: as if the policy
// host's name resolved to addr.
func useGuardedServer(t *testing.T, ca *testCA, addr string, allow func(netip.Addr) bool) {
	orig := mtasts.HTTPClient
	t.Cleanup(func() { mtasts.HTTPClient = orig })
	tr := mtasts.NewTransport(allow)
	tr.TLSClientConfig.RootCAs = ca.pool
	dialer := mtasts.NewDialer(allow)
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	mtasts.HTTPClient = &http.Client{Transport: tr}
}

// TestFetchPolicyAddressRefused checks that a policy host on loopback is
// refused with its own error, reason code and label, and fetched when the
// caller allows loopback.
func TestFetchPolicyAddressRefused(t *testing.T) {
	ca := newTestCA(t)
	for _, listen := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(listen, func(t *testing.T) {
			srv, conns := countingTLSServer(t, ca, listen)
			addr := srv.Listener.Addr().String()

			useGuardedServer(t, ca, addr, nil)
			policy, _, err := mtasts.FetchPolicy(context.Background(), mustDomain(t, "example.com"))
			if policy != nil || !errors.Is(err, mtasts.ErrAddressRefused) {
				t.Fatalf("FetchPolicy = %v, %v; want ErrAddressRefused", policy, err)
			}
			checkFailure(t, err, mtasts.ErrPolicyFetch, "mta-sts-policy-address-refused")
			var rerr *mtasts.AddressRefusedError
			if !errors.As(err, &rerr) || rerr.Class != "loopback" {
				t.Errorf("error %v does not give the refused address", err)
			}
			if got := mtasts.TLSReportResultType(err); got != mtasts.ResultSTSPolicyFetchError {
				t.Errorf("TLSReportResultType = %q, want %q", got, mtasts.ResultSTSPolicyFetchError)
			}
			if got := mtasts.ResultLabel(err); got != "address-refused" {
				t.Errorf("ResultLabel = %q, want address-refused", got)
			}
			if n := conns.Load(); n != 0 {
				t.Errorf("server accepted %d connections, want none", n)
			}

			// Allowed, the way a test or a private deployment does.
			useGuardedServer(t, ca, addr, mtasts.AllowLoopback)
			if _, _, err := mtasts.FetchPolicy(context.Background(), mustDomain(t, "example.com")); err != nil {
				t.Fatalf("FetchPolicy with AllowLoopback: %v", err)
			}
			useGuardedServer(t, ca, addr, func(a netip.Addr) bool { return a == netip.MustParseAddrPort(addr).Addr() })
			if _, _, err := mtasts.FetchPolicy(context.Background(), mustDomain(t, "example.com")); err != nil {
				t.Fatalf("FetchPolicy allowing the server's address: %v", err)
			}
			// The server accepts in order: had the refused fetch
			// connected, its connection would be counted by now.
			if n := conns.Load(); n != 2 {
				t.Errorf("server accepted %d connections, want 2: one per allowed fetch, none for the refused one", n)
			}
		})
	}
}
