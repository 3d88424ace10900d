// Package integration tests the mtasts library against the servers it meets
// in production: unbound as the DNS resolver, nginx as the policy host. The
// tests start both on loopback, on free ports, in a temporary directory, and
// stop them when done.
//
// unbound is the DNS server because it is what MTAs commonly run as their
// local resolver: it follows CNAME chains for its clients, serves a zone file
// authoritatively (auth-zone) and answers SERVFAIL for an unreachable zone,
// so one server covers every case. It runs unprivileged with a config file
// of our own, no root paths, no chroot.
//
// The library is used as a user would use it: an *adns.Resolver dialing
// unbound, and mtasts.HTTPClient with a Transport that trusts the test CA and
// resolves the policy host through the same unbound, with the library's
// guard against special-purpose addresses allowing loopback only. One
// substitution: the Transport connects to the address unbound gives, but on
// nginx's free port instead of 443, which would need privileges and may be
// taken.
//
// Without the unbound and nginx binaries the tests skip, naming the Debian
// packages; with MTASTS_INTEGRATION=1, as CI sets, they fail instead.
package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mjl-/adns"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/mtasts-go/mtasts"
)

const goodPolicy = "version: STSv1\nmode: enforce\nmx: mail.example.test\nmx: *.mx.example.test\nmax_age: 604800\n"

// env is a running unbound and nginx, and a resolver and HTTP client
// pointed at them as a user would point theirs.
type env struct {
	resolver *adns.Resolver
	client   *http.Client // newClient(mtasts.AllowLoopback)
	dnsAddr  string       // unbound's address, host:port
	// newClient returns a client like the one above, its dialer guarded
	// by mtasts.NewDialer(allow).
	newClient func(allow func(netip.Addr) bool) *http.Client
}

// policy domains served by nginx, below example.test.
var policyDomains = []string{"good", "crlf", "charset", "html", "missing", "redirect", "big", "cname", "split", "spf", "expired", "wrongname"}

