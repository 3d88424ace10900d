package cache_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mtasts-go/mtasts/cache"
)

// pruneFixture fills dir as a file store finds it after a while: an expired
// entry, a valid one, an expired one under a hashed name, a temporary file
// being written by another process now and one a crash left long ago, an
// expired entry of a later format version, and a file that is none of the
// store's. It returns the paths, by what they are.
func pruneFixture(t *testing.T, dir string, now time.Time) map[string]string {
	t.Helper()
	fs, err := cache.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	entries := map[string]cache.Entry{
		"expired": {Domain: "old.example", RecordID: "1", Policy: policyText("enforce", 60), Fetched: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour)},
		"valid":   {Domain: "new.example", RecordID: "1", Policy: policyText("enforce", 86400), Fetched: now, Expires: now.Add(time.Hour)},
		"hashed":  {Domain: "../x", RecordID: "1", Policy: policyText("enforce", 60), Fetched: now.Add(-2 * time.Hour), Expires: now.Add(-time.Minute)},
	}
	for _, e := range entries {
		if err := fs.Save(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	paths := map[string]string{
		"expired":    filepath.Join(dir, "old.example.json"),
		"valid":      filepath.Join(dir, "new.example.json"),
		"fresh temp": filepath.Join(dir, ".tmp-456"),
		"stale temp": filepath.Join(dir, ".tmp-123"),
		"version 2":  filepath.Join(dir, "v2.example.json"),
		"foreign":    filepath.Join(dir, "README"),
	}
	hashed, err := filepath.Glob(filepath.Join(dir, "_*.json"))
	if err != nil || len(hashed) != 1 {
		t.Fatalf("hashed entry files: %v, %v", hashed, err)
	}
	paths["hashed"] = hashed[0]
	files := map[string]string{
		"fresh temp": `{"version":1,"domain":"new.example","record_id":"2","pol`,
		"stale temp": `{"version":1,"domain":"new.example","record_id":"2","pol`,
		"version 2":  `{"version":2,"domain":"v2.example","expires":"2000-01-01T00:00:00Z"}`,
		"foreign":    "not a policy",
	}
	for what, data := range files {
		if err := os.WriteFile(paths[what], []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(paths["stale temp"], now.Add(-2*time.Hour), now.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	return paths
}

// checkPruned checks which of paths are gone.
func checkPruned(t *testing.T, paths map[string]string, gone ...string) {
	t.Helper()
	isGone := map[string]bool{}
	for _, what := range gone {
		isGone[what] = true
	}
	for what, path := range paths {
		_, err := os.Lstat(path)
		switch {
		case isGone[what] && !os.IsNotExist(err):
			t.Errorf("%s file %s still there (%v)", what, filepath.Base(path), err)
		case !isGone[what] && err != nil:
			t.Errorf("%s file %s removed: %v", what, filepath.Base(path), err)
		}
	}
}

// TestFileStorePruneOnOpen: a new file store removes expired entry files
// and stale temporary files, and keeps valid entries, a temporary file being
// written, and files it cannot read as entries of its own.
func TestFileStorePruneOnOpen(t *testing.T) {
	dir := t.TempDir()
	paths := pruneFixture(t, dir, time.Now())
	if _, err := cache.OpenFileStore(dir); err != nil {
		t.Fatal(err)
	}
	checkPruned(t, paths, "expired", "hashed", "stale temp")
}

// TestFileStorePrune: Prune removes what expired by the time it is given,
// keeps the rest, and stops when its context ends.
func TestFileStorePrune(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	fs, err := cache.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	paths := pruneFixture(t, dir, now)
	ctx := context.Background()
	if err := fs.(cache.Pruner).Prune(ctx, now); err != nil {
		t.Fatal(err)
	}
	checkPruned(t, paths, "expired", "hashed", "stale temp")
	if e, ok, err := fs.Load(ctx, "new.example"); err != nil || !ok || e.RecordID != "1" {
		t.Errorf("Load of the valid entry after Prune = %+v, %v, %v", e, ok, err)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := fs.(cache.Pruner).Prune(canceled, now.Add(2*time.Hour)); err == nil {
		t.Error("Prune with a canceled context succeeded")
	}

	// Two hours later, the valid entry has expired too, and the
	// temporary file, never renamed, is a crash's leftover.
	if err := fs.(cache.Pruner).Prune(ctx, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	checkPruned(t, paths, "expired", "hashed", "stale temp", "valid", "fresh temp")
}

// prunerStore is a store whose expired entries only go when pruned. Its
// Prune reports each call and, when hang is set, waits for its context.
type prunerStore struct {
	*cache.MemoryStore
	calls chan time.Time
	hang  bool
}

func (s *prunerStore) Prune(ctx context.Context, now time.Time) error {
	s.calls <- now
	if s.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// TestRunPrunes: Run has a Pruner store prune once an hour, one Prune at a
// time, without waiting for it, and Close ends a Prune that hangs.
func TestRunPrunes(t *testing.T) {
	for _, hang := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld()
			store := &prunerStore{MemoryStore: cache.NewMemoryStore(10), calls: make(chan time.Time, 10), hang: hang}
			c := w.newCache(t, cache.Options{Store: store})
			start := time.Now()
			go c.Run(t.Context())
			time.Sleep(3*time.Hour + 30*time.Second)
			synctest.Wait()
			want := 3
			if hang {
				want = 1 // the first never ends
			}
			if n := len(store.calls); n != want {
				t.Errorf("hang %v: %d Prunes in 3 hours, want %d", hang, n, want)
			}
			for i := range len(store.calls) {
				if now := <-store.calls; now.Sub(start) != time.Duration(i+1)*time.Hour {
					t.Errorf("Prune %d at %v, want after %d hours", i, now.Sub(start), i+1)
				}
			}
			c.Close()
		})
	}
}
