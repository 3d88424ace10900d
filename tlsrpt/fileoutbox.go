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
	"slices"
	"strings"
	"sync"
	"time"
)

// fileOutbox is the Outbox of OpenFileOutbox.
type fileOutbox struct {
	dir string

	mu sync.Mutex // serialises the writes, and guards what follows
	// done holds the hashes of the reports done, by day, as read from
	// the logs, each with the domain part of its Key ("" when a log of
	// an earlier release did not say).
	done map[string]map[string]string

	// marks holds the URIs that delivered.log marks each pending report
	// delivered to, by the name of its file without ".json", in the
	// order they were marked; lines counts the log's lines, and size its
	// length up to the last whole line.
	marks  map[string][]string
	nmarks int // the URIs in marks
	lines  int
	size   int64
	// rewriteMin is the fewest lines of delivered.log that are
	// rewritten to the marks of the reports pending: marksRewriteMin,
	// or less in tests.
	rewriteMin int

	qmu   sync.Mutex    // guards queue
	queue []*outboxMark // the marks not yet taken by a commit
}

// outboxMark is a mark waiting for a commit: Delivered when uri is set,
// else Done.
type outboxMark struct {
	report *Report
	uri    string
	err    error // the commit's outcome
	remove bool  // done: its file is to be removed
}

const (
	outboxExt     = ".json"
	outboxMarks   = "delivered.log"
	outboxDoneDir = "done"
	outboxDoneExt = ".log"
	outboxBadExt  = ".bad"
)

// outboxFile is what a fileOutbox file holds.
type outboxFile struct {
	Version   int      `json:"v"`
	Report    *Report  `json:"report"`
	Domain    string   `json:"domain,omitempty"` // Report.Domain
	Delivered []string `json:"delivered,omitempty"`
}

// outboxFileVersion is the version of the files this package writes.
const outboxFileVersion = 1

// OpenFileOutbox returns an Outbox in the directory dir, for one MTA:
// reports survive a restart.
//
// Each pending report has a file named for its day and a hash of its policy
// domain, e.g. "2016-04-01_3f7c…e1.json", holding a JSON object with the
// report (RFC 8460 4.4). Put writes it atomically: to a temporary file,
// synced, renamed into place, and the directory synced; so that a crash
// leaves a report either whole or not put.
//
// The marks are appended to logs, each synced before the mark returns, so
// that a crash leaves a mark either made or not; marks made at once share
// one write and one sync of each log (group commit), so that a mark costs
// about the same however many reports are pending:
//   - Delivered appends a line, {"r":"2016-04-01_3f7c…e1","u":"<uri>"}, to
//     "delivered.log". The log is rewritten, atomically, with the marks of
//     the reports still pending only, once it holds at least 1,024 lines
//     and twice as many as those.
//   - Done appends the hash, a space and the domain of the report's Key to
//     the day's log of reports done, "done/2016-04-01.log", then removes
//     the report's file. A report in
//     the log is done even while its file remains, as a crash may leave
//     it; OpenFileOutbox removes such files. A day's log is removed when it
//     is 31 days older than the newest.
//
// The outbox owns its directory: two outboxes, of one process or two, must
// not share one. It is safe for concurrent use.
//
// OpenFileOutbox creates dir (mode 0700) when missing. It removes the
// temporary files a crash may have left, and the logs of reports done of the
// days more than 31 days before the newest. It returns an error when dir
// cannot be created or read.
func OpenFileOutbox(dir string) (Outbox, error) {
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
	o := &fileOutbox{dir: dir, done: map[string]map[string]string{}, marks: map[string][]string{}, rewriteMin: marksRewriteMin}
	if err := o.upgrade(entries); err != nil {
		return nil, err
	}
	if err := o.readMarks(); err != nil {
		return nil, err
	}
	if err := o.prune(); err != nil {
		return nil, err
	}
	return o, nil
}

