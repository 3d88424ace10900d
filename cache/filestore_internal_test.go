package cache

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestRemoveExpiredReplaced: a Save, of another process say, replaced an
// expired entry file after Prune read it and before it removed it. The
// fresh entry must stay, and no claimed file be left behind.
func TestRemoveExpiredReplaced(t *testing.T) {
	dir := t.TempDir()
	s, err := openFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ctx := context.Background()
	fresh := Entry{Domain: "example.com", RecordID: "2", Policy: "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n", Fetched: now, Expires: now.Add(time.Hour)}
	if err := s.Save(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	// As if the read before had found id 1, expired.
	if err := s.removeExpired(s.path("example.com"), now); err != nil {
		t.Fatal(err)
	}
	if e, ok, err := s.Load(ctx, "example.com"); err != nil || !ok || e.RecordID != "2" {
		t.Errorf("Load after the race = %+v, %v, %v; want the fresh entry", e, ok, err)
	}
	if temps, _ := filepath.Glob(filepath.Join(dir, tempPattern)); len(temps) != 0 {
		t.Errorf("files left: %v", temps)
	}

	// Without the race, the expired entry goes.
	if err := s.removeExpired(s.path("example.com"), now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(s.path("example.com")); !os.IsNotExist(err) {
		t.Errorf("expired entry still there: %v", err)
	}
}

// countingHandler is a slog.Handler that counts its records.
type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// TestFileStoreUnknownFilesBounded: a directory full of files not known
// makes a bounded number of log records, and the store remembers a bounded
// number of names.
func TestFileStoreUnknownFilesBounded(t *testing.T) {
	dir := t.TempDir()
	s, err := openFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxNoticed + 500 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("junk%d.txt", i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h := &countingHandler{}
	ctx := WithLogger(context.Background(), slog.New(h))
	s.Prune(ctx, time.Now())
	s.Prune(ctx, time.Now())
	if n := h.n.Load(); n != maxNoticed+1 {
		t.Errorf("%d records for %d files not known; want %d: one per file up to the bound, then one", n, maxNoticed+500, maxNoticed+1)
	}
	if len(s.noticed) > maxNoticed {
		t.Errorf("the store remembers %d names, more than %d", len(s.noticed), maxNoticed)
	}
}
