package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mjl-/adns"
	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// certWarnDays is how close to expiry a certificate gets a warning.
const certWarnDays = 14

// finding is one judged observation of a step.
type finding struct {
	Status  status `json:"status"`
	Message string `json:"message"`
	fields  []field
}

// field is a detail line under a finding, for people, with its further
// lines; JSON has the step's Data instead.
type field struct {
	key   string
	lines []string
}

// step is one stage of what a sending MTA does.
type step struct {
	Name     string     `json:"name"` // record, fetch, policy, mx, starttls, tlsrpt
	title    string     // for people
	Status   status     `json:"status"`
	Findings []*finding `json:"findings"`
	Data     any        `json:"data,omitempty"`
}

func (s *step) add(st status, format string, args ...any) {
	s.Findings = append(s.Findings, &finding{Status: st, Message: fmt.Sprintf(format, args...)})
	s.Status = worse(s.Status, st)
}

// field adds a detail line under the last finding, with further lines
// aligned under it.
func (s *step) field(key string, lines ...string) {
	if len(s.Findings) == 0 {
		s.add(statusInfo, "")
	}
	f := s.Findings[len(s.Findings)-1]
	f.fields = append(f.fields, field{key, lines})
}

// domainReport is the outcome of checking one domain.
type domainReport struct {
	Domain string  `json:"domain"`
	Status status  `json:"status"`
	Steps  []*step `json:"steps"`
}

func (r *domainReport) newStep(name, title string) *step {
	s := &step{Name: name, title: title, Status: statusInfo}
	r.Steps = append(r.Steps, s)
	return s
}

// checkReport is the JSON output of check.
type checkReport struct {
	Status  status          `json:"status"`
	Domains []*domainReport `json:"domains"`
}

// checker runs the checks of one invocation.
type checker struct {
	net       *network
	transport *recordingTransport
	timeout   time.Duration
	starttls  bool
	progress  *progress
	now       func() time.Time
}

// checkOptions are the flags of check, described in usageText.
type checkOptions struct {
	json, starttls      bool
	allowPrivate        bool
	resolver, ca, ehlo  string
	timeout             time.Duration
	httpsPort, smtpPort uint
}

func checkFlags() (*flag.FlagSet, *checkOptions) {
	o := &checkOptions{}
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.BoolVar(&o.json, "json", false, "")
	fs.BoolVar(&o.starttls, "starttls", false, "")
	fs.BoolVar(&o.allowPrivate, "allow-private", false, "")
	fs.StringVar(&o.resolver, "resolver", "", "")
	fs.StringVar(&o.ca, "ca", "", "")
	fs.DurationVar(&o.timeout, "timeout", mtasts.FetchTimeout, "")
	fs.UintVar(&o.httpsPort, "https-port", 443, "")
	fs.UintVar(&o.smtpPort, "smtp-port", 25, "")
	fs.StringVar(&o.ehlo, "ehlo", "localhost", "")
	return fs, o
}

