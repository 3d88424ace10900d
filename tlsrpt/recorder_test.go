package tlsrpt_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// clock is a settable time for the recorder (tlsrpt.WithNow), for tests
// that need none of synctest's goroutine tracking.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}
func (c *clock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }

func newRecorder(t *testing.T, opts tlsrpt.RecorderOptions) (*tlsrpt.Recorder, *prometheus.Registry) {
	t.Helper()
	rec, err := tlsrpt.NewRecorder(opts)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := rec.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	return rec, reg
}

// metric returns the sum of the values of the metric name in reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func mustTake(t *testing.T, rec *tlsrpt.Recorder, day time.Time) tlsrpt.DayResults {
	t.Helper()
	d, err := rec.Take(context.Background(), day)
	if err != nil {
		t.Fatalf("Take(%s): %v", day.Format(time.DateOnly), err)
	}
	return d
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var (
	sts     = storefixture.STS
	row     = storefixture.Row
	result  = storefixture.Result
	expired = mtasts.ResultCertificateExpired
)

// afterDay returns a time at which day is closed for a recorder of the
// default CloseDelay.
func afterDay(day time.Time) time.Time { return day.AddDate(0, 0, 1).Add(5 * time.Minute) }

// RFC 8460 4.1: a report covers a UTC day, 00:00-24:00; a session at
// 23:59:59.999 belongs to the day, one at 00:00 to the next. A day is handed
// out once it has closed, and only once.
func TestRecorderDayBoundary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock starts at 2000-01-01T00:00:00Z.
		day1 := time.Now().UTC()
		day2 := day1.AddDate(0, 0, 1)
		rec, _ := newRecorder(t, tlsrpt.RecorderOptions{})
		p := sts("example.com", "enforce")

		time.Sleep(24*time.Hour - time.Millisecond)
		must(t, rec.Success(p))
		must(t, rec.Failure(p, row(expired, "example.com", 1, 0)))
		time.Sleep(time.Millisecond)
		// The recorder reads no clock when recording: its timer moves
		// it to the new day at midnight, an instant that other
		// goroutines share.
		synctest.Wait()
		must(t, rec.Success(p))
		must(t, rec.Success(p))

		if _, err := rec.Take(context.Background(), day1); !errors.Is(err, tlsrpt.ErrDayOpen) {
			t.Fatalf("Take of the day just ended: %v, want ErrDayOpen", err)
		}
		time.Sleep(5*time.Minute - time.Nanosecond)
		if _, err := rec.Take(context.Background(), day1); !errors.Is(err, tlsrpt.ErrDayOpen) {
			t.Fatalf("Take a nanosecond before CloseDelay: %v, want ErrDayOpen", err)
		}
		time.Sleep(time.Nanosecond)
		days, err := rec.ClosedDays(context.Background())
		if err != nil || len(days) != 1 || !days[0].Equal(day1) {
			t.Errorf("ClosedDays = %v, %v; want [%v]", days, err, day1)
		}

		d := mustTake(t, rec, day1)
		if !d.Day.Equal(day1) || d.Day.Location() != time.UTC {
			t.Errorf("Day = %v, want %v", d.Day, day1)
		}
		want := storefixture.Canonical([]tlsrpt.PolicyResult{result(p, 1, 1, row(expired, "example.com", 1, 1))})
		if got := storefixture.Canonical(d.Results); got != want {
			t.Errorf("day 1:\n%s\nwant:\n%s", got, want)
		}
		if again := mustTake(t, rec, day1); storefixture.Canonical(again.Results) != want {
			t.Errorf("second Take of day 1, before Release = %v, want the same counts", again.Results)
		}
		must(t, rec.Release(context.Background(), day1))
		if again := mustTake(t, rec, day1); len(again.Results) != 0 {
			t.Errorf("Take of day 1 after Release = %v, want nothing", again.Results)
		}
		if _, err := rec.Take(context.Background(), day2); !errors.Is(err, tlsrpt.ErrDayOpen) {
			t.Errorf("Take of today: %v, want ErrDayOpen", err)
		}
		time.Sleep(24 * time.Hour)
		// Any time of the day names it.
		d = mustTake(t, rec, day2.Add(13*time.Hour))
		if got, want := storefixture.Canonical(d.Results), storefixture.Canonical([]tlsrpt.PolicyResult{result(p, 2, 0)}); got != want {
			t.Errorf("day 2:\n%s\nwant:\n%s", got, want)
		}
	})
}

