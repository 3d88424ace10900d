package mtasts

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// The recipient domain's owner chooses where its policy host resolves. An MTA
// that fetched policies from wherever the name pointed would open TCP and TLS
// connections into its own network for anyone who sends it mail: to
// loopback, private networks, a cloud's metadata service at 169.254.169.254.
// The default HTTPClient therefore refuses to connect to addresses that are
// not of the global internet, checking the address actually dialled, after
// name resolution, so that a name that resolves once to a public address and
// then to a private one (DNS rebinding) gains nothing.

// ErrAddressRefused means the policy host resolved to an address that the
// client refuses to connect to: loopback, private, link-local or another
// special-purpose address (see AddressRefusedError.Class). Errors of FetchPolicy that wrap
// it wrap ErrPolicyFetch too: the fetch failed, for its own reason.
// TLSReportFailureReason gives "mta-sts-policy-address-refused" for them,
// the metrics' result label "address-refused". The *AddressRefusedError names the address.
var ErrAddressRefused = errors.New("mtasts: policy host address refused")

// AddressRefusedError is the error of a dial that the guard of NewDialer
// refused, before any packet was sent. It wraps ErrAddressRefused.
type AddressRefusedError struct {
	// Addr is the address and port refused, as dialled.
	Addr netip.AddrPort
	// Class is the class of special-purpose addresses Addr belongs to,
	// or "invalid" for an address that did not parse. The classes are:
	//
	//	unspecified     0.0.0.0, ::
	//	this-network    0.0.0.0/8
	//	loopback        127.0.0.0/8, ::1
	//	private         10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (RFC 1918),
	//	                fc00::/7 (unique local), 64:ff9b:1::/48 (local NAT64)
	//	shared          100.64.0.0/10 (carrier-grade NAT, RFC 6598)
	//	link-local      169.254.0.0/16, fe80::/10
	//	site-local      fec0::/10
	//	multicast       224.0.0.0/4, ff00::/8
	//	broadcast       255.255.255.255
	//	documentation   192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
	//	                2001:db8::/32, 3fff::/20
	//	benchmarking    198.18.0.0/15
	//	ietf-protocol   192.0.0.0/24, 2001::/23
	//	discard         100::/64
	//	reserved        240.0.0.0/4, 192.88.99.0/24, IPv6 outside 2000::/3
	//
	// An IPv4-mapped IPv6 address (::ffff:0:0/96) is classed as the IPv4
	// address it maps; so is the IPv4 address embedded in a NAT64 address
	// (64:ff9b::/96) or a 6to4 prefix (2002::/16), which are otherwise
	// global. Every other address is global, and the guard lets it through.
	Class string
}

// Error names the refused address and its class.
func (e *AddressRefusedError) Error() string {
	if !e.Addr.IsValid() {
		return "mtasts: refusing to connect to an address that does not parse"
	}
	return "mtasts: refusing to connect to " + e.Addr.String() + " (" + e.Class + " address)"
}

// Unwrap returns ErrAddressRefused.
func (e *AddressRefusedError) Unwrap() error { return ErrAddressRefused }

// prefixClass is a special-purpose address block and its class.
type prefixClass struct {
	prefix netip.Prefix
	class  string
}

// specialIPv4 lists the IPv4 blocks the guard refuses: those of the IANA
// IPv4 Special-Purpose Address Registry (RFC 6890) that are not globally
// reachable, and multicast and reserved space. 0.0.0.0 and
// 255.255.255.255 are checked before.
var specialIPv4 = []prefixClass{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},     // RFC 791, RFC 1122 3.2.1.3
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},         // RFC 1918
	{netip.MustParsePrefix("100.64.0.0/10"), "shared"},       // RFC 6598, carrier-grade NAT
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},       // RFC 1122 3.2.1.3
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},  // RFC 3927, cloud metadata services
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},      // RFC 1918
	{netip.MustParsePrefix("192.0.0.0/24"), "ietf-protocol"}, // RFC 6890
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"}, // RFC 5737, TEST-NET-1
	{netip.MustParsePrefix("192.88.99.0/24"), "reserved"},    // RFC 7526, former 6to4 relay anycast
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},     // RFC 1918
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"}, // RFC 2544
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"}, // RFC 5771
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},  // RFC 1112 4
}

