package mtaststest_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mjl-/adns"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/testkit"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// resolverFor returns a resolver that sends every query to the server, over
// the network the resolver asks for (UDP first, TCP after truncation).
func resolverFor(s *mtaststest.DNSServer) *adns.Resolver {
	return &adns.Resolver{
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.Addr())
		},
	}
}

func TestDNSServerAnswers(t *testing.T) {
	s := testkit.DNSServer(t)
	ap, err := netip.ParseAddrPort(s.Addr())
	if err != nil || ap.Addr() != netip.MustParseAddr("127.0.0.1") || ap.Port() == 0 {
		t.Fatalf("Addr() = %q, want 127.0.0.1 and a port", s.Addr())
	}
	long := strings.Repeat("a", 300)
	s.Set("_mta-sts.example.com", mtaststest.DNSRecords{TXT: [][]string{{"v=STSv1; ", "id=1"}, {"other"}}})
	s.Set("example.com.", mtaststest.DNSRecords{MX: []*net.MX{{Host: "mx2.example.com", Pref: 20}, {Host: "mx1.example.com.", Pref: 10}}})
	s.Set("MX1.example.com", mtaststest.DNSRecords{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}})
	s.Set("long.example.com", mtaststest.DNSRecords{TXT: [][]string{{long}}})
	s.Set("empty.example.com", mtaststest.DNSRecords{})
	s.Set("broken.example.com", mtaststest.DNSRecords{TXT: [][]string{{"x"}}, ServFail: true})
	r := resolverFor(s)
	ctx := context.Background()

	txts, _, err := r.LookupTXT(ctx, "_mta-sts.example.com.")
	if err != nil || !slices.Equal(txts, []string{"v=STSv1; id=1", "other"}) {
		t.Errorf("TXT: %q, %v; want the strings of each record joined", txts, err)
	}
	// Through the library, as a sender looks it up.
	domain, _ := mtasts.ParseDomain("example.com")
	rec, _, err := mtasts.LookupRecord(ctx, r, domain)
	if err != nil || rec.ID != "1" {
		t.Errorf("LookupRecord: %+v, %v", rec, err)
	}
	// A string over 255 bytes goes out as several character-strings.
	if txts, _, err := r.LookupTXT(ctx, "long.example.com."); err != nil || !slices.Equal(txts, []string{long}) {
		t.Errorf("long TXT: %d strings, %v", len(txts), err)
	}
	mxs, _, err := r.LookupMX(ctx, "example.com.")
	if err != nil || len(mxs) != 2 {
		t.Fatalf("MX: %v, %v", mxs, err)
	}
	var got []string
	for _, mx := range mxs {
		got = append(got, mx.Host+"/"+strconv.Itoa(int(mx.Pref)))
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"mx1.example.com./10", "mx2.example.com./20"}) {
		t.Errorf("MX: %q", got)
	}
	ips, _, err := r.LookupIPAddr(ctx, "mx1.example.com.")
	var addrs []string
	for _, ip := range ips {
		addrs = append(addrs, ip.IP.String())
	}
	slices.Sort(addrs)
	if err != nil || !slices.Equal(addrs, []string{"127.0.0.1", "::1"}) {
		t.Errorf("A and AAAA: %q, %v", addrs, err)
	}

	var derr *adns.DNSError
	if _, _, err := r.LookupTXT(ctx, "unknown.example.com."); !errors.As(err, &derr) || !derr.IsNotFound {
		t.Errorf("name never set: %v, want not found", err)
	}
	if _, _, err := r.LookupTXT(ctx, "empty.example.com."); !errors.As(err, &derr) || !derr.IsNotFound {
		t.Errorf("name without TXT records: %v, want not found", err)
	}
	if _, _, err := r.LookupTXT(ctx, "broken.example.com."); !errors.As(err, &derr) || derr.IsNotFound || !derr.IsTemporary {
		t.Errorf("ServFail: %v, want a temporary error", err)
	}
	s.Remove("_mta-sts.example.com")
	if _, _, err := r.LookupTXT(ctx, "_mta-sts.example.com."); !errors.As(err, &derr) || !derr.IsNotFound {
		t.Errorf("after Remove: %v, want not found", err)
	}
	if n := s.Queries("_MTA-STS.example.com."); n != 3 {
		t.Errorf("Queries(_mta-sts.example.com) = %d, want 3", n)
	}
	if n := s.Queries("nowhere.example"); n != 0 {
		t.Errorf("Queries of a name never asked = %d", n)
	}
}

// query sends one query over TCP, framed by its length (RFC 1035 4.2.2),
// and returns the answer's header and TXT strings.
func queryTCP(t *testing.T, conn net.Conn, name string) (dnsmessage.Header, [][]string) {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 7, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeTXT, Class: dnsmessage.ClassINET})
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)); err != nil {
		t.Fatal(err)
	}
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(conn, resp); err != nil {
		t.Fatal(err)
	}
	var m dnsmessage.Message
	if err := m.Unpack(resp); err != nil {
		t.Fatal(err)
	}
	var txts [][]string
	for _, a := range m.Answers {
		if txt, ok := a.Body.(*dnsmessage.TXTResource); ok {
			txts = append(txts, txt.TXT)
		}
	}
	return m.Header, txts
}

// TCP answers on the same port as UDP, several queries on one connection;
// Close ends open connections and frees the port.
func TestDNSServerTCPAndClose(t *testing.T) {
	s, err := mtaststest.StartDNSServer()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Set("a.example", mtaststest.DNSRecords{TXT: [][]string{{"one", "two"}}})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	for range 2 {
		h, txts := queryTCP(t, conn, "a.example.")
		if h.ID != 7 || !h.Response || h.RCode != dnsmessage.RCodeSuccess || len(txts) != 1 || !slices.Equal(txts[0], []string{"one", "two"}) {
			t.Errorf("over TCP: header %+v, TXT %q", h, txts)
		}
	}
	if h, _ := queryTCP(t, conn, "b.example."); h.RCode != dnsmessage.RCodeNameError {
		t.Errorf("unknown name over TCP: rcode %v, want NXDOMAIN", h.RCode)
	}

	// Close returns with the connection still open, having closed it.
	s.Close()
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after Close")
	}
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Errorf("TCP port %s still accepts after Close", s.Addr())
	}
	pc, err := net.ListenPacket("udp", s.Addr())
	if err != nil {
		t.Errorf("UDP port still bound after Close: %v", err)
	} else {
		pc.Close()
	}
	s.Close() // a second Close does nothing
}
