package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestReadNetstring(t *testing.T) {
	tests := []struct {
		in, data string
		err      string // substring of the error; "" for none
		eof      error  // io.EOF or io.ErrUnexpectedEOF
		tooLong  bool
	}{
		{in: "0:,", data: ""},
		{in: "12:hello world!,", data: "hello world!"},
		{in: "3:a\x00b,", data: "a\x00b"},
		{in: "17:postfix a.example,", data: "postfix a.example"},
		{in: "", eof: io.EOF},
		{in: "12", eof: io.ErrUnexpectedEOF},
		{in: "5:abc", eof: io.ErrUnexpectedEOF},
		{in: "3:abc", eof: io.ErrUnexpectedEOF},
		{in: ":abc,", err: `expected a digit at the start of the length, got ":"`},
		{in: "x", err: `expected a digit at the start of the length, got "x"`},
		{in: "01:a,", err: "leading zero in the length"},
		{in: "1x:a,", err: `expected a digit or ':' after length 1, got "x"`},
		{in: "3:abc;", err: `expected ',' after 3 bytes of data, got ";"`},
		{in: "3:abcd,", err: `expected ',' after 3 bytes of data, got "d"`},
		{in: "4097:", tooLong: true},
		{in: "99999999999999999999999999:", tooLong: true},
	}
	for _, tt := range tests {
		r := bufio.NewReader(strings.NewReader(tt.in))
		data, err := readNetstring(r, nil, maxRequest)
		switch {
		case tt.eof != nil:
			if err != tt.eof {
				t.Errorf("%q: error %v, want %v", tt.in, err, tt.eof)
			}
		case tt.tooLong:
			if !errors.Is(err, errNetstringTooLong) {
				t.Errorf("%q: error %v, want errNetstringTooLong", tt.in, err)
			}
		case tt.err != "":
			var nerr *netstringError
			if !errors.As(err, &nerr) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want a netstringError with %q", tt.in, err, tt.err)
			}
		default:
			if err != nil || string(data) != tt.data {
				t.Errorf("%q: got %q, %v; want %q", tt.in, data, err, tt.data)
			}
		}
	}
}

// A too-long netstring is refused before its data is read: the reader has
// consumed no more than the length.
func TestReadNetstringTooLongReadsNoData(t *testing.T) {
	in := "100000:" + strings.Repeat("x", 100000) + ","
	r := bufio.NewReader(strings.NewReader(in))
	if _, err := readNetstring(r, nil, 1000); !errors.Is(err, errNetstringTooLong) {
		t.Fatalf("error %v, want errNetstringTooLong", err)
	}
	rest, _ := io.ReadAll(r)
	if len(rest) < 100000 {
		t.Fatalf("%d bytes left unread, want the data", len(rest))
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct{ in, name, key, err string }{
		{in: "postfix example.com", name: "postfix", key: "example.com"},
		{in: "postfix ", name: "postfix", key: ""},
		{in: "m a b", name: "m", key: "a b"},
		{in: " example.com", err: "empty map name"},
		{in: "postfix", err: `no space between map name and key in "postfix"`},
		{in: "", err: "no space"},
		{in: strings.Repeat("\x1b", 100), err: `"\x1b\x1b`},
	}
	for _, tt := range tests {
		name, key, err := parseRequest([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.in, err, tt.err)
			}
			if err != nil && len(err.Error()) > 64*4+100 {
				t.Errorf("%q: error of %d bytes, want input quoted short", tt.in, len(err.Error()))
			}
			continue
		}
		if err != nil || string(name) != tt.name || key != tt.key {
			t.Errorf("%q: got %q %q %v", tt.in, name, key, err)
		}
	}
}

