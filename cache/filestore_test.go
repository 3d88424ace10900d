package cache_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
)

// TestFileStoreAtomicWrite has one goroutine save two large entries in turn
// while others load: every load must see one entry whole. A store that wrote
// the file in place (truncate, then write) lets a reader see a truncated
// file, which fails to decode.
func TestFileStoreAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	fs, err := cache.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	big := func(id string) cache.Entry {
		mx := strings.Repeat("mx: mx"+id+".example.com\n", 2000) // about 44 KB
		return cache.Entry{Domain: "example.com", RecordID: id, Policy: "version: STSv1\nmode: enforce\n" + mx + "max_age: 86400\n", Fetched: now, Expires: now.Add(time.Hour)}
	}
	entries := map[string]cache.Entry{"a": big("a"), "b": big("b")}
	if err := fs.Save(ctx, entries["a"]); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(stop)
		for i := range 30 {
			if err := fs.Save(ctx, entries[string(rune('a'+i%2))]); err != nil {
				t.Errorf("Save: %v", err)
				return
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				e, ok, err := fs.Load(ctx, "example.com")
				if err != nil || !ok {
					t.Errorf("Load during writes = %v, %v; want a whole entry", ok, err)
					return
				}
				if want := entries[e.RecordID]; e.Policy != want.Policy {
					t.Errorf("Load during writes: entry %q with a policy of %d bytes, want %d", e.RecordID, len(e.Policy), len(want.Policy))
					return
				}
			}
		})
	}
	wg.Wait()
	if temps, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(temps) != 0 {
		t.Errorf("temporary files left: %v", temps)
	}
}

// TestFileStoreCrashLeftovers: what a crash in the middle of a write leaves,
// a temporary file, is not an entry, and a new store removes it once stale.
func TestFileStoreCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	fs, err := cache.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	old := cache.Entry{Domain: "example.com", RecordID: "1", Policy: policyText("enforce", 86400), Fetched: now, Expires: now.Add(time.Hour)}
	if err := fs.Save(ctx, old); err != nil {
		t.Fatal(err)
	}
	// A write of id 2 that died after half the bytes, long ago, and one
	// that is under way now.
	stale := filepath.Join(dir, ".tmp-123")
	fresh := filepath.Join(dir, ".tmp-456")
	for _, name := range []string{stale, fresh} {
		if err := os.WriteFile(name, []byte(`{"version":1,"domain":"example.com","record_id":"2","pol`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(stale, now.Add(-2*time.Hour), now.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if e, ok, err := fs.Load(ctx, "example.com"); err != nil || !ok || e.RecordID != "1" {
		t.Fatalf("Load = %+v, %v, %v; want the entry before the crash", e, ok, err)
	}

	if _, err := cache.OpenFileStore(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a temporary file being written was removed: %v", err)
	}
}

func TestFileStoreOversizeFile(t *testing.T) {
	dir := t.TempDir()
	fs, err := cache.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	huge := make([]byte, 7*mtasts.MaxPolicySize+4096)
	if err := os.WriteFile(filepath.Join(dir, "example.com.json"), huge, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := fs.Load(context.Background(), "example.com"); ok || err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load of an oversize file = %v, %v; want an error saying it is too large", ok, err)
	}
	// The largest policy, every byte escaped, still fits.
	now := time.Now()
	e := cache.Entry{Domain: "example.com", RecordID: "1", Policy: strings.Repeat("\x01", mtasts.MaxPolicySize), Fetched: now, Expires: now.Add(time.Hour)}
	if err := fs.Save(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := fs.Load(context.Background(), "example.com"); err != nil || !ok || got.Policy != e.Policy {
		t.Errorf("Load of the largest entry = %v, %v", ok, err)
	}
}

// FuzzFileStoreLoad feeds Load arbitrary file contents: it must return an
// entry of the domain asked for, or an error, and never panic.
func FuzzFileStoreLoad(f *testing.F) {
	f.Add([]byte(`{"version":1,"domain":"example.com","record_id":"1","policy":"version: STSv1\nmode: none\nmax_age: 1\n","fetched":"2024-01-01T00:00:00Z","expires":"2024-01-01T00:00:01Z"}`))
	f.Add([]byte(`{"version":1,"domain":"example.com"`))
	f.Add([]byte(`{"version":1,"domain":"example.com","fetched":"not a time"}`))
	f.Add([]byte(`null`))
	f.Add([]byte{0xff, 0xfe, 0x00})
	dir := f.TempDir()
	fs, err := cache.OpenFileStore(dir)
	if err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(dir, "example.com.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		e, ok, err := fs.Load(context.Background(), "example.com")
		if err == nil && (!ok || e.Domain != "example.com") {
			t.Errorf("Load = %+v, %v, nil; want the entry of example.com or an error", e, ok)
		}
	})
}
