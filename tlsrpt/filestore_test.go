package tlsrpt_test

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// fileStore is what OpenFileStore returns: a Store that is an io.Closer,
// as its godoc says.
type fileStore interface {
	tlsrpt.Store
	io.Closer
}

func openFileStore(t *testing.T, dir string) fileStore {
	t.Helper()
	st, err := tlsrpt.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := st.(fileStore)
	t.Cleanup(func() { s.Close() })
	return s
}

// The stated worst case: a crash loses at most the sessions recorded in the
// last FlushInterval (one second). The recorder runs, flushes, records
// more, and dies without Close; a new one on the same directory reports
// what was flushed.
func TestFileStoreCrash(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		day := time.Now().UTC()
		store := openFileStore(t, dir)
		rec, _ := newRecorder(t, tlsrpt.RecorderOptions{Store: store})
		ctx, crash := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- rec.Run(ctx) }()

		p := sts("a.example", "enforce")
		for range 3 {
			must(t, rec.Success(p))
		}
		must(t, rec.Failure(p, row(expired, "a.example", 1, 0)))
		time.Sleep(time.Second) // Run flushes
		synctest.Wait()
		// Within the last second before the crash: lost.
		must(t, rec.Success(p))
		must(t, rec.Failure(p, row(expired, "a.example", 2, 0)))
		time.Sleep(time.Second - time.Nanosecond)
		crash() // Run ends without flushing, Close is never called
		<-done

		reopened := openFileStore(t, dir)
		rec2, _ := newRecorder(t, tlsrpt.RecorderOptions{Store: reopened})
		time.Sleep(25 * time.Hour) // the day closes
		d := mustTake(t, rec2, day)
		want := storefixture.Canonical([]tlsrpt.PolicyResult{result(p, 3, 1, row(expired, "a.example", 1, 1))})
		if got := storefixture.Canonical(d.Results); got != want {
			t.Errorf("after the crash:\n%s\nwant what was flushed:\n%s", got, want)
		}
	})
}