// RFC 8460 4.2 and 4.4: per policy domain and policy, a summary of
// successes and failures, and failure-detail rows with counts; the policy
// domain of DANE results is the MX host, not the recipient domain.
func TestRecorderAggregates(t *testing.T) {
	day := time.Date(2016, 4, 1, 0, 0, 0, 0, time.UTC)
	clk := newClock(day.Add(9 * time.Hour))
	rec, _ := newRecorder(t, tlsrpt.WithNow(tlsrpt.RecorderOptions{}, clk.now))

	recipient, _ := mtasts.ParseDomain("company-y.example")
	mx, _ := mtasts.ParseDomain("mx1.mail.company-y.example")
	target := tlsrpt.Target{Recipient: recipient, MX: mx}
	text := "version: STSv1\nmode: testing\nmx: *.mail.company-y.example\nmax_age: 86400\n"
	policy, err := mtasts.ParsePolicy(text)
	must(t, err)
	stsPolicy := target.STS(policy, text)
	tlsa, err := target.TLSA([]string{"3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6"})
	must(t, err)

	fail := tlsrpt.FailureDetail{
		ResultType:          mtasts.ResultCertificateExpired,
		SendingMTAIP:        netip.MustParseAddr("2001:db8:abcd:0012::1"),
		ReceivingMXHostname: "mx1.mail.company-y.example",
		ReceivingMXHelo:     "mx1.mail.company-y.example",
		ReceivingIP:         netip.MustParseAddr("203.0.113.56"),
		FailureReasonCode:   "X509_V_ERR_CERT_HAS_EXPIRED",
	}
	other := fail
	other.ResultType = mtasts.ResultSTARTTLSNotSupported
	other.FailureReasonCode = ""
	for range 3 {
		must(t, rec.Success(target.STS(policy, text))) // a new Policy value each time, equal
	}
	must(t, rec.Failure(stsPolicy, fail))
	fail.FailedSessionCount = 7 // ignored: one call, one session
	must(t, rec.Failure(stsPolicy, fail))
	must(t, rec.Failure(stsPolicy, other))
	must(t, rec.Success(tlsa))
	must(t, rec.Success(target.NoPolicyFound()))
	// A policy changed during the day is another policy of the domain.
	text2 := strings.Replace(text, "testing", "enforce", 1)
	policy2, _ := mtasts.ParsePolicy(text2)
	must(t, rec.Success(target.STS(policy2, text2)))

	clk.set(afterDay(day))
	d := mustTake(t, rec, day)
	fail.FailedSessionCount = 2
	other.FailedSessionCount = 1
	want := storefixture.Canonical([]tlsrpt.PolicyResult{
		result(stsPolicy, 3, 3, fail, other),
		result(target.STS(policy2, text2), 1, 0),
		result(target.NoPolicyFound(), 1, 0),
		result(tlsa, 1, 0),
	})
	if got := storefixture.Canonical(d.Results); got != want {
		t.Errorf("results:\n%s\nwant:\n%s", got, want)
	}
	// In order: by domain, then type; rows by decreasing count.
	var order []string
	for _, pr := range d.Results {
		order = append(order, pr.Policy.PolicyDomain+" "+string(pr.Policy.PolicyType))
	}
	if got, want := strings.Join(order, ", "), "company-y.example no-policy-found, company-y.example sts, company-y.example sts, mx1.mail.company-y.example tlsa"; got != want {
		t.Errorf("order: %s, want %s", got, want)
	}
	if rows := d.Results[2].FailureDetails; len(rows) != 2 || rows[0].FailedSessionCount != 2 {
		t.Errorf("rows of %v: %v, want the row of 2 first", d.Results[2].Policy.PolicyString, rows)
	}

	reports := d.Reports(tlsrpt.ReportInfo{OrganizationName: "Company-X", ContactInfo: "sts-reporting@company-x.example"})
	if len(reports) != 2 {
		t.Fatalf("%d reports, want one per policy domain, 2", len(reports))
	}
	for i, want := range []struct{ id, domain string }{
		{"2016-04-01_company-y.example", "company-y.example"},
		{"2016-04-01_mx1.mail.company-y.example", "mx1.mail.company-y.example"},
	} {
		r := reports[i]
		if r.ReportID != want.id || r.Policies[0].Policy.PolicyDomain != want.domain {
			t.Errorf("report %d: id %q for %s, want %q for %s", i, r.ReportID, r.Policies[0].Policy.PolicyDomain, want.id, want.domain)
		}
		if r.DateRange.Start != day || r.DateRange.End != day.Add(24*time.Hour-time.Second) {
			t.Errorf("report %d covers %v to %v, want the UTC day as in RFC 8460 Appendix B", i, r.DateRange.Start, r.DateRange.End)
		}
		// The report is valid and reads back as it was written.
		js, err := json.Marshal(r)
		must(t, err)
		back, err := tlsrpt.ParseReport(js)
		if err != nil {
			t.Fatalf("report %d does not read back: %v\n%s", i, err, js)
		}
		if got, want := storefixture.Canonical(back.Policies), storefixture.Canonical(r.Policies); got != want {
			t.Errorf("report %d read back:\n%s\nwant:\n%s", i, got, want)
		}
	}
	if got := reports[0].Policies; len(got) != 3 {
		t.Errorf("company-y.example's report has %d policies, want 3", len(got))
	}
	custom := d.Reports(tlsrpt.ReportInfo{ReportID: func(day time.Time, domain string) string { return "id-" + domain }})
	if custom[1].ReportID != "id-mx1.mail.company-y.example" {
		t.Errorf("ReportID = %q", custom[1].ReportID)
	}
}

