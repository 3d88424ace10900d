package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/smtp"
	"strings"
	"sync"
	"time"

	"github.com/mjl-/adns"
)

// network is how check reaches DNS, HTTPS and SMTP servers.
type network struct {
	resolver  *adns.Resolver
	custom    string // --resolver HOST:PORT: resolve host names through it too
	roots     *x509.CertPool
	httpsPort string
	smtpPort  string
	ehlo      string
}

// newNetwork returns a network that sends DNS queries to resolverAddr, or
// to the system's servers when it is empty, and trusts the system's roots
// plus those in caPEM.
func newNetwork(resolverAddr string, caPEM []byte) (*network, error) {
	n := &network{resolver: &adns.Resolver{}, httpsPort: "443", smtpPort: "25", ehlo: "localhost"}
	if resolverAddr != "" {
		if _, _, err := net.SplitHostPort(resolverAddr); err != nil {
			resolverAddr = net.JoinHostPort(resolverAddr, "53")
			if _, _, err := net.SplitHostPort(resolverAddr); err != nil {
				return nil, fmt.Errorf("--resolver %q: expected HOST:PORT", resolverAddr)
			}
		}
		n.custom = resolverAddr
		var d net.Dialer
		n.resolver.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, resolverAddr)
		}
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if len(caPEM) > 0 && !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("--ca: no PEM certificates in the file")
	}
	n.roots = roots
	return n, nil
}

// lookupTXT, lookupMX: the resolver's, with errors naming the server asked.
func (n *network) lookupTXT(ctx context.Context, name string) ([]string, adns.Result, error) {
	txts, result, err := n.resolver.LookupTXT(ctx, name)
	return txts, result, n.fixServer(err)
}

func (n *network) lookupMX(ctx context.Context, name string) ([]*net.MX, adns.Result, error) {
	mxs, result, err := n.resolver.LookupMX(ctx, name)
	return mxs, result, n.fixServer(err)
}

// fixServer makes a DNS error name the --resolver server: the resolver
// reports the server of /etc/resolv.conf it meant to ask, though Dial sent
// the query to --resolver.
func (n *network) fixServer(err error) error {
	var derr *adns.DNSError
	if n.custom != "" && errors.As(err, &derr) && derr.Server != "" {
		derr.Server = n.custom
	}
	return err
}

// dial connects to host on port, resolving host through the --resolver
// server when one was given, trying each address in turn.
func (n *network) dial(ctx context.Context, host, port string) (net.Conn, error) {
	var d net.Dialer
	if n.custom == "" {
		return d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	}
	addrs, _, err := n.resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, n.fixServer(err)
	}
	var errs []error
	for _, a := range addrs {
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(a.IP.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%s: no addresses", host)
	}
	return nil, errors.Join(errs...)
}

// lookupAddrs returns the IPv4 and IPv6 addresses of host, asking the
// --resolver server when one was given, else the system's resolver, in the
// order the resolver gives them. It returns an error when there are none.
func (n *network) lookupAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	var (
		ips []net.IPAddr
		err error
	)
	if n.custom != "" {
		ips, _, err = n.resolver.LookupIPAddr(ctx, host)
		err = n.fixServer(err)
	} else {
		ips, err = net.DefaultResolver.LookupIPAddr(ctx, host)
	}
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip.IP); ok {
			addrs = append(addrs, a.Unmap())
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%s: no addresses", host)
	}
	return addrs, nil
}

// httpTransport returns the transport for policy fetches: the given roots,
// the --https-port, no proxy (a sending MTA connects directly), no
// connection reuse between checks. Certificate verification stays on
// (RFC 8461 3.3).
func (n *network) httpTransport() *recordingTransport {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if port == "443" {
				port = n.httpsPort
			}
			return n.dial(ctx, host, port)
		},
		TLSClientConfig:   &tls.Config{RootCAs: n.roots},
		ForceAttemptHTTP2: true,
		DisableKeepAlives: true,
	}
	return &recordingTransport{inner: tr}
}

// recordingTransport keeps the last response's status line, headers and TLS
// state, for the report: FetchPolicy, the code under test, returns only the
// policy.
type recordingTransport struct {
	inner http.RoundTripper
	mu    sync.Mutex
	last  *http.Response
}

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.inner.RoundTrip(req)
	if err == nil {
		t.mu.Lock()
		t.last = resp
		t.mu.Unlock()
	}
	return resp, err
}

// take returns the last response recorded, and forgets it.
func (t *recordingTransport) take() *http.Response {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.last
	t.last = nil
	return r
}

