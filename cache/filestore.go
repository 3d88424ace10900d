package cache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/quoted"
)

// fileStore is the Store of OpenFileStore, which documents it. Its
// methods other than Store's are those of Pruner and Lister.
type fileStore struct {
	dir string

	mu          sync.Mutex
	noticed     map[string]struct{} // names of files not known, logged
	noticedFull bool                // noticed reached maxNoticed, and that was logged
}

// maxNoticed bounds the names of files not known that a fileStore remembers
// having logged.
const maxNoticed = 1024

// fileVersion is the version of the file format this package writes; Load
// reads files of this version only and reports others as errors.
const fileVersion = 1

type fileEntry struct {
	Version  int       `json:"version"`
	Domain   string    `json:"domain"`
	RecordID string    `json:"record_id"`
	Policy   string    `json:"policy"`
	Fetched  time.Time `json:"fetched"`
	Expires  time.Time `json:"expires"`
}

// maxFileSize bounds what Load reads: a policy of mtasts.MaxPolicySize bytes
// with every byte escaped in JSON, and room for the other fields. A larger
// file is not one this package wrote.
const maxFileSize = 6*mtasts.MaxPolicySize + 4096

// staleTemp is the age after which OpenFileStore and Prune remove a temporary
// file: one left by a process that crashed mid-write. A write in progress,
// even of another process sharing the directory, takes far less; removing
// its file would fail that write.
const staleTemp = time.Hour

// OpenFileStore returns a Store keeping policies in dir, one file per
// domain, so that they survive restarts. It creates dir (mode 0700) when
// missing, and prunes it as Prune does (see below). It returns an error when
// dir cannot be created or read.
//
// Writes are atomic: a temporary file is written, synced and renamed over
// the old one, so a crash leaves the old entry or the new one, never half of
// either. The store is safe for concurrent use, also by several processes
// sharing the directory.
//
// Besides Store, it implements Pruner and Lister, which the cache and an
// admin page find by type assertion (store.(cache.Lister)). Files do not
// expire by themselves: OpenFileStore and Prune, which Run calls, remove
// the entry files that expired, and temporary files that a crash in the
// middle of a write left behind, once they are an hour old (a younger one
// may be a write in progress, of another process sharing the directory,
// say). A file replaced by a fresh entry while being pruned stays.
//
// Prune and List leave alone the files of the directory that are neither
// entries of this format version nor temporary files of the store: a later
// release's entries, an operator's notes, a file that does not decode. Load
// reports such a file as an error and Save replaces it. Prune and List log
// each of them once, at Info, to the logger of their ctx (see WithLogger):
// Run passes the cache's. Once 1024 names have been logged, one more record
// says that further ones are not named.
//
// The file format is JSON with a version number:
//
//	{"version":1,"domain":"example.com","record_id":"20240101","policy":"version: STSv1\r\n...",
//	 "fetched":"2024-01-01T00:00:00Z","expires":"2024-01-08T00:00:00Z"}
func OpenFileStore(dir string) (Store, error) {
	return openFileStore(dir)
}

// openFileStore is OpenFileStore, returning the concrete store.
func openFileStore(dir string) (*fileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: file store: %w", err)
	}
	s := &fileStore{dir: dir}
	// A file it could not remove, unlike an unreadable directory, is no
	// reason to fail: Prune tries again, and reports it.
	if _, err := s.prune(context.Background(), time.Now()); err != nil {
		return nil, err
	}
	return s, nil
}

// Prune implements Pruner: it removes the entry files that expired by now,
// and temporary files an hour old at now, which a crash in the middle of a
// write left (a younger one may be a write in progress, of another process
// sharing the directory, say). It leaves the files it cannot read as entries
// of this format version, such as those of a later release sharing the
// directory: Load reports them, Save replaces them, and Prune logs them once
// (see OpenFileStore). It returns ctx's
// error when ctx ends first, and an error when the directory cannot be read
// or an expired file cannot be removed.
func (s *fileStore) Prune(ctx context.Context, now time.Time) error {
	files, err := s.prune(ctx, now)
	if err != nil {
		return err
	}
	if files != nil {
		return fmt.Errorf("cache: file store: prune: %w", files)
	}
	return nil
}