// Past MaxDetailRows distinct rows per policy domain and day the summary
// stays exact, the detail is dropped, and the metric counts the drops.
func TestRecorderCap(t *testing.T) {
	day := storefixture.DayOne
	clk := newClock(day)
	rec, reg := newRecorder(t, tlsrpt.WithNow(tlsrpt.RecorderOptions{MaxDetailRows: 3}, clk.now))
	a, a2, b := sts("a.example", "enforce"), sts("a.example", "testing"), sts("b.example", "enforce")
	for i := range byte(5) {
		must(t, rec.Failure(a, row(expired, "a.example", i, 0)))
		must(t, rec.Failure(a, row(expired, "a.example", i, 0)))
	}
	must(t, rec.Failure(a2, row(expired, "a.example", 9, 0))) // same domain: past the cap
	must(t, rec.Failure(b, row(expired, "b.example", 9, 0)))  // a cap of its own
	if got := metric(t, reg, "mtastsgo_tlsrpt_failure_details_dropped_total"); got != 5 {
		t.Errorf("dropped = %v, want 5", got)
	}
	clk.set(afterDay(day))
	got := storefixture.Canonical(mustTake(t, rec, day).Results)
	want := storefixture.Canonical([]tlsrpt.PolicyResult{
		result(a, 0, 10, row(expired, "a.example", 0, 2), row(expired, "a.example", 1, 2), row(expired, "a.example", 2, 2)),
		result(a2, 0, 1),
		result(b, 0, 1, row(expired, "b.example", 9, 1)),
	})
	if got != want {
		t.Errorf("results:\n%s\nwant:\n%s", got, want)
	}
}