// A day survives a clean restart whole, its cap on rows too, and a day
// taken stays taken.
func TestFileStoreRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openFileStore(t, dir)
	p := sts("a.example", "enforce")
	if _, err := s.Add(ctx, tlsrpt.Batch{Day: storefixture.DayOne, MaxDetailRows: 2, Results: []tlsrpt.PolicyResult{
		result(p, 4, 2, row(expired, "a.example", 1, 1), row(expired, "a.example", 2, 1)),
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(ctx, tlsrpt.Batch{Day: storefixture.DayTwo, Results: []tlsrpt.PolicyResult{result(p, 1, 0)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Take(ctx, storefixture.DayTwo); err != nil {
		t.Fatal(err)
	}
	must(t, s.Close())
	if _, err := s.Add(ctx, tlsrpt.Batch{Day: storefixture.DayOne, Results: []tlsrpt.PolicyResult{result(p, 1, 0)}}); err == nil {
		t.Error("Add after Close: no error")
	}

	s = openFileStore(t, dir)
	dropped, err := s.Add(ctx, tlsrpt.Batch{Day: storefixture.DayOne, MaxDetailRows: 2, Results: []tlsrpt.PolicyResult{
		result(p, 1, 2, row(expired, "a.example", 3, 1), row(expired, "a.example", 1, 1)),
	}})
	if err != nil || dropped != 1 {
		t.Errorf("Add after restart: dropped %d, %v; want 1: the cap counts the rows from before", dropped, err)
	}
	if _, err := s.Add(ctx, tlsrpt.Batch{Day: storefixture.DayTwo, Results: []tlsrpt.PolicyResult{result(p, 1, 0)}}); !errors.Is(err, tlsrpt.ErrDayTaken) {
		t.Errorf("Add to a day taken before the restart: %v, want ErrDayTaken", err)
	}
	results, err := s.Take(ctx, storefixture.DayOne)
	must(t, err)
	want := storefixture.Canonical([]tlsrpt.PolicyResult{result(p, 5, 4, row(expired, "a.example", 1, 2), row(expired, "a.example", 2, 1))})
	if got := storefixture.Canonical(results); got != want {
		t.Errorf("Take:\n%s\nwant:\n%s", got, want)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "2016-04-01.taken 2016-04-02.taken" {
		t.Errorf("files: %s, want the marks of the days taken", got)
	}
}

// A batch half written when the process died, or one whose checksum does
// not match, is ignored; the batches before and after it count.
func TestFileStoreTornWrite(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openFileStore(t, dir)
	p := sts("a.example", "enforce")
	add := func(s fileStore, ok int64) {
		t.Helper()
		if _, err := s.Add(ctx, tlsrpt.Batch{Day: storefixture.DayOne, Results: []tlsrpt.PolicyResult{result(p, ok, 0)}}); err != nil {
			t.Fatal(err)
		}
	}
	add(s, 1)
	add(s, 2)
	must(t, s.Close())
	log := filepath.Join(dir, "2016-04-01.log")
	data, err := os.ReadFile(log)
	must(t, err)
	lines := strings.SplitAfter(string(data), "\n")
	// Corrupt the second batch's count, keeping its checksum, and end
	// with half a batch.
	lines[1] = strings.Replace(lines[1], `"total-successful-session-count":2`, `"total-successful-session-count":9`, 1)
	torn := lines[0][:len(lines[0])/2]
	must(t, os.WriteFile(log, []byte(lines[0]+lines[1]+torn), 0o600))

	s = openFileStore(t, dir)
	add(s, 4)
	must(t, s.Close())
	s = openFileStore(t, dir)
	results, err := s.Take(ctx, storefixture.DayOne)
	must(t, err)
	if got, want := storefixture.Canonical(results), storefixture.Canonical([]tlsrpt.PolicyResult{result(p, 5, 0)}); got != want {
		t.Errorf("Take:\n%s\nwant the first and last batches:\n%s", got, want)
	}
}

// A log of a later format version is not silently ignored.
func TestFileStoreUnknownVersion(t *testing.T) {
	dir := t.TempDir()
	// The CRC-32 of {"v":2,"policies":[]}.
	must(t, os.WriteFile(filepath.Join(dir, "2016-04-01.log"), []byte("ca686197 {\"v\":2,\"policies\":[]}\n"), 0o600))
	_, err := tlsrpt.OpenFileStore(dir)
	if err == nil || !strings.Contains(err.Error(), "2016-04-01.log line 1") || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("OpenFileStore: %v, want an error naming the file, line and version", err)
	}
}

// A Release that cannot empty the day's file fails, and leaves the day
// claimed: its counts are taken again, and released once the file can be.
func TestFileStoreReleaseFails(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openFileStore(t, dir)
	p := sts("a.example", "enforce")
	if _, err := s.Add(ctx, tlsrpt.Batch{Day: storefixture.DayOne, Results: []tlsrpt.PolicyResult{result(p, 3, 0)}}); err != nil {
		t.Fatal(err)
	}
	want := storefixture.Canonical([]tlsrpt.PolicyResult{result(p, 3, 0)})
	if results, err := s.Take(ctx, storefixture.DayOne); err != nil || storefixture.Canonical(results) != want {
		t.Fatalf("Take = %v, %v; want the counts", results, err)
	}
	// The file turned into something that cannot be written.
	taken := filepath.Join(dir, "2016-04-01.taken")
	must(t, os.Rename(taken, taken+".saved"))
	must(t, os.Mkdir(taken, 0o700))
	if err := s.Release(ctx, storefixture.DayOne); err == nil || !strings.Contains(err.Error(), "releasing 2016-04-01") {
		t.Errorf("Release of a day whose file cannot be emptied: %v, want an error naming the day", err)
	}
	if results, err := s.Take(ctx, storefixture.DayOne); err != nil || storefixture.Canonical(results) != want {
		t.Errorf("Take after the failed Release = %v, %v; want the counts again", results, err)
	}
	must(t, os.Remove(taken))
	must(t, os.Rename(taken+".saved", taken))
	must(t, s.Release(ctx, storefixture.DayOne))
	if results, err := s.Take(ctx, storefixture.DayOne); err != nil || len(results) != 0 {
		t.Errorf("Take after Release = %v, %v; want nothing", results, err)
	}
}

// A directory the store cannot write to is refused at open, not found out
// by every flush, each failing with a warning, until Close loses the counts.
//
// Tests run as root here, and root writes to a directory of mode 0500: the
// chmod case runs only for other users. What fails for root too is sysfs,
// where no one creates regular files; it is the case that proves the check
// as root. A path under a regular file fails at MkdirAll, before and after.
func TestOpenFileStoreUnwritable(t *testing.T) {
	check := func(t *testing.T, dir string) {
		t.Helper()
		s, err := tlsrpt.OpenFileStore(dir)
		if err == nil {
			s.(io.Closer).Close()
			t.Fatalf("OpenFileStore(%s) = nil error, want one: the directory cannot be written to", dir)
		}
		if msg := err.Error(); !strings.Contains(msg, "tlsrpt: file store") || !strings.Contains(msg, dir) {
			t.Errorf("error %q does not say which store and directory", msg)
		}
		t.Log(err)
	}
	t.Run("mode 0500", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes to a directory of mode 0500")
		}
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		check(t, dir)
	})
	t.Run("sysfs", func(t *testing.T) {
		const dir = "/sys/kernel" // a directory; creating a file in it fails for root too
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Skip("no sysfs")
		}
		check(t, dir)
	})
	t.Run("under a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, filepath.Join(file, "store"))
	})
}

// TestFileStoreRecipientDomains checks that the recipient domain of a result
// survives a restart, and that a log written before recipient domains were
// kept, whose lines have none, still reads: its results are of no
// recipient domain.
func TestFileStoreRecipientDomains(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	// A line of the format of earlier releases, as they wrote it.
	old := `{"v":1,"policies":[{"policy":{"policy-type":"tlsa","policy-string":["3 1 1 AB"],"policy-domain":"mx.host.example","mx-host":["mx.host.example"]},"summary":{"total-successful-session-count":2,"total-failure-session-count":0}}]}`
	line := fmt.Sprintf("%08x %s\n", crc32.ChecksumIEEE([]byte(old)), old)
	must(t, os.WriteFile(filepath.Join(dir, "2016-04-01.log"), []byte(line), 0o600))
	s := openFileStore(t, dir)
	p := storefixture.TLSA("mx.host.example", "a.example")
	if _, err := s.Add(ctx, tlsrpt.Batch{Day: storefixture.DayOne, Results: []tlsrpt.PolicyResult{result(p, 3, 0)}}); err != nil {
		t.Fatal(err)
	}
	must(t, s.Close())
	s = openFileStore(t, dir)
	results, err := s.Take(ctx, storefixture.DayOne)
	must(t, err)
	legacy := tlsrpt.Policy{PolicyType: tlsrpt.PolicyTypeTLSA, PolicyString: []string{"3 1 1 AB"}, PolicyDomain: "mx.host.example", MXHost: []string{"mx.host.example"}}
	want := storefixture.Canonical([]tlsrpt.PolicyResult{result(legacy, 2, 0), result(p, 3, 0)})
	if got := storefixture.Canonical(results); got != want {
		t.Errorf("Take:\n%s\nwant:\n%s", got, want)
	}
}

// A domain's results deleted stay deleted across a restart: the day's log
// is rewritten without them, or removed when nothing is left.
func TestFileStoreDeleteRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openFileStore(t, dir)
	a, b := sts("a.example", "enforce"), sts("b.example", "enforce")
	must(t, add1(s, storefixture.DayOne, result(a, 1, 0), result(b, 2, 0)))
	must(t, add1(s, storefixture.DayTwo, result(a, 3, 0)))
	must(t, s.Delete(ctx, "a.example"))
	must(t, s.Close())
	s = openFileStore(t, dir)
	days, err := s.Days(ctx)
	must(t, err)
	if len(days) != 1 || !days[0].Equal(storefixture.DayOne) {
		t.Errorf("Days after a restart = %v, want Day1 alone: Day2 held a.example's results only", days)
	}
	results, err := s.Results(ctx, storefixture.DayOne)
	must(t, err)
	if got, want := storefixture.Canonical(results), storefixture.Canonical([]tlsrpt.PolicyResult{result(b, 2, 0)}); got != want {
		t.Errorf("Results after a restart:\n%s\nwant:\n%s", got, want)
	}
}

func add1(s tlsrpt.Store, day time.Time, results ...tlsrpt.PolicyResult) error {
	_, err := s.Add(context.Background(), tlsrpt.Batch{Day: day, Results: results})
	return err
}
