package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
)

// world is a set of test domains served on loopback: DNS, policy HTTPS and
// SMTP, with flags pointing check at them.
type world struct {
	ca    *testCA
	dns   *dnsServer
	flags []string // --resolver, --ca, --https-port, --smtp-port
}

var loopback = []netip.Addr{netip.MustParseAddr("127.0.0.1")}

func policyText(mode string, maxAge string, mx ...string) string {
	s := "version: STSv1\r\nmode: " + mode + "\r\n"
	for _, m := range mx {
		s += "mx: " + m + "\r\n"
	}
	return s + "max_age: " + maxAge + "\r\n"
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ca := newTestCA(t)
	later := time.Now().Add(90 * 24 * time.Hour)
	soon := time.Now().Add(3 * 24 * time.Hour)

	// The policy served for each host; PolicyHandler serves the valid ones
	// as a Go web server would, raw text the others.
	policies := map[string]string{
		"mta-sts.good.example":    policyText("enforce", "604800", "mail.good.example", "*.mx.good.example"),
		"mta-sts.warn.example":    "version: STSv1\r\nmode: testing\n\nmx: mail.warn.example\nmax_age: 86400\n",
		"mta-sts.fail.example":    policyText("enforce", "604800", "mail.fail.example"),
		"mta-sts.badcert.example": policyText("enforce", "604800", "mail.badcert.example"),
		"mta-sts.syntax.example":  "version: STSv1\nmode: enforce\nmx: mail.syntax.example\nmax_age: 1w\n",
		"mta-sts.badmx.example":   policyText("enforce", "604800", "mail.badmx.example", "expired.badmx.example"),
		"mta-sts.none.example":    "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n",
		"mta-sts.nullmx.example":  policyText("enforce", "604800", "mail.nullmx.example"),
		"mta-sts.nomx.example":    policyText("enforce", "604800", "nomx.example"),
		"mta-sts.hostile.example": hostilePolicy,
	}
	handlers := map[string]http.Handler{}
	for host, text := range policies {
		if p, err := mtasts.ParsePolicy(text); err == nil && text == p.String() {
			handlers[host] = mtasts.PolicyHandler(p)
			continue
		}
		handlers[host] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, text)
		})
	}
	handlers["mta-sts.html.example"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, policyText("enforce", "604800", "mail.html.example"))
	})
	// More response headers than the 64 KiB of mtasts.NewTransport.
	handlers["mta-sts.headers.example"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 100 {
			w.Header().Set("X-Pad-"+strconv.Itoa(i), strings.Repeat("x", 1000))
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, policyText("enforce", "604800", "mail.headers.example"))
	})
	handlers["mta-sts.redirect.example"] = http.RedirectHandler("https://mta-sts.good.example/.well-known/mta-sts.txt", http.StatusMovedPermanently)
	certs := map[string]tls.Certificate{}
	for _, d := range []string{"none", "nullmx", "nomx", "html", "redirect", "headers"} {
		certs["mta-sts."+d+".example"] = ca.issue(t, later, "mta-sts."+d+".example")
	}
	// Valid for the policy host, with a hostile first name, so also a
	// hostile subject.
	certs["mta-sts.hostile.example"] = ca.issue(t, later, hostileCertName, "mta-sts.hostile.example")
	httpsPort := startHTTPS(t, map[string]tls.Certificate{
		"mta-sts.good.example":    ca.issue(t, later, "mta-sts.good.example"),
		"mta-sts.warn.example":    ca.issue(t, soon, "mta-sts.warn.example"),
		"mta-sts.fail.example":    ca.issue(t, later, "mta-sts.fail.example"),
		"mta-sts.badcert.example": ca.issue(t, later, "www.badcert.example"),
		"mta-sts.syntax.example":  ca.issue(t, later, "mta-sts.syntax.example"),
		"mta-sts.badmx.example":   ca.issue(t, later, "mta-sts.badmx.example"),
	}, certs, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if h, ok := handlers[host]; ok {
			h.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	smtpPort := startSMTP(t, map[string]tls.Certificate{
		"mail.good.example":     ca.issue(t, later, "mail.good.example"),
		"b.mx.good.example":     ca.issue(t, later, "*.mx.good.example"),
		"mail.warn.example":     ca.issue(t, later, "mail.warn.example"),
		"mail.badmx.example":    ca.issue(t, later, "mail.other.example"),
		"expired.badmx.example": ca.issue(t, time.Now().Add(-time.Hour), "expired.badmx.example"),
	}, false)

	rec := func(s ...string) [][]string { return [][]string{s} }
	zones := map[string]zone{
		"good.example.":            {mx: []mxRecord{{20, "b.mx.good.example."}, {10, "mail.good.example."}}},
		"_mta-sts.good.example.":   {txt: [][]string{{"v=STSv1; ", "id=20240101000000Z"}, {"some other record"}}},
		"_smtp._tls.good.example.": {txt: rec("v=TLSRPTv1; rua=mailto:tls@good.example")},
		"mta-sts.good.example.":    {a: loopback},
		"mail.good.example.":       {a: loopback},
		"b.mx.good.example.":       {a: loopback},

		"warn.example.":          {mx: []mxRecord{{10, "mail.warn.example."}}},
		"_mta-sts.warn.example.": {txt: rec("v=STSv1; id=1")},
		"mta-sts.warn.example.":  {a: loopback},
		"mail.warn.example.":     {a: loopback},

		"fail.example.":            {mx: []mxRecord{{10, "mail.fail.example."}, {20, "backup.other.example."}}},
		"_mta-sts.fail.example.":   {txt: rec("v=STSv1; id=2")},
		"_smtp._tls.fail.example.": {txt: [][]string{{"v=TLSRPTv1; rua=mailto:a@fail.example"}, {"v=TLSRPTv1; rua=mailto:b@fail.example"}}},
		"mta-sts.fail.example.":    {a: loopback},

		"norecord.example.": {mx: []mxRecord{{10, "mail.norecord.example."}}},

		"badcert.example.":          {mx: []mxRecord{{10, "mail.badcert.example."}}},
		"_mta-sts.badcert.example.": {txt: rec("v=STSv1; id=3")},
		"mta-sts.badcert.example.":  {a: loopback},

		"syntax.example.":          {mx: []mxRecord{{10, "mail.syntax.example."}}},
		"_mta-sts.syntax.example.": {txt: rec("v=STSv1; id=4")},
		"mta-sts.syntax.example.":  {a: loopback},

		"badrecord.example.":          {},
		"_mta-sts.badrecord.example.": {txt: rec("v=STSv1; id=not-alnum")},

		"multi.example.":          {},
		"_mta-sts.multi.example.": {txt: [][]string{{"v=STSv1; id=5"}, {"v=STSv1; id=6"}}},

		"servfail.example.":          {},
		"_mta-sts.servfail.example.": {servfail: true},

		"badmx.example.":          {mx: []mxRecord{{10, "mail.badmx.example."}, {20, "expired.badmx.example."}, {30, "nodns.badmx.example."}}},
		"_mta-sts.badmx.example.": {txt: rec("v=STSv1; id=7")},
		"mta-sts.badmx.example.":  {a: loopback},
		"mail.badmx.example.":     {a: loopback},
		"expired.badmx.example.":  {a: loopback},
	}
	for _, d := range []string{"none", "nullmx", "nomx", "html", "redirect", "headers"} {
		zones["_mta-sts."+d+".example."] = zone{txt: rec("v=STSv1; id=8")}
		zones["mta-sts."+d+".example."] = zone{a: loopback}
	}
	maps.Copy(zones, hostileZones)
	zones["none.example."] = zone{mx: []mxRecord{{10, "anything.example."}}}
	zones["nullmx.example."] = zone{mx: []mxRecord{{0, "."}}}
	zones["nomx.example."] = zone{a: loopback}
	zones["html.example."] = zone{}
	zones["redirect.example."] = zone{}
	zones["headers.example."] = zone{}
	dns := startDNS(t, zones)
	return &world{
		ca:  ca,
		dns: dns,
		flags: []string{
			"--resolver", dns.addr, "--ca", ca.pemFile, "--timeout", "20s", "--allow-private",
			"--https-port", httpsPort, "--smtp-port", smtpPort,
		},
	}
}

// runMain runs the command's entry point as main does, with env as the
// environment, and returns its exit status, stdout and stderr.
func runMain(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	// check sets the package's HTTPClient, as a process may; put it back.
	orig := mtasts.HTTPClient
	defer func() { mtasts.HTTPClient = orig }()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &stdio{
		in:     strings.NewReader(""),
		out:    &out,
		err:    &errb,
		getenv: func(k string) string { return env[k] },
	})
	return code, out.String(), errb.String()
}