// A store of several recorders (a fleet, a restart) caps the rows over all
// of them, and the recorder's metric counts what the store dropped.
func TestRecorderCapInStore(t *testing.T) {
	day := storefixture.DayOne
	clk := newClock(day)
	store := tlsrpt.NewMemoryStore()
	rec1, _ := newRecorder(t, tlsrpt.WithNow(tlsrpt.RecorderOptions{Store: store, MaxDetailRows: 2}, clk.now))
	rec2, reg2 := newRecorder(t, tlsrpt.WithNow(tlsrpt.RecorderOptions{Store: store, MaxDetailRows: 2}, clk.now))
	p := sts("a.example", "enforce")
	must(t, rec1.Failure(p, row(expired, "a.example", 1, 0)))
	must(t, rec1.Failure(p, row(expired, "a.example", 2, 0)))
	must(t, rec1.Flush(context.Background()))
	must(t, rec2.Failure(p, row(expired, "a.example", 3, 0)))
	must(t, rec2.Failure(p, row(expired, "a.example", 3, 0)))
	must(t, rec2.Failure(p, row(expired, "a.example", 1, 0)))
	must(t, rec2.Flush(context.Background()))
	if got := metric(t, reg2, "mtastsgo_tlsrpt_failure_details_dropped_total"); got != 2 {
		t.Errorf("dropped = %v, want 2", got)
	}
	clk.set(afterDay(day))
	got := storefixture.Canonical(mustTake(t, rec1, day).Results)
	want := storefixture.Canonical([]tlsrpt.PolicyResult{result(p, 0, 5, row(expired, "a.example", 1, 2), row(expired, "a.example", 2, 1))})
	if got != want {
		t.Errorf("results:\n%s\nwant:\n%s", got, want)
	}
}

func TestRecorderInvalid(t *testing.T) {
	clk := newClock(storefixture.DayOne)
	rec, _ := newRecorder(t, tlsrpt.WithNow(tlsrpt.RecorderOptions{}, clk.now))
	good := sts("a.example", "enforce")
	noDomain := good
	noDomain.PolicyDomain = ""
	badRow := row(expired, "a.example", 1, 0)
	badRow.ReceivingMXHostname = "mx..a.example"
	noType := row("", "a.example", 1, 0)
	for _, tc := range []struct {
		name, path string
		err        error
	}{
		{"success without policy domain", "policy.policy-domain", rec.Success(noDomain)},
		{"failure without policy domain", "policy.policy-domain", rec.Failure(noDomain, row(expired, "a.example", 1, 0))},
		{"bad MX host name", "failure-detail.receiving-mx-hostname", rec.Failure(good, badRow)},
		{"no result type", "failure-detail.result-type", rec.Failure(good, noType)},
		{"upper-case result type", "failure-detail.result-type", rec.Failure(good, row("Certificate-Expired", "a.example", 1, 0))},
	} {
		var re *tlsrpt.SyntaxError
		if !errors.As(tc.err, &re) || re.Field != tc.path {
			t.Errorf("%s: %v, want an error at %s", tc.name, tc.err, tc.path)
		}
	}
	clk.set(afterDay(storefixture.DayOne))
	if d := mustTake(t, rec, storefixture.DayOne); len(d.Results) != 0 {
		t.Errorf("invalid calls recorded %v, want nothing", d.Results)
	}
	if _, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{FlushInterval: time.Minute, CloseDelay: time.Minute}); err == nil {
		t.Error("NewRecorder with CloseDelay not past FlushInterval: no error")
	}
}

// failingStore fails its Adds while fail is set.
type failingStore struct {
	tlsrpt.Store
	fail atomic.Bool
}

