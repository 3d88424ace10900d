package tlsrpt

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Outbox keeps the reports a Reporter took from its Recorder until they are
// delivered, and what was delivered of each, so that across a crash a
// report is sent once to each rua URI:
//   - A report is put in before its first delivery attempt, then released
//     from the Store (Store.Release). A crash between the two makes the
//     Reporter take the day again and put its reports again: Put keeps
//     the reports it holds, or held, of the same policy domain and day
//     (Report.Key), with their report-ids, and skips the new ones.
//   - Each rua URI that took the report is marked (Delivered) as it does,
//     and a delivery resumed after a crash skips the URIs marked.
//   - A report is marked done after its delivery ended: delivered,
//     given up on, or the domain has no TLSRPT record. The outbox
//     remembers for 31 days, counted from the report's day, that it was
//     done.
//
// A report still pending at a restart is delivered when the next
// Reporter.Run starts, with its report-id, so that a receiver can tell a
// report sent twice (RFC 8460 4.4 "report-id", 5.3): the one case left is a
// crash after a URI took a report and before it was marked.
//
// MemoryOutbox, the default, keeps the reports until the process ends;
// FileOutbox keeps them on disk across restarts; cache/redisstore has one
// that a fleet shares, which hands each report to one member at a time. An
// implementation must be safe for concurrent use and honour the context.
type Outbox interface {
	// Put adds the reports it did not hold before: a report of the same
	// Key as one pending, or done within 31 days, is skipped. It returns
	// an error when they could not all be kept; those before the one that
	// failed may have been.
	Put(ctx context.Context, reports []Report) error
	// Pending returns the reports put and not yet done, with the URIs
	// each was delivered to, in order of date range, then policy domain.
	// An outbox shared by several Reporters returns a report to one of
	// them at a time. Pending may return the reports it could read along
	// with an error about those it could not.
	Pending(ctx context.Context) ([]PendingReport, error)
	// Delivered records that the rua URI uri took report. A report not
	// pending is no error.
	Delivered(ctx context.Context, report *Report, uri string) error
	// Done marks report done: it is no longer pending, and a Put of its
	// Key is skipped. A report not pending is no error.
	Done(ctx context.Context, report *Report) error
}

// PendingReport is a report of an Outbox, not yet done.
type PendingReport struct {
	Report Report
	// Delivered lists the rua URIs that took the report, in the order
	// they did.
	Delivered []string
}

// outboxMemory is how long an outbox remembers that a report was done,
// counted from the report's day: past any retake of the day.
const outboxMemory = 31 * secondsPerDay

// Key returns what tells r from the other reports of its sender: its first
// day and its policy domain, e.g. "2016-04-01 company-y.example". A sender
// makes one report per policy domain and day (RFC 8460 4.1), so two reports
// of one key are the same report, made twice.
func (r *Report) Key() string {
	return r.DateRange.Start.UTC().Format(time.DateOnly) + " " + reportDomain(r)
}

// sortPending orders reports as Outbox.Pending returns them.
func sortPending(reports []PendingReport) {
	slices.SortFunc(reports, func(a, b PendingReport) int {
		return cmp.Or(
			a.Report.DateRange.Start.Compare(b.Report.DateRange.Start),
			strings.Compare(reportDomain(&a.Report), reportDomain(&b.Report)),
			strings.Compare(a.Report.ReportID, b.Report.ReportID),
		)
	})
}

// reportDomain returns the policy domain of r's first policy, or "".
func reportDomain(r *Report) string {
	if len(r.Policies) == 0 {
		return ""
	}
	return r.Policies[0].Policy.PolicyDomain
}

// outboxEntry is a report of an outbox, with what was delivered of it.
type outboxEntry struct {
	report    Report
	delivered []string
	done      bool
}

// deliveredTo adds uri to the URIs delivered to, and reports whether it
// was new.
func (e *outboxEntry) deliveredTo(uri string) bool {
	if slices.Contains(e.delivered, uri) {
		return false
	}
	e.delivered = append(e.delivered, uri)
	return true
}

// MemoryOutbox is an Outbox in memory, the Reporter's default: reports
// pending when the process ends are lost. It is safe for concurrent use.
type MemoryOutbox struct {
	mu      sync.Mutex
	entries map[string]*outboxEntry // by Report.Key
	newest  time.Time               // the newest day put
}

// NewMemoryOutbox returns an empty MemoryOutbox.
func NewMemoryOutbox() *MemoryOutbox {
	return &MemoryOutbox{entries: map[string]*outboxEntry{}}
}

// Put implements Outbox. It returns only ctx's error.
func (o *MemoryOutbox) Put(ctx context.Context, reports []Report) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range reports {
		if _, ok := o.entries[r.Key()]; !ok {
			o.entries[r.Key()] = &outboxEntry{report: r}
		}
		if r.DateRange.Start.After(o.newest) {
			o.newest = r.DateRange.Start
		}
	}
	// Forget the reports done long ago, by the outbox's own days.
	for k, e := range o.entries {
		if e.done && o.newest.Sub(e.report.DateRange.Start) > outboxMemory*time.Second {
			delete(o.entries, k)
		}
	}
	return nil
}

// Pending implements Outbox. It returns only ctx's error.
func (o *MemoryOutbox) Pending(ctx context.Context) ([]PendingReport, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o.mu.Lock()
	out := make([]PendingReport, 0, len(o.entries))
	for _, e := range o.entries {
		if !e.done {
			out = append(out, PendingReport{Report: e.report, Delivered: slices.Clone(e.delivered)})
		}
	}
	o.mu.Unlock()
	sortPending(out)
	return out, nil
}

