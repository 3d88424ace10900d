package tlsrpt_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// Every shape of session is recordable without loss, in one call each
// (RFC 8460 4: failure types are "non-exclusive", so rows and the summary
// are counted apart): a success carrying a row, rows with no session
// counted, failures with no row, and a batch of counts and rows.
func TestRecorderRecordShapes(t *testing.T) {
	day := storefixture.DayOne
	clk := newClock(day)
	rec, reg := newRecorder(t, tlsrpt.WithNow(tlsrpt.RecorderOptions{MaxDetailRows: 4}, clk.now))
	untrusted := row(mtasts.ResultCertificateNotTrusted, "a.example", 1, 0)
	tlsaInvalid := row(mtasts.ResultTLSAInvalid, "b.example", 2, 0)
	a, b := sts("a.example", "testing"), storefixture.TLSA("mx.b.example", "b.example")

	// Opportunistic TLS went on despite an untrusted certificate: one
	// success, and the row.
	must(t, rec.Record(result(a, 1, 0, untrusted)))
	// Unusable TLSA records, ignored: the row alone, twice.
	must(t, rec.Record(result(b, 0, 0, tlsaInvalid)))
	must(t, rec.Record(result(b, 0, 0, tlsaInvalid)))
	// Failed sessions with no row.
	must(t, rec.Record(result(b, 0, 3)))
	// A batch: counts and rows, a row's count its sessions.
	batch := untrusted
	batch.FailedSessionCount = 5
	must(t, rec.Record(result(a, 100, 5, batch)))
	// A plain success and failure still count one each.
	must(t, rec.Success(a))
	must(t, rec.Failure(a, untrusted))

	// Invalid input records nothing: a negative count, a row of no
	// result type, a result type RFC 8460 does not define.
	bad := untrusted
	bad.FailedSessionCount = -1
	noType := untrusted
	noType.ResultType = ""
	unknown := untrusted
	unknown.ResultType = "made-up"
	for name, pr := range map[string]tlsrpt.PolicyResult{
		"negative successes": result(a, -1, 0),
		"negative row":       result(a, 1, 0, bad),
		"no result type":     result(a, 1, 1, untrusted, noType),
		"unknown type":       result(a, 1, 1, unknown),
		"invalid policy":     result(tlsrpt.Policy{PolicyType: "dane"}, 1, 0),
	} {
		err := rec.Record(pr)
		var re *tlsrpt.SyntaxError
		if !errors.As(err, &re) {
			t.Errorf("%s: %v, want a *SyntaxError", name, err)
		}
		if name == "no result type" && (re == nil || !strings.HasPrefix(re.Field, "failure-details[1]")) {
			t.Errorf("%s: error %v, want the path failure-details[1]", name, err)
		}
	}

	// Past the cap (4 rows per policy domain), a batch's row drops all its
	// sessions' detail and counts them.
	for i := range byte(4) {
		r := row(expired, "c.example", i, 0)
		r.FailedSessionCount = 2
		must(t, rec.Record(result(sts("c.example", "enforce"), 0, 2, r)))
	}
	if got := metric(t, reg, "mtastsgo_tlsrpt_failure_details_dropped_total"); got != 0 {
		t.Errorf("dropped = %v before the cap, want 0", got)
	}
	over := row(expired, "c.example", 9, 0)
	over.FailedSessionCount = 7
	must(t, rec.Record(result(sts("c.example", "enforce"), 0, 7, over)))
	if got := metric(t, reg, "mtastsgo_tlsrpt_failure_details_dropped_total"); got != 7 {
		t.Errorf("dropped = %v, want the 7 sessions of the row past the cap", got)
	}

	clk.set(afterDay(day))
	got := storefixture.Canonical(mustTake(t, rec, day).Results)
	untrusted7 := untrusted
	untrusted7.FailedSessionCount = 7
	tlsaInvalid2 := tlsaInvalid
	tlsaInvalid2.FailedSessionCount = 2
	c := sts("c.example", "enforce")
	var cRows []tlsrpt.FailureDetail
	for i := range byte(4) {
		r := row(expired, "c.example", i, 2)
		cRows = append(cRows, r)
	}
	want := storefixture.Canonical([]tlsrpt.PolicyResult{
		result(a, 102, 6, untrusted7),
		result(b, 0, 3, tlsaInvalid2),
		result(c, 0, 15, cRows...),
	})
	if got != want {
		t.Errorf("results:\n%s\nwant:\n%s", got, want)
	}
}

