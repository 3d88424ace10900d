package tlsrpt

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// FileOutbox is an Outbox in a directory, for one MTA: reports survive a
// restart.
//
// Each pending report has a file named for its day and a hash of its policy
// domain, e.g. "2016-04-01_3f7c…e1.json", holding a JSON object with the
// report (RFC 8460 4.4) and the rua URIs that took it. Each write of it is
// atomic: to a temporary file, synced, renamed into place, and the
// directory synced; so that a crash leaves a report either whole or not
// put, and a delivery either marked or not.
//
// Done appends the hash to the day's log of reports done,
// "done/2016-04-01.log", syncs it, and removes the report's file: a crash
// in between leaves the report pending, to be delivered again to the URIs
// not marked. A day's log is removed when it is 31 days older than the
// newest.
//
// A FileOutbox owns its directory: two FileOutboxes, of one process or two,
// must not share one. It is safe for concurrent use.
type FileOutbox struct {
	dir string

	mu   sync.Mutex                 // serialises the writes
	done map[string]map[string]bool // hashes done, by day, as read from the logs
}

const (
	outboxExt     = ".json"
	outboxDoneDir = "done"
	outboxDoneExt = ".log"
	outboxBadExt  = ".bad"
)

// outboxFile is what a FileOutbox file holds.
type outboxFile struct {
	Version   int      `json:"v"`
	Report    *Report  `json:"report"`
	Delivered []string `json:"delivered,omitempty"`
}

// outboxFileVersion is the version of the files this package writes.
const outboxFileVersion = 1

// NewFileOutbox returns a FileOutbox in dir, creating it (mode 0700) when
// missing. It removes the temporary files a crash may have left, and the
// logs of reports done of the days more than 31 days before the newest. It
// returns an error when dir cannot be created or read.
func NewFileOutbox(dir string) (*FileOutbox, error) {
	if err := os.MkdirAll(filepath.Join(dir, outboxDoneDir), 0o700); err != nil {
		return nil, fmt.Errorf("tlsrpt: creating the outbox directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: reading the outbox directory: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			os.Remove(filepath.Join(dir, e.Name())) // a write a crash cut short
		}
	}
	o := &FileOutbox{dir: dir, done: map[string]map[string]bool{}}
	if err := o.upgrade(entries); err != nil {
		return nil, err
	}
	if err := o.prune(); err != nil {
		return nil, err
	}
	return o, nil
}

// upgrade rewrites the files of the first format, a report's JSON alone in
// a file named for a hash of its report-id, in the current one. It returns
// an error when one cannot be rewritten; a file that holds no report is
// left for Pending to set aside.
func (o *FileOutbox) upgrade(entries []os.DirEntry) error {
	for _, e := range entries {
		name := e.Name()
		hash, ok := strings.CutSuffix(name, outboxExt)
		if !ok || !isHash(hash) {
			continue
		}
		path := filepath.Join(o.dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("tlsrpt: upgrading outbox file %s: %w", path, err)
		}
		r := new(Report)
		if json.Unmarshal(data, r) != nil {
			continue
		}
		if err := o.Put(context.Background(), []Report{*r}); err != nil {
			return fmt.Errorf("tlsrpt: upgrading outbox file %s: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("tlsrpt: upgrading outbox file %s: %w", path, err)
		}
	}
	return nil
}

// isHash reports whether s is a hash as names hold them: 32 lower-case
// hexadecimal digits.
func isHash(s string) bool {
	return len(s) == 32 && strings.Trim(s, "0123456789abcdef") == ""
}

// names returns the day of r, as "2006-01-02", and the hash of its policy
// domain, which may hold any character.
func (o *FileOutbox) names(r *Report) (day, hash string) {
	sum := sha256.Sum256([]byte(reportDomain(r)))
	return r.DateRange.Start.UTC().Format(time.DateOnly), hex.EncodeToString(sum[:16])
}

// path returns the path of the file of r while it is pending.
func (o *FileOutbox) path(r *Report) string {
	day, hash := o.names(r)
	return filepath.Join(o.dir, day+"_"+hash+outboxExt)
}

func (o *FileOutbox) doneLog(day string) string {
	return filepath.Join(o.dir, outboxDoneDir, day+outboxDoneExt)
}

// prune removes the logs of reports done of the days more than 31 days
// before the newest. It returns an error when their directory cannot be
// read.
func (o *FileOutbox) prune() error {
	entries, err := os.ReadDir(filepath.Join(o.dir, outboxDoneDir))
	if err != nil {
		return fmt.Errorf("tlsrpt: reading the outbox directory: %w", err)
	}
	var days []int64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), outboxDoneExt)
		if d, valid := parseDayName(name); ok && valid {
			days = append(days, d)
		}
	}
	if len(days) == 0 {
		return nil
	}
	newest := days[0]
	for _, d := range days {
		newest = max(newest, d)
	}
	for _, d := range days {
		if d < newest-outboxMemory/secondsPerDay {
			os.Remove(o.doneLog(dayName(d)))
			delete(o.done, dayName(d))
		}
	}
	return nil
}