func FuzzReadNetstring(f *testing.F) {
	f.Add([]byte("0:,"))
	f.Add([]byte("19:postfix example.com,"))
	f.Add([]byte("3:abc,5:hello,"))
	f.Add([]byte("01:a,"))
	f.Add([]byte("4097:"))
	f.Add([]byte("3:abc"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		consumed := 0
		for {
			data, err := readNetstring(r, nil, maxRequest)
			if err != nil {
				if len(err.Error()) > 300 {
					t.Fatalf("error of %d bytes: %.100s", len(err.Error()), err)
				}
				return
			}
			if len(data) > maxRequest {
				t.Fatalf("data of %d bytes over the limit", len(data))
			}
			// What was read is exactly the netstring of data.
			enc := appendNetstring(nil, string(data))
			if !bytes.Equal(in[consumed:consumed+len(enc)], enc) {
				t.Fatalf("read %q from %q", data, in[consumed:])
			}
			consumed += len(enc)
			name, key, err := parseRequest(data)
			if err == nil && (len(name) == 0 || string(name)+" "+key != string(data)) {
				t.Fatalf("request %q parsed as %q %q", data, name, key)
			}
		}
	})
}

// smTestServer starts s on a TCP loopback listener and a unix socket, and
// drains it when the test ends.
func smTestServer(t *testing.T, s *smServer) (tcpAddr, unixPath string) {
	t.Helper()
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unixPath = filepath.Join(t.TempDir(), "sm.sock")
	ul, err := net.Listen("unix", unixPath)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, ln := range []net.Listener{tl, ul} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.serve(ln); err != nil {
				t.Errorf("serve: %v", err)
			}
		}()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.drain(ctx)
		wg.Wait()
	})
	return tl.Addr().String(), unixPath
}

// smReply is a socketmap reply: a status and its data (OK) or reason (TEMP,
// TIMEOUT, PERM); NOTFOUND has none.
type smReply struct {
	status string
	text   string
}

// appendNetstring appends data to b as a netstring.
func appendNetstring(b []byte, data string) []byte {
	b = strconv.AppendInt(b, int64(len(data)), 10)
	b = append(b, ':')
	b = append(b, data...)
	return append(b, ',')
}

// replies adapts a handler returning an smReply to an smHandler.
func replies(h func(ctx context.Context, name, key string) smReply) smHandler {
	return func(ctx context.Context, name []byte, key string, dst []byte) (string, []byte) {
		rep := h(ctx, string(name), key)
		return rep.status, append(dst, rep.text...)
	}
}

func echoHandler(_ context.Context, name, key string) smReply {
	switch {
	case name != "postfix":
		return smReply{statusPerm, "unknown map"}
	case key == "missing":
		return smReply{statusNotFound, ""}
	}
	return smReply{statusOK, "value of " + key}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// waitIdle waits until the server holds n connections, none of them busy:
// a connection becomes idle just after its reply is written.
func waitIdle(t *testing.T, s *smServer, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); runtime.Gosched() {
		s.mu.Lock()
		idle := 0
		for c := range s.conns {
			if !c.busy {
				idle++
			}
		}
		s.mu.Unlock()
		if idle == n {
			return
		}
	}
	t.Fatalf("the server never held %d idle connections", n)
}

// exchange writes raw to conn and reads one netstring back.
func exchange(t *testing.T, conn net.Conn, r *bufio.Reader, raw string) string {
	t.Helper()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("writing %q: %v", raw, err)
	}
	data, err := readNetstring(r, nil, maxReply)
	if err != nil {
		t.Fatalf("reading the reply to %q: %v", raw, err)
	}
	return string(data)
}

// expectClosed reads from conn until the server closes it.
func expectClosed(t *testing.T, conn net.Conn, r *bufio.Reader) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(r); err != nil {
		t.Fatalf("expected the server to close the connection, got %v", err)
	}
}

