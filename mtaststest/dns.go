package mtaststest

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// DNSRecords is what a DNSServer answers for one name.
type DNSRecords struct {
	// TXT holds the TXT records, each as its character-strings, which a
	// resolver joins (RFC 1035 3.3.14, RFC 7208 3.3). A string longer than
	// 255 bytes is sent as several.
	TXT [][]string
	// MX holds the MX records. Host names may omit the final dot; "." is a
	// null MX (RFC 7505).
	MX []*net.MX
	// Addrs holds the addresses: the IPv4 ones answer A queries, the IPv6
	// ones AAAA queries.
	Addrs []netip.Addr
	// ServFail makes every query of the name fail with SERVFAIL.
	ServFail bool
}

// DNSServer is a DNS server on 127.0.0.1, for programs that take a
// resolver's address rather than a Resolver value: mtasts check
// --resolver, or an adns.Resolver whose Dial connects to Addr. It answers
// A, AAAA, TXT and MX queries from the records set for each name, over UDP
// and over TCP on the same random port. A name never set does not exist
// (NXDOMAIN); a name set without records of the asked type has an empty
// answer. It does no recursion, no DNSSEC and no truncation. It is safe for
// concurrent use.
type DNSServer struct {
	pc   net.PacketConn
	ln   net.Listener
	addr string
	wg   sync.WaitGroup

	mu      sync.Mutex
	names   map[string]DNSRecords // by canonical name
	queries map[string]int
	conns   map[net.Conn]struct{} // open TCP connections
	closed  bool
}

// StartDNSServer starts a DNSServer on 127.0.0.1; the caller must Close it,
// in a test with t.Cleanup(server.Close). It returns an error when no port
// is free for both UDP and TCP.
func StartDNSServer() (*DNSServer, error) {
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	// Bind UDP on a free port, then TCP on the same one; try again if
	// another process holds that TCP port.
	for range 20 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		return nil, err
	}
	s := &DNSServer{
		pc:      pc,
		ln:      ln,
		addr:    pc.LocalAddr().String(),
		names:   map[string]DNSRecords{},
		queries: map[string]int{},
		conns:   map[net.Conn]struct{}{},
	}
	s.wg.Go(s.serveUDP)
	s.wg.Go(s.serveTCP)
	return s, nil
}

// Addr returns the server's address, 127.0.0.1:port, for UDP and TCP.
func (s *DNSServer) Addr() string {
	return s.addr
}

// Set makes name exist with records r, replacing what it had. The name may
// be given with or without the final dot, in any case.
func (s *DNSServer) Set(name string, r DNSRecords) {
	r.TXT = slices.Clone(r.TXT)
	r.MX = slices.Clone(r.MX)
	r.Addrs = slices.Clone(r.Addrs)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[canonical(name)] = r
}

// Remove makes name not exist.
func (s *DNSServer) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.names, canonical(name))
}

// Queries returns how many queries of name, of any type, the server got.
func (s *DNSServer) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[canonical(name)]
}

// Close stops the server: it closes its sockets and open connections, and
// returns when all its goroutines have ended. Calling it again does
// nothing.
func (s *DNSServer) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.pc.Close()
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *DNSServer) serveUDP() {
	buf := make([]byte, 65535)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := s.answer(buf[:n]); resp != nil {
			s.pc.WriteTo(resp, from)
		}
	}
}

func (s *DNSServer) serveTCP() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return
		}
		s.conns[conn] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, conn)
				s.mu.Unlock()
				conn.Close()
			}()
			s.serveConn(conn)
		})
	}
}

// serveConn answers the queries on one TCP connection, each framed by a
// two-byte length (RFC 1035 4.2.2), until the client closes it or is idle
// for ten seconds.
func (s *DNSServer) serveConn(conn net.Conn) {
	var l [2]byte
	for {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(conn, msg); err != nil {
			return
		}
		resp := s.answer(msg)
		if resp == nil {
			return
		}
		if _, err := conn.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(resp))), resp...)); err != nil {
			return
		}
	}
}

// answer returns the response to the query req, or nil for a message that
// is no query.
func (s *DNSServer) answer(req []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil || h.Response {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	key := canonical(q.Name.String())
	s.mu.Lock()
	s.queries[key]++
	r, ok := s.names[key]
	s.mu.Unlock()

	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	switch {
	case !ok:
		rh.RCode = dnsmessage.RCodeNameError
	case r.ServFail:
		rh.RCode = dnsmessage.RCodeServerFailure
	}
	if resp, err := build(rh, q, r, ok && !r.ServFail); err == nil {
		return resp
	}
	// Records that cannot be sent, such as an MX host name too long
	// for DNS: the server fails as a real one would.
	rh.RCode = dnsmessage.RCodeServerFailure
	resp, err := build(rh, q, r, false)
	if err != nil {
		return nil
	}
	return resp
}

// build packs the response to q, with the records of r of q's type when
// withAnswers.
func build(rh dnsmessage.Header, q dnsmessage.Question, r DNSRecords, withAnswers bool) ([]byte, error) {
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rrh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	if withAnswers {
		var err error
		switch q.Type {
		case dnsmessage.TypeTXT:
			for _, txt := range r.TXT {
				if err = b.TXTResource(rrh, dnsmessage.TXTResource{TXT: splitStrings(txt)}); err != nil {
					break
				}
			}
		case dnsmessage.TypeMX:
			for _, mx := range r.MX {
				var name dnsmessage.Name
				if name, err = dnsmessage.NewName(fqdn(mx.Host)); err != nil {
					break
				}
				if err = b.MXResource(rrh, dnsmessage.MXResource{Pref: mx.Pref, MX: name}); err != nil {
					break
				}
			}
		case dnsmessage.TypeA:
			for _, a := range r.Addrs {
				if a = a.Unmap(); a.Is4() {
					if err = b.AResource(rrh, dnsmessage.AResource{A: a.As4()}); err != nil {
						break
					}
				}
			}
		case dnsmessage.TypeAAAA:
			for _, a := range r.Addrs {
				if a.Is6() && !a.Is4In6() {
					if err = b.AAAAResource(rrh, dnsmessage.AAAAResource{AAAA: a.As16()}); err != nil {
						break
					}
				}
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// splitStrings returns strs with each string longer than 255 bytes cut into
// character-strings of at most 255 (RFC 1035 3.3).
func splitStrings(strs []string) []string {
	var out []string
	for _, s := range strs {
		for len(s) > 255 {
			out = append(out, s[:255])
			s = s[255:]
		}
		out = append(out, s)
	}
	return out
}

// fqdn returns name with a final dot.
func fqdn(name string) string {
	if len(name) > 0 && name[len(name)-1] == '.' {
		return name
	}
	return name + "."
}