// specialIPv6 lists the IPv6 blocks the guard refuses, from the IANA IPv6
// Special-Purpose Address Registry (RFC 6890) and the address architecture
// (RFC 4291). ::, ::1, IPv4-mapped addresses and the NAT64 and 6to4
// prefixes, which embed an IPv4 address, are handled before; anything
// outside 2000::/3, the global unicast space, is refused after.
var specialIPv6 = []prefixClass{
	{netip.MustParsePrefix("64:ff9b:1::/48"), "private"},      // RFC 8215, local-use NAT64
	{netip.MustParsePrefix("100::/64"), "discard"},            // RFC 6666
	{netip.MustParsePrefix("2001::/23"), "ietf-protocol"},     // RFC 2928; Teredo, ORCHID, benchmarking (RFC 5180)
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"}, // RFC 3849
	{netip.MustParsePrefix("3fff::/20"), "documentation"},     // RFC 9637
	{netip.MustParsePrefix("fc00::/7"), "private"},            // RFC 4193, unique local
	{netip.MustParsePrefix("fe80::/10"), "link-local"},        // RFC 4291 2.5.6
	{netip.MustParsePrefix("fec0::/10"), "site-local"},        // RFC 3879, deprecated
	{netip.MustParsePrefix("ff00::/8"), "multicast"},          // RFC 4291 2.7
}

var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052 2.1
	sixToFour    = netip.MustParsePrefix("2002::/16")    // RFC 3056 2
	globalIPv6   = netip.MustParsePrefix("2000::/3")     // RFC 4291 2.4
	broadcastIP4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})
)

// addressClass returns the class of special-purpose addresses addr belongs
// to, or "" for an address of the global internet, to which the guard of
// NewDialer lets connections go. The classes are:
//
//	unspecified     0.0.0.0, ::
//	this-network    0.0.0.0/8
//	loopback        127.0.0.0/8, ::1
//	private         10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (RFC 1918),
//	                fc00::/7 (unique local), 64:ff9b:1::/48 (local NAT64)
//	shared          100.64.0.0/10 (carrier-grade NAT, RFC 6598)
//	link-local      169.254.0.0/16, fe80::/10
//	site-local      fec0::/10
//	multicast       224.0.0.0/4, ff00::/8
//	broadcast       255.255.255.255
//	documentation   192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
//	                2001:db8::/32, 3fff::/20
//	benchmarking    198.18.0.0/15
//	ietf-protocol   192.0.0.0/24, 2001::/23
//	discard         100::/64
//	reserved        240.0.0.0/4, 192.88.99.0/24, IPv6 outside 2000::/3
//	invalid         the zero netip.Addr
//
// An IPv4-mapped IPv6 address (::ffff:0:0/96) is classified as the IPv4
// address it maps; so is the IPv4 address embedded in a NAT64 address
// (64:ff9b::/96) or a 6to4 prefix (2002::/16), which are otherwise global. A
// zone is ignored.
func addressClass(addr netip.Addr) string {
	addr = addr.WithZone("").Unmap()
	switch {
	case !addr.IsValid():
		return "invalid"
	case addr.IsUnspecified():
		return "unspecified"
	case addr.Is4():
		if addr == broadcastIP4 {
			return "broadcast"
		}
		return classIn(addr, specialIPv4)
	case addr == netip.IPv6Loopback():
		return "loopback"
	case nat64Prefix.Contains(addr):
		// The translator connects to the embedded IPv4 address.
		b := addr.As16()
		return addressClass(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(addr):
		// 2002:V4ADDR::/48 routes to the 6to4 site of that IPv4
		// address.
		b := addr.As16()
		return addressClass(netip.AddrFrom4([4]byte(b[2:6])))
	}
	if class := classIn(addr, specialIPv6); class != "" {
		return class
	}
	if !globalIPv6.Contains(addr) {
		return "reserved"
	}
	return ""
}

func classIn(addr netip.Addr, list []prefixClass) string {
	for _, pc := range list {
		if pc.prefix.Contains(addr) {
			return pc.class
		}
	}
	return ""
}

// AllowLoopback reports whether addr is a loopback address of this host:
// 127.0.0.0/8, ::1, or an IPv4-mapped address of 127.0.0.0/8
// (::ffff:127.0.0.1). Given to NewDialer or NewTransport, it lets policies
// be fetched from a server on the local host, as tests do, and nothing else
// that is refused. A NAT64 (64:ff9b::/96, 64:ff9b:1::/48) or 6to4
// (2002::/16) address that embeds a loopback address, which the guard
// classes as loopback, is not allowed: it is reached through a translator
// or relay, another host, whose own loopback it would reach.
func AllowLoopback(addr netip.Addr) bool {
	return isHostLoopback(addr)
}

// isHostLoopback reports whether addr is a loopback address of this host,
// reached without leaving it: 127.0.0.0/8 (RFC 1122 3.2.1.3), ::1 (RFC 4291
// 2.5.3), or 127.0.0.0/8 mapped to IPv6 (RFC 4291 2.5.5.2), which the
// socket layer dials as IPv4. Addresses that only embed one, as NAT64
// (RFC 6052 2.1, RFC 8215) and 6to4 (RFC 3056 2) do, are not.
func isHostLoopback(addr netip.Addr) bool {
	addr = addr.WithZone("").Unmap()
	return addr.Is4() && addr.IsLoopback() || addr == netip.IPv6Loopback()
}

// AllowPrivate reports whether addr is a loopback address of this host (as
// AllowLoopback), or a private (RFC 1918, fc00::/7, 64:ff9b:1::/48) or
// shared (100.64.0.0/10) address, or a NAT64 address (64:ff9b::/96)
// embedding one of the last two. Given to NewDialer or NewTransport, it
// lets a private deployment fetch policies from hosts on its own networks.
// Link-local addresses, where cloud metadata services listen
// (169.254.169.254), stay refused, embedded or not; but some such services
// also listen on a unique local address (fd00:ec2::254), which this allows:
// where that matters, write an allow function that names your own
// networks.
func AllowPrivate(addr netip.Addr) bool {
	switch addressClass(addr) {
	case "loopback":
		// Only this host's own: a NAT64 or 6to4 address embedding a
		// loopback address reaches the translator's.
		return isHostLoopback(addr)
	case "private", "shared":
		return true
	}
	return false
}

// dialTimeout bounds connecting to a policy host, name resolution included,
// with dialers made by NewDialer.
const dialTimeout = 30 * time.Second

// NewDialer returns a dialer for policy fetches that refuses to connect to
// an address of a special-purpose class (see AddressRefusedError.Class) unless allow,
// when not nil, returns true for it. allow is called only for such
// addresses, from the dialing goroutine; it must be safe for concurrent use.
//
// The check runs in the dialer's ControlContext on the address about to be
// connected to, after name resolution and before any packet is sent, so it
// holds whatever the DNS answers and for each address tried. A refused dial
// fails with an *AddressRefusedError wrapping ErrAddressRefused. Setting
// ControlContext or Control of the returned dialer removes the guard.
func NewDialer(allow func(netip.Addr) bool) *net.Dialer {
	return &net.Dialer{
		Timeout:   dialTimeout,
		KeepAlive: 30 * time.Second,
		ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
			return checkDial(address, allow)
		},
	}
}