func TestSocketmapServerProtocol(t *testing.T) {
	s := newSMServer(replies(echoHandler), quietLogger())
	tcpAddr, unixPath := smTestServer(t, s)
	for _, addr := range []struct{ network, addr string }{{"tcp", tcpAddr}, {"unix", unixPath}} {
		t.Run(addr.network, func(t *testing.T) {
			conn, err := net.Dial(addr.network, addr.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			// Several requests on one connection, as Postfix sends them.
			if got := exchange(t, conn, r, "19:postfix example.com,"); got != "OK value of example.com" {
				t.Errorf("got %q", got)
			}
			if got := exchange(t, conn, r, "15:postfix missing,"); got != "NOTFOUND " {
				t.Errorf("got %q", got)
			}
			if got := exchange(t, conn, r, "13:other example,"); got != "PERM unknown map" {
				t.Errorf("got %q", got)
			}
			// A request without a space: PERM, and the connection stays.
			if got := exchange(t, conn, r, "7:postfix,"); !strings.HasPrefix(got, "PERM malformed request: no space") {
				t.Errorf("got %q", got)
			}
			// Two requests in one write are answered in turn.
			if got := exchange(t, conn, r, "9:postfix a,9:postfix b,"); got != "OK value of a" {
				t.Errorf("got %q", got)
			}
			if data, err := readNetstring(r, nil, maxReply); err != nil || string(data) != "OK value of b" {
				t.Errorf("got %q, %v", data, err)
			}
		})
	}
}

func TestSocketmapServerBadInput(t *testing.T) {
	s := newSMServer(replies(echoHandler), quietLogger())
	s.readTimeout = 200 * time.Millisecond
	tcpAddr, _ := smTestServer(t, s)
	for _, tt := range []struct{ name, in, reply string }{
		{"not a netstring", "GET / HTTP/1.0\r\n\r\n", `PERM malformed netstring: expected a digit at the start of the length, got "G"`},
		{"no comma", "3:abc;", `PERM malformed netstring: expected ',' after 3 bytes of data, got ";"`},
		{"over-long", "100000:" + strings.Repeat("a", 1000), "PERM netstring too long: length 10000 and counting, over the limit of 4096 bytes"},
		{"over-long key", "5000:postfix " + strings.Repeat("a", 4992) + ",", "PERM netstring too long: length 5000 and counting, over the limit of 4096 bytes"},
		{"leading zero", "019:postfix example.com,", "PERM malformed netstring: leading zero in the length"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", tcpAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			if got := exchange(t, conn, r, tt.in); got != tt.reply {
				t.Errorf("got %q, want %q", got, tt.reply)
			}
			expectClosed(t, conn, r)
		})
	}
	// A slow client that starts a request and stops is closed after the
	// read timeout, without a reply.
	t.Run("slow", func(t *testing.T) {
		conn, err := net.Dial("tcp", tcpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "19:postfix ex")
		r := bufio.NewReader(conn)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
			t.Fatalf("got %q, %v; want the connection closed without a reply", rest, err)
		}
	})
}

// A client that connects and sends nothing is closed after the idle timeout.
func TestSocketmapServerIdleTimeout(t *testing.T) {
	s := newSMServer(replies(echoHandler), quietLogger())
	s.idleTimeout = 100 * time.Millisecond
	_, unixPath := smTestServer(t, s)
	conn, err := net.Dial("unix", unixPath)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	expectClosed(t, conn, bufio.NewReader(conn))
}

