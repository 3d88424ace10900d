package cache

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRemoveExpiredReplaced: a Save, of another process say, replaced an
// expired entry file after Prune read it and before it removed it. The
// fresh entry must stay, and no claimed file be left behind.
func TestRemoveExpiredReplaced(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileStore(dir)
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