func (s *failingStore) Add(ctx context.Context, b tlsrpt.Batch) (int64, error) {
	if s.fail.Load() {
		return 0, errors.New("store down")
	}
	return s.Store.Add(ctx, b)
}

// A failing store loses nothing: the counts wait for the next flush.
func TestRecorderStoreFails(t *testing.T) {
	day := storefixture.DayOne
	clk := newClock(day)
	store := &failingStore{Store: tlsrpt.NewMemoryStore()}
	rec, reg := newRecorder(t, tlsrpt.WithNow(tlsrpt.RecorderOptions{Store: store}, clk.now))
	p := sts("a.example", "enforce")
	must(t, rec.Success(p))
	must(t, rec.Failure(p, row(expired, "a.example", 1, 0)))
	store.fail.Store(true)
	if err := rec.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "store down") {
		t.Fatalf("Flush to a failing store: %v", err)
	}
	must(t, rec.Success(p))
	must(t, rec.Failure(p, row(expired, "a.example", 1, 0)))
	if err := rec.Flush(context.Background()); err == nil {
		t.Fatal("second Flush to a failing store: no error")
	}
	if got := metric(t, reg, "mtastsgo_tlsrpt_store_errors_total"); got != 2 {
		t.Errorf("store errors = %v, want 2", got)
	}
	store.fail.Store(false)
	must(t, rec.Success(p))
	clk.set(afterDay(day))
	got := storefixture.Canonical(mustTake(t, rec, day).Results)
	if want := storefixture.Canonical([]tlsrpt.PolicyResult{result(p, 3, 2, row(expired, "a.example", 1, 2))}); got != want {
		t.Errorf("results:\n%s\nwant:\n%s", got, want)
	}
}

// Sessions recorded for a day already taken are not reported, and counted.
func TestRecorderLate(t *testing.T) {
	day := storefixture.DayOne
	clk := newClock(day.Add(23 * time.Hour))
	rec, reg := newRecorder(t, tlsrpt.WithNow(tlsrpt.RecorderOptions{}, clk.now))
	p := sts("a.example", "enforce")
	must(t, rec.Success(p))
	clk.set(afterDay(day))
	if d := mustTake(t, rec, day); len(d.Results) != 1 {
		t.Fatalf("Take = %v", d.Results)
	}
	must(t, rec.Release(context.Background(), day))
	// A clock stepped back, or a goroutine stopped for minutes.
	clk.set(day.Add(23 * time.Hour))
	must(t, rec.Success(p))
	must(t, rec.Failure(p, row(expired, "a.example", 1, 0)))
	clk.set(afterDay(day))
	must(t, rec.Flush(context.Background()))
	if got := metric(t, reg, "mtastsgo_tlsrpt_sessions_late_total"); got != 2 {
		t.Errorf("late = %v, want 2", got)
	}
	if d := mustTake(t, rec, day); len(d.Results) != 0 {
		t.Errorf("second Take = %v, want nothing", d.Results)
	}
}

// Many goroutines record while others flush: every session counts once.
func TestRecorderConcurrent(t *testing.T) {
	day := storefixture.DayOne
	clk := newClock(day)
	rec, _ := newRecorder(t, tlsrpt.WithNow(tlsrpt.RecorderOptions{MaxDetailRows: 1 << 20}, clk.now))
	domains := []string{"a.example", "b.example", "c.example"}
	const workers, rounds = 4, 500
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var flushes sync.WaitGroup
	flushes.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				if err := rec.Flush(context.Background()); err != nil {
					t.Error(err)
				}
			}
		}
	})
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				d := domains[i%len(domains)]
				p := sts(d, "enforce")
				if err := rec.Success(p); err != nil {
					t.Error(err)
					return
				}
				if err := rec.Success(sts(d, "enforce")); err != nil {
					t.Error(err)
					return
				}
				if err := rec.Failure(p, row(expired, d, byte(w), 0)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	flushes.Wait()
	clk.set(afterDay(day))
	var want []tlsrpt.PolicyResult
	for i, d := range domains {
		perWorker := int64(rounds+len(domains)-1-i) / int64(len(domains))
		n := workers * perWorker
		var rows []tlsrpt.FailureDetail
		for w := range byte(workers) {
			rows = append(rows, row(expired, d, w, perWorker))
		}
		want = append(want, result(sts(d, "enforce"), 2*n, n, rows...))
	}
	if got := storefixture.Canonical(mustTake(t, rec, day).Results); got != storefixture.Canonical(want) {
		t.Errorf("results:\n%s\nwant:\n%s", got, storefixture.Canonical(want))
	}
}

