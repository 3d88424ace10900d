package tlsrpt_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mtasts-go/mtasts/tlsrpt"
	"github.com/mtasts-go/mtasts/tlsrpt/storetest"
)

// Every shape of session is recordable without loss, in one call each
// (RFC 8460 4: failure types are "non-exclusive", so rows and the summary
// are counted apart): a success carrying a row, rows with no session
// counted, failures with no row, and a batch of counts and rows.
func TestRecorderRecordShapes(t *testing.T) {
	day := storetest.Day1
	clk := newClock(day)
	rec, reg := newRecorder(t, tlsrpt.RecorderOptions{Now: clk.now, MaxDetailRows: 4})
	untrusted := row(tlsrpt.ResultCertificateNotTrusted, "a.example", 1, 0)
	tlsaInvalid := row(tlsrpt.ResultTLSAInvalid, "b.example", 2, 0)
	a, b := sts("a.example", "testing"), storetest.TLSA("mx.b.example", "b.example")

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
		var re *tlsrpt.ReportError
		if !errors.As(err, &re) {
			t.Errorf("%s: %v, want a *ReportError", name, err)
		}
		if name == "no result type" && (re == nil || !strings.HasPrefix(re.Path, "failure-details[1]")) {
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
	if got := metric(t, reg, "mtasts_tlsrpt_failure_details_dropped_total"); got != 0 {
		t.Errorf("dropped = %v before the cap, want 0", got)
	}
	over := row(expired, "c.example", 9, 0)
	over.FailedSessionCount = 7
	must(t, rec.Record(result(sts("c.example", "enforce"), 0, 7, over)))
	if got := metric(t, reg, "mtasts_tlsrpt_failure_details_dropped_total"); got != 7 {
		t.Errorf("dropped = %v, want the 7 sessions of the row past the cap", got)
	}

	clk.set(afterDay(day))
	got := storetest.Canonical(mustTake(t, rec, day).Results)
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
	want := storetest.Canonical([]tlsrpt.PolicyResult{
		result(a, 102, 6, untrusted7),
		result(b, 0, 3, tlsaInvalid2),
		result(c, 0, 15, cRows...),
	})
	if got != want {
		t.Errorf("results:\n%s\nwant:\n%s", got, want)
	}
}
