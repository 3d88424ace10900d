package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mtasts-go/mtasts"
)

// FileStore is a Store in a directory: one file per domain, so policies
// survive restarts. Writes are atomic: a temporary file is written, synced
// and renamed over the old one, so a crash leaves the old entry or the new
// one, never half of either. It is safe for concurrent use, also by several
// processes sharing the directory.
//
// The file format is JSON with a version number:
//
//	{"version":1,"domain":"example.com","record_id":"20240101","policy":"version: STSv1\r\n...",
//	 "fetched":"2024-01-01T00:00:00Z","expires":"2024-01-08T00:00:00Z"}
type FileStore struct {
	dir string
}

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

// staleTemp is the age after which NewFileStore removes a temporary file: one
// left by a process that crashed mid-write. A write in progress, even of
// another process sharing the directory, takes far less.
const staleTemp = time.Hour

// NewFileStore returns a FileStore keeping its files in dir, which it creates
// (mode 0700) when missing. It removes temporary files that a crash in the
// middle of a write left behind. It returns an error when dir cannot be
// created or read.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: file store: %w", err)
	}
	temps, err := filepath.Glob(filepath.Join(dir, tempPattern))
	if err != nil {
		return nil, fmt.Errorf("cache: file store: %w", err)
	}
	for _, name := range temps {
		if fi, err := os.Lstat(name); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > staleTemp {
			os.Remove(name)
		}
	}
	return &FileStore{dir: dir}, nil
}

// path returns the file of domain. A name of lower-case letters, digits,
// hyphens and inner dots, as every A-label domain is, names its file; any
// other string, such as one with a slash or "..", is hashed, so no domain
// reaches outside the directory.
func (s *FileStore) path(domain string) string {
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
func (s *FileStore) Load(ctx context.Context, domain string) (Entry, bool, error) {
	data, err := readFile(s.path(domain))
	if errors.Is(err, fs.ErrNotExist) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("cache: file store: %w", err)
	}
	var fe fileEntry
	if err := json.Unmarshal(data, &fe); err != nil {
		return Entry{}, false, fmt.Errorf("cache: file store: %s: %w", s.path(domain), err)
	}
	if fe.Version != fileVersion {
		return Entry{}, false, fmt.Errorf("cache: file store: %s: format version %d, expected %d", s.path(domain), fe.Version, fileVersion)
	}
	if fe.Domain != domain {
		return Entry{}, false, fmt.Errorf("cache: file store: %s: holds domain %q, expected %q", s.path(domain), fe.Domain, domain)
	}
	return Entry{Domain: fe.Domain, RecordID: fe.RecordID, Policy: fe.Policy, Fetched: fe.Fetched, Expires: fe.Expires}, true, nil
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
func (s *FileStore) Save(ctx context.Context, e Entry) error {
	data, err := json.Marshal(fileEntry{fileVersion, e.Domain, e.RecordID, e.Policy, e.Fetched.UTC(), e.Expires.UTC()})
	if err != nil {
		return fmt.Errorf("cache: file store: %w", err)
	}
	if err := writeFileAtomic(s.path(e.Domain), data); err != nil {
		return fmt.Errorf("cache: file store: %w", err)
	}
	return nil
}

// tempPattern names the temporary files of writeFileAtomic. Its leading dot
// keeps it apart from entry files, whose names never start with one.
const tempPattern = ".tmp-*"

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
func (s *FileStore) Delete(ctx context.Context, domain string) error {
	err := os.Remove(s.path(domain))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cache: file store: %w", err)
	}
	return nil
}