// prune does the work of Prune. It returns the errors of files it could not
// remove, and apart from them its own error: the directory's, or ctx's.
func (s *fileStore) prune(ctx context.Context, now time.Time) (files, err error) {
	d, err := os.Open(s.dir)
	if err != nil {
		return nil, fmt.Errorf("cache: file store: %w", err)
	}
	defer d.Close()
	var errs []error
	for {
		// In batches: a directory may hold a million entries.
		names, err := d.Readdirnames(1024)
		for _, name := range names {
			if err := ctx.Err(); err != nil {
				return errors.Join(errs...), err
			}
			switch {
			case isTempName(name):
				errs = append(errs, s.pruneTemp(name, now))
			case filepath.Ext(name) == ".json":
				errs = append(errs, s.pruneEntry(ctx, name, now))
			default:
				s.notice(ctx, name, "not a policy entry file")
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errors.Join(errs...), fmt.Errorf("cache: file store: %w", err)
		}
	}
	return errors.Join(errs...), nil
}

// pruneTemp removes the temporary file name if it is staleTemp old at now.
func (s *fileStore) pruneTemp(name string, now time.Time) error {
	path := filepath.Join(s.dir, name)
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || now.Sub(fi.ModTime()) <= staleTemp {
		return nil // gone, renamed into place, or too young
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// pruneEntry removes the entry file name if it expired by now. A file that
// is not an entry of this format version is left, and noticed.
func (s *fileStore) pruneEntry(ctx context.Context, name string, now time.Time) error {
	path := filepath.Join(s.dir, name)
	fe, err := readEntryFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // removed since the directory was read
	case err != nil:
		s.notice(ctx, name, err.Error())
		return nil
	case fe.Version != fileVersion:
		s.notice(ctx, name, fmt.Sprintf("format version %d, expected %d", fe.Version, fileVersion))
		return nil
	case fe.Expires.After(now):
		return nil
	}
	return s.removeExpired(path, now)
}

// notice logs, to the logger of ctx (see WithLogger), that the directory
// holds the file name, which the store does not know and leaves alone, and
// why. It logs each name once, and at most maxNoticed names; without a
// logger in ctx, it logs nothing and remembers nothing.
func (s *fileStore) notice(ctx context.Context, name, why string) {
	log, _ := ctx.Value(loggerKey{}).(*slog.Logger)
	if log == nil {
		return
	}
	s.mu.Lock()
	_, seen := s.noticed[name]
	full := len(s.noticed) >= maxNoticed
	tell := !seen && !full
	tellFull := !seen && full && !s.noticedFull
	if tell {
		if s.noticed == nil {
			s.noticed = map[string]struct{}{}
		}
		s.noticed[name] = struct{}{}
	}
	if tellFull {
		s.noticedFull = true
	}
	s.mu.Unlock()
	switch {
	case tell:
		log.Info("mta-sts: file store: file not known, left alone", "dir", s.dir, "file", quoteName(name), "why", why)
	case tellFull:
		log.Info("mta-sts: file store: more files not known, left alone; no more are named", "dir", s.dir, "named", maxNoticed)
	}
}

// quoteName returns a file name for a log: quoted and escaped as Go does,
// at most 64 bytes of it, with the length of a longer one.
func quoteName(name string) string {
	const limit = 64
	if len(name) <= limit {
		return strconv.QuoteToASCII(name)
	}
	return strconv.QuoteToASCII(strings.ToValidUTF8(name[:limit], "")) + fmt.Sprintf("...(%d bytes)", len(name))
}

// removeExpired removes the entry file at path, found expired at now. A
// Save, of another process too, may have replaced the file since it was
// read: so the file is first claimed, renamed to a temporary name (which a
// crash leaves to pruneTemp), and read again; an entry that turns out fresh
// is linked back, unless a newer one took its place meanwhile.
func (s *fileStore) removeExpired(path string, now time.Time) error {
	claim := filepath.Join(s.dir, ".tmp-prune-"+randomSuffix())
	if err := os.Rename(path, claim); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if !s.expiredFile(claim, now) {
		if err := os.Link(claim, path); err != nil && !errors.Is(err, fs.ErrExist) {
			// No hard links on this file system: rename back,
			// which may replace an entry saved in the last
			// instant; the next record check corrects that.
			return os.Rename(claim, path)
		}
	}
	return os.Remove(claim)
}

// expiredFile reports whether path holds an entry of this format version
// that expired by now; a file it cannot read or decode is not one.
func (s *fileStore) expiredFile(path string, now time.Time) bool {
	fe, err := readEntryFile(path)
	return err == nil && fe.Version == fileVersion && !fe.Expires.After(now)
}

// isTempName reports whether name is that of a temporary file, of
// writeFileAtomic or of pruneEntry.
func isTempName(name string) bool {
	return strings.HasPrefix(name, tempPrefix)
}

// randomSuffix returns 64 random bits in hex, for a file name of its own.
func randomSuffix() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// path returns the file of domain. A name of lower-case letters, digits,
// hyphens and inner dots, as every A-label domain is, names its file; any
// other string, such as one with a slash or "..", is hashed, so no domain
// reaches outside the directory.
func (s *fileStore) path(domain string) string {
	if safeFileName(domain) {
		return filepath.Join(s.dir, domain+".json")
	}
	sum := sha256.Sum256([]byte(domain))
	return filepath.Join(s.dir, "_"+hex.EncodeToString(sum[:])+".json")
}

func safeFileName(domain string) bool {
	if domain == "" || len(domain) > 200 || domain[0] == '.' || domain[len(domain)-1] == '.' {
		return false
	}
	for i := 0; i < len(domain); i++ {
		c := domain[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		case c == '.' && domain[i-1] != '.':
		default:
			return false
		}
	}
	return true
}

// Load implements Store. A file that cannot be read or decoded, or that holds
// another domain or another format version, is an error.
func (s *fileStore) Load(ctx context.Context, domain string) (Entry, bool, error) {
	e, err := readEntry(s.path(domain))
	if errors.Is(err, fs.ErrNotExist) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	if e.Domain != domain {
		return Entry{}, false, fmt.Errorf("cache: file store: %s: holds domain %s, expected %s", s.path(domain), quoted.String(e.Domain), quoted.String(domain))
	}
	return e, true, nil
}

// readEntry reads the entry file at path, of this package's format version.
func readEntry(path string) (Entry, error) {
	fe, err := readEntryFile(path)
	if err != nil {
		return Entry{}, fmt.Errorf("cache: file store: %w", err)
	}
	if fe.Version != fileVersion {
		return Entry{}, fmt.Errorf("cache: file store: %s: format version %d, expected %d", path, fe.Version, fileVersion)
	}
	return Entry{Domain: fe.Domain, RecordID: fe.RecordID, Policy: fe.Policy, Fetched: fe.Fetched, Expires: fe.Expires}, nil
}

// List implements Lister: the entries of the directory's files, in no order,
// expired ones included until Prune removes them. A file that cannot be read
// or decoded, or that holds another format version, is listed as an error,
// and the listing goes on. Other files are left out, and logged once (see
// OpenFileStore).
func (s *fileStore) List(ctx context.Context) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		d, err := os.Open(s.dir)
		if err != nil {
			yield(Entry{}, fmt.Errorf("cache: file store: %w", err))
			return
		}
		defer d.Close()
		for {
			// In batches: a directory may hold a million entries.
			names, err := d.Readdirnames(1024)
			for _, name := range names {
				if err := ctx.Err(); err != nil {
					yield(Entry{}, err)
					return
				}
				if isTempName(name) {
					continue
				}
				if filepath.Ext(name) != ".json" {
					s.notice(ctx, name, "not a policy entry file")
					continue
				}
				e, err := readEntry(filepath.Join(s.dir, name))
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed since the directory was read
				}
				if !yield(e, err) {
					return
				}
			}
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(Entry{}, fmt.Errorf("cache: file store: %w", err))
				return
			}
		}
	}
}

