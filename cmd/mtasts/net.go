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

	"github.com/mtasts-go/mtasts"
)

// network is how check reaches DNS, HTTPS and SMTP servers.
type network struct {
	resolver  *adns.Resolver
	custom    string // --resolver HOST:PORT: resolve host names through it too
	roots     *x509.CertPool
	httpsPort string
	smtpPort  string
	ehlo      string
	// allow is given to mtasts.NewDialer: nil, refusing every
	// special-purpose address as the library does by default, or
	// mtasts.AllowPrivate with --allow-private.
	allow func(netip.Addr) bool
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
		// The operator names this server, often on loopback: the
		// guard is for addresses a domain's owner chose.
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

// dialer returns the dialer for policy hosts and MX hosts: the library's,
// with its guard against special-purpose addresses (RFC 6890), so that
// check connects only where the library would.
func (n *network) dialer() *net.Dialer {
	return mtasts.NewDialer(n.allow)
}

// dial connects to host on port, resolving host through the --resolver
// server when one was given, trying each address in turn.
func (n *network) dial(ctx context.Context, host, port string) (net.Conn, error) {
	d := n.dialer()
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

// httpTransport returns the transport for policy fetches: the library's
// (mtasts.NewTransport), with its limits on response headers and
// connections and its address guard, trusting the given roots, connecting to
// --https-port, not reusing connections between checks. Certificate
// verification stays on (RFC 8461 3.3).
func (n *network) httpTransport() *recordingTransport {
	tr := n.policyTransport()
	tr.DisableKeepAlives = true
	return &recordingTransport{inner: tr}
}

// policyTransport returns the library's transport for policy fetches
// (mtasts.NewTransport), with its limits and address guard, trusting the
// network's roots, connecting to --https-port and resolving through
// --resolver. Certificate verification stays on (RFC 8461 3.3).
func (n *network) policyTransport() *http.Transport {
	tr := mtasts.NewTransport(n.allow)
	tr.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if port == "443" {
			port = n.httpsPort
		}
		return n.dial(ctx, host, port)
	}
	tr.TLSClientConfig.RootCAs = n.roots
	return tr
}

// txtResolver is the network's resolver as an mtasts.Resolver whose errors
// name the --resolver server, for the policy cache.
type txtResolver struct{ n *network }

// LookupTXT implements mtasts.Resolver.
func (r txtResolver) LookupTXT(ctx context.Context, name string) ([]string, adns.Result, error) {
	return r.n.lookupTXT(ctx, name)
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
	// The TLS report's view of a failed session (RFC 8460 4.3), from
	// mtasts.TLSReportResultType and TLSReportFailureReason.
	ResultType  mtasts.ResultType `json:"tlsrpt_result_type,omitempty"`
	FailureCode string            `json:"tlsrpt_failure_reason,omitempty"`
	// tlsErr is why the session did not get to valid TLS, once SMTP was
	// spoken: an error wrapping mtasts.ErrSTARTTLSNotSupported, or an
	// *mtasts.STARTTLSError.
	tlsErr error
}

// probeSTARTTLS connects to one address of an MX host as a sending MTA
// does: port 25, EHLO, STARTTLS under mtasts.MXTLSConfig, the library's
// configuration for RFC 8461 4.2. A failure to get to valid TLS once SMTP
// was spoken is in the result's tlsErr; the error is for an exchange that
// failed before: connecting, the greeting, EHLO.
func (n *network) probeSTARTTLS(ctx context.Context, host mtasts.Domain, addr netip.Addr) (*starttlsResult, error) {
	res := &starttlsResult{Host: host.ASCII, Addr: net.JoinHostPort(addr.String(), n.smtpPort)}
	conn, err := n.dialer().DialContext(ctx, "tcp", res.Addr)
	if err != nil {
		return res, fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	c, err := smtp.NewClient(conn, host.ASCII)
	if err != nil {
		return res, fmt.Errorf("reading the greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(n.ehlo); err != nil {
		return res, fmt.Errorf("EHLO: %w", err)
	}
	if res.STARTTLS, _ = c.Extension("STARTTLS"); !res.STARTTLS {
		res.tlsErr = fmt.Errorf("STARTTLS not offered in the EHLO response: %w", mtasts.ErrSTARTTLSNotSupported)
		return res, nil
	}
	if err := c.StartTLS(mtasts.MXTLSConfig(host, n.roots)); err != nil {
		res.tlsErr = &mtasts.STARTTLSError{MX: host, Err: err}
		// Show the certificate that failed validation.
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) && len(verr.UnverifiedCertificates) > 0 {
			res.Cert = newCertInfo(verr.UnverifiedCertificates[0], time.Now())
		}
		return res, nil
	}
	cs, _ := c.TLSConnectionState()
	res.TLSVersion = tls.VersionName(cs.Version)
	if len(cs.PeerCertificates) > 0 {
		res.Cert = newCertInfo(cs.PeerCertificates[0], time.Now())
	}
	c.Quit()
	return res, nil
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
