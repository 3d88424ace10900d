package tlsrpt_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// The deliveries of mox's TestSendReports (tlsrptsend), in the library's own
// terms: one UTC day of deliveries to recipient domains with MTA-STS and
// with DANE MX hosts, TLSRPT records at recipient domains and at MX hosts,
// and the reports each rua URI gets with both kinds of report
// (ReportInfo.Recipients and MXHosts) and only for domains with failures
// (FailuresOnly), as mox sends them by default. The rua URIs are https ones
// of a collector on 127.0.0.1, where mox's are mailto ones.
type moxDelivery struct {
	rcpt, mx  string
	policy    tlsrpt.Policy
	ok, fail  int64
	row       *tlsrpt.FailureDetail
	countOnly bool // mox's SendReport false
}

func moxDeliveries(t *testing.T) []moxDelivery {
	t.Helper()
	dom := func(s string) mtasts.Domain {
		d, err := mtasts.ParseDomain(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// ☺.example, whose MX host mailhost.☺.example does DANE.
	smiley := tlsrpt.Target{Recipient: dom("☺.example"), MX: dom("mailhost.☺.example")}
	policy, err := mtasts.ParsePolicy("version: STSv1\nmode: enforce\nmx: *.xn--74h.example\nmax_age: 86400\n")
	if err != nil {
		t.Fatal(err)
	}
	sts := smiley.STS(policy, "")
	records := []string{"3 1 1 " + strings.Repeat("5E", 32)}
	tlsa, err := smiley.TLSA(records)
	if err != nil {
		t.Fatal(err)
	}
	// sharedsender.example uses the same MX host.
	shared, err := tlsrpt.Target{Recipient: dom("sharedsender.example"), MX: dom("mailhost.☺.example")}.TLSA(records)
	if err != nil {
		t.Fatal(err)
	}
	// MX hosts without DANE: their sessions have no policy of the host.
	noPolicy := func(rcpt string) tlsrpt.Policy {
		return tlsrpt.Policy{PolicyType: tlsrpt.PolicyTypeNoPolicyFound, PolicyDomain: "mailhost." + rcpt, RecipientDomain: rcpt}
	}
	expired := &tlsrpt.FailureDetail{
		ResultType:          mtasts.ResultCertificateExpired,
		SendingMTAIP:        netip.MustParseAddr("1.2.3.4"),
		ReceivingMXHostname: "mailhost.xn--74h.example",
		ReceivingMXHelo:     "mailhost.xn--74h.example",
		ReceivingIP:         netip.MustParseAddr("4.3.2.1"),
		FailedSessionCount:  3,
	}
	signature := &tlsrpt.FailureDetail{
		ResultType:          mtasts.ResultValidationFailure,
		SendingMTAIP:        netip.MustParseAddr("1.2.3.4"),
		ReceivingMXHostname: "mailhost.xn--74h.example",
		ReceivingMXHelo:     "mailhost.xn--74h.example",
		ReceivingIP:         netip.MustParseAddr("4.3.2.1"),
		FailedSessionCount:  1,
		FailureReasonCode:   "dns-extended-error-7-signature-expired",
	}
	return []moxDelivery{
		{rcpt: "xn--74h.example", mx: "mailhost.xn--74h.example", policy: sts, ok: 10, fail: 3, row: expired},
		// Counted only: reported with the next one, to the MX host.
		{rcpt: "xn--74h.example", mx: "mailhost.xn--74h.example", policy: tlsa, ok: 10, fail: 1, row: signature, countOnly: true},
		{rcpt: "sharedsender.example", mx: "mailhost.xn--74h.example", policy: shared, ok: 10, fail: 1, row: signature},
		// Counted only, and alone: no report.
		{rcpt: "noreport.example", policy: noPolicy("noreport.example"), ok: 2, fail: 1, countOnly: true},
		// Its host's record has no rua (and is invalid to this library).
		{rcpt: "norua.example", policy: noPolicy("norua.example"), ok: 2, fail: 1, countOnly: true},
		// No TLSRPT record anywhere: no report.
		{rcpt: "notlsrpt.example", policy: noPolicy("notlsrpt.example"), ok: 2, fail: 1},
	}
}

// moxRun records deliveries for one day, runs a Reporter with a Sender
// until the day's reports are done, and returns the reports each rua URI
// (by path) got, as the JSON of their policies.
func moxRun(t *testing.T, deliveries []moxDelivery, dns map[string]string, info tlsrpt.ReportInfo) map[string][]string {
	t.Helper()
	c := newCollector(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	resolver := mtaststest.NewResolver()
	for name, rec := range dns {
		resolver.SetTXT(name, strings.ReplaceAll(rec, "URL", c.srv.URL))
	}
	day := storefixture.DayOne
	clk := newClock(day.Add(12 * time.Hour))
	store := tlsrpt.NewMemoryStore()
	rec, _ := newRecorder(t, tlsrpt.WithNow(tlsrpt.RecorderOptions{Store: store}, clk.now))
	for _, d := range deliveries {
		pr := tlsrpt.PolicyResult{Policy: d.policy, Summary: tlsrpt.Summary{TotalSuccessfulSessionCount: d.ok, TotalFailureSessionCount: d.fail},
			CountOnly: d.countOnly}
		if d.row != nil && d.fail > 0 {
			pr.FailureDetails = []tlsrpt.FailureDetail{*d.row}
		}
		must(t, rec.Record(pr))
	}
	clk.set(afterDay(day))
	sender, err := tlsrpt.NewSender(tlsrpt.SenderOptions{Resolver: resolver, Transport: c.transport(mtasts.AllowLoopback)})
	must(t, err)
	box := tlsrpt.NewMemoryOutbox()
	info.OrganizationName, info.ContactInfo = "mox.example", "postmaster@mox.example"
	rep, err := tlsrpt.NewReporter(tlsrpt.ReporterOptions{Recorder: rec, Sender: sender, Outbox: box, Info: info, MaxDelay: -1, Spread: -1})
	must(t, err)
	reg := prometheus.NewRegistry()
	must(t, rep.RegisterMetrics(reg))
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() { ended <- rep.Run(ctx) }()
	// Until the day is taken and its reports are done.
	deadline := time.Now().Add(30 * time.Second)
	for {
		taken := metric(t, reg, "mtastsgo_tlsrpt_days_taken_total") == 1 // before Pending: the reports are put before
		pending, _ := box.Pending(ctx)
		if taken && len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reports not done: pending %d", len(pending))
		}
		time.Sleep(10 * time.Millisecond) // polling for the end, not timing it
	}
	cancel()
	<-ended
	got := map[string][]string{}
	for _, p := range c.received() {
		r, _, err := tlsrpt.ReadReport(bytes.NewReader(p.body), tlsrpt.ReadOptions{})
		if err != nil {
			t.Fatalf("report posted to %s: %v", p.path, err)
		}
		if r.OrganizationName != "mox.example" || !r.DateRange.Start.Equal(day) {
			t.Errorf("report posted to %s: %+v", p.path, r)
		}
		js, _ := json.Marshal(r.Policies)
		got[p.path] = append(got[p.path], string(js))
	}
	for _, l := range got {
		slices.Sort(l)
	}
	return got
}

// moxReport returns the JSON of the policies of a report, each a delivery's
// policy with policyDomain and mxHost in place of its own when set.
func moxReport(t *testing.T, entries ...moxEntry) string {
	t.Helper()
	var prs []tlsrpt.PolicyResult
	for _, e := range entries {
		p := e.d.policy
		p.RecipientDomain = ""
		if e.policyDomain != "" {
			p.PolicyDomain, p.MXHost = e.policyDomain, []string{e.mxHost}
		}
		pr := tlsrpt.PolicyResult{Policy: p, Summary: tlsrpt.Summary{TotalSuccessfulSessionCount: e.d.ok, TotalFailureSessionCount: e.d.fail}}
		if e.d.row != nil && e.d.fail > 0 {
			pr.FailureDetails = []tlsrpt.FailureDetail{*e.d.row}
		}
		prs = append(prs, pr)
	}
	js, err := json.Marshal(prs)
	if err != nil {
		t.Fatal(err)
	}
	return string(js)
}

type moxEntry struct {
	d                    moxDelivery
	policyDomain, mxHost string
}

func TestMoxSendReports(t *testing.T) {
	both := tlsrpt.ReportInfo{Recipients: true, MXHosts: true, FailuresOnly: true}
	dns := map[string]string{
		"_smtp._tls.xn--74h.example":          "v=TLSRPTv1; rua=URL/tls-reports",
		"_smtp._tls.mailhost.xn--74h.example": "v=TLSRPTv1; rua=URL/tls-reports1,URL/tls-reports2,URL/tls-reports3",
		"_smtp._tls.noreport.example":         "v=TLSRPTv1; rua=URL/noreport",
		"_smtp._tls.mailhost.norua.example":   "v=TLSRPTv1;",
	}
	d := moxDeliveries(t)
	const host = "mailhost.xn--74h.example"
	// To ☺.example: its MTA-STS results and the DANE results of its MX
	// host, under the host's policy domain (policies in order of policy
	// domain).
	report1 := moxReport(t, moxEntry{d: d[1]}, moxEntry{d: d[0]})
	// To the MX host: its DANE results, each with the recipient domain as
	// policy-domain and the host as mx-host.
	report2 := moxReport(t, moxEntry{d[2], "sharedsender.example", host}, moxEntry{d[1], "xn--74h.example", host})

	t.Run("both kinds", func(t *testing.T) {
		got := moxRun(t, d, dns, both)
		want := map[string][]string{"/tls-reports": {report1}, "/tls-reports1": {report2}, "/tls-reports2": {report2}, "/tls-reports3": {report2}}
		compareReports(t, got, want)
	})

	// The MX host has the recipient domain's rua: the host's report would
	// hold ☺.example's results only, counted only, and is not made.
	dns2 := clone(dns)
	dns2["_smtp._tls.mailhost.xn--74h.example"] = "v=TLSRPTv1; rua=URL/tls-reports"
	t.Run("host with the recipient's rua", func(t *testing.T) {
		compareReports(t, moxRun(t, d[:2], dns2, both), map[string][]string{"/tls-reports": {report1}})
	})

	// sharedsender.example has that rua too. mox sends the host's report
	// with sharedsender.example's results alone, as sharedsender.example
	// had no recipient-domain report of its own. Here the DANE-only
	// recipient domain gets its own report (its deliveries' DANE results,
	// under the host's policy domain), and the host's report, whose
	// recipient domains all have the host's rua, is left out: each result
	// still reaches the rua once.
	dns3 := clone(dns2)
	dns3["_smtp._tls.sharedsender.example"] = "v=TLSRPTv1; rua=URL/tls-reports"
	t.Run("shared rua", func(t *testing.T) {
		got := moxRun(t, d, dns3, both)
		want := map[string][]string{"/tls-reports": {report1, moxReport(t, moxEntry{d: d[2]})}}
		slices.Sort(want["/tls-reports"])
		compareReports(t, got, want)
	})

	// Successes only: no report by default in mox, nor with FailuresOnly.
	ok := slices.Clone(d)
	for i := range ok {
		ok[i].fail = 0
	}
	t.Run("successes only", func(t *testing.T) {
		compareReports(t, moxRun(t, ok, dns, both), map[string][]string{})
	})
	// mox's OutgoingTLSReportsForAllSuccess: FailuresOnly unset.
	t.Run("successes only, reported", func(t *testing.T) {
		all := both
		all.FailuresOnly = false
		r1 := moxReport(t, moxEntry{d: ok[1]}, moxEntry{d: ok[0]})
		r2 := moxReport(t, moxEntry{ok[2], "sharedsender.example", host}, moxEntry{ok[1], "xn--74h.example", host})
		compareReports(t, moxRun(t, ok, dns, all), map[string][]string{"/tls-reports": {r1}, "/tls-reports1": {r2}, "/tls-reports2": {r2}, "/tls-reports3": {r2}})
	})
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func compareReports(t *testing.T, got, want map[string][]string) {
	t.Helper()
	for path, w := range want {
		if !slices.Equal(got[path], w) {
			t.Errorf("%s got:\n%s\nwant:\n%s", path, strings.Join(got[path], "\n"), strings.Join(w, "\n"))
		}
	}
	for path, g := range got {
		if _, ok := want[path]; !ok {
			t.Errorf("%s got %d reports, want none:\n%s", path, len(g), strings.Join(g, "\n"))
		}
	}
}