// Recording a success for a policy already seen that day allocates nothing.
func TestRecorderSuccessAllocs(t *testing.T) {
	rec, _ := newRecorder(t, tlsrpt.RecorderOptions{})
	p := sts("a.example", "enforce")
	must(t, rec.Success(p))
	if n := testing.AllocsPerRun(1000, func() { rec.Success(p) }); n != 0 {
		t.Errorf("Recorder.Success: %v allocations, want 0", n)
	}
}

// Run flushes every FlushInterval, and Close stops it and flushes the rest.
func TestRecorderRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := tlsrpt.NewMemoryStore()
		rec, _ := newRecorder(t, tlsrpt.RecorderOptions{Store: store})
		done := make(chan error, 1)
		go func() { done <- rec.Run(context.Background()) }()
		p := sts("a.example", "enforce")
		must(t, rec.Success(p))
		synctest.Wait()
		if days, _ := store.Days(context.Background()); len(days) != 0 {
			t.Fatalf("store has %v before the first flush", days)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if days, _ := store.Days(context.Background()); len(days) != 1 {
			t.Fatalf("store has %v after a FlushInterval, want today", days)
		}
		must(t, rec.Success(p))
		must(t, rec.Close())
		if err := <-done; err != nil {
			t.Errorf("Run after Close: %v", err)
		}
		results, _ := store.Take(context.Background(), time.Now())
		if got, want := storefixture.Canonical(results), storefixture.Canonical([]tlsrpt.PolicyResult{result(p, 2, 0)}); got != want {
			t.Errorf("store after Close:\n%s\nwant:\n%s", got, want)
		}
	})
}

// Nothing is registered at import or by NewRecorder; RegisterMetrics
// registers the collectors once per registry.
func TestRecorderMetricsRegistration(t *testing.T) {
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{})
	must(t, err)
	must(t, rec.Failure(sts("a.example", "enforce"), row(expired, "a.example", 1, 0)))
	mfs, err := prometheus.DefaultGatherer.Gather()
	must(t, err)
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "mtastsgo_tlsrpt") {
			t.Errorf("%s registered with the default registry", mf.GetName())
		}
	}
	reg := prometheus.NewRegistry()
	must(t, rec.RegisterMetrics(reg))
	if err := rec.RegisterMetrics(reg); err == nil {
		t.Error("second RegisterMetrics with one registry: no error")
	}
}

// The metrics take the options of mtasts.RegisterMetrics, as the Sender's
// and the Reporter's do.
func TestRecorderMetricsOptions(t *testing.T) {
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{})
	must(t, err)
	t.Cleanup(func() { rec.Close() })
	reg := prometheus.NewPedanticRegistry()
	must(t, rec.RegisterMetrics(reg, mtasts.MetricsNamespace("mox"), mtasts.MetricsConstLabels(prometheus.Labels{"instance": "a"})))
	got := counters(t, reg)
	for _, name := range []string{
		"mox_mtastsgo_tlsrpt_failure_details_dropped_total{instance=a}",
		"mox_mtastsgo_tlsrpt_sessions_late_total{instance=a}",
	} {
		if _, ok := got[name]; !ok {
			t.Errorf("no metric %s; have %v", name, got)
		}
	}
	if err := rec.RegisterMetrics(prometheus.NewPedanticRegistry(), mtasts.MetricsConstLabels(prometheus.Labels{"op": "x"})); err == nil {
		t.Error("RegisterMetrics accepted the constant label \"op\", which the metrics have")
	}
	if err := rec.RegisterMetrics(prometheus.NewPedanticRegistry(), mtasts.MetricsNamespace("9bad")); err == nil {
		t.Error("RegisterMetrics accepted the namespace \"9bad\"")
	}
}

