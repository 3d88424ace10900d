package tlsrpt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The file helpers of OpenFileStore and OpenFileOutbox: each write that must
// survive a crash whole is synced, and so is the directory of a name
// created or renamed.

// syncHook, when a test sets it, is called with the name of each file or
// directory that is synced, before the sync.
var syncHook func(name string)

// syncFile syncs f.
func syncFile(f *os.File) error {
	if syncHook != nil {
		syncHook(f.Name())
	}
	return f.Sync()
}

// tempPrefix starts the names of the files written before being renamed
// into place (replaceFile); a crash may leave them, to be removed.
const tempPrefix = ".tmp-"

// replaceFile writes data to path atomically: to a temporary file in dir,
// synced, then renamed over path. A crash leaves the old file or the new
// one. The caller syncs dir.
func replaceFile(dir, path string, data []byte) error {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = syncFile(f)
	}
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// probeWritable checks that files can be created, written and removed in
// dir, by doing so with a temporary file, which a crash may leave for the
// next open to remove (tempPrefix). Permission bits do not stop root, nor
// say whether the file system is mounted read-only or is one, like sysfs,
// that takes no new files: trying does.
func probeWritable(dir string) error {
	f, err := os.CreateTemp(dir, tempPrefix+"probe-*")
	if err != nil {
		return err
	}
	_, err = f.Write([]byte("probe\n"))
	err = errors.Join(err, f.Close(), os.Remove(f.Name()))
	return err
}

// writeSynced writes data to a new file at path and syncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = syncFile(f)
	}
	return errors.Join(err, f.Close())
}

// appendSynced appends line to the file at path, creating it, and syncs the
// file, and its directory when it was created.
func appendSynced(path, line string) error {
	created := !exists(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line)
	if err == nil {
		err = syncFile(f)
	}
	err = errors.Join(err, f.Close())
	if err == nil && created {
		err = syncDir(filepath.Dir(path))
	}
	return err
}

// truncateSynced empties the file at path and syncs it.
func truncateSynced(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	return errors.Join(syncFile(f), f.Close())
}

// syncDir syncs the directory dir, so that the names created or renamed in
// it survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = syncFile(d)
	if errors.Is(err, errors.ErrUnsupported) {
		err = nil // a platform that cannot sync directories
	}
	return errors.Join(err, d.Close())
}

// exists reports whether path names a file; an error other than its
// absence counts as present, so that nothing is overwritten in doubt.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// readFileMax returns the contents of path, or an error when it is larger
// than limit.
func readFileMax(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a log of this package holds", path, fi.Size(), limit)
	}
	b := make([]byte, fi.Size())
	n, err := f.ReadAt(b, 0)
	if err != nil && n < len(b) {
		return nil, err
	}
	return b, nil
}