func setup(t *testing.T) *env {
	unboundBin := binary(t, "unbound", "unbound")
	nginxBin := binary(t, "nginx", "nginx")
	dir := t.TempDir()

	// One certificate for the policy hosts, and two that PKIX rejects:
	// one that expired, one for another name.
	ca := newTestCA(t)
	roots := ca.pool
	now := time.Now()
	var names []string
	for _, d := range policyDomains {
		if d != "expired" && d != "wrongname" {
			names = append(names, "mta-sts."+d+".example.test")
		}
	}
	certPath, keyPath := ca.issue(t, dir, "cert", now.Add(-time.Hour), now.Add(time.Hour), names...)
	expiredCert, expiredKey := ca.issue(t, dir, "expired", now.Add(-48*time.Hour), now.Add(-24*time.Hour), "mta-sts.expired.example.test")
	wrongCert, wrongKey := ca.issue(t, dir, "wrongname", now.Add(-time.Hour), now.Add(time.Hour), "mta-sts.other.example.test")

	// DNS: one zone, example.test, served by unbound as an auth-zone, and
	// broken.test, delegated to a port where nothing answers.
	var zone strings.Builder
	zone.WriteString("$ORIGIN example.test.\n$TTL 60\n")
	zone.WriteString("@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60\n@ IN NS ns.example.test.\nns IN A 127.0.0.1\n")
	for _, d := range policyDomains {
		fmt.Fprintf(&zone, "mta-sts.%s IN A 127.0.0.1\nmta-sts.%s IN AAAA ::1\n", d, d)
	}
	for _, d := range []string{"good", "crlf", "charset", "html", "missing", "redirect", "big", "expired", "wrongname"} {
		fmt.Fprintf(&zone, "_mta-sts.%s IN TXT \"v=STSv1; id=%s1\"\n", d, d)
	}
	// A record of several strings, longer than 255 bytes, with an
	// extension; RFC 8461 3.1 has them joined without spaces.
	fmt.Fprintf(&zone, "_mta-sts.split IN TXT \"v=STSv1; id=split1; ext=\" \"%s\" \"%s\"\n", strings.Repeat("a", 200), strings.Repeat("b", 200))
	// A CNAME chain to the TXT record (RFC 8461 3.1, 8.2 delegation).
	zone.WriteString("_mta-sts.cname IN CNAME _mta-sts.hop\n_mta-sts.hop IN CNAME _mta-sts.good\n")
	zone.WriteString("_mta-sts.spf IN TXT \"v=spf1 -all\"\n_mta-sts.spf IN TXT \"v=STSv1; id=spf1\"\n")
	zone.WriteString("_mta-sts.two IN TXT \"v=STSv1; id=one\"\n_mta-sts.two IN TXT \"v=STSv1; id=two\"\n")
	zone.WriteString("_mta-sts.invalid IN TXT \"v=STSv1; id=not-valid\"\n")
	zone.WriteString("_mta-sts.nopolicyhost IN TXT \"v=STSv1; id=x\"\n")
	zonePath := filepath.Join(dir, "example.test.zone")
	if err := os.WriteFile(zonePath, []byte(zone.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	dnsPort := freePort(t)
	deadPort := freePort(t) // nothing listens here
	unboundConf := fmt.Sprintf(`server:
	interface: 127.0.0.1
	port: %d
	do-ip6: no
	do-daemonize: no
	username: ""
	chroot: ""
	directory: %q
	pidfile: %q
	use-syslog: no
	logfile: ""
	verbosity: 1
	access-control: 127.0.0.0/8 allow
	module-config: "iterator"
	do-not-query-localhost: no
	outbound-msg-retry: 1
	# "test." is one of unbound's default local zones (RFC 6761); serve it.
	local-zone: "test." nodefault
auth-zone:
	name: "example.test"
	zonefile: %q
	for-downstream: yes
	for-upstream: yes
	fallback-enabled: no
stub-zone:
	name: "broken.test"
	stub-addr: 127.0.0.1@%d
remote-control:
	control-enable: no
`, dnsPort, dir, filepath.Join(dir, "unbound.pid"), zonePath, deadPort)
	confPath := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(confPath, []byte(unboundConf), 0o644); err != nil {
		t.Fatal(err)
	}
	dnsAddr := "127.0.0.1:" + strconv.Itoa(dnsPort)
	stopped(t, "unbound", dnsAddr)
	startProcess(t, dir, unboundBin, "-d", "-c", confPath)

	var dialer net.Dialer
	resolver := &adns.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, dnsAddr)
		},
	}
	waitFor(t, "unbound", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _, err := resolver.LookupTXT(ctx, "_mta-sts.good.example.test.")
		return err
	})

	// Web: nginx with one server block per behaviour.
	httpsPort := freePort(t)
	www := filepath.Join(dir, "www")
	writePolicy := func(domain, text string) {
		p := filepath.Join(www, domain, ".well-known", "mta-sts.txt")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePolicy("good", goodPolicy)
	writePolicy("crlf", strings.ReplaceAll(goodPolicy, "\n", "\r\n"))
	writePolicy("charset", goodPolicy)
	writePolicy("html", goodPolicy)
	writePolicy("big", goodPolicy+"x: "+strings.Repeat("y", mtasts.MaxPolicySize)+"\n")
	writePolicy("expired", goodPolicy)
	writePolicy("wrongname", goodPolicy)

	var servers strings.Builder
	server := func(domain, body string) {
		fmt.Fprintf(&servers, "\tserver {\n\t\tlisten 127.0.0.1:%d ssl http2;\n\t\tserver_name mta-sts.%s.example.test;\n\t\troot %q;\n%s\t}\n",
			httpsPort, domain, filepath.Join(www, domain), body)
	}
	server("good", "")
	server("crlf", "")
	server("big", "")
	server("charset", "\t\tcharset utf-8;\n\t\tcharset_types text/plain;\n")
	server("html", "\t\ttypes { text/html txt; }\n")
	server("missing", "\t\tlocation / { return 404; }\n")
	server("redirect", "\t\tlocation / { return 301 https://mta-sts.good.example.test/.well-known/mta-sts.txt; }\n")
	server("expired", fmt.Sprintf("\t\tssl_certificate %q;\n\t\tssl_certificate_key %q;\n", expiredCert, expiredKey))
	server("wrongname", fmt.Sprintf("\t\tssl_certificate %q;\n\t\tssl_certificate_key %q;\n", wrongCert, wrongKey))
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers must read the test's private directory
	}
	nginxConf := fmt.Sprintf(`%s
worker_processes 1;
daemon off;
pid %q;
error_log %q;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %q;
	proxy_temp_path %q;
	fastcgi_temp_path %q;
	uwsgi_temp_path %q;
	scgi_temp_path %q;
	types { text/plain txt; }
	default_type application/octet-stream;
	ssl_certificate %q;
	ssl_certificate_key %q;
%s}
`, user, filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "nginx-error.log"),
		filepath.Join(dir, "body"), filepath.Join(dir, "proxy"), filepath.Join(dir, "fastcgi"), filepath.Join(dir, "uwsgi"), filepath.Join(dir, "scgi"),
		certPath, keyPath, servers.String())
	nginxConfPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(nginxConfPath, []byte(nginxConf), 0o644); err != nil {
		t.Fatal(err)
	}
	httpsAddr := "127.0.0.1:" + strconv.Itoa(httpsPort)
	stopped(t, "nginx", httpsAddr)
	startProcess(t, dir, nginxBin, "-p", dir, "-e", filepath.Join(dir, "nginx-error.log"), "-c", nginxConfPath)
	waitFor(t, "nginx", func() error { return dialTCP(httpsAddr) })

	// The policy host's name is resolved by the dialer itself, through
	// unbound, as an MTA's dialer would through its resolver, and the
	// guard of mtasts.NewDialer checks the address of that real DNS
	// answer: 127.0.0.1, which AllowLoopback allows.
	dnsResolver := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, dnsAddr)
		},
	}
	newClient := func(allow func(netip.Addr) bool) *http.Client {
		guarded := mtasts.NewDialer(allow)
		guarded.Resolver = dnsResolver
		tr := mtasts.NewTransport(allow)
		tr.TLSClientConfig.RootCAs = roots
		// Connect to nginx's port: port 443 would need privileges and
		// may be taken. Over IPv4, where nginx listens.
		tr.DialContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return guarded.DialContext(ctx, "tcp4", net.JoinHostPort(host, strconv.Itoa(httpsPort)))
		}
		return &http.Client{Transport: tr}
	}
	client := newClient(mtasts.AllowLoopback)
	orig := mtasts.HTTPClient
	mtasts.HTTPClient = client
	t.Cleanup(func() { mtasts.HTTPClient = orig })
	return &env{resolver: resolver, client: client, newClient: newClient, dnsAddr: dnsAddr}
}