// markLine is a line of delivered.log.
type markLine struct {
	Name string `json:"r"` // the report's file name, without ".json"
	URI  string `json:"u"`
}

// readMarks reads delivered.log into o.marks, keeping the marks of the
// reports pending, and removes the files of the reports that the logs of
// reports done hold. It cuts a line a crash left unfinished off.
func (o *fileOutbox) readMarks() error {
	path := filepath.Join(o.dir, outboxMarks)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tlsrpt: reading the outbox's marks: %w", err)
	}
	if n := bytes.LastIndexByte(data, '\n') + 1; n < len(data) {
		if err := os.Truncate(path, int64(n)); err != nil {
			return fmt.Errorf("tlsrpt: reading the outbox's marks: %w", err)
		}
		data = data[:n]
	}
	o.size = int64(len(data))
	for line := range bytes.Lines(data) {
		o.lines++
		var m markLine
		if json.Unmarshal(line, &m) != nil {
			continue // not a mark: dropped when the log is rewritten
		}
		if day, hash, ok := splitName(m.Name); ok && exists(filepath.Join(o.dir, m.Name+outboxExt)) && !o.isDone(day, hash) {
			e := outboxEntry{delivered: o.marks[m.Name]}
			if e.deliveredTo(m.URI) {
				o.nmarks++
			}
			o.marks[m.Name] = e.delivered
		}
	}
	entries, err := os.ReadDir(o.dir)
	if err != nil {
		return fmt.Errorf("tlsrpt: reading the outbox directory: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), outboxExt)
		if day, hash, valid := splitName(name); ok && valid && o.isDone(day, hash) {
			os.Remove(filepath.Join(o.dir, e.Name())) // done; a crash left it
		}
	}
	return nil
}

// splitName returns the day and the hash of a report's file name without
// ".json", and whether it is one.
func splitName(name string) (day, hash string, ok bool) {
	day, hash, ok = strings.Cut(name, "_")
	_, valid := parseDayName(day)
	return day, hash, ok && valid && isHash(hash)
}

// isDone reports whether the log of reports done of day holds hash. A log
// that cannot be read holds nothing.
func (o *fileOutbox) isDone(day, hash string) bool {
	done, err := o.doneOf(day)
	_, ok := done[hash]
	return err == nil && ok
}

