package mtaststest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtasts-go/mtasts"
)

// Response is what the PolicyServer answers for a domain's policy URL.
type Response struct {
	// Status is the HTTP status; 0 means 200, or 301 with a Location
	// header set.
	Status int
	// Header holds extra response headers, such as Location for a
	// redirect. Content-Type defaults to text/plain; set it to "" to send
	// none.
	Header map[string]string
	// Body is the response body: for status 200, the policy text.
	Body string
	// Delay holds back the response, headers included, for this long or
	// until the client gives up.
	Delay time.Duration
}

// PolicyServer is an HTTPS server on loopback that serves each domain's
// policy at https://mta-sts.<domain>/.well-known/mta-sts.txt, with a
// certificate issued for mta-sts.<domain> by a CA it makes in memory.
// Domains that were never set do not exist: fetching their policy fails as
// for a host name that does not resolve. It is safe for concurrent use.
type PolicyServer struct {
	srv    *httptest.Server
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	pool   *x509.CertPool

	mu        sync.Mutex
	responses map[string]Response        // by domain
	certs     map[string]tls.Certificate // by server name, issued or set
	requests  map[string]*atomic.Int64   // by domain
	release   chan struct{}              // closed by Close, ends delays

	// transports made by Client and Install, whose idle connections are closed when a
	// certificate or a domain changes, so that the next request sees it.
	transports []*http.Transport
}

// StartPolicyServer starts a PolicyServer; the caller must Close it. In a
// test, t.Cleanup(server.Close) does.
func StartPolicyServer() (*PolicyServer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mtaststest CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	s := &PolicyServer{
		caCert:    caCert,
		caKey:     key,
		pool:      x509.NewCertPool(),
		responses: map[string]Response{},
		certs:     map[string]tls.Certificate{},
		requests:  map[string]*atomic.Int64{},
		release:   make(chan struct{}),
	}
	s.pool.AddCert(caCert)
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.EnableHTTP2 = true
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are tests' business
	s.srv.TLS = &tls.Config{GetCertificate: s.certificate}
	s.srv.StartTLS()
	return s, nil
}

// Close stops the server, ending delayed responses.
func (s *PolicyServer) Close() {
	s.mu.Lock()
	select {
	case <-s.release:
	default:
		close(s.release)
	}
	s.mu.Unlock()
	s.srv.Close()
}

// Addr returns the server's address, host:port on loopback.
func (s *PolicyServer) Addr() string {
	return s.srv.Listener.Addr().String()
}

// CACertificatePEM returns the server's CA certificate in PEM form: for
// programs that take a CA file, such as mtasts check --ca, and for a pool
// of roots with x509.CertPool.AppendCertsFromPEM. Client and Install trust
// it already.
func (s *PolicyServer) CACertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.caCert.Raw})
}

// SetPolicy serves policy for domain, with status 200 and media type
// text/plain.
func (s *PolicyServer) SetPolicy(domain, policy string) {
	s.SetResponse(domain, Response{Body: policy})
}

// SetResponse makes the server answer r for domain's policy.
func (s *PolicyServer) SetResponse(domain string, r Response) {
	r.Header = maps.Clone(r.Header) // the caller may reuse its map
	s.mu.Lock()
	defer s.mu.Unlock()
	s.responses[canonical(domain)] = r
}

// Remove makes domain's policy host not exist. Idle connections of the
// clients made by Client are closed, so that the next fetch fails to resolve
// the host instead of reusing a connection.
func (s *PolicyServer) Remove(domain string) {
	s.mu.Lock()
	delete(s.responses, canonical(domain))
	s.mu.Unlock()
	s.closeIdle()
}

// Requests returns how many requests domain's policy host got, whatever
// their path, since the domain was first set.
func (s *PolicyServer) Requests(domain string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.requests[canonical(domain)]; n != nil {
		return int(n.Load())
	}
	return 0
}