// lossyStore adds every batch, but while lose is set it loses the reply:
// Add fails after adding, as over a network. It adds a batch of a Source
// once, as Batch.Seq asks of such a store.
type lossyStore struct {
	tlsrpt.Store
	lose    atomic.Bool
	mu      sync.Mutex
	lastSeq map[string]int64
	calls   []tlsrpt.Batch
}

func (s *lossyStore) Add(ctx context.Context, b tlsrpt.Batch) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, b)
	var dropped int64
	if b.Seq > s.lastSeq[b.Source] {
		var err error
		if dropped, err = s.Store.Add(ctx, b); err != nil {
			return 0, err
		}
		s.lastSeq[b.Source] = b.Seq
	}
	if s.lose.Load() {
		return 0, errors.New("reply lost")
	}
	return dropped, nil
}

// A batch whose Add failed is given again as it was, with its Source and
// Seq, before newer counts: a store that added it once adds it once.
func TestRecorderRetriesSameBatch(t *testing.T) {
	day := storefixture.DayOne
	clk := newClock(day)
	store := &lossyStore{Store: tlsrpt.NewMemoryStore(), lastSeq: map[string]int64{}}
	rec, _ := newRecorder(t, tlsrpt.WithNow(tlsrpt.RecorderOptions{Store: store}, clk.now))
	p := sts("a.example", "enforce")
	must(t, rec.Success(p))
	store.lose.Store(true)
	if err := rec.Flush(context.Background()); err == nil {
		t.Fatal("Flush with its reply lost: no error")
	}
	must(t, rec.Success(p))
	must(t, rec.Failure(p, row(expired, "a.example", 1, 0)))
	if err := rec.Flush(context.Background()); err == nil {
		t.Fatal("second Flush with its reply lost: no error")
	}
	store.lose.Store(false)
	must(t, rec.Flush(context.Background()))

	if len(store.calls) != 4 {
		t.Fatalf("%d Adds, want 4: the batch three times, then the newer counts", len(store.calls))
	}
	first := store.calls[0]
	for _, b := range store.calls[1:3] {
		if b.Source != first.Source || b.Seq != first.Seq || storefixture.Canonical(b.Results) != storefixture.Canonical(first.Results) {
			t.Errorf("batch given again as %s/%d %v, want %s/%d %v", b.Source, b.Seq, b.Results, first.Source, first.Seq, first.Results)
		}
	}
	if last := store.calls[3]; last.Source != first.Source || last.Seq <= first.Seq {
		t.Errorf("newer batch %s/%d, want a Seq above %d", last.Source, last.Seq, first.Seq)
	}
	clk.set(afterDay(day))
	if got, want := storefixture.Canonical(mustTake(t, rec, day).Results), storefixture.Canonical([]tlsrpt.PolicyResult{result(p, 2, 1, row(expired, "a.example", 1, 1))}); got != want {
		t.Errorf("results:\n%s\nwant each session once:\n%s", got, want)
	}
}