func runCheck(ctx context.Context, args []string, sio *stdio) (int, error) {
	fs, o := checkFlags()
	args, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage, err
	}
	if len(args) == 0 {
		return exitUsage, usagef("check: no domain given; \"mtasts demo\" shows a check without a network")
	}
	if o.timeout <= 0 {
		return exitUsage, usagef("check: --timeout must be positive")
	}
	if o.httpsPort == 0 || o.httpsPort > 65535 || o.smtpPort == 0 || o.smtpPort > 65535 {
		return exitUsage, usagef("check: ports must be 1 to 65535")
	}
	var domains []mtasts.Domain
	for _, a := range args {
		d, err := mtasts.ParseDomain(a)
		if err != nil {
			return exitUsage, usagef("check: %s", errText(err))
		}
		domains = append(domains, d)
	}
	var caPEM []byte
	if o.ca != "" {
		if caPEM, err = readFileLimited(o.ca, 1<<20); err != nil {
			return exitUsage, usagef("check: --ca: %v", err)
		}
	}
	n, err := newNetwork(o.resolver, caPEM)
	if err != nil {
		return exitUsage, usagef("check: %v", err)
	}
	n.httpsPort = strconv.FormatUint(uint64(o.httpsPort), 10)
	n.smtpPort = strconv.FormatUint(uint64(o.smtpPort), 10)
	n.ehlo = o.ehlo
	if o.allowPrivate {
		n.allow = mtasts.AllowPrivate
	}

	c := &checker{
		net:       n,
		transport: n.httpTransport(),
		timeout:   o.timeout,
		starttls:  o.starttls,
		progress:  &progress{w: sio.err, terminal: isTerminal(sio.err) && sio.getenv("TERM") != "dumb"},
		now:       time.Now,
	}
	// The command owns the process: FetchPolicy uses this client.
	mtasts.HTTPClient = &http.Client{Transport: c.transport, Timeout: o.timeout}

	report := &checkReport{Status: statusPass, Domains: []*domainReport{}}
	p := &printer{w: sio.out, color: useColor(sio.out, sio.getenv)}
	for i, d := range domains {
		r := c.checkDomain(ctx, d)
		report.Domains = append(report.Domains, r)
		report.Status = worse(report.Status, r.Status)
		if !o.json {
			if i > 0 {
				fmt.Fprintln(sio.out)
			}
			printDomain(p, r)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if o.json {
		if err := writeJSON(sio.out, report); err != nil {
			return exitFail, err
		}
	}
	if report.Status == statusFail {
		return exitFail, nil
	}
	return exitOK, nil
}

// step runs f with a context bounded by --timeout, showing msg as progress.
func (c *checker) step(ctx context.Context, msg string, f func(ctx context.Context)) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	c.progress.start(msg)
	defer c.progress.end()
	f(ctx)
}

// checkDomain does what a sending MTA does for domain, step by step.
func (c *checker) checkDomain(ctx context.Context, domain mtasts.Domain) *domainReport {
	r := &domainReport{Domain: domain.String()}
	recordOK := c.checkRecord(ctx, r, domain)
	policy := c.checkPolicy(ctx, r, domain, recordOK)
	hosts := c.checkMX(ctx, r, domain, policy)
	if c.starttls {
		c.checkSTARTTLS(ctx, r, hosts)
	}
	c.checkTLSRPT(ctx, r, domain)
	r.Status = statusPass
	for _, s := range r.Steps {
		r.Status = worse(r.Status, s.Status)
	}
	return r
}

// recordingResolver passes TXT lookups to the resolver and keeps the
// answer, so the report can show every record, not only the one used.
type recordingResolver struct {
	n      *network
	txts   []string
	result adns.Result
}

func (rr *recordingResolver) LookupTXT(ctx context.Context, name string) ([]string, adns.Result, error) {
	txts, result, err := rr.n.lookupTXT(ctx, name)
	rr.txts, rr.result = txts, result
	return txts, result, err
}

// recordData is the JSON data of the record step.
type recordData struct {
	Name   string   `json:"name"`
	TXT    []string `json:"txt"`
	Record string   `json:"record,omitempty"`
	ID     string   `json:"id,omitempty"`
	DNSSEC bool     `json:"dnssec"`
	Error  string   `json:"error,omitempty"`
}

