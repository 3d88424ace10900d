package tlsrpt

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// outboxReports returns n reports of one day, each of its own policy
// domain.
func outboxReports(n int) []Report {
	day := time.Date(2016, 4, 1, 0, 0, 0, 0, time.UTC)
	reports := make([]Report, n)
	for i := range reports {
		reports[i] = Report{
			OrganizationName: "Sender Org",
			DateRange:        DateRange{Start: day, End: day.Add(24*time.Hour - time.Second)},
			ContactInfo:      "tlsrpt@sender.example",
			ReportID:         fmt.Sprintf("id%d", i),
			Policies: []PolicyResult{{
				Policy:  Policy{PolicyType: PolicyTypeSTS, PolicyString: []string{"version: STSv1", "mode: enforce"}, PolicyDomain: fmt.Sprintf("d%d.example", i), MXHost: []string{"mx.example"}},
				Summary: Summary{TotalSuccessfulSessionCount: 1},
			}},
		}
	}
	return reports
}

// countSyncs counts the syncs of the files and directories under dir while
// run runs n marks at once, mark(i) for each i in [0, n). The first sync is
// held until all n have been called, so that marks that could share a
// write find each other.
func countSyncs(t *testing.T, dir string, n int, mark func(i int) error) int64 {
	t.Helper()
	var syncs atomic.Int64
	var called sync.WaitGroup
	called.Add(n)
	var first sync.Once
	syncHook = func(name string) {
		if !strings.HasPrefix(name, dir) {
			return
		}
		first.Do(called.Wait)
		syncs.Add(1)
	}
	defer func() { syncHook = nil }()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			called.Done()
			if err := mark(i); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return syncs.Load()
}

// Marks made at once share their writes and syncs (group commit): the syncs
// of n concurrent marks are far fewer than n, however many reports are
// pending; and what they mark is kept, as a new file outbox on the directory
// reads it.
func TestFileOutboxGroupCommit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	o, err := newFileOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	const pending, n = 200, 50
	reports := outboxReports(pending)
	if err := o.Put(ctx, reports); err != nil {
		t.Fatal(err)
	}
	syncs := countSyncs(t, dir, n, func(i int) error {
		return o.Delivered(ctx, &reports[i], "https://c.example/r")
	})
	t.Logf("%d concurrent Delivered: %d syncs", n, syncs)
	if syncs >= n/2 {
		t.Errorf("%d concurrent Delivered made %d syncs, want them to share a few", n, syncs)
	}
	syncs = countSyncs(t, dir, n, func(i int) error { return o.Done(ctx, &reports[n+i]) })
	t.Logf("%d concurrent Done: %d syncs", n, syncs)
	if syncs >= n/2 {
		t.Errorf("%d concurrent Done made %d syncs, want them to share a few", n, syncs)
	}

	o2, err := newFileOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := o2.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != pending-n {
		t.Fatalf("%d reports pending after reopening, want %d", len(got), pending-n)
	}
	byID := map[string]PendingReport{}
	for _, p := range got {
		byID[p.Report.ReportID] = p
	}
	for i, r := range reports {
		p, ok := byID[r.ReportID]
		switch {
		case i >= n && i < 2*n:
			if ok {
				t.Errorf("report %s done, but still pending", r.ReportID)
			}
		case !ok:
			t.Errorf("report %s not pending", r.ReportID)
		case i < n && (len(p.Delivered) != 1 || p.Delivered[0] != "https://c.example/r"):
			t.Errorf("report %s delivered to %q, want the mark", r.ReportID, p.Delivered)
		case i >= 2*n && len(p.Delivered) != 0:
			t.Errorf("report %s delivered to %q, want none", r.ReportID, p.Delivered)
		}
	}
	// A report done is not put again.
	if err := o2.Put(ctx, reports[n:n+1]); err != nil {
		t.Fatal(err)
	}
	if got, _ := o2.Pending(ctx); len(got) != pending-n {
		t.Errorf("%d reports pending after putting a done one again, want %d", len(got), pending-n)
	}
}

// delivered.log is rewritten with the marks of the reports pending alone
// once it holds twice as many lines; a line a crash cut short is dropped,
// and the marks before and after it kept.
func TestFileOutboxMarksLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	o, err := newFileOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	o.rewriteMin = 4
	r := outboxReports(2)
	a, b := &r[0], &r[1]
	if err := o.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, outboxMarks)
	for i := range 3 {
		if err := o.Delivered(ctx, b, fmt.Sprintf("https://b%d.example/", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Done(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := o.Delivered(ctx, a, "https://a1.example/"); err != nil {
		t.Fatal(err)
	}
	// 4 lines, 1 of a report pending: rewritten to that one.
	if data, err := os.ReadFile(log); err != nil || strings.Count(string(data), "\n") != 1 || !strings.Contains(string(data), "a1.example") {
		t.Errorf("delivered.log holds %q, %v; want a's mark alone", data, err)
	}
	// A crash cuts a mark short.
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"r":"2016-04-01_`)
	f.Close()
	o, err = newFileOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Delivered(ctx, a, "https://a2.example/"); err != nil {
		t.Fatal(err)
	}
	o, err = newFileOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := o.Pending(ctx)
	if err != nil || len(got) != 1 || got[0].Report.ReportID != a.ReportID ||
		!slices.Equal(got[0].Delivered, []string{"https://a1.example/", "https://a2.example/"}) {
		t.Errorf("Pending = %+v, %v; want a, delivered to a1 and a2", got, err)
	}
}

// A report whose Done reached the log of reports done, and whose file a
// crash left, is done: not pending, and its file is removed on opening.
func TestFileOutboxDoneFileLeft(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	o, err := newFileOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := outboxReports(1)
	if err := o.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(o.path(&r[0]))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Done(ctx, &r[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(o.path(&r[0]), data, 0o600); err != nil { // the crash
		t.Fatal(err)
	}
	if got, err := o.Pending(ctx); err != nil || len(got) != 0 {
		t.Errorf("Pending = %+v, %v; want none", got, err)
	}
	if _, err := newFileOutbox(dir); err != nil {
		t.Fatal(err)
	}
	if exists(o.path(&r[0])) {
		t.Error("the file of a report done is left after opening")
	}
}

// A log of reports done written by an earlier release, a hash per line,
// still marks its reports done, and Sent lists them by their hash.
func TestFileOutboxEarlierDoneLog(t *testing.T) {
	dir := t.TempDir()
	o, err := newFileOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := outboxReports(1)[0]
	day, hash := o.names(&r)
	if err := os.WriteFile(filepath.Join(dir, outboxDoneDir, day+outboxDoneExt), []byte(hash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err = newFileOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Put(context.Background(), []Report{r}); err != nil {
		t.Fatal(err)
	}
	if p, err := o.Pending(context.Background()); err != nil || len(p) != 0 {
		t.Errorf("Pending = %v, %v; want nothing: the report was done", p, err)
	}
	sent, err := o.Sent(context.Background())
	if want := []string{day + " #" + hash}; err != nil || !slices.Equal(sent, want) {
		t.Errorf("Sent = %q, %v; want %q", sent, err, want)
	}
}

// newFileOutbox returns the outbox of OpenFileOutbox, for tests that reach
// into it.
func newFileOutbox(dir string) (*fileOutbox, error) {
	o, err := OpenFileOutbox(dir)
	if err != nil {
		return nil, err
	}
	return o.(*fileOutbox), nil
}