// doneOf returns the hashes of the reports done of day, reading its log the
// first time.
func (o *FileOutbox) doneOf(day string) (map[string]bool, error) {
	if m := o.done[day]; m != nil {
		return m, nil
	}
	m := map[string]bool{}
	path := o.doneLog(day)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if n := bytes.LastIndexByte(data, '\n') + 1; n < len(data) {
		// Cut the line a crash left unfinished off, so that the next
		// mark starts a line of its own. Its report is still pending.
		if err := os.Truncate(path, int64(n)); err != nil {
			return nil, err
		}
		data = data[:n]
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if isHash(sc.Text()) {
			m[sc.Text()] = true
		}
	}
	o.done[day] = m
	return m, nil
}

// Put implements Outbox: it writes each report new to the outbox to its
// file, atomically. It returns an error naming the report that could not
// be written; the reports before it are kept.
func (o *FileOutbox) Put(ctx context.Context, reports []Report) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range reports {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := &reports[i]
		day, hash := o.names(r)
		done, err := o.doneOf(day)
		if err == nil && (done[hash] || exists(o.path(r))) {
			continue // put before: it keeps its report-id
		}
		if err == nil {
			err = o.write(o.path(r), &outboxFile{Version: outboxFileVersion, Report: r})
		}
		if err != nil {
			return fmt.Errorf("tlsrpt: putting report %q in the outbox: %w", r.ReportID, err)
		}
	}
	if err := syncDir(o.dir); err != nil {
		return fmt.Errorf("tlsrpt: syncing the outbox directory: %w", err)
	}
	return nil
}

// write writes of to path, atomically.
func (o *FileOutbox) write(path string, of *outboxFile) error {
	data, err := json.Marshal(of)
	if err != nil {
		return err
	}
	return replaceFile(o.dir, path, data)
}

// readOutboxFile returns what the file at path holds.
func readOutboxFile(path string) (*outboxFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw struct {
		Version   int             `json:"v"`
		Report    json.RawMessage `json:"report"`
		Delivered []string        `json:"delivered"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	switch {
	case raw.Version != outboxFileVersion:
		return nil, fmt.Errorf("format version %d, not %d: written by a later release?", raw.Version, outboxFileVersion)
	case raw.Report == nil:
		return nil, errors.New("no report")
	}
	of := &outboxFile{Version: raw.Version, Report: new(Report), Delivered: raw.Delivered}
	if err := json.Unmarshal(raw.Report, of.Report); err != nil {
		return nil, err
	}
	return of, nil
}

// Pending implements Outbox. A file that does not hold a report is renamed
// with the suffix ".bad", to be looked at and not read again, and named in
// the error returned along with the other reports.
func (o *FileOutbox) Pending(ctx context.Context) ([]PendingReport, error) {
	entries, err := os.ReadDir(o.dir)
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: reading the outbox: %w", err)
	}
	var out []PendingReport
	var errs []error
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := e.Name()
		if !strings.HasSuffix(name, outboxExt) || strings.HasPrefix(name, tempPrefix) || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(o.dir, name)
		of, err := readOutboxFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // done meanwhile
		case errors.As(err, new(*fs.PathError)):
			errs = append(errs, fmt.Errorf("tlsrpt: reading the outbox: %w", err))
			continue
		case err != nil:
			os.Rename(path, path+outboxBadExt)
			errs = append(errs, fmt.Errorf("tlsrpt: outbox file %s holds no report, renamed to %s: %w", path, name+outboxBadExt, err))
			continue
		}
		out = append(out, PendingReport{Report: *of.Report, Delivered: of.Delivered})
	}
	sortPending(out)
	return out, errors.Join(errs...)
}

// Delivered implements Outbox: it rewrites the report's file with uri
// added. It returns an error when the file cannot be read or written.
func (o *FileOutbox) Delivered(ctx context.Context, report *Report, uri string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	path := o.path(report)
	of, err := readOutboxFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // done, or never put
	}
	if err == nil {
		e := outboxEntry{delivered: of.Delivered}
		if !e.deliveredTo(uri) {
			return nil
		}
		of.Delivered = e.delivered
		err = o.write(path, of)
	}
	if err == nil {
		err = syncDir(o.dir)
	}
	if err != nil {
		return fmt.Errorf("tlsrpt: marking report %q delivered to %s: %w", report.ReportID, uri, err)
	}
	return nil
}

// Done implements Outbox: it appends the report to the day's log of reports
// done, syncs it, and removes the report's file. It returns an error when
// the log cannot be written or the file removed.
func (o *FileOutbox) Done(ctx context.Context, report *Report) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	path := o.path(report)
	if !exists(path) {
		return nil
	}
	day, hash := o.names(report)
	done, err := o.doneOf(day)
	if err == nil {
		err = appendSynced(o.doneLog(day), hash+"\n")
	}
	if err == nil {
		done[hash] = true
		err = os.Remove(path)
	}
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		err = syncDir(o.dir)
	}
	if err != nil {
		return fmt.Errorf("tlsrpt: marking report %q done: %w", report.ReportID, err)
	}
	return nil
}