// peekCertificate connects to host:port with TLS, without verifying, to show
// which certificate a server presents when verification failed.
func (n *network) peekCertificate(ctx context.Context, host, port string) (*x509.Certificate, error) {
	conn, err := n.dial(ctx, host, port)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// Only for display: the verdict came from the verifying fetch.
	tconn := tls.Client(conn, &tls.Config{ServerName: host, InsecureSkipVerify: true})
	if err := tconn.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	certs := tconn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	return certs[0], nil
}

// starttlsResult is what a STARTTLS probe of one address of an MX host
// found.
type starttlsResult struct {
	Host       string    `json:"host"`
	Addr       string    `json:"addr,omitempty"`
	STARTTLS   bool      `json:"starttls"`
	TLSVersion string    `json:"tls_version,omitempty"`
	Cert       *certInfo `json:"certificate,omitempty"`
	CertError  string    `json:"certificate_error,omitempty"`
	Error      string    `json:"error,omitempty"`
	certErr    error
}

// probeSTARTTLS connects to one address of an MX host as a sending MTA
// does: port 25, EHLO, STARTTLS, then checks the certificate as RFC 8461 4.2
// requires: a chain to a trusted root, not expired, a DNS-ID matching the MX
// host name under the rules of RFC 6125 (wildcards included). It returns an
// error when the exchange fails before the certificate could be checked.
func (n *network) probeSTARTTLS(ctx context.Context, host string, addr netip.Addr) (*starttlsResult, error) {
	res := &starttlsResult{Host: host, Addr: net.JoinHostPort(addr.String(), n.smtpPort)}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", res.Addr)
	if err != nil {
		return res, fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return res, fmt.Errorf("reading the greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(n.ehlo); err != nil {
		return res, fmt.Errorf("EHLO: %w", err)
	}
	if res.STARTTLS, _ = c.Extension("STARTTLS"); !res.STARTTLS {
		return res, errors.New("STARTTLS not offered in the EHLO response")
	}
	// The handshake does not verify, so that a bad certificate can be
	// shown; verifyCertificate below does what crypto/tls would.
	if err := c.StartTLS(&tls.Config{ServerName: host, InsecureSkipVerify: true}); err != nil {
		return res, fmt.Errorf("STARTTLS: %w", err)
	}
	cs, _ := c.TLSConnectionState()
	res.TLSVersion = tls.VersionName(cs.Version)
	if len(cs.PeerCertificates) > 0 {
		res.Cert = newCertInfo(cs.PeerCertificates[0], time.Now())
	}
	res.certErr = n.verifyCertificate(cs.PeerCertificates, host)
	if res.certErr != nil {
		res.CertError = res.certErr.Error()
	}
	c.Quit()
	return res, nil
}

// verifyCertificate checks a server's chain for host as crypto/tls does for
// a client: PKIX path to one of the roots, validity period, the server-auth
// key usage, and host matching a DNS-ID of the leaf, a "*." wildcard
// matching exactly one left-most label (RFC 8461 4.2, RFC 6125 6.4.3).
func (n *network) verifyCertificate(certs []*x509.Certificate, host string) error {
	if len(certs) == 0 {
		return errors.New("no certificate presented")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		DNSName:       strings.TrimSuffix(host, "."),
		Roots:         n.roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

// certInfo summarises a certificate for the report.
type certInfo struct {
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	DNSNames []string  `json:"dns_names"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
}

func newCertInfo(c *x509.Certificate, now time.Time) *certInfo {
	return &certInfo{
		Subject:  c.Subject.String(),
		Issuer:   c.Issuer.String(),
		DNSNames: append([]string{}, c.DNSNames...),
		NotAfter: c.NotAfter.UTC(),
		DaysLeft: int(math.Floor(c.NotAfter.Sub(now).Hours() / 24)),
	}
}

// lines describes the certificate for people, in lines to show under each
// other: subject and issuer, names, expiry. The names are the server's, so
// the printer escapes them.
func (c *certInfo) lines() []string {
	s := c.Subject
	if s == "" {
		s = "(no subject)"
	}
	lines := []string{s + ", issued by " + c.Issuer}
	if len(c.DNSNames) > 0 {
		lines = append(lines, "names "+strings.Join(c.DNSNames, ", "))
	}
	when := "expired"
	if c.DaysLeft >= 0 {
		when = fmt.Sprintf("in %d %s", c.DaysLeft, plural(c.DaysLeft, "day"))
	}
	return append(lines, "expires "+c.NotAfter.Format("2006-01-02 15:04 UTC")+" ("+when+")")
}