// checkRecord looks up the _mta-sts TXT record (RFC 8461 3.1) and reports
// whether a valid one was found.
func (c *checker) checkRecord(ctx context.Context, r *domainReport, domain mtasts.Domain) bool {
	s := r.newStep("record", "TXT record")
	name := "_mta-sts." + domain.ASCII
	rr := &recordingResolver{n: c.net}
	var (
		record *mtasts.Record
		text   string
		err    error
	)
	c.step(ctx, "looking up TXT "+name, func(ctx context.Context) {
		record, text, err = mtasts.LookupRecord(ctx, rr, domain)
	})
	data := &recordData{Name: name, TXT: append([]string{}, rr.txts...), DNSSEC: rr.result.Authentic}
	s.Data = data
	if err != nil {
		data.Error = err.Error()
		switch {
		case errors.Is(err, mtasts.ErrNoRecord):
			s.add(statusFail, "%s: no MTA-STS record, so senders see no policy (RFC 8461 3.1)", name)
		case errors.Is(err, mtasts.ErrMultipleRecords):
			s.add(statusFail, "%s: %d records start with v=STSv1; senders use none (RFC 8461 3.1)", name, countPrefix(rr.txts, "v=STSv1"))
		case errors.Is(err, mtasts.ErrRecordSyntax):
			s.add(statusFail, "%s: invalid record %q: %s", name, text, syntaxMsg(err))
		default:
			s.add(statusFail, "%s: DNS lookup failed: %v", name, err)
		}
		for _, t := range rr.txts {
			s.field("TXT", strconv.Quote(t))
		}
		return false
	}
	data.Record, data.ID = text, record.ID
	s.add(statusPass, "%s: %q", name, text)
	s.field("id", record.ID)
	for _, e := range record.Extensions {
		s.field("extension", e.Key+"="+e.Value)
	}
	if rr.result.Authentic {
		s.field("DNSSEC", "signed and validated")
	} else {
		s.field("DNSSEC", "not validated")
	}
	return true
}

func countPrefix(txts []string, prefix string) int {
	n := 0
	for _, t := range txts {
		if strings.HasPrefix(t, prefix) {
			n++
		}
	}
	return n
}

// syntaxMsg returns the parser's own words for a syntax error.
func syntaxMsg(err error) string {
	var serr *mtasts.SyntaxError
	if errors.As(err, &serr) {
		msg := serr.Msg
		if serr.Field != "" {
			msg = strconv.Quote(serr.Field) + ": " + msg
		}
		if serr.Line > 0 {
			msg = "line " + strconv.Itoa(serr.Line) + ": " + msg
		}
		return msg
	}
	return err.Error()
}

// fetchData is the JSON data of the policy fetch step.
type fetchData struct {
	URL          string            `json:"url"`
	HTTPStatus   int               `json:"http_status,omitempty"`
	Protocol     string            `json:"protocol,omitempty"`
	ContentType  string            `json:"content_type,omitempty"`
	Cert         *certInfo         `json:"certificate,omitempty"`
	Size         int               `json:"size"`
	Text         string            `json:"text,omitempty"`
	Error        string            `json:"error,omitempty"`
	ResultType   mtasts.ResultType `json:"tlsrpt_result_type,omitempty"`
	FailureCode  string            `json:"tlsrpt_failure_reason,omitempty"`
	CacheControl string            `json:"cache_control,omitempty"`
}

