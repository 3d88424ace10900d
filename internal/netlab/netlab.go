// Package netlab runs tests and benchmarks that need well-known ports (DNS
// on 53, HTTPS on 443, SMTP on 25) and the system's resolver, as Postfix
// and other daemons use them, without touching the host: the program
// re-executes itself in a private network and mount namespace (Linux,
// root), where only a loopback interface exists, brings it up, points
// /etc/resolv.conf at 127.0.0.1 there, and forwards the well-known ports to
// the test kit's servers on their random ones.
package netlab

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Forwarder relays connections and datagrams arriving at one address to
// another, on loopback. It is how a server of the test kit, listening on a
// random port, answers on a well-known one.
type Forwarder struct {
	ln net.Listener
	pc net.PacketConn
	wg sync.WaitGroup

	mu     sync.Mutex
	conns  map[io.Closer]struct{}
	closed bool
}

// Forward relays TCP connections and, when udp is set, UDP datagrams
// arriving at from (such as "127.0.0.1:53", or port 0 for a random port,
// the same for both) to to. Each datagram is sent
// from a socket of its own, and the first reply within five seconds is
// sent back: one query, one answer, as DNS over UDP has it. The caller must
// Close the Forwarder.
func Forward(from, to string, udp bool) (*Forwarder, error) {
	f := &Forwarder{conns: map[io.Closer]struct{}{}}
	var err error
	if f.ln, err = net.Listen("tcp", from); err != nil {
		return nil, err
	}
	if udp {
		// The TCP listener's address, so that port 0 picks one port
		// for both.
		if f.pc, err = net.ListenPacket("udp", f.ln.Addr().String()); err != nil {
			f.ln.Close()
			return nil, err
		}
		f.wg.Go(func() { f.relayUDP(to) })
	}
	f.wg.Go(func() { f.acceptTCP(to) })
	return f, nil
}

// Addr returns the address the Forwarder listens on, for TCP and UDP.
func (f *Forwarder) Addr() string {
	return f.ln.Addr().String()
}

// Active returns how many connections are open through f: each relayed
// TCP connection counts twice (the accepted one and the one to the target)
// while both are open, and each UDP query waiting for its answer once.
func (f *Forwarder) Active() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

// Close stops relaying, closes the connections being relayed, and returns
// when every goroutine of f has ended.
func (f *Forwarder) Close() {
	f.mu.Lock()
	f.closed = true
	f.ln.Close()
	if f.pc != nil {
		f.pc.Close()
	}
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// track adds c to the connections Close closes; it returns false, having
// closed c, once f is closed.
func (f *Forwarder) track(c io.Closer) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		c.Close()
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Forwarder) untrack(c io.Closer) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	c.Close()
}

func (f *Forwarder) acceptTCP(to string) {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		if !f.track(c) {
			return
		}
		f.wg.Go(func() {
			defer f.untrack(c)
			u, err := net.Dial("tcp", to)
			if err != nil {
				return
			}
			if !f.track(u) {
				return
			}
			defer f.untrack(u)
			done := make(chan struct{})
			go func() {
				copyPlain(u, c)
				if tc, ok := u.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				close(done)
			}()
			copyPlain(c, u)
			if tc, ok := c.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			<-done
			// Both ways are done: close without TIME_WAIT. Held on
			// the listening side of a loopback connection for a
			// minute, it makes a new connection that reuses the
			// client's port wait for a SYN retransmission, and with
			// thousands of short connections, as a benchmark makes,
			// ports are reused within the minute.
			for _, x := range []net.Conn{c, u} {
				if tc, ok := x.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
			}
		})
	}
}

// copyPlain copies from src to dst through a small buffer. io.Copy between
// two TCP connections splices through a pair of pipes per copy, released
// only when the garbage collector gets to them: thousands of connections
// would hold thousands of pipes.
func copyPlain(dst io.Writer, src io.Reader) {
	buf := make([]byte, 8192)
	io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
}

func (f *Forwarder) relayUDP(to string) {
	buf := make([]byte, 65535)
	for {
		n, from, err := f.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		q := append([]byte(nil), buf[:n]...)
		u, err := net.Dial("udp", to)
		if err != nil {
			continue
		}
		if !f.track(u) {
			return
		}
		f.wg.Go(func() {
			defer f.untrack(u)
			if _, err := u.Write(q); err != nil {
				return
			}
			u.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp := make([]byte, 65535)
			m, err := u.Read(resp)
			if err != nil {
				return
			}
			f.pc.WriteTo(resp[:m], from)
		})
	}
}

// ErrNotIsolated is returned by the functions that change the system's
// view of the network when the process is not in a namespace made by
// Command: they would change the host's.
var ErrNotIsolated = errors.New("netlab: not in a private network namespace made by netlab.Command")
