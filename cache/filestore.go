package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
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

// NewFileStore returns a FileStore keeping its files in dir, which it creates
// (mode 0700) when missing.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: file store: %w", err)
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
	data, err := os.ReadFile(s.path(domain))
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

// writeFileAtomic replaces path with data: temporary file in the same
// directory, fsync, rename, fsync of the directory.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
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