// checkPolicy fetches the policy (RFC 8461 3.3) and judges it (RFC 8461
// 3.2). It returns the policy, or nil when none could be had. Without a valid
// record a sender would not fetch (RFC 8461 3.1); check fetches anyway, to
// show the whole setup, and says so.
func (c *checker) checkPolicy(ctx context.Context, r *domainReport, domain mtasts.Domain, recordOK bool) *mtasts.Policy {
	s := r.newStep("fetch", "policy fetch")
	host := "mta-sts." + domain.ASCII
	url := "https://" + host + mtasts.WellKnownPath
	var (
		policy *mtasts.Policy
		text   string
		err    error
	)
	c.transport.take()
	c.step(ctx, "fetching "+url, func(ctx context.Context) {
		policy, text, err = mtasts.FetchPolicy(ctx, domain)
	})
	resp := c.transport.take()
	data := &fetchData{URL: url, Size: len(text), Text: text}
	s.Data = data
	if resp != nil {
		data.HTTPStatus = resp.StatusCode
		data.Protocol = resp.Proto
		data.ContentType = resp.Header.Get("Content-Type")
		data.CacheControl = resp.Header.Get("Cache-Control")
		if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
			data.Cert = newCertInfo(resp.TLS.PeerCertificates[0], c.now())
		}
	}
	if err != nil {
		data.Error = err.Error()
		data.ResultType = mtasts.TLSReportResultType(err)
		data.FailureCode = mtasts.TLSReportFailureReason(err)
		certErr := data.ResultType == mtasts.ResultSTSWebPKIInvalid
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) && len(verr.UnverifiedCertificates) > 0 {
			// Show the certificate that failed.
			data.Cert = newCertInfo(verr.UnverifiedCertificates[0], c.now())
		}
		var aerr *mtasts.AddressRefusedError
		switch {
		case errors.Is(err, mtasts.ErrPolicySyntax) && text != "":
			// Fetched, but invalid: the policy step says why.
			s.add(statusFail, "%s: fetched, but not a valid policy", url)
		case errors.As(err, &aerr):
			// Issue 10: the library refuses such addresses by
			// default, and so does check.
			s.add(statusFail, "%s: %s", url, refusedText(aerr, true))
		case certErr:
			s.add(statusFail, "%s: certificate not valid for %s: %s", url, host, rootCause(err))
		default:
			s.add(statusFail, "%s: %s", url, trimPrefixes(err.Error(), url))
		}
		s.field("TLS-RPT", tlsrptText(data.ResultType, data.FailureCode))
	} else {
		s.add(statusPass, "%s", url)
	}
	if resp != nil {
		s.field("status", fmt.Sprintf("%d %s (%s)", resp.StatusCode, http.StatusText(resp.StatusCode), resp.Proto))
		s.field("media type", data.ContentType)
	}
	if data.Cert != nil {
		s.field("certificate", data.Cert.lines()...)
	}
	if resp != nil && resp.StatusCode == http.StatusOK {
		s.field("size", fmt.Sprintf("%d bytes", len(text)))
		s.field("text", showText(text, 20)...)
	}
	if err == nil && data.Cert != nil && data.Cert.DaysLeft < certWarnDays {
		s.add(statusWarn, "the certificate of %s expires in %d %s", host, data.Cert.DaysLeft, plural(data.Cert.DaysLeft, "day"))
	}
	if !recordOK {
		s.add(statusInfo, "without a valid TXT record senders do not fetch the policy; fetched only to show it")
	}

	// The policy itself, when there is text to judge.
	ps := r.newStep("policy", "policy")
	if text == "" || resp == nil || resp.StatusCode != http.StatusOK {
		ps.add(statusInfo, "no policy to check")
		return nil
	}
	// The same lint as "mtasts policy": it parses the text as FetchPolicy
	// did, and adds line numbers and warnings.
	lint := lintPolicy(url, text)
	if pj := lint.Policy; pj != nil {
		ps.Data = pj
		ps.add(statusPass, "mode %s, max_age %d (%s)", pj.Mode, pj.MaxAgeSeconds, pj.MaxAge)
		if len(pj.MX) > 0 {
			ps.field("mx", pj.MX...)
		}
		switch mtasts.Mode(pj.Mode) {
		case mtasts.ModeTesting:
			ps.add(statusInfo, "mode testing: senders report failures (TLS-RPT) but deliver anyway")
		case mtasts.ModeNone:
			ps.add(statusInfo, "mode none: senders treat the domain as having no policy")
		}
	}
	for _, f := range lint.Findings {
		msg := f.Message
		if f.Line > 0 {
			msg = "line " + strconv.Itoa(f.Line) + ": " + msg
		}
		ps.add(f.Status, "%s", msg)
	}
	return policy
}

// showText returns a policy's text for display: lines without their ends,
// at most max of them.
func showText(text string, max int) []string {
	lines := strings.Split(strings.TrimRight(text, "\r\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	if len(lines) > max {
		more := len(lines) - max
		lines = append(lines[:max], fmt.Sprintf("… %d more %s", more, plural(more, "line")))
	}
	return lines
}

// rootCause returns the innermost error's message: for a certificate
// failure, the x509 reason.
func rootCause(err error) string {
	for {
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next := u.Unwrap()
			if next == nil {
				return err.Error()
			}
			err = next
		case interface{ Unwrap() []error }:
			errs := u.Unwrap()
			if len(errs) == 0 {
				return err.Error()
			}
			err = errs[len(errs)-1]
		default:
			return err.Error()
		}
	}
}