// Counts without a trigger (PolicyResult.CountOnly, as mox keeps for the
// deliveries of reports) are reported, but make no report by themselves;
// ReportInfo.FailuresOnly makes reports only of domains with failures.
func TestRecorderCountOnly(t *testing.T) {
	day := storefixture.DayOne
	for _, failuresOnly := range []bool{false, true} {
		clk := newClock(day)
		rec, _ := newRecorder(t, tlsrpt.WithNow(tlsrpt.RecorderOptions{}, clk.now))
		quiet := func(pr tlsrpt.PolicyResult) tlsrpt.PolicyResult { pr.CountOnly = true; return pr }
		a, b, c, d := sts("a.example", "enforce"), sts("b.example", "enforce"), sts("c.example", "enforce"), sts("d.example", "enforce")
		must(t, rec.Record(quiet(result(a, 2, 0)))) // quiet alone: no report
		must(t, rec.Record(quiet(result(b, 2, 1, expiredRow("b.example")))))
		must(t, rec.Flush(t.Context()))
		must(t, rec.Success(b)) // a trigger, in a later flush: b is reported, its quiet counts too
		must(t, rec.Record(result(c, 0, 1)))
		must(t, rec.Success(d)) // successes only
		clk.set(afterDay(day))
		reports := mustTake(t, rec, day).Reports(tlsrpt.ReportInfo{FailuresOnly: failuresOnly})
		var got []string
		for _, r := range reports {
			got = append(got, fmt.Sprintf("%s %d/%d", r.Key(), r.Policies[0].Summary.TotalSuccessfulSessionCount, r.Policies[0].Summary.TotalFailureSessionCount))
		}
		want := []string{"2016-04-01 b.example 3/1", "2016-04-01 c.example 0/1", "2016-04-01 d.example 1/0"}
		if failuresOnly {
			want = want[:2]
		}
		if !slices.Equal(got, want) {
			t.Errorf("FailuresOnly %v: reports %q, want %q", failuresOnly, got, want)
		}
	}
}

func expiredRow(domain string) tlsrpt.FailureDetail { return row(expired, domain, 1, 1) }

// An admin page lists a day's results, the last second's too, without
// taking the day, and forgets a domain: its results as policy domain and
// as recipient domain.
func TestRecorderResultsForget(t *testing.T) {
	day := storefixture.DayOne
	clk := newClock(day.Add(time.Hour))
	rec, _ := newRecorder(t, tlsrpt.WithNow(tlsrpt.RecorderOptions{}, clk.now))
	a, b := sts("a.example", "enforce"), sts("b.example", "enforce")
	a.RecipientDomain = "a.example"
	host := storefixture.TLSA("mx.host.example", "a.example")
	must(t, rec.Success(a))
	must(t, rec.Success(b))
	must(t, rec.Success(host))
	results, err := rec.Results(t.Context(), day)
	must(t, err)
	if got, want := storefixture.Canonical(results), storefixture.Canonical([]tlsrpt.PolicyResult{result(a, 1, 0), result(b, 1, 0), result(host, 1, 0)}); got != want {
		t.Errorf("Results:\n%s\nwant:\n%s", got, want)
	}
	dom, err := mtasts.ParseDomain("a.example")
	must(t, err)
	must(t, rec.Forget(t.Context(), dom))
	must(t, rec.Success(a)) // counts anew
	clk.set(afterDay(day))
	if got, want := storefixture.Canonical(mustTake(t, rec, day).Results), storefixture.Canonical([]tlsrpt.PolicyResult{result(a, 1, 0), result(b, 1, 0)}); got != want {
		t.Errorf("Take after Forget:\n%s\nwant:\n%s", got, want)
	}
}

// Each DANE result type of RFC 8460 4.3.2.1 is recordable against a TLSA
// policy, and a DANE-only delivery (no MTA-STS result at all) is reported
// to the MX host's policy domain, and to the recipient domain when asked.
func TestRecorderDANEResultTypes(t *testing.T) {
	day := storefixture.DayOne
	clk := newClock(day)
	rec, _ := newRecorder(t, tlsrpt.WithNow(tlsrpt.RecorderOptions{}, clk.now))
	tlsa := storefixture.TLSA("mx.b.example", "b.example")
	for i, rt := range []mtasts.ResultType{mtasts.ResultTLSAInvalid, mtasts.ResultDNSSECInvalid, mtasts.ResultDANERequired} {
		must(t, rec.Failure(tlsa, row(rt, "b.example", byte(i), 0)))
	}
	must(t, rec.Success(tlsa))
	clk.set(afterDay(day))
	d := mustTake(t, rec, day)
	for _, tc := range []struct {
		info tlsrpt.ReportInfo
		key  string
	}{
		{tlsrpt.ReportInfo{}, "2016-04-01 mx.b.example"},
		{tlsrpt.ReportInfo{Recipients: true}, "2016-04-01 b.example"},
		{tlsrpt.ReportInfo{MXHosts: true}, "2016-04-01 mx.b.example mx-host"},
	} {
		tc.info.OrganizationName, tc.info.ContactInfo = "Sender", "tlsrpt@sender.example"
		reports := d.Reports(tc.info)
		if len(reports) != 1 || reports[0].Key() != tc.key {
			t.Errorf("%+v: %d reports, want one of key %q", tc.info, len(reports), tc.key)
			continue
		}
		pr := reports[0].Policies[0]
		if len(reports[0].Policies) != 1 || pr.Summary != (tlsrpt.Summary{TotalSuccessfulSessionCount: 1, TotalFailureSessionCount: 3}) || len(pr.FailureDetails) != 3 {
			t.Errorf("%+v: policies %+v, want one of 1 success, 3 failures and 3 rows", tc.info, reports[0].Policies)
		}
		if _, err := tlsrpt.BuildPayload(&reports[0]); err != nil {
			t.Errorf("%+v: BuildPayload: %v", tc.info, err)
		}
	}
}