// upgrade rewrites the files of the first format, a report's JSON alone in
// a file named for a hash of its report-id, in the current one. It returns
// an error when one cannot be rewritten; a file that holds no report is
// left for Pending to set aside.
func (o *fileOutbox) upgrade(entries []os.DirEntry) error {
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
func (o *fileOutbox) names(r *Report) (day, hash string) {
	sum := sha256.Sum256([]byte(keyDomain(r)))
	return r.DateRange.Start.UTC().Format(time.DateOnly), hex.EncodeToString(sum[:16])
}

// path returns the path of the file of r while it is pending.
func (o *fileOutbox) path(r *Report) string {
	day, hash := o.names(r)
	return filepath.Join(o.dir, day+"_"+hash+outboxExt)
}

// name returns the name of the file of r without ".json", as delivered.log
// names it.
func (o *fileOutbox) name(r *Report) string {
	day, hash := o.names(r)
	return day + "_" + hash
}

func (o *fileOutbox) doneLog(day string) string {
	return filepath.Join(o.dir, outboxDoneDir, day+outboxDoneExt)
}

// prune removes the logs of reports done of the days more than 31 days
// before the newest. It returns an error when their directory cannot be
// read.
func (o *fileOutbox) prune() error {
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
func (o *fileOutbox) doneOf(day string) (map[string]string, error) {
	if m := o.done[day]; m != nil {
		return m, nil
	}
	m := map[string]string{}
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
		// A hash, and the domain part of the Key after a space: the
		// hash alone in the logs of earlier releases.
		hash, domain, _ := strings.Cut(sc.Text(), " ")
		if isHash(hash) {
			m[hash] = domain
		}
	}
	o.done[day] = m
	return m, nil
}

// Put implements Outbox: it writes each report new to the outbox to its
// file, atomically. It returns an error naming the report that could not
// be written; the reports before it are kept.
func (o *fileOutbox) Put(ctx context.Context, reports []Report) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range reports {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := &reports[i]
		day, hash := o.names(r)
		done, err := o.doneOf(day)
		if _, isDone := done[hash]; err == nil && (isDone || exists(o.path(r))) {
			continue // put before: it keeps its report-id
		}
		if err == nil {
			err = o.write(o.path(r), &outboxFile{Version: outboxFileVersion, Report: r, Domain: r.Domain})
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
func (o *fileOutbox) write(path string, of *outboxFile) error {
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
		Domain    string          `json:"domain"`
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
	of.Report.Domain, of.Domain = raw.Domain, raw.Domain
	return of, nil
}

// Pending implements Outbox. A file that does not hold a report is renamed
// with the suffix ".bad", to be looked at and not read again, and named in
// the error returned along with the other reports.
func (o *fileOutbox) Pending(ctx context.Context) ([]PendingReport, error) {
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
	// The marks, of the logs: read after the files, so that none made
	// meanwhile is missed.
	o.mu.Lock()
	out = slices.DeleteFunc(out, func(p PendingReport) bool {
		day, hash := o.names(&p.Report)
		return o.isDone(day, hash)
	})
	for i := range out {
		p := &out[i]
		e := outboxEntry{delivered: p.Delivered}
		for _, uri := range o.marks[o.name(&p.Report)] {
			e.deliveredTo(uri)
		}
		p.Delivered = e.delivered
	}
	o.mu.Unlock()
	sortPending(out)
	return out, errors.Join(errs...)
}

// Delivered implements Outbox: it appends the mark to delivered.log, and
// syncs it, along with the marks made at the same time. It returns an error
// when the log cannot be written.
func (o *fileOutbox) Delivered(ctx context.Context, report *Report, uri string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := o.mark(&outboxMark{report: report, uri: uri}); err != nil {
		return fmt.Errorf("tlsrpt: marking report %q delivered to %s: %w", report.ReportID, uri, err)
	}
	return nil
}

// Done implements Outbox: it appends the report to the day's log of reports
// done, and syncs it, along with the marks made at the same time; then
// removes the report's file. It returns an error when the log cannot be
// written.
func (o *fileOutbox) Done(ctx context.Context, report *Report) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := o.mark(&outboxMark{report: report}); err != nil {
		return fmt.Errorf("tlsrpt: marking report %q done: %w", report.ReportID, err)
	}
	return nil
}

// Sent implements Outbox: it reads the logs of reports done. A report done
// by an earlier release, whose log line has no Key, is listed by the
// hash of its domain, as "2016-04-01 #3f7c…e1".
func (o *fileOutbox) Sent(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(o.dir, outboxDoneDir))
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: reading the outbox directory: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var keys []string
	for _, e := range entries {
		day, ok := strings.CutSuffix(e.Name(), outboxDoneExt)
		if _, valid := parseDayName(day); !ok || !valid {
			continue
		}
		done, err := o.doneOf(day)
		if err != nil {
			return keys, fmt.Errorf("tlsrpt: reading the outbox's reports done of %s: %w", day, err)
		}
		for hash, domain := range done {
			if domain == "" {
				domain = "#" + hash
			}
			keys = append(keys, day+" "+domain)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// mark queues m, and returns once a commit wrote it: the marks queued while
// a commit runs wait for it, and the first of them to get the lock then
// commits them all, with one write and one sync of each log.
func (o *fileOutbox) mark(m *outboxMark) error {
	o.qmu.Lock()
	o.queue = append(o.queue, m)
	o.qmu.Unlock()
	o.mu.Lock()
	o.qmu.Lock()
	batch := o.queue
	o.queue = nil
	o.qmu.Unlock()
	if len(batch) > 0 {
		o.commit(batch) // holds m, unless a commit before took it
	}
	err, remove := m.err, m.remove
	o.mu.Unlock()
	if remove {
		// Done once its log holds it, the report's file goes outside
		// the lock, so that the next commit need not wait for it; a
		// file left is skipped by Pending, and removed by the next
		// OpenFileOutbox.
		os.Remove(o.path(m.report))
	}
	return err
}

// commit writes the marks of batch, setting the err of each. Called with
// o.mu held.
func (o *fileOutbox) commit(batch []*outboxMark) {
	var lines []byte
	var delivered []*outboxMark
	added := map[string][]string{}         // the URIs marked by batch, by name
	doneDays := map[string][]*outboxMark{} // the reports done, by day
	for _, m := range batch {
		day, hash := o.names(m.report)
		if !exists(o.path(m.report)) || o.isDone(day, hash) {
			continue // not pending: done, or never put
		}
		name := day + "_" + hash
		if m.uri == "" {
			doneDays[day] = append(doneDays[day], m)
			continue
		}
		if slices.Contains(o.marks[name], m.uri) || slices.Contains(added[name], m.uri) {
			continue
		}
		line, err := json.Marshal(markLine{Name: name, URI: m.uri})
		if err != nil {
			m.err = err
			continue
		}
		lines = append(append(lines, line...), '\n')
		added[name] = append(added[name], m.uri)
		delivered = append(delivered, m)
	}
	if len(lines) > 0 {
		if err := o.appendMarks(lines, len(delivered)); err != nil {
			for _, m := range delivered {
				m.err = err
			}
		} else {
			for name, uris := range added {
				o.marks[name] = append(o.marks[name], uris...)
				o.nmarks += len(uris)
			}
		}
	}
	for day, marks := range doneDays {
		done, err := o.doneOf(day)
		var text strings.Builder
		for _, m := range marks {
			_, hash := o.names(m.report)
			text.WriteString(hash + " " + keyDomain(m.report) + "\n")
		}
		if err == nil {
			err = appendSynced(o.doneLog(day), text.String())
		}
		for _, m := range marks {
			if err != nil {
				m.err = err
				continue
			}
			_, hash := o.names(m.report)
			done[hash] = keyDomain(m.report)
			o.nmarks -= len(o.marks[day+"_"+hash])
			delete(o.marks, day+"_"+hash)
			m.remove = true
		}
	}
	if o.lines >= o.rewriteMin && o.lines >= 2*o.nmarks {
		o.rewriteMarks()
	}
}

// marksRewriteMin is the fewest lines of delivered.log that are rewritten
// to the marks of the reports pending.
const marksRewriteMin = 1024

// appendMarks writes lines, n marks, at the end of delivered.log, over
// what a failed write may have left there, and syncs it.
func (o *fileOutbox) appendMarks(lines []byte, n int) error {
	path := filepath.Join(o.dir, outboxMarks)
	created := !exists(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(lines, o.size)
	if err == nil {
		err = syncFile(f)
	}
	err = errors.Join(err, f.Close())
	if err == nil && created {
		err = syncDir(o.dir)
	}
	if err != nil {
		return err
	}
	o.size += int64(len(lines))
	o.lines += n
	return nil
}

// rewriteMarks rewrites delivered.log, atomically, with the marks of the
// reports pending alone. A failure leaves the log as it was, to be
// rewritten at a later commit.
func (o *fileOutbox) rewriteMarks() {
	var data []byte
	lines := 0
	for name, uris := range o.marks {
		for _, uri := range uris {
			line, err := json.Marshal(markLine{Name: name, URI: uri})
			if err != nil {
				continue
			}
			data = append(append(data, line...), '\n')
			lines++
		}
	}
	if replaceFile(o.dir, filepath.Join(o.dir, outboxMarks), data) != nil || syncDir(o.dir) != nil {
		return
	}
	o.size, o.lines = int64(len(data)), lines
}