// trimPrefixes drops from a fetch error what the line already says: the
// library's "mtasts: <class>: <url>: " prefix, and net/http's "Get <url>: ".
func trimPrefixes(s, url string) string {
	if _, after, ok := strings.Cut(s, url+": "); ok {
		s = after
	}
	return strings.Replace(s, "Get "+strconv.Quote(url)+": ", "", 1)
}

// mxData is the JSON data of one MX host.
type mxData struct {
	Host       string `json:"host"`
	Preference int    `json:"preference"`
	Allowed    *bool  `json:"allowed,omitempty"` // nil without a policy to apply
	Pattern    string `json:"pattern,omitempty"`
}

// checkMX looks up the domain's MX records and matches each against the
// policy (RFC 8461 4.1). It returns the hosts to probe with STARTTLS.
func (c *checker) checkMX(ctx context.Context, r *domainReport, domain mtasts.Domain, policy *mtasts.Policy) []mtasts.Domain {
	s := r.newStep("mx", "MX")
	var (
		mxs []*net.MX
		err error
	)
	c.step(ctx, "looking up MX "+domain.ASCII, func(ctx context.Context) {
		mxs, _, err = c.net.lookupMX(ctx, domain.ASCII+".")
	})
	var dnsErr *adns.DNSError
	switch {
	case err != nil && errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		// RFC 5321 5.1: without MX records, the domain itself is the
		// mail host (the implicit MX).
		mxs = []*net.MX{{Host: domain.ASCII, Pref: 0}}
		s.add(statusInfo, "no MX records: senders deliver to %s itself (RFC 5321 5.1)", domain.ASCII)
	case err != nil:
		s.add(statusFail, "MX lookup failed: %v", err)
		return nil
	case len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == ""):
		s.add(statusInfo, "null MX (RFC 7505): the domain accepts no mail")
		return nil
	}
	sort.SliceStable(mxs, func(i, j int) bool { return mxs[i].Pref < mxs[j].Pref })
	var hosts []mtasts.Domain
	var list []*mxData
	for _, mx := range mxs {
		d, perr := mtasts.ParseDomain(mx.Host)
		if perr != nil {
			s.add(statusFail, "MX %q (preference %d): not a valid host name: %v", mx.Host, mx.Pref, perr)
			continue
		}
		hosts = append(hosts, d)
		md := &mxData{Host: d.ASCII, Preference: int(mx.Pref)}
		list = append(list, md)
		what := fmt.Sprintf("%s (preference %d)", d.String(), mx.Pref)
		switch {
		case policy == nil:
			s.add(statusInfo, "%s: no policy to match against", what)
		case policy.Mode == mtasts.ModeNone:
			s.add(statusInfo, "%s: mode none, not matched", what)
		default:
			pattern := matchingPattern(policy, d)
			ok := pattern != ""
			md.Allowed, md.Pattern = &ok, pattern
			if ok {
				s.add(statusPass, "%s: allowed by mx %s", what, pattern)
			} else if policy.Mode == mtasts.ModeEnforce {
				// RFC 8461 5: in enforce mode, senders MUST NOT
				// deliver to an MX host that fails validation.
				s.add(statusFail, "%s: not allowed by the policy: senders will not deliver to it", what)
			} else {
				s.add(statusFail, "%s: not allowed by the policy: senders deliver but report a failure, and would not deliver in enforce mode", what)
			}
		}
	}
	s.Data = list
	return hosts
}

// matchingPattern returns the first mx pattern of policy that allows host,
// or "".
func matchingPattern(policy *mtasts.Policy, host mtasts.Domain) string {
	for _, mx := range policy.MX {
		one := mtasts.Policy{MX: []mtasts.STSMX{mx}}
		if one.Matches(host) {
			return mx.String()
		}
	}
	return ""
}