func mustDomain(t *testing.T, s string) mtasts.Domain {
	t.Helper()
	d, err := mtasts.ParseDomain(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAgainstRealServers(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("records", func(t *testing.T) {
		good := []struct {
			domain, id, text string
			ext              int // length of the extension value, 0 for none
		}{
			{"good.example.test", "good1", "v=STSv1; id=good1", 0},
			// The record's three strings, joined without spaces.
			{"split.example.test", "split1", "v=STSv1; id=split1; ext=" + strings.Repeat("a", 200) + strings.Repeat("b", 200), 400},
			{"cname.example.test", "good1", "v=STSv1; id=good1", 0}, // through two CNAMEs
			{"spf.example.test", "spf1", "v=STSv1; id=spf1", 0},     // beside an SPF record
		}
		for _, tc := range good {
			record, text, err := mtasts.LookupRecord(ctx, e.resolver, mustDomain(t, tc.domain))
			if err != nil || record.ID != tc.id || text != tc.text {
				t.Errorf("LookupRecord(%s) = %v, %q, %v; want id %s, text %q", tc.domain, record, text, err, tc.id, tc.text)
				continue
			}
			if tc.ext > 0 && (len(record.Extensions) != 1 || len(record.Extensions[0].Value) != tc.ext) {
				t.Errorf("LookupRecord(%s): extensions %v, want one of %d bytes", tc.domain, record.Extensions, tc.ext)
			}
		}
		bad := []struct {
			domain string
			want   error
			reason string
		}{
			{"nxdomain.example.test", mtasts.ErrNoRecord, "mta-sts-record-not-found"},
			{"two.example.test", mtasts.ErrMultipleRecords, "mta-sts-record-multiple"},
			{"invalid.example.test", mtasts.ErrRecordSyntax, "mta-sts-record-invalid"},
			{"broken.test", mtasts.ErrDNS, "mta-sts-record-dns-error"},
		}
		for _, tc := range bad {
			_, _, err := mtasts.LookupRecord(ctx, e.resolver, mustDomain(t, tc.domain))
			if !errors.Is(err, tc.want) || mtasts.TLSReportFailureReason(err) != tc.reason {
				t.Errorf("LookupRecord(%s) = %v (%q); want %v (%q)", tc.domain, err, mtasts.TLSReportFailureReason(err), tc.want, tc.reason)
			}
			// RFC 8460 4.3.2.2: a syntax error or an ambiguous record is an
			// invalid policy; a missing record or a DNS failure, a fetch error.
			wantType := mtasts.ResultSTSPolicyFetchError
			if tc.want == mtasts.ErrMultipleRecords || tc.want == mtasts.ErrRecordSyntax {
				wantType = mtasts.ResultSTSPolicyInvalid
			}
			if got := mtasts.TLSReportResultType(err); got != wantType {
				t.Errorf("LookupRecord(%s): result type %q, want %q", tc.domain, got, wantType)
			}
		}
	})

	t.Run("dns answers", func(t *testing.T) {
		// What unbound itself answers, read from the wire: the cases above
		// must come from a real NXDOMAIN and a real SERVFAIL.
		for name, want := range map[string]dnsmessage.RCode{
			"_mta-sts.good.example.test.":     dnsmessage.RCodeSuccess,
			"_mta-sts.nxdomain.example.test.": dnsmessage.RCodeNameError,
			"_mta-sts.broken.test.":           dnsmessage.RCodeServerFailure,
		} {
			if got := rcode(t, e.dnsAddr, name, dnsmessage.TypeTXT); got != want {
				t.Errorf("%s: rcode %v, want %v", name, got, want)
			}
		}
		// adns reports them as the library expects: not found, and a
		// temporary failure that is not a not-found.
		var derr *adns.DNSError
		if _, _, err := e.resolver.LookupTXT(ctx, "_mta-sts.nxdomain.example.test."); !errors.As(err, &derr) || !derr.IsNotFound {
			t.Errorf("nxdomain: %v, want an *adns.DNSError with IsNotFound", err)
		}
		if _, _, err := e.resolver.LookupTXT(ctx, "_mta-sts.broken.test."); !errors.As(err, &derr) || !derr.IsTemporary || derr.IsNotFound {
			t.Errorf("servfail: %v, want an *adns.DNSError with IsTemporary and not IsNotFound", err)
		}
		// The policy hosts' A and AAAA records.
		ips, _, err := e.resolver.LookupIPAddr(ctx, "mta-sts.good.example.test")
		var got []string
		for _, ip := range ips {
			got = append(got, ip.IP.String())
		}
		slices.Sort(got)
		if err != nil || !slices.Equal(got, []string{"127.0.0.1", "::1"}) {
			t.Errorf("addresses of mta-sts.good.example.test: %v, %v; want 127.0.0.1 and ::1", got, err)
		}
	})

	t.Run("policies", func(t *testing.T) {
		for d, wantText := range map[string]string{
			"good":    goodPolicy,
			"crlf":    strings.ReplaceAll(goodPolicy, "\n", "\r\n"), // RFC 8461 3.2: CRLF or LF
			"charset": goodPolicy,
		} {
			record, policy, text, err := mtasts.Get(ctx, e.resolver, mustDomain(t, d+".example.test"))
			if err != nil || record.ID != d+"1" || policy.Mode != mtasts.ModeEnforce || len(policy.MX) != 2 || policy.MaxAge() != 604800*time.Second || text != wantText {
				t.Errorf("Get(%s) = %v, %v, %q, %v; want text %q", d, record, policy, text, err, wantText)
				continue
			}
			if !policy.Matches(mustDomain(t, "a.mx.example.test")) || policy.Matches(mustDomain(t, "a.b.mx.example.test")) {
				t.Errorf("Get(%s): policy %v matches wrongly", d, policy)
			}
		}
		bad := []struct {
			domain string
			want   error
			reason string
		}{
			{"html.example.test", mtasts.ErrPolicySyntax, "mta-sts-policy-media-type"},
			{"missing.example.test", mtasts.ErrNoPolicy, "mta-sts-policy-not-found"},
			{"redirect.example.test", mtasts.ErrPolicyFetch, "mta-sts-policy-redirect"},
			{"big.example.test", mtasts.ErrPolicySyntax, "mta-sts-policy-too-large"},
			{"nopolicyhost.example.test", mtasts.ErrNoPolicy, "mta-sts-policy-not-found"},
		}
		for _, tc := range bad {
			record, policy, _, err := mtasts.Get(ctx, e.resolver, mustDomain(t, tc.domain))
			if record == nil || policy != nil || !errors.Is(err, tc.want) || mtasts.TLSReportFailureReason(err) != tc.reason {
				t.Errorf("Get(%s) = %v, %v, %v (%q); want the record and %v (%q)", tc.domain, record, policy, err, mtasts.TLSReportFailureReason(err), tc.want, tc.reason)
			}
			wantType := mtasts.ResultSTSPolicyFetchError
			if tc.want == mtasts.ErrPolicySyntax {
				wantType = mtasts.ResultSTSPolicyInvalid
			}
			if got := mtasts.TLSReportResultType(err); got != wantType {
				t.Errorf("Get(%s): result type %q, want %q", tc.domain, got, wantType)
			}
		}
	})

	t.Run("what nginx serves", func(t *testing.T) {
		// The outcomes above must come from what nginx really sent: over
		// HTTP/2, with these statuses, media types and sizes.
		client := *e.client
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		tests := []struct {
			domain      string
			status      int
			contentType string
			location    string
			minLength   int64
		}{
			{"good", 200, "text/plain", "", int64(len(goodPolicy))},
			{"crlf", 200, "text/plain", "", int64(len(goodPolicy))},
			{"charset", 200, "text/plain; charset=utf-8", "", int64(len(goodPolicy))},
			{"html", 200, "text/html", "", int64(len(goodPolicy))},
			{"missing", 404, "text/html", "", 0},
			{"redirect", 301, "text/html", "https://mta-sts.good.example.test/.well-known/mta-sts.txt", 0},
			{"big", 200, "text/plain", "", mtasts.MaxPolicySize + 1},
		}
		for _, tc := range tests {
			resp, err := client.Get("https://mta-sts." + tc.domain + ".example.test/.well-known/mta-sts.txt")
			if err != nil {
				t.Errorf("%s: %v", tc.domain, err)
				continue
			}
			resp.Body.Close()
			if resp.Proto != "HTTP/2.0" || resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.contentType ||
				resp.Header.Get("Location") != tc.location || resp.ContentLength < tc.minLength {
				t.Errorf("%s: %s %d, Content-Type %q, Location %q, length %d; want HTTP/2.0 %d, %q, %q, at least %d",
					tc.domain, resp.Proto, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Location"), resp.ContentLength,
					tc.status, tc.contentType, tc.location, tc.minLength)
			}
		}
	})

	t.Run("certificates", func(t *testing.T) {
		// RFC 8461 3.3: the certificate must chain to a trusted root, be
		// valid for mta-sts.<domain>, and not have expired.
		for _, tc := range []struct{ domain, reason string }{
			{"expired.example.test", "mta-sts-policy-certificate-expired"},
			{"wrongname.example.test", "mta-sts-policy-certificate-host-mismatch"},
		} {
			record, policy, _, err := mtasts.Get(ctx, e.resolver, mustDomain(t, tc.domain))
			if record == nil || policy != nil || !errors.Is(err, mtasts.ErrPolicyFetch) ||
				mtasts.TLSReportResultType(err) != mtasts.ResultSTSWebPKIInvalid || mtasts.TLSReportFailureReason(err) != tc.reason {
				t.Errorf("Get(%s) = %v, %v, %v (%q, %q); want the record and a PKIX failure (%q)", tc.domain, record, policy, err,
					mtasts.TLSReportResultType(err), mtasts.TLSReportFailureReason(err), tc.reason)
			}
		}

		// Roots that do not hold the test CA: PKIX fails for a good host.
		orig := mtasts.HTTPClient
		defer func() { mtasts.HTTPClient = orig }()
		tr := e.client.Transport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: x509.NewCertPool()}
		mtasts.HTTPClient = &http.Client{Transport: tr}
		_, _, err := mtasts.FetchPolicy(ctx, mustDomain(t, "good.example.test"))
		if !errors.Is(err, mtasts.ErrPolicyFetch) || mtasts.TLSReportResultType(err) != mtasts.ResultSTSWebPKIInvalid ||
			mtasts.TLSReportFailureReason(err) != "mta-sts-policy-certificate-untrusted" {
			t.Errorf("FetchPolicy with other roots = %v (%q); want an untrusted-certificate failure", err, mtasts.TLSReportFailureReason(err))
		}
	})

	t.Run("guard", func(t *testing.T) {
		// Issue 10 point 4: unbound answers 127.0.0.1 for the policy
		// host, as a hostile domain's DNS would. Without an allow
		// function, the guard refuses the address the dialer got from
		// that answer, before connecting; with AllowLoopback (the
		// subtests above) the same answer is fetched from.
		orig := mtasts.HTTPClient
		defer func() { mtasts.HTTPClient = orig }()
		mtasts.HTTPClient = e.newClient(nil)
		record, policy, _, err := mtasts.Get(ctx, e.resolver, mustDomain(t, "good.example.test"))
		var aerr *mtasts.AddressRefusedError
		if record == nil || policy != nil || !errors.As(err, &aerr) || !errors.Is(err, mtasts.ErrPolicyFetch) {
			t.Fatalf("Get with the default guard = %v, %v, %v; want the record and a refused address", record, policy, err)
		}
		if aerr.Class != "loopback" || aerr.Addr.Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("refused %s (%s), want 127.0.0.1 (loopback), from unbound's answer", aerr.Addr, aerr.Class)
		}
		if rt, reason := mtasts.TLSReportResultType(err), mtasts.TLSReportFailureReason(err); rt != mtasts.ResultSTSPolicyFetchError || reason != "mta-sts-policy-address-refused" {
			t.Errorf("refused address: TLS-RPT %q, %q", rt, reason)
		}
	})
}