// errorAt reports whether err is a *SyntaxError at path whose text is short
// printable US-ASCII.
func errorAt(err error, path string) bool {
	var re *tlsrpt.SyntaxError
	if !errors.As(err, &re) || re.Field != path || len(err.Error()) > 400 {
		return false
	}
	for _, c := range []byte(err.Error()) {
		if c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// The Recorder refuses a policy no report may hold (RFC 8460 4.4: a policy
// type of "tlsa", "sts" or "no-policy-found"; a policy-string of printable
// lines, no larger than the policy it describes) and a result type RFC 8460
// 4.3 does not define. Text the receiving MX chose, its HELO and the
// failure reason, is taken capped and escaped instead: refused, it would let
// a hostile MX hide its failures from the report.
func TestRecorderGarbage(t *testing.T) {
	clk := newClock(storefixture.DayOne)
	rec, _ := newRecorder(t, tlsrpt.WithNow(tlsrpt.RecorderOptions{}, clk.now))
	good := sts("a.example", "enforce")
	bogusType := good
	bogusType.PolicyType = "bogus"
	hugeString := good
	hugeString.PolicyString = []string{"version: STSv1", strings.Repeat("x", 10<<20)}
	escString := good
	escString.PolicyString = []string{"version: STSv1", "mode: enforce\x1b[2J"}
	for _, tc := range []struct {
		name, path string
		err        error
	}{
		{"policy type bogus", "policy.policy-type", rec.Success(bogusType)},
		{"policy type bogus, failure", "policy.policy-type", rec.Failure(bogusType, row(expired, "a.example", 1, 0))},
		{"10 MB policy-string", "policy.policy-string", rec.Success(hugeString)},
		{"ESC in policy-string", "policy.policy-string[1]", rec.Success(escString)},
		{"unknown result type", "failure-detail.result-type", rec.Failure(good, row("bogus-type", "a.example", 1, 0))},
	} {
		if !errorAt(tc.err, tc.path) {
			t.Errorf("%s: %.300v, want a short error at %s", tc.name, tc.err, tc.path)
		}
	}

	helo := row(expired, "a.example", 1, 0)
	helo.ReceivingMXHelo = "\x1b[2J" + strings.Repeat("h", 10<<20)
	must(t, rec.Failure(good, helo))
	reason := row(expired, "a.example", 2, 0)
	reason.FailureReasonCode = "bad\r\nline\x1b[2J"
	must(t, rec.Failure(good, reason))
	info := row(expired, "a.example", 3, 0)
	info.AdditionalInformation = strings.Repeat("i", 10<<20)
	must(t, rec.Failure(good, info))

	clk.set(afterDay(storefixture.DayOne))
	d := mustTake(t, rec, storefixture.DayOne)
	reports := d.Reports(tlsrpt.ReportInfo{OrganizationName: "O", ContactInfo: "r@o.example"})
	if len(reports) != 1 || len(reports[0].Policies) != 1 {
		t.Fatalf("reports %+v, want one of one policy", reports)
	}
	pr := reports[0].Policies[0]
	if pr.Summary.TotalFailureSessionCount != 3 || len(pr.FailureDetails) != 3 {
		t.Fatalf("%d failures in %d rows, want 3 in 3", pr.Summary.TotalFailureSessionCount, len(pr.FailureDetails))
	}
	for _, fd := range pr.FailureDetails {
		switch fd.ReceivingIP.As4()[3] {
		case 1:
			if len(fd.ReceivingMXHelo) > 255 || !strings.HasPrefix(fd.ReceivingMXHelo, `\x1b[2Jhhh`) || !strings.HasSuffix(fd.ReceivingMXHelo, "bytes)") {
				t.Errorf("HELO of %d bytes: %.300q", len(fd.ReceivingMXHelo), fd.ReceivingMXHelo)
			}
		case 2:
			if fd.FailureReasonCode != `bad\r\nline\x1b[2J` {
				t.Errorf("failure reason %q, want it escaped", fd.FailureReasonCode)
			}
		case 3:
			if len(fd.AdditionalInformation) > 2048 {
				t.Errorf("additional information of %d bytes", len(fd.AdditionalInformation))
			}
		}
	}
	if err := reports[0].Validate(); err != nil {
		t.Errorf("the report does not validate: %v", err)
	}
}
