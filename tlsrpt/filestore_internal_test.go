package tlsrpt

import (
	"context"
	"github.com/mtasts-go/mtasts"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A log that grows is compacted to one line of the day's totals, which
// reads back as the batches did.
func TestFileStoreCompaction(t *testing.T) {
	dir := t.TempDir()
	s, err := openFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.compactMin = 2000
	day := time.Date(2016, 4, 1, 0, 0, 0, 0, time.UTC)
	p := Policy{PolicyType: PolicyTypeSTS, PolicyString: []string{"version: STSv1", "mode: enforce"}, PolicyDomain: "a.example", MXHost: []string{"mx.a.example"}}
	row := FailureDetail{ResultType: mtasts.ResultCertificateExpired, ReceivingIP: netip.MustParseAddr("192.0.2.1"), FailedSessionCount: 1}
	log := filepath.Join(dir, "2016-04-01.log")
	var maxSize int64
	for range 200 {
		if _, err := s.Add(context.Background(), Batch{Day: day, Results: []PolicyResult{
			{Policy: p, Summary: Summary{TotalSuccessfulSessionCount: 2, TotalFailureSessionCount: 1}, FailureDetails: []FailureDetail{row}},
		}}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(log)
		if err != nil {
			t.Fatal(err)
		}
		maxSize = max(maxSize, fi.Size())
	}
	if maxSize > 2*s.compactMin+1000 {
		t.Errorf("log grew to %d bytes, want it compacted past %d", maxSize, 2*s.compactMin)
	}
	s.Close()
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files in the directory, want the log alone", len(entries))
	}
	s, err = openFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	results, err := s.Take(context.Background(), day)
	if err != nil {
		t.Fatal(err)
	}
	row.FailedSessionCount = 200
	if len(results) != 1 || results[0].Summary != (Summary{400, 200}) || len(results[0].FailureDetails) != 1 || results[0].FailureDetails[0] != row {
		t.Errorf("after compactions: %+v, want 400 ok, 200 failed in one row", results)
	}
	// A temporary file a crash left behind is removed on open.
	tmp := filepath.Join(dir, tempPrefix+"2016-04-02-0123")
	os.WriteFile(tmp, []byte("half"), 0o600)
	s2, err := openFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
}

func TestDayOf(t *testing.T) {
	for _, tc := range []struct {
		t    string
		want string
	}{
		{"2016-04-01T23:59:59.999Z", "2016-04-01"},
		{"2016-04-02T00:00:00Z", "2016-04-02"},
		// RFC 8460 4.1: UTC days, whatever the zone of the time.
		{"2016-04-02T01:30:00+02:00", "2016-04-01"},
		{"2016-04-01T23:30:00-02:00", "2016-04-02"},
		{"1969-12-31T23:59:59Z", "1969-12-31"},
	} {
		tm, err := time.Parse(time.RFC3339Nano, tc.t)
		if err != nil {
			t.Fatal(err)
		}
		if got := dayName(dayOf(tm)); got != tc.want {
			t.Errorf("day of %s = %s, want %s", tc.t, got, tc.want)
		}
		if !strings.HasPrefix(dayStart(dayOf(tm)).Format(time.RFC3339), tc.want+"T00:00:00Z") {
			t.Errorf("start of the day of %s = %s", tc.t, dayStart(dayOf(tm)))
		}
	}
}

// openFileStore returns the store of OpenFileStore, for tests that reach
// into it.
func openFileStore(dir string) (*fileStore, error) {
	s, err := OpenFileStore(dir)
	if err != nil {
		return nil, err
	}
	return s.(*fileStore), nil
}
