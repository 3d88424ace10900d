package tlsrpt

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Outbox keeps the reports a Reporter took from its Recorder until they are
// delivered: a report is put in before its first delivery attempt, and
// marked done after its last. Reports still pending when the process stops
// or crashes are delivered when the next Reporter.Run starts, with the
// report-id they were given before they were put in, so that a receiver
// can tell a report sent twice (RFC 8460 4.4 "report-id", 5.3).
//
// MemoryOutbox, the default, keeps them until the process ends; FileOutbox
// keeps them on disk across restarts. An implementation must be safe for
// concurrent use and honour the context.
type Outbox interface {
	// Put adds reports, each by its report-id, replacing one of the same
	// id. It returns an error when they could not all be kept.
	Put(ctx context.Context, reports []Report) error
	// Pending returns the reports put and not yet done, in order of
	// date range, then policy domain. It may return the reports it
	// could read along with an error about those it could not.
	Pending(ctx context.Context) ([]Report, error)
	// Done removes the report of reportID. Removing one not kept is no
	// error.
	Done(ctx context.Context, reportID string) error
}

// sortReports orders reports as Outbox.Pending returns them.
func sortReports(reports []Report) {
	slices.SortFunc(reports, func(a, b Report) int {
		return cmp.Or(
			a.DateRange.Start.Compare(b.DateRange.Start),
			strings.Compare(reportDomain(&a), reportDomain(&b)),
			strings.Compare(a.ReportID, b.ReportID),
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

// MemoryOutbox is an Outbox in memory, the Reporter's default: reports
// pending when the process ends are lost. It is safe for concurrent use.
type MemoryOutbox struct {
	mu      sync.Mutex
	reports map[string]Report
}

// NewMemoryOutbox returns an empty MemoryOutbox.
func NewMemoryOutbox() *MemoryOutbox {
	return &MemoryOutbox{reports: map[string]Report{}}
}

// Put implements Outbox. It returns only ctx's error.
func (o *MemoryOutbox) Put(ctx context.Context, reports []Report) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range reports {
		o.reports[r.ReportID] = r
	}
	return nil
}

// Pending implements Outbox. It returns only ctx's error.
func (o *MemoryOutbox) Pending(ctx context.Context) ([]Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o.mu.Lock()
	out := make([]Report, 0, len(o.reports))
	for _, r := range o.reports {
		out = append(out, r)
	}
	o.mu.Unlock()
	sortReports(out)
	return out, nil
}

// Done implements Outbox. It returns only ctx's error.
func (o *MemoryOutbox) Done(ctx context.Context, reportID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.reports, reportID)
	return nil
}

// FileOutbox is an Outbox in a directory: one file per report, holding its
// JSON (RFC 8460 4.4), named for a hash of its report-id. Each file is
// written atomically: to a temporary file, synced, renamed into place, and
// the directory synced; so that a crash leaves a report either whole or
// not put. It is safe for concurrent use, by one process.
type FileOutbox struct {
	dir string
}

const (
	outboxExt    = ".json"
	outboxTemp   = ".tmp-"
	outboxBadExt = ".bad"
)

// NewFileOutbox returns a FileOutbox in dir, creating it (mode 0700) when
// missing, and removing the temporary files a crash may have left. It
// returns an error when dir cannot be created or read.
func NewFileOutbox(dir string) (*FileOutbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
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
	return &FileOutbox{dir: dir}, nil
}

// fileName returns the name of the file of reportID: report-ids are of the
// reporter's own scheme, and may hold any character.
func (o *FileOutbox) fileName(reportID string) string {
	sum := sha256.Sum256([]byte(reportID))
	return filepath.Join(o.dir, hex.EncodeToString(sum[:16])+outboxExt)
}

// Put implements Outbox: it writes each report to its file, atomically. It
// returns an error naming the report that could not be written; the
// reports before it are kept.
func (o *FileOutbox) Put(ctx context.Context, reports []Report) error {
	for i := range reports {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := o.write(&reports[i]); err != nil {
			return fmt.Errorf("tlsrpt: putting report %q in the outbox: %w", reports[i].ReportID, err)
		}
	}
	if err := syncDir(o.dir); err != nil {
		return fmt.Errorf("tlsrpt: syncing the outbox directory: %w", err)
	}
	return nil
}

// write writes r to its file: a temporary file, synced, then renamed.
func (o *FileOutbox) write(r *Report) error {
	data, err := json.Marshal(r)
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
		err = os.Rename(tmp, o.fileName(r.ReportID))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Pending implements Outbox. A file that does not hold a report is renamed
// with the suffix ".bad", to be looked at and not read again, and named in
// the error returned along with the other reports.
func (o *FileOutbox) Pending(ctx context.Context) ([]Report, error) {
	entries, err := os.ReadDir(o.dir)
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: reading the outbox: %w", err)
	}
	var reports []Report
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
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // done meanwhile
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("tlsrpt: reading the outbox: %w", err))
			continue
		}
		var r Report
		if err := json.Unmarshal(data, &r); err != nil {
			os.Rename(path, path+outboxBadExt)
			errs = append(errs, fmt.Errorf("tlsrpt: outbox file %s holds no report, renamed to %s: %w", path, name+outboxBadExt, err))
			continue
		}
		reports = append(reports, r)
	}
	sortReports(reports)
	return reports, errors.Join(errs...)
}

// Done implements Outbox: it removes the report's file. It returns an
// error when the file exists and cannot be removed.
func (o *FileOutbox) Done(ctx context.Context, reportID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := os.Remove(o.fileName(reportID))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("tlsrpt: removing report %q from the outbox: %w", reportID, err)
	}
	return nil
}