// Beyond maxConns, the connection idle longest is closed to make room; when
// every connection is busy, the new one is closed.
func TestSocketmapServerConnectionLimit(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	handler := func(ctx context.Context, name, key string) smReply {
		if key == "block" {
			started <- struct{}{}
			<-release
		}
		return echoHandler(ctx, name, key)
	}
	s := newSMServer(replies(handler), quietLogger())
	s.maxConns = 2
	tcpAddr, _ := smTestServer(t, s)
	dial := func() (net.Conn, *bufio.Reader) {
		conn, err := net.Dial("tcp", tcpAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn, bufio.NewReader(conn)
	}
	c1, r1 := dial()
	exchange(t, c1, r1, "9:postfix a,") // idle since
	// The server marks a connection idle after it writes the reply:
	// wait for c1's mark, so that c1 is idle longest whatever the load.
	waitIdle(t, s, 1)
	c2, r2 := dial()
	exchange(t, c2, r2, "9:postfix b,")
	waitIdle(t, s, 2)
	c3, r3 := dial()
	// c1, idle longest, made room for c3.
	if got := exchange(t, c3, r3, "9:postfix c,"); got != "OK value of c" {
		t.Errorf("got %q", got)
	}
	expectClosed(t, c1, r1)
	// Make both held connections busy; a new one is then closed at once.
	io.WriteString(c2, "13:postfix block,")
	io.WriteString(c3, "13:postfix block,")
	<-started
	<-started
	c4, r4 := dial()
	expectClosed(t, c4, r4)
	close(release)
	for _, c := range []struct {
		conn net.Conn
		r    *bufio.Reader
	}{{c2, r2}, {c3, r3}} {
		if data, err := readNetstring(c.r, nil, maxReply); err != nil || string(data) != "OK value of block" {
			t.Errorf("got %q, %v", data, err)
		}
	}
}

// 10,000 idle connections: the server holds at most maxConns of them, so
// its goroutines and memory stay bounded, and a new client is answered.
func TestSocketmapServerManyIdleConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 connections")
	}
	const n, limit = 10000, 200
	s := newSMServer(replies(echoHandler), quietLogger())
	s.maxConns = limit
	_, unixPath := smTestServer(t, s)
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		conn, err := net.Dial("unix", unixPath)
		// A unix socket refuses connections (EAGAIN) while its accept
		// queue is full: wait for the server to take them.
		for deadline := time.Now().Add(10 * time.Second); errors.Is(err, syscall.EAGAIN) && time.Now().Before(deadline); {
			runtime.Gosched()
			conn, err = net.Dial("unix", unixPath)
		}
		if err != nil {
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		conns = append(conns, conn)
		if got := s.connections(); got > limit {
			t.Fatalf("server holds %d connections, limit %d", got, limit)
		}
	}
	conn, err := net.Dial("unix", unixPath)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := exchange(t, conn, bufio.NewReader(conn), "9:postfix a,"); got != "OK value of a" {
		t.Errorf("got %q", got)
	}
	// The goroutines of evicted connections end soon after their close.
	got := runtime.NumGoroutine() - before
	for deadline := time.Now().Add(10 * time.Second); got > limit+10 && time.Now().Before(deadline); runtime.Gosched() {
		got = runtime.NumGoroutine() - before
	}
	if got > limit+10 {
		t.Errorf("%d goroutines more than before, want at most the limit %d and a few", got, limit)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("%d connections made, %d held; heap in use %d KiB, goroutine stacks %d KiB", n, s.connections(), ms.HeapInuse>>10, ms.StackInuse>>10)
}

// Drain lets a request being answered finish, closes idle connections, and
// refuses new ones.
func TestSocketmapServerDrain(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	handler := func(ctx context.Context, name, key string) smReply {
		if key == "block" {
			close(started)
			<-release
		}
		return echoHandler(ctx, name, key)
	}
	s := newSMServer(replies(handler), quietLogger())
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.serve(tl) }()
	busy, err := net.Dial("tcp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	idle, err := net.Dial("tcp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	ri := bufio.NewReader(idle)
	exchange(t, idle, ri, "9:postfix a,")
	io.WriteString(busy, "13:postfix block,")
	<-started
	drained := make(chan error, 1)
	go func() { drained <- s.drain(context.Background()) }()
	expectClosed(t, idle, ri)
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	if _, err := net.Dial("tcp", tl.Addr().String()); err == nil {
		t.Errorf("a new connection was accepted while draining")
	}
	close(release)
	rb := bufio.NewReader(busy)
	busy.SetReadDeadline(time.Now().Add(10 * time.Second))
	if data, err := readNetstring(rb, nil, maxReply); err != nil || string(data) != "OK value of block" {
		t.Errorf("in-flight request: got %q, %v", data, err)
	}
	expectClosed(t, busy, rb)
	if err := <-drained; err != nil {
		t.Errorf("drain: %v", err)
	}
}

// Drain with a deadline closes connections still answering when it passes,
// and ends the handlers' context.
func TestSocketmapServerDrainDeadline(t *testing.T) {
	started := make(chan struct{})
	handler := func(ctx context.Context, name, key string) smReply {
		close(started)
		<-ctx.Done()
		return smReply{statusTemp, "stopping"}
	}
	s := newSMServer(replies(handler), quietLogger())
	tcpAddr, _ := smTestServer(t, s)
	conn, err := net.Dial("tcp", tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "9:postfix a,")
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.drain(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("drain: %v, want context.Canceled", err)
	}
	expectClosed(t, conn, bufio.NewReader(conn))
}