// IssueCertificate returns a certificate for names issued by the server's
// CA, valid from notBefore to notAfter. It returns an error when names is
// empty or the certificate cannot be made.
func (s *PolicyServer) IssueCertificate(notBefore, notAfter time.Time, names ...string) (tls.Certificate, error) {
	if len(names) == 0 {
		return tls.Certificate{}, fmt.Errorf("mtaststest: no names to issue a certificate for")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.caCert, &key.PublicKey, s.caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// SetCertificate makes the server present cert for mta-sts.<domain>
// instead of the certificate it issues itself: one for another name, an
// expired one, or one from another CA. Idle connections of the clients made
// by Client are closed, so that the next fetch makes a new TLS handshake.
func (s *PolicyServer) SetCertificate(domain string, cert tls.Certificate) {
	s.mu.Lock()
	s.certs["mta-sts."+canonical(domain)] = cert
	s.mu.Unlock()
	s.closeIdle()
}

// closeIdle closes the idle connections of the clients made by Client.
func (s *PolicyServer) closeIdle() {
	s.mu.Lock()
	transports := slices.Clone(s.transports)
	s.mu.Unlock()
	for _, tr := range transports {
		tr.CloseIdleConnections()
	}
}

// certificate returns the certificate for the name the client asked for,
// issuing one on first use.
func (s *PolicyServer) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := canonical(hello.ServerName)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.certs[name]; ok {
		return &c, nil
	}
	if name == "" {
		return nil, fmt.Errorf("mtaststest: client sent no server name")
	}
	c, err := s.IssueCertificate(time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), name)
	if err != nil {
		return nil, err
	}
	s.certs[name] = c
	return &c, nil
}

func (s *PolicyServer) serve(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	domain, ok := strings.CutPrefix(canonical(host), "mta-sts.")
	s.mu.Lock()
	resp, known := s.responses[domain]
	if ok && known {
		if s.requests[domain] == nil {
			s.requests[domain] = &atomic.Int64{}
		}
		s.requests[domain].Add(1)
	}
	release := s.release
	s.mu.Unlock()
	if !ok || !known || r.URL.Path != mtasts.WellKnownPath {
		http.NotFound(w, r)
		return
	}

	if resp.Delay > 0 {
		timer := time.NewTimer(resp.Delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return
		case <-release:
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	for k, v := range resp.Header {
		if v == "" {
			w.Header()[http.CanonicalHeaderKey(k)] = nil // no header, and no sniffing
		} else {
			w.Header().Set(k, v)
		}
	}
	status := resp.Status
	if status == 0 && w.Header().Get("Location") != "" {
		status = http.StatusMovedPermanently
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(status)
	io.WriteString(w, resp.Body)
}

// Client returns an HTTP client that reaches the server for the policy host
// of every domain set, trusts only the server's CA, and fails for other
// domains as for a name that does not resolve. Give it to the code under
// test, as an mtasts.Client's HTTPClient; Install gives it to the package
// functions instead.
//
// Its transport is the library's own, from mtasts.NewTransport, with the
// limits of mtasts.HTTPClient. The server listens on loopback, which the
// library refuses to connect to by default; the client allows it as a user
// would, with mtasts.AllowLoopback, and refuses every other special-purpose
// address.
func (s *PolicyServer) Client() *http.Client {
	dialer := mtasts.NewDialer(mtasts.AllowLoopback)
	tr := mtasts.NewTransport(mtasts.AllowLoopback)
	tr.TLSClientConfig.RootCAs = s.pool
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		domain, ok := strings.CutPrefix(canonical(host), "mta-sts.")
		s.mu.Lock()
		_, known := s.responses[domain]
		s.mu.Unlock()
		if !ok || !known {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		// As if mta-sts.<domain> resolved to the server's address.
		return dialer.DialContext(ctx, network, s.Addr())
	}
	s.mu.Lock()
	s.transports = append(s.transports, tr)
	s.mu.Unlock()
	return &http.Client{Transport: tr}
}

// Install points mtasts.HTTPClient at the server, a client as Client makes,
// so that mtasts.FetchPolicy, mtasts.Get and whatever else uses the
// package-level client fetch from it. It returns a function that restores
// the previous client: in a test, t.Cleanup(server.Install()). Tests that
// call it must not run in parallel with other tests that use
// mtasts.HTTPClient.
func (s *PolicyServer) Install() (restore func()) {
	orig := mtasts.HTTPClient
	mtasts.HTTPClient = s.Client()
	return func() { mtasts.HTTPClient = orig }
}