// checkDial returns an *AddressRefusedError for an address, "ip:port", that
// allow does not accept and that belongs to a special-purpose class; nil
// otherwise.
func checkDial(address string, allow func(netip.Addr) bool) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Not an IP address and port: nothing to check it by, so
		// refuse it. TCP dials always give one.
		return &AddressRefusedError{Class: "invalid"}
	}
	class := addressClass(ap.Addr())
	if class == "" || allow != nil && allow(ap.Addr().WithZone("").Unmap()) {
		return nil
	}
	return &AddressRefusedError{Addr: ap, Class: class}
}

// maxResponseHeaderBytes bounds the response headers a policy host may
// send to the transports of NewTransport: 64 KiB. A policy response needs a
// few hundred bytes; net/http's default limit is 10 MB.
const maxResponseHeaderBytes = 64 << 10

// NewTransport returns a transport for policy fetches, the one the default
// HTTPClient uses with allow nil. It connects through NewDialer(allow),
// directly, not through a proxy, so that the guard checks the policy host's
// own address. It has these limits:
//
//   - response headers: at most 64 KiB, over HTTP/1.1 and
//     HTTP/2;
//   - connecting, name resolution included: 30 s; TLS handshake: 10 s;
//   - connections: at most 4 per policy host; idle ones are kept at most 1
//     per host, 64 in all, for 30 s.
//
// It tries HTTP/2 and verifies certificates against the system's roots
// (RFC 8461 3.3). Fields may be changed before first use: e.g.
// TLSClientConfig.RootCAs to trust other roots, or Proxy to use one, in
// which case the guard checks the proxy's address and the proxy is
// responsible for refusing the rest.
func NewTransport(allow func(netip.Addr) bool) *http.Transport {
	return &http.Transport{
		DialContext:            NewDialer(allow).DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		MaxConnsPerHost:        4,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    1,
		IdleConnTimeout:        30 * time.Second,
		ExpectContinueTimeout:  time.Second,
	}
}