// checkSTARTTLS connects to every address of each MX host, IPv4 and IPv6,
// and checks its STARTTLS and certificate (RFC 8461 4.2). Senders try the
// addresses in turn, so each is reported, and a broken one is a failure.
func (c *checker) checkSTARTTLS(ctx context.Context, r *domainReport, hosts []mtasts.Domain) {
	s := r.newStep("starttls", "STARTTLS")
	if len(hosts) == 0 {
		s.add(statusInfo, "no MX host to connect to")
		return
	}
	list := []*starttlsResult{}
	for _, h := range hosts {
		var (
			addrs []netip.Addr
			err   error
		)
		c.step(ctx, "looking up the addresses of "+h.ASCII, func(ctx context.Context) {
			addrs, err = c.net.lookupAddrs(ctx, h.ASCII)
		})
		if err != nil {
			list = append(list, &starttlsResult{Host: h.ASCII, Error: err.Error()})
			s.add(statusFail, "%s: looking up its addresses: %v", h.ASCII, err)
			continue
		}
		for _, a := range addrs {
			list = append(list, c.probeAddr(ctx, s, h, a))
		}
	}
	s.Data = list
}

// probeAddr checks STARTTLS at one address of MX host h, and adds the
// outcome to s, with its TLS-RPT result type and reason code when TLS
// failed (RFC 8460 4.3).
func (c *checker) probeAddr(ctx context.Context, s *step, h mtasts.Domain, addr netip.Addr) *starttlsResult {
	var (
		res *starttlsResult
		err error
	)
	c.step(ctx, "STARTTLS with "+h.ASCII+" at "+net.JoinHostPort(addr.String(), c.net.smtpPort), func(ctx context.Context) {
		res, err = c.net.probeSTARTTLS(ctx, h, addr)
	})
	where := h.ASCII + " (" + res.Addr + ")"
	var aerr *mtasts.AddressRefusedError
	switch {
	case errors.As(err, &aerr):
		res.Error = err.Error()
		s.add(statusFail, "%s: %s", where, refusedText(aerr, false))
		return res
	case err != nil:
		res.Error = err.Error()
		s.add(statusFail, "%s: %v", where, err)
		return res
	case res.tlsErr != nil:
		res.ResultType = mtasts.TLSReportResultType(res.tlsErr)
		res.FailureCode = mtasts.TLSReportFailureReason(res.tlsErr)
		s.add(statusFail, "%s: %s", where, describeTLSFailure(res, h))
		if res.ResultType != "" {
			s.field("TLS-RPT", tlsrptText(res.ResultType, res.FailureCode))
		}
	default:
		s.add(statusPass, "%s: %s, certificate valid for %s", where, res.TLSVersion, h.ASCII)
		if res.Cert != nil && res.Cert.DaysLeft < certWarnDays {
			s.add(statusWarn, "%s: the certificate expires in %d %s", where, res.Cert.DaysLeft, plural(res.Cert.DaysLeft, "day"))
		}
	}
	if res.Cert != nil {
		s.field("certificate", res.Cert.lines()...)
	}
	return res
}

// describeTLSFailure says why a session with MX host h did not get to
// valid TLS, and keeps it in res: a certificate's failure in CertError, the
// others in Error.
func describeTLSFailure(res *starttlsResult, h mtasts.Domain) string {
	var (
		verr *tls.CertificateVerificationError
		serr *mtasts.STARTTLSError
	)
	if errors.As(res.tlsErr, &verr) {
		res.CertError = rootCause(verr)
		return "certificate not valid for " + h.ASCII + ": " + res.CertError
	}
	res.Error = res.tlsErr.Error()
	switch {
	case !errors.As(res.tlsErr, &serr):
		return res.Error // STARTTLS not offered
	case errors.Is(serr, mtasts.ErrSTARTTLSNotSupported):
		return "STARTTLS refused: " + serr.Err.Error()
	}
	return "TLS handshake failed: " + serr.Err.Error()
}