// Delivered implements Outbox. It returns only ctx's error.
func (o *MemoryOutbox) Delivered(ctx context.Context, report *Report, uri string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if e := o.entries[report.Key()]; e != nil && !e.done {
		e.deliveredTo(uri)
	}
	return nil
}

// Done implements Outbox. It returns only ctx's error.
func (o *MemoryOutbox) Done(ctx context.Context, report *Report) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if e := o.entries[report.Key()]; e != nil {
		e.done, e.report, e.delivered = true, Report{DateRange: e.report.DateRange}, nil
	}
	return nil
}

// FileOutbox is an Outbox in a directory: one file per pending report, named
// for its day and a hash of its policy domain, e.g.
// "2016-04-01_3f7c…e1.json", holding a JSON object with the report (RFC
// 8460 4.4) and the rua URIs delivered to. Each write is atomic: to a
// temporary file, synced, renamed into place, and the directory synced; so
// that a crash leaves a report either whole or not put, and a delivery
// either marked or not. Done moves the file to the subdirectory "done" and
// empties it: the mark that the report was done, removed 31 days after its
// day. Pending thus reads the pending reports alone. It is safe for
// concurrent use, by one process.
type FileOutbox struct {
	dir string
	mu  sync.Mutex // serialises the writes of a file
}

const (
	outboxExt     = ".json"
	outboxDoneDir = "done"
	outboxTemp    = ".tmp-"
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
// missing, removing the temporary files a crash may have left and the
// marks of reports done more than 31 days before the newest. It returns an
// error when dir cannot be created or read.
func NewFileOutbox(dir string) (*FileOutbox, error) {
	if err := os.MkdirAll(filepath.Join(dir, outboxDoneDir), 0o700); err != nil {
		return nil, fmt.Errorf("tlsrpt: creating the outbox directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: reading the outbox directory: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), outboxTemp) {
			os.Remove(filepath.Join(dir, e.Name())) // a write a crash cut short
		}
	}
	o := &FileOutbox{dir: dir}
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
		if !ok || len(hash) != 32 || strings.Trim(hash, "0123456789abcdef") != "" {
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

// base returns the name of the file of the report of key, without its
// extension: the day, and a hash of the policy domain, which may hold any
// character.
func (o *FileOutbox) base(r *Report) string {
	sum := sha256.Sum256([]byte(reportDomain(r)))
	return filepath.Join(o.dir, r.DateRange.Start.UTC().Format(time.DateOnly)+"_"+hex.EncodeToString(sum[:16]))
}

// prune removes the marks of reports done more than 31 days before the
// newest report done. It returns an error when the directory of marks
// cannot be read.
func (o *FileOutbox) prune() error {
	done := filepath.Join(o.dir, outboxDoneDir)
	entries, err := os.ReadDir(done)
	if err != nil {
		return fmt.Errorf("tlsrpt: reading the outbox directory: %w", err)
	}
	var newest int64
	for _, e := range entries {
		if d, ok := outboxDay(e.Name()); ok {
			newest = max(newest, d)
		}
	}
	for _, e := range entries {
		if d, ok := outboxDay(e.Name()); ok && d < newest-outboxMemory/secondsPerDay {
			os.Remove(filepath.Join(done, e.Name()))
		}
	}
	return nil
}

// donePath returns the path of the mark of a report done, of the path of
// its file.
func donePath(path string) string {
	return filepath.Join(filepath.Dir(path), outboxDoneDir, filepath.Base(path))
}

// outboxDay returns the day of an outbox file's name.
func outboxDay(name string) (int64, bool) {
	day, _, ok := strings.Cut(name, "_")
	if !ok {
		return 0, false
	}
	return parseDayName(day)
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
		base := o.base(r)
		if exists(base+outboxExt) || exists(donePath(base+outboxExt)) {
			continue // put before: it keeps its report-id
		}
		if err := o.write(base+outboxExt, &outboxFile{Version: outboxFileVersion, Report: r}); err != nil {
			return fmt.Errorf("tlsrpt: putting report %q in the outbox: %w", r.ReportID, err)
		}
	}
	if err := syncDir(o.dir); err != nil {
		return fmt.Errorf("tlsrpt: syncing the outbox directory: %w", err)
	}
	return nil
}

// exists reports whether path names a file; an error other than its
// absence counts as present, so that nothing is overwritten in doubt.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// write writes f to path: a temporary file, synced, then renamed.
func (o *FileOutbox) write(path string, of *outboxFile) error {
	data, err := json.Marshal(of)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(o.dir, outboxTemp+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
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
		if !strings.HasSuffix(name, outboxExt) || strings.HasPrefix(name, outboxTemp) || !e.Type().IsRegular() {
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
	path := o.base(report) + outboxExt
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

// Done implements Outbox: it moves the report's file to the directory
// "done" and empties it. It returns an error when the file exists and cannot
// be moved.
func (o *FileOutbox) Done(ctx context.Context, report *Report) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	path := o.base(report) + outboxExt
	err := os.Rename(path, donePath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = errors.Join(syncDir(o.dir), syncDir(filepath.Join(o.dir, outboxDoneDir)))
	}
	if err != nil {
		return fmt.Errorf("tlsrpt: marking report %q done: %w", report.ReportID, err)
	}
	// The mark needs no content; a crash before this leaves it whole.
	os.Truncate(donePath(path), 0)
	return nil
}
