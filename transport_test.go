package mtasts_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
)

// hugeHeaders is a set of response headers of about size bytes in all,
// 1 KB each.
func hugeHeaders(size int) http.Header {
	h := http.Header{}
	value := strings.Repeat("x", 1000)
	for i := 0; i*1000 < size; i++ {
		h["X-Pad-"+strconv.Itoa(i)] = []string{value}
	}
	return h
}

// useDefaultTransport points mtasts.HTTPClient for the test at a copy of the
// default client's transport that trusts the test CA and sends every
// connection to addr, through dial.
func useDefaultTransport(t testing.TB, ca *testCA, addr string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	orig := mtasts.HTTPClient
	t.Cleanup(func() { mtasts.HTTPClient = orig })
	tr := orig.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: ca.pool}
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial(ctx, network, addr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	client := *orig
	client.Transport = tr
	mtasts.HTTPClient = &client
	return tr
}

// TestFetchPolicyHugeHeaders checks that a policy host sending megabytes
// of response headers makes the fetch fail once the default client has read
// MaxResponseHeaderBytes, over HTTP/1.1 and HTTP/2.
func TestFetchPolicyHugeHeaders(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.issue(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "mta-sts.example.com")
	for _, tc := range []struct {
		size  int
		http2 bool
	}{{4 << 20, false}, {4 << 20, true}, {16 << 10, false}, {16 << 10, true}} {
		headers := hugeHeaders(tc.size)
		http2 := tc.http2
		t.Run("size="+strconv.Itoa(tc.size)+",http2="+strconv.FormatBool(http2), func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h := w.Header()
				for k, v := range headers {
					h[k] = v
				}
				h.Set("Content-Type", "text/plain")
				io.WriteString(w, goodPolicy)
			}))
			srv.EnableHTTP2 = http2
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
			srv.StartTLS()
			t.Cleanup(srv.Close)
			var d net.Dialer
			useDefaultTransport(t, ca, srv.Listener.Addr().String(), d.DialContext)

			_, _, err := mtasts.FetchPolicy(context.Background(), mustDomain(t, "example.com"))
			if tc.size < mtasts.MaxResponseHeaderBytes {
				// Below the limit, large headers are still read.
				if err != nil {
					t.Fatalf("FetchPolicy with %d bytes of headers: %v", tc.size, err)
				}
				return
			}
			checkFailure(t, err, mtasts.ErrPolicyFetch, "mta-sts-policy-fetch-error")
			// HTTP/2 reports a decoding limit as a PROTOCOL_ERROR,
			// without saying which.
			if !http2 && !strings.Contains(err.Error(), "headers exceeded") {
				t.Errorf("error %v does not say the headers were too large", err)
			}
		})
	}
}

// TestDefaultTransportLimits checks the limits of the default client's
// transport, which a fetch from a hostile host relies on.
func TestDefaultTransportLimits(t *testing.T) {
	tr, ok := mtasts.HTTPClient.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("HTTPClient.Transport is a %T, want *http.Transport", mtasts.HTTPClient.Transport)
	}
	if tr == http.DefaultTransport {
		t.Errorf("HTTPClient uses http.DefaultTransport, shared with the whole program")
	}
	if tr.MaxResponseHeaderBytes != mtasts.MaxResponseHeaderBytes || mtasts.MaxResponseHeaderBytes != 64<<10 {
		t.Errorf("MaxResponseHeaderBytes = %d, want %d (64 KiB)", tr.MaxResponseHeaderBytes, mtasts.MaxResponseHeaderBytes)
	}
	if tr.TLSHandshakeTimeout <= 0 || tr.TLSHandshakeTimeout > 30*time.Second {
		t.Errorf("TLSHandshakeTimeout = %v", tr.TLSHandshakeTimeout)
	}
	if tr.MaxIdleConns <= 0 || tr.MaxIdleConns > 1000 || tr.MaxIdleConnsPerHost <= 0 || tr.MaxIdleConnsPerHost > tr.MaxIdleConns {
		t.Errorf("MaxIdleConns = %d, MaxIdleConnsPerHost = %d", tr.MaxIdleConns, tr.MaxIdleConnsPerHost)
	}
	if tr.IdleConnTimeout <= 0 || tr.IdleConnTimeout > 2*time.Minute {
		t.Errorf("IdleConnTimeout = %v", tr.IdleConnTimeout)
	}
	if tr.MaxConnsPerHost <= 0 {
		t.Errorf("MaxConnsPerHost = %d, want a limit", tr.MaxConnsPerHost)
	}
	if tr.Proxy != nil {
		t.Errorf("the default transport uses a proxy: the guard would check the proxy's address, not the policy host's")
	}
	if !tr.ForceAttemptHTTP2 {
		t.Errorf("ForceAttemptHTTP2 off")
	}
}

// rawTLSServer answers every connection with response, whatever the
// request, and closes it: a policy host that need not allocate to send
// megabytes of headers, so that a benchmark counts the client's allocations.
func rawTLSServer(b *testing.B, cert tls.Certificate, response []byte) string {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				conn.Write(response)
			})
		}
	})
	return ln.Addr().String()
}

// BenchmarkFetchPolicyHugeHeaders fetches from a host that sends 4 MB of
// response headers, with the default client's limit and with net/http's
// default limit of 10 MB, to show what the limit saves.
func BenchmarkFetchPolicyHugeHeaders(b *testing.B) {
	ca := newTestCA(b)
	cert, err := ca.kit.IssueCertificate(time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "mta-sts.example.com")
	if err != nil {
		b.Fatal(err)
	}
	var resp strings.Builder
	resp.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
	hugeHeaders(4 << 20).Write(&resp)
	resp.WriteString("Content-Length: " + strconv.Itoa(len(goodPolicy)) + "\r\n\r\n" + goodPolicy)
	addr := rawTLSServer(b, cert, []byte(resp.String()))

	for _, limit := range []int64{mtasts.MaxResponseHeaderBytes, 0} {
		name := "limit=" + strconv.FormatInt(limit, 10)
		if limit == 0 {
			name = "limit=net/http-default"
		}
		b.Run(name, func(b *testing.B) {
			var d net.Dialer
			tr := useDefaultTransport(b, ca, addr, d.DialContext)
			tr.MaxResponseHeaderBytes = limit
			b.ReportAllocs()
			for b.Loop() {
				_, _, err := mtasts.FetchPolicy(context.Background(), mustDomain(b, "example.com"))
				if limit != 0 && !errors.Is(err, mtasts.ErrPolicyFetch) {
					b.Fatalf("FetchPolicy: %v, want ErrPolicyFetch", err)
				}
			}
		})
	}
}