// readEntryFile reads and decodes the file at path, refusing more than
// maxFileSize bytes. It does not check the format version.
func readEntryFile(path string) (fileEntry, error) {
	var fe fileEntry
	data, err := readFile(path)
	if err != nil {
		return fe, err
	}
	if err := json.Unmarshal(data, &fe); err != nil {
		return fe, fmt.Errorf("%s: %w", path, err)
	}
	return fe, nil
}

// readFile reads path, refusing more than maxFileSize bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}

// Save implements Store.
func (s *fileStore) Save(ctx context.Context, e Entry) error {
	data, err := json.Marshal(fileEntry{fileVersion, e.Domain, e.RecordID, e.Policy, e.Fetched.UTC(), e.Expires.UTC()})
	if err != nil {
		return fmt.Errorf("cache: file store: %w", err)
	}
	if err := writeFileAtomic(s.path(e.Domain), data); err != nil {
		return fmt.Errorf("cache: file store: %w", err)
	}
	return nil
}

// tempPrefix starts the names of temporary files, and tempPattern names those
// of writeFileAtomic. The leading dot keeps them apart from entry files,
// whose names never start with one.
const (
	tempPrefix  = ".tmp-"
	tempPattern = tempPrefix + "*"
)

// writeFileAtomic replaces path with data: temporary file in the same
// directory, fsync, rename, fsync of the directory.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Delete implements Store.
func (s *fileStore) Delete(ctx context.Context, domain string) error {
	err := os.Remove(s.path(domain))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cache: file store: %w", err)
	}
	return nil
}