// refusedText says that an address was refused, and how to allow it. A
// sending MTA that uses the library refuses a policy host's such address
// too.
func refusedText(aerr *mtasts.AddressRefusedError, policyHost bool) string {
	also := ""
	if policyHost {
		also = "; senders using the library refuse it too"
	}
	return fmt.Sprintf("refused to connect to %s, a %s address%s (--allow-private allows loopback and private addresses)", aerr.Addr, aerr.Class, also)
}

// tlsrptText is the TLS-RPT field of a failed fetch or session: its result
// type and its failure reason code, each labelled, since the two are often
// the same word (RFC 8460 4.3, 4.4).
func tlsrptText(resultType mtasts.ResultType, reason string) string {
	if reason == "" {
		return "result " + string(resultType)
	}
	return "result " + string(resultType) + ", reason " + reason
}

// tlsrptData is the JSON data of the TLS-RPT step.
type tlsrptData struct {
	Name    string   `json:"name"`
	Records []string `json:"records"`
	RUA     []string `json:"rua,omitempty"`
}

// checkTLSRPT looks up the TLS-RPT record at _smtp._tls.<domain> (RFC 8460
// 3), where failures of MTA-STS are reported, with the tlsrpt package senders
// use.
func (c *checker) checkTLSRPT(ctx context.Context, r *domainReport, domain mtasts.Domain) {
	s := r.newStep("tlsrpt", "TLS-RPT")
	name := "_smtp._tls." + domain.ASCII // RFC 8460 3
	rr := &recordingResolver{n: c.net}
	var (
		record *tlsrpt.Record
		text   string
		err    error
	)
	c.step(ctx, "looking up TXT "+name, func(ctx context.Context) {
		record, text, err = tlsrpt.LookupRecord(ctx, rr, domain)
	})
	data := &tlsrptData{Name: name, Records: []string{}}
	s.Data = data
	for _, t := range rr.txts {
		if _, ok, _ := tlsrpt.ParseRecord(t); ok {
			data.Records = append(data.Records, t)
		}
	}
	var serr *tlsrpt.SyntaxError
	switch {
	case errors.Is(err, tlsrpt.ErrNoRecord):
		s.add(statusWarn, "%s: no TLS-RPT record, so failures of MTA-STS are not reported to you (RFC 8460)", name)
		return
	case errors.Is(err, tlsrpt.ErrMultipleRecords):
		s.add(statusFail, "%s: %d TLS-RPT records; senders use none (RFC 8460 3)", name, len(data.Records))
		return
	case errors.As(err, &serr):
		msg := serr.Msg
		if serr.Field != "" {
			msg = strconv.Quote(serr.Field) + ": " + msg
		}
		s.add(statusFail, "%s: invalid record %q: %s", name, text, msg)
		return
	case err != nil:
		s.add(statusFail, "%s: DNS lookup failed: %s", name, rootCause(err))
		return
	}
	data.RUA = record.RUA
	supported := record.SupportedRUA()
	if len(supported) == 0 {
		s.add(statusFail, "%s: %q: no mailto: or https: URI in rua, the only schemes reporters use (RFC 8460 3)", name, text)
		return
	}
	s.add(statusPass, "%s: %q", name, text)
	s.field("reports to", supported...)
	for _, u := range record.RUA {
		if !slices.Contains(supported, u) {
			s.add(statusWarn, "%s: rua URI %q: scheme not supported, reporters skip it (RFC 8460 3)", name, u)
		}
	}
}

// printDomain writes a domain's report for people.
func printDomain(p *printer, r *domainReport) {
	p.heading(r.Domain)
	nwarn, nfail := 0, 0
	for _, s := range r.Steps {
		for _, f := range s.Findings {
			p.finding(f.Status, s.title, f.Message)
			for _, fl := range f.fields {
				p.field(fl.key, fl.lines...)
			}
			switch f.Status {
			case statusWarn:
				nwarn++
			case statusFail:
				nfail++
			}
		}
	}
	fmt.Fprintf(p.w, "%s: %s, %d %s, %d %s\n", escapeText(r.Domain), p.tag(r.Status), nfail, plural(nfail, "failure"), nwarn, plural(nwarn, "warning"))
}
