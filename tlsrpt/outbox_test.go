package tlsrpt_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/tlsrpt"
	"github.com/mtasts-go/mtasts/tlsrpt/storetest"
)

func TestMemoryOutbox(t *testing.T) {
	storetest.RunOutbox(t, func(t *testing.T) tlsrpt.Outbox { return tlsrpt.NewMemoryOutbox() }, nil)
}

func TestFileOutbox(t *testing.T) {
	dirs := map[tlsrpt.Outbox]string{}
	open := func(t *testing.T, dir string) tlsrpt.Outbox {
		o, err := tlsrpt.OpenFileOutbox(dir)
		if err != nil {
			t.Fatal(err)
		}
		dirs[o] = dir
		return o
	}
	storetest.RunOutbox(t,
		func(t *testing.T) tlsrpt.Outbox { return open(t, t.TempDir()) },
		func(t *testing.T, o tlsrpt.Outbox) tlsrpt.Outbox { return open(t, dirs[o]) })
}

// A file that holds no report is set aside and named in the error, the
// others are read; a temporary file a crash left is removed.
func TestFileOutboxBadFile(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	box, err := tlsrpt.OpenFileOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := storefixture.Report(storefixture.DayOne, "a.example", "id/with/slashes", 1)
	must(t, box.Put(ctx, []tlsrpt.Report{r}))
	for name, data := range map[string]string{".tmp-123": "{", "2016-04-01_broken.json": "{", "2016-04-01_later.json": `{"v":2,"report":{}}`} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	box2, err := tlsrpt.OpenFileOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := box2.Pending(ctx)
	if err == nil || !strings.Contains(err.Error(), "broken.json") || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("Pending error %v, want one naming broken.json and the version of later.json", err)
	}
	if len(got) != 1 || got[0].Report.ReportID != r.ReportID {
		t.Fatalf("pending: %+v, want %s", got, r.ReportID)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-123")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left: %v", err)
	}
	for _, name := range []string{"2016-04-01_broken.json.bad", "2016-04-01_later.json.bad"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s not set aside: %v", name, err)
		}
	}
	if _, err := box2.Pending(ctx); err != nil {
		t.Errorf("second Pending: %v", err)
	}
}

// A file of the first format, a report's JSON alone, named for a hash of its
// report-id, is read as a pending report, in the current format.
func TestFileOutboxUpgrade(t *testing.T) {
	dir := t.TempDir()
	r := storefixture.Report(storefixture.DayOne, "a.example", "old-id", 1)
	data, err := json.Marshal(&r)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "0123456789abcdef0123456789abcdef.json"), data, 0o600))
	box, err := tlsrpt.OpenFileOutbox(dir)
	must(t, err)
	got, err := box.Pending(context.Background())
	if err != nil || len(got) != 1 || got[0].Report.ReportID != "old-id" || got[0].Report.Key() != r.Key() {
		t.Fatalf("Pending = %+v, %v; want the old report", got, err)
	}
	must(t, box.Done(context.Background(), &r))
	if got, err := box.Pending(context.Background()); err != nil || len(got) != 0 {
		t.Errorf("Pending after Done = %+v, %v; want none", got, err)
	}
}

// The marks of reports done are kept 31 days, counted by the reports' days.
func TestFileOutboxPrune(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	box, err := tlsrpt.OpenFileOutbox(dir)
	must(t, err)
	for _, day := range []time.Time{storefixture.DayOne, storefixture.DayOne.AddDate(0, 0, 31), storefixture.DayOne.AddDate(0, 0, 32)} {
		r := storefixture.Report(day, "a.example", day.Format(time.DateOnly), 1)
		must(t, box.Put(ctx, []tlsrpt.Report{r}))
		must(t, box.Done(ctx, &r))
	}
	_, err = tlsrpt.OpenFileOutbox(dir)
	must(t, err)
	entries, err := os.ReadDir(filepath.Join(dir, "done"))
	must(t, err)
	var days []string
	for _, e := range entries {
		days = append(days, e.Name()[:len(time.DateOnly)])
	}
	if want := []string{"2016-05-02", "2016-05-03"}; !slices.Equal(days, want) {
		t.Errorf("marks of the days %v after reopening, want %v", days, want)
	}
}

// A mark of a report done that a crash cut short leaves the report pending,
// and the marks after it whole.
func TestFileOutboxTornMark(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	box, err := tlsrpt.OpenFileOutbox(dir)
	must(t, err)
	a, b := storefixture.Report(storefixture.DayOne, "a.example", "a", 1), storefixture.Report(storefixture.DayOne, "b.example", "b", 1)
	must(t, box.Put(ctx, []tlsrpt.Report{a, b}))
	// The crash: a's mark half written, its file not yet removed.
	log := filepath.Join(dir, "done", "2016-04-01.log")
	must(t, os.WriteFile(log, []byte("0123456789abcdef"), 0o600))

	box, err = tlsrpt.OpenFileOutbox(dir)
	must(t, err)
	must(t, box.Done(ctx, &b))
	box, err = tlsrpt.OpenFileOutbox(dir)
	must(t, err)
	must(t, box.Put(ctx, []tlsrpt.Report{storefixture.Report(storefixture.DayOne, "b.example", "b-again", 1)}))
	got, err := box.Pending(ctx)
	if err != nil || len(got) != 1 || got[0].Report.ReportID != "a" {
		t.Errorf("Pending = %+v, %v; want a alone: b's mark kept whole", got, err)
	}
}

// A Done that cannot write the day's log of reports done fails, and leaves
// the report pending.
func TestFileOutboxDoneFails(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	box, err := tlsrpt.OpenFileOutbox(dir)
	must(t, err)
	r := storefixture.Report(storefixture.DayOne, "a.example", "a", 1)
	must(t, box.Put(ctx, []tlsrpt.Report{r}))
	must(t, os.Mkdir(filepath.Join(dir, "done", "2016-04-01.log"), 0o700))
	if err := box.Done(ctx, &r); err == nil || !strings.Contains(err.Error(), `report "a" done`) {
		t.Errorf("Done whose log cannot be written: %v, want an error naming the report", err)
	}
	if got, err := box.Pending(ctx); err != nil || len(got) != 1 || got[0].Report.ReportID != "a" {
		t.Errorf("Pending after the failed Done = %+v, %v; want the report", got, err)
	}
}