// checkJSON runs check --json and decodes its output.
func checkJSON(t *testing.T, w *world, args ...string) (int, *checkReport, map[string]map[string]*stepJSON) {
	t.Helper()
	code, out, stderr := runMain(t, nil, append(append([]string{"check", "--json"}, w.flags...), args...)...)
	var report struct {
		Status  status `json:"status"`
		Domains []struct {
			Domain string      `json:"domain"`
			Status status      `json:"status"`
			Steps  []*stepJSON `json:"steps"`
		} `json:"domains"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("check %v: output is not JSON: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, stderr)
	}
	steps := map[string]map[string]*stepJSON{}
	r := &checkReport{Status: report.Status}
	for _, d := range report.Domains {
		r.Domains = append(r.Domains, &domainReport{Domain: d.Domain, Status: d.Status})
		steps[d.Domain] = map[string]*stepJSON{}
		for _, s := range d.Steps {
			steps[d.Domain][s.Name] = s
		}
	}
	return code, r, steps
}

// stepJSON is a step as decoded from --json output.
type stepJSON struct {
	Name     string          `json:"name"`
	Status   status          `json:"status"`
	Findings []finding       `json:"findings"`
	Data     json.RawMessage `json:"data"`
}

// messages returns the step's findings of status st, joined.
func (s *stepJSON) messages(st status) string {
	var m []string
	for _, f := range s.Findings {
		if f.Status == st {
			m = append(m, f.Message)
		}
	}
	return strings.Join(m, "\n")
}

func TestCheckDomains(t *testing.T) {
	w := newWorld(t)
	type want struct {
		status status
		steps  map[string]status // step name: status
		text   map[string]string // step name: a substring of its findings
	}
	tests := []struct {
		domain string
		code   int
		want   want
	}{
		{"good.example", exitOK, want{statusPass,
			map[string]status{"record": statusPass, "fetch": statusPass, "policy": statusPass, "mx": statusPass, "starttls": statusPass, "tlsrpt": statusPass},
			map[string]string{"mx": "b.mx.good.example (preference 20): allowed by mx *.mx.good.example", "starttls": "mail.good.example (127.0.0.1:"}}},
		{"warn.example", exitOK, want{statusWarn,
			map[string]status{"record": statusPass, "fetch": statusWarn, "policy": statusWarn, "mx": statusPass, "starttls": statusPass, "tlsrpt": statusWarn},
			map[string]string{"policy": "line 3: blank line", "fetch": "expires in 2 days", "tlsrpt": "no TLS-RPT record"}}},
		{"fail.example", exitFail, want{statusFail,
			map[string]status{"policy": statusPass, "mx": statusFail, "tlsrpt": statusFail, "starttls": statusFail},
			map[string]string{"mx": "backup.other.example (preference 20): not allowed by the policy", "tlsrpt": "2 TLS-RPT records"}}},
		{"norecord.example", exitFail, want{statusFail,
			map[string]status{"record": statusFail, "fetch": statusFail, "policy": statusInfo, "mx": statusInfo},
			map[string]string{"record": "no MTA-STS record", "fetch": "policy host not found"}}},
		{"badcert.example", exitFail, want{statusFail,
			map[string]status{"record": statusPass, "fetch": statusFail},
			map[string]string{"fetch": "certificate not valid for mta-sts.badcert.example"}}},
		{"syntax.example", exitFail, want{statusFail,
			map[string]status{"fetch": statusFail, "policy": statusFail},
			map[string]string{"policy": "line 4", "fetch": "not a valid policy"}}},
		{"badrecord.example", exitFail, want{statusFail,
			map[string]status{"record": statusFail},
			map[string]string{"record": `invalid record "v=STSv1; id=not-alnum"`}}},
		{"multi.example", exitFail, want{statusFail,
			map[string]status{"record": statusFail},
			map[string]string{"record": "2 records start with v=STSv1"}}},
		{"servfail.example", exitFail, want{statusFail,
			map[string]status{"record": statusFail},
			map[string]string{"record": "DNS lookup failed"}}},
		{"badmx.example", exitFail, want{statusFail,
			map[string]status{"mx": statusFail, "starttls": statusFail},
			map[string]string{"mx": "nodns.badmx.example (preference 30): not allowed", "starttls": "certificate not valid for mail.badmx.example"}}},
		{"none.example", exitFail, want{statusFail, // anything.example has no address
			map[string]status{"fetch": statusPass, "policy": statusPass, "mx": statusInfo, "starttls": statusFail},
			map[string]string{"policy": "mode none: senders treat the domain as having no policy", "mx": "anything.example (preference 10): mode none, not matched"}}},
		{"nullmx.example", exitOK, want{statusWarn,
			map[string]status{"policy": statusPass, "mx": statusInfo, "starttls": statusInfo},
			map[string]string{"mx": "null MX (RFC 7505)"}}},
		{"nomx.example", exitFail, want{statusFail, // the SMTP server has no certificate for nomx.example
			map[string]status{"policy": statusPass, "mx": statusPass, "starttls": statusFail},
			map[string]string{"mx": "nomx.example (preference 0): allowed by mx nomx.example"}}},
		{"html.example", exitFail, want{statusFail,
			map[string]status{"fetch": statusFail, "policy": statusInfo},
			map[string]string{"fetch": `media type "text/html", expected text/plain`}}},
		{"headers.example", exitFail, want{statusFail, // the check's transport has the library's header limit
			map[string]status{"fetch": statusFail, "policy": statusInfo},
			map[string]string{"fetch": "https://mta-sts.headers.example/.well-known/mta-sts.txt: "}}},
		{"redirect.example", exitFail, want{statusFail,
			map[string]status{"fetch": statusFail, "policy": statusInfo},
			map[string]string{"fetch": "redirect (status 301"}}},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			code, report, steps := checkJSON(t, w, "--starttls", tc.domain)
			if code != tc.code {
				t.Errorf("exit status %d, want %d", code, tc.code)
			}
			if len(report.Domains) != 1 || report.Domains[0].Domain != tc.domain {
				t.Fatalf("domains %+v", report.Domains)
			}
			if got := report.Domains[0].Status; got != tc.want.status {
				t.Errorf("domain status %s, want %s", got, tc.want.status)
			}
			got := steps[tc.domain]
			for name, st := range tc.want.steps {
				if got[name] == nil {
					t.Errorf("no step %q", name)
					continue
				}
				if got[name].Status != st {
					t.Errorf("step %q: status %s, want %s; findings %+v", name, got[name].Status, st, got[name].Findings)
				}
			}
			for name, sub := range tc.want.text {
				var all []string
				for _, f := range got[name].Findings {
					all = append(all, f.Message)
				}
				if !strings.Contains(strings.Join(all, "\n"), sub) {
					t.Errorf("step %q: findings %q do not mention %q", name, all, sub)
				}
			}
		})
	}
}

// The JSON data of a passing domain carries what the issue asks to see:
// record text and id, URL, status, media type, certificate, size, policy.
func TestCheckJSONData(t *testing.T) {
	w := newWorld(t)
	code, _, steps := checkJSON(t, w, "good.example")
	if code != exitOK {
		t.Fatalf("exit status %d", code)
	}
	s := steps["good.example"]
	var rec recordData
	if err := json.Unmarshal(s["record"].Data, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Record != "v=STSv1; id=20240101000000Z" || rec.ID != "20240101000000Z" || len(rec.TXT) != 2 {
		t.Errorf("record data %+v", rec)
	}
	var fetch fetchData
	if err := json.Unmarshal(s["fetch"].Data, &fetch); err != nil {
		t.Fatal(err)
	}
	want := policyText("enforce", "604800", "mail.good.example", "*.mx.good.example")
	if fetch.URL != "https://mta-sts.good.example/.well-known/mta-sts.txt" || fetch.HTTPStatus != 200 ||
		fetch.ContentType != "text/plain; charset=utf-8" || fetch.Size != len(want) || fetch.Text != want ||
		fetch.Cert == nil || fetch.Cert.Subject != "CN=mta-sts.good.example" || fetch.Cert.DaysLeft < 80 {
		t.Errorf("fetch data %+v", fetch)
	}
	var pol policyJSON
	if err := json.Unmarshal(s["policy"].Data, &pol); err != nil {
		t.Fatal(err)
	}
	if pol.Mode != "enforce" || pol.MaxAgeSeconds != 604800 || pol.MaxAge != "7 days" || strings.Join(pol.MX, " ") != "mail.good.example *.mx.good.example" {
		t.Errorf("policy data %+v", pol)
	}
	var mx []mxData
	if err := json.Unmarshal(s["mx"].Data, &mx); err != nil {
		t.Fatal(err)
	}
	if len(mx) != 2 || mx[0].Host != "mail.good.example" || mx[0].Allowed == nil || !*mx[0].Allowed || mx[1].Pattern != "*.mx.good.example" {
		t.Errorf("mx data %+v", mx)
	}
	if s["starttls"] != nil {
		t.Errorf("STARTTLS step without --starttls")
	}
}

// STARTTLS data reports the TLS version and the certificate; an expired
// certificate fails; a server without STARTTLS fails.
func TestCheckSTARTTLS(t *testing.T) {
	w := newWorld(t)
	_, _, steps := checkJSON(t, w, "--starttls", "good.example", "badmx.example")
	var good []starttlsResult
	if err := json.Unmarshal(steps["good.example"]["starttls"].Data, &good); err != nil {
		t.Fatal(err)
	}
	if len(good) != 2 || good[0].TLSVersion != "TLS 1.3" || !good[0].STARTTLS || good[0].Cert == nil || good[0].Cert.Subject != "CN=mail.good.example" || good[1].Cert.Subject != "CN=*.mx.good.example" {
		t.Errorf("good STARTTLS data %+v", good)
	}
	bad := steps["badmx.example"]["starttls"].messages(statusFail)
	for _, want := range []string{
		"mail.badmx.example (127.0.0.1:",                                      // connected, TLS worked
		"certificate is valid for mail.other.example, not mail.badmx.example", // name mismatch
		"expired.badmx.example",                                               // expired
		"expired",
		"nodns.badmx.example: looking up its addresses:", // no address
	} {
		if !strings.Contains(bad, want) {
			t.Errorf("STARTTLS failures %q do not mention %q", bad, want)
		}
	}

	// A server that does not offer STARTTLS.
	port := startSMTP(t, nil, true)
	flags := append([]string{}, w.flags...)
	flags[len(flags)-1] = port
	code, out, _ := runMain(t, nil, append(append([]string{"check", "--starttls"}, flags...), "good.example")...)
	if code != exitFail || !strings.Contains(out, "STARTTLS not offered") {
		t.Errorf("without STARTTLS: exit %d, output:\n%s", code, out)
	}
}

// Text output: a line per finding with its status, the domains in order,
// no colour outside a terminal, progress not left on stderr.
func TestCheckText(t *testing.T) {
	w := newWorld(t)
	code, out, stderr := runMain(t, map[string]string{}, append(append([]string{"check"}, w.flags...), "good.example", "fail.example")...)
	if code != exitFail {
		t.Errorf("exit status %d, want 1 (fail.example fails)", code)
	}
	for _, want := range []string{
		"good.example\n",
		"PASS  TXT record    _mta-sts.good.example: \"v=STSv1; id=20240101000000Z\"\n",
		"PASS  policy fetch  https://mta-sts.good.example/.well-known/mta-sts.txt\n",
		"status       200 OK (HTTP/2.0)",
		"media type   text/plain; charset=utf-8",
		"certificate  CN=mta-sts.good.example, issued by CN=mtaststest CA",
		"PASS  policy        mode enforce, max_age 604800 (7 days)\n",
		"good.example: PASS, 0 failures, 0 warnings\n",
		"FAIL  MX            backup.other.example (preference 20): not allowed by the policy",
		"fail.example: FAIL, 2 failures, 0 warnings\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "good.example\n") > strings.Index(out, "fail.example\n") {
		t.Errorf("domains out of order")
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("colour codes in output that is not a terminal")
	}
	if stderr != "" {
		t.Errorf("stderr %q, want nothing for fast steps", stderr)
	}
}

// Without a valid record, check still fetches the policy, and says that a
// sender would not have.
func TestCheckFetchWithoutRecord(t *testing.T) {
	w := newWorld(t)
	_, _, steps := checkJSON(t, w, "norecord.example", "badrecord.example", "good.example")
	for _, d := range []string{"norecord.example", "badrecord.example"} {
		if !strings.Contains(steps[d]["fetch"].messages(statusInfo), "senders do not fetch the policy") {
			t.Errorf("%s: fetch findings %+v lack the note", d, steps[d]["fetch"].Findings)
		}
	}
	if steps["good.example"]["fetch"].messages(statusInfo) != "" {
		t.Errorf("good.example: note where the record is valid")
	}
}

// --starttls checks every address of an MX host, IPv4 and IPv6, as senders
// try them all: a line for each, and one broken address fails the check.
// mail.dual.example has 127.0.0.1, where the SMTP server listens, and ::1,
// where nothing listens on its port.
func TestCheckSTARTTLSEveryAddress(t *testing.T) {
	ca := newTestCA(t)
	later := time.Now().Add(90 * 24 * time.Hour)
	smtpPort := startSMTP(t, map[string]tls.Certificate{
		"mail.dual.example": ca.issue(t, later, "mail.dual.example"),
	}, false)
	dns := startDNS(t, map[string]zone{
		"dual.example.":      {mx: []mxRecord{{10, "mail.dual.example."}}},
		"mail.dual.example.": {a: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}},
	})
	w := &world{ca: ca, dns: dns, flags: []string{"--resolver", dns.addr, "--ca", ca.pemFile, "--timeout", "20s", "--allow-private", "--smtp-port", smtpPort}}

	code, _, steps := checkJSON(t, w, "--starttls", "dual.example")
	if code != exitFail {
		t.Errorf("exit %d, want %d: one address is broken", code, exitFail)
	}
	s := steps["dual.example"]["starttls"]
	if s.Status != statusFail {
		t.Errorf("STARTTLS step %s, want fail", s.Status)
	}
	v4, v6 := net.JoinHostPort("127.0.0.1", smtpPort), net.JoinHostPort("::1", smtpPort)
	if pass := s.messages(statusPass); !strings.Contains(pass, "mail.dual.example ("+v4+"): TLS 1.3, certificate valid") {
		t.Errorf("no pass for %s: %q", v4, pass)
	}
	if fail := s.messages(statusFail); !strings.Contains(fail, "mail.dual.example ("+v6+"): connecting:") {
		t.Errorf("no failure for %s: %q", v6, fail)
	}
	var data []starttlsResult
	if err := json.Unmarshal(s.Data, &data); err != nil {
		t.Fatal(err)
	}
	// In the resolver's order, which may put either first.
	byAddr := map[string]starttlsResult{}
	for _, d := range data {
		byAddr[d.Addr] = d
	}
	if len(data) != 2 || byAddr[v4].Error != "" || byAddr[v4].TLSVersion == "" || byAddr[v6].Error == "" || byAddr[v4].Host != "mail.dual.example" || byAddr[v6].Host != "mail.dual.example" {
		t.Errorf("STARTTLS data %+v, want one result for each address", data)
	}

	// Text output: one line for each address.
	code, out, _ := runMain(t, nil, append(append([]string{"check", "--starttls"}, w.flags...), "dual.example")...)
	for _, want := range []string{
		"PASS  STARTTLS      mail.dual.example (" + v4 + "): TLS 1.3",
		"FAIL  STARTTLS      mail.dual.example (" + v6 + "): connecting:",
	} {
		if code != exitFail || !strings.Contains(out, want) {
			t.Errorf("exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
}

// The STARTTLS step classifies each failure as TLS reports do, with the
// library's classifier (RFC 8460 4.3), and says so in text and JSON.
func TestCheckSTARTTLSReportTypes(t *testing.T) {
	w := newWorld(t)
	_, _, steps := checkJSON(t, w, "--starttls", "good.example", "badmx.example")
	var data []starttlsResult
	if err := json.Unmarshal(steps["badmx.example"]["starttls"].Data, &data); err != nil {
		t.Fatal(err)
	}
	byHost := map[string]starttlsResult{}
	for _, d := range data {
		byHost[d.Host] = d
	}
	for host, want := range map[string][2]string{
		"mail.badmx.example":    {string(mtasts.ResultCertificateHostMismatch), "certificate-host-mismatch"},
		"expired.badmx.example": {string(mtasts.ResultCertificateExpired), "certificate-expired"},
		"nodns.badmx.example":   {"", ""}, // no address: no session, nothing to report
	} {
		d := byHost[host]
		if string(d.ResultType) != want[0] || d.FailureCode != want[1] {
			t.Errorf("%s: TLS-RPT %q, %q; want %q, %q", host, d.ResultType, d.FailureCode, want[0], want[1])
		}
	}
	// The certificate that failed is shown, from the failed handshake.
	if c := byHost["mail.badmx.example"].Cert; c == nil || c.Subject != "CN=mail.other.example" {
		t.Errorf("certificate of the failed handshake: %+v", c)
	}
	var good []starttlsResult
	if err := json.Unmarshal(steps["good.example"]["starttls"].Data, &good); err != nil {
		t.Fatal(err)
	}
	for _, d := range good {
		if d.ResultType != "" || d.FailureCode != "" {
			t.Errorf("good.example: %s: TLS-RPT %q, %q for a valid session", d.Host, d.ResultType, d.FailureCode)
		}
	}

	code, out, _ := runMain(t, nil, append(append([]string{"check", "--starttls"}, w.flags...), "badmx.example", "nomx.example")...)
	for _, want := range []string{
		"TLS-RPT      result certificate-host-mismatch, reason certificate-host-mismatch\n",
		"TLS-RPT      result certificate-expired, reason certificate-expired\n",
		// The SMTP server has no certificate for nomx.example: it
		// answers the client hello with an alert.
		"nomx.example (127.0.0.1:" + w.flags[len(w.flags)-1] + "): TLS handshake failed: remote error: tls: internal error\n",
		"TLS-RPT      result validation-failure, reason tls-alert-80-internal-error\n",
	} {
		if code != exitFail || !strings.Contains(out, want) {
			t.Errorf("exit %d, output lacks %q:\n%s", code, want, out)
		}
	}

	// A server that does not offer STARTTLS.
	port := startSMTP(t, nil, true)
	flags := append([]string{}, w.flags...)
	flags[len(flags)-1] = port
	code, out, _ = runMain(t, nil, append(append([]string{"check", "--starttls"}, flags...), "good.example")...)
	if code != exitFail || !strings.Contains(out, "STARTTLS not offered") || !strings.Contains(out, "TLS-RPT      result starttls-not-supported, reason starttls-not-offered\n") {
		t.Errorf("without STARTTLS: exit %d, output:\n%s", code, out)
	}
}

// Without --allow-private, check refuses to connect to loopback, as the
// library does by default (issue 10 point 4): the policy host's address is
// refused, a failure of its own with its TLS-RPT reason, and so are the MX
// hosts' for --starttls.
func TestCheckRefusesPrivateAddresses(t *testing.T) {
	w := newWorld(t)
	var flags []string
	for _, f := range w.flags {
		if f != "--allow-private" {
			flags = append(flags, f)
		}
	}
	w = &world{ca: w.ca, dns: w.dns, flags: flags}
	code, _, steps := checkJSON(t, w, "--starttls", "good.example")
	if code != exitFail {
		t.Errorf("exit %d, want %d", code, exitFail)
	}
	fetch := steps["good.example"]["fetch"]
	var data fetchData
	if err := json.Unmarshal(fetch.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.ResultType != mtasts.ResultSTSPolicyFetchError || data.FailureCode != "mta-sts-policy-address-refused" || data.HTTPStatus != 0 {
		t.Errorf("fetch data %+v, want a refused address", data)
	}
	if msg := fetch.messages(statusFail); !strings.Contains(msg, "refused to connect to 127.0.0.1:") || !strings.Contains(msg, "loopback address") || !strings.Contains(msg, "--allow-private") {
		t.Errorf("fetch findings %q do not say the address was refused", msg)
	}
	if msg := steps["good.example"]["starttls"].messages(statusFail); !strings.Contains(msg, "mail.good.example (127.0.0.1:") || !strings.Contains(msg, "refused to connect to 127.0.0.1:") {
		t.Errorf("STARTTLS findings %q do not say the address was refused", msg)
	}

	code, out, _ := runMain(t, nil, append(append([]string{"check"}, flags...), "good.example")...)
	if code != exitFail || !strings.Contains(out, "TLS-RPT      result sts-policy-fetch-error, reason mta-sts-policy-address-refused\n") {
		t.Errorf("exit %d, output lacks the TLS-RPT reason:\n%s", code, out)
	}
}
