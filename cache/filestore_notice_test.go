package cache_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mtasts-go/mtasts/cache"
)

// noticeLog is a slog.Handler keeping the "file" attribute of each record.
type noticeLog struct {
	mu    sync.Mutex
	files []string
}

func (h *noticeLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *noticeLog) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	file := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "file" {
			file = a.Value.String()
		}
		return true
	})
	h.files = append(h.files, file)
	return nil
}
func (h *noticeLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *noticeLog) WithGroup(string) slog.Handler      { return h }

func (h *noticeLog) logged() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.files...)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFileStoreLogsUnknownFiles: the files of a FileStore's directory that
// are neither entries of its format version nor its temporary files are
// logged, once each, to the logger of Prune's and List's ctx.
func TestFileStoreLogsUnknownFiles(t *testing.T) {
	dir := t.TempDir()
	fs, err := cache.OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "notes.txt"), "hello")
	writeFile(t, filepath.Join(dir, "later.example.json"), `{"version":2,"domain":"later.example"}`)
	writeFile(t, filepath.Join(dir, "broken.example.json"), `{"version":`)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := fs.Save(context.Background(), cache.Entry{Domain: "example.com", RecordID: "1", Policy: policyText("enforce", 86400), Fetched: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	// Without a logger in ctx, nothing is logged, nor taken as told.
	fs.(cache.Pruner).Prune(context.Background(), now)

	logs := &noticeLog{}
	ctx := cache.WithLogger(context.Background(), slog.New(logs))
	for range 2 {
		fs.(cache.Pruner).Prune(ctx, now)
		for range fs.(cache.Lister).List(ctx) {
		}
	}
	got := logs.logged()
	want := []string{"broken.example.json", "later.example.json", "notes.txt", "sub"}
	if len(got) != len(want) {
		t.Fatalf("logged %q, want each of %q once", got, want)
	}
	for _, name := range want {
		n := 0
		for _, g := range got {
			if strings.Contains(g, name) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s logged %d times, want once (all: %q)", name, n, got)
		}
	}

	// A new one is logged at the next Prune.
	writeFile(t, filepath.Join(dir, "new.bak"), "")
	fs.(cache.Pruner).Prune(ctx, now)
	if got := logs.logged(); len(got) != len(want)+1 || !strings.Contains(got[len(got)-1], "new.bak") {
		t.Errorf("after a new file: logged %q, want new.bak last", got)
	}
}

// TestCacheLogsUnknownStoreFiles: Run's pruning of a FileStore logs the
// files it does not know to the cache's logger.
func TestCacheLogsUnknownStoreFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "notes.txt"), "hello")
	synctest.Test(t, func(t *testing.T) {
		fs, err := cache.OpenFileStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		logs := &noticeLog{}
		c := newWorld().newCache(t, cache.Options{Store: fs, Logger: slog.New(logs)})
		ctx, cancel := context.WithCancel(t.Context())
		go c.Run(ctx)
		time.Sleep(61 * time.Minute)
		synctest.Wait()
		cancel()
		synctest.Wait()
		if got := logs.logged(); len(got) != 1 || !strings.Contains(got[0], "notes.txt") {
			t.Errorf("the cache's logger got %q, want notes.txt once", got)
		}
	})
}
