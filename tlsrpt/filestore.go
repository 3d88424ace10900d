package tlsrpt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fileStore is the Store of OpenFileStore.
type fileStore struct {
	dir string

	mu     sync.Mutex
	days   map[int64]*fileDay // days not released: not taken, or claimed
	taken  map[int64]bool     // days taken: true when released
	closed bool

	// compactMin is the growth of a log, past twice its size after
	// compaction, that makes Add compact it; tests lower it.
	compactMin int64
}

// fileDay is a day of a fileStore: its totals and its log.
type fileDay struct {
	data      *storedDay
	f         *os.File // the log, open for appending; nil until written to
	size      int64    // bytes in the log
	compacted int64    // bytes in the log after its last compaction
}

// fileLogVersion is the version of the log lines this package writes.
const fileLogVersion = 1

type fileBatch struct {
	Version  int          `json:"v"`
	Policies []fileResult `json:"policies"`
}

// fileResult is a PolicyResult in a log line, with what a report does not
// hold.
type fileResult struct {
	PolicyResult
	RecipientDomain string `json:"recipient-domain,omitempty"`
	CountOnly       bool   `json:"count-only,omitempty"`
}

// maxLogFile bounds what OpenFileStore reads of a log: far more than a
// compacted day of a million policies with their rows.
const maxLogFile = 1 << 30

// OpenFileStore returns a Store in the directory dir, so that a day's
// counts survive a restart: a report that forgot the hours before a crash
// would be a wrong report.
//
// Each UTC day has a log, "2006-01-02.log", to which every Add appends its
// batch and which it syncs to disk (fsync) before it returns. A crash thus
// loses only what the Recorder had not flushed yet: at most the sessions of
// its last RecorderOptions.FlushInterval, one second by default. A batch
// half written by a crash is recognised by its checksum or its missing line
// end and ignored. When a log has grown to twice its size after its last
// compaction, and by a MiB at least, it is compacted: the day's totals are
// written to a new file, synced and renamed over the log, so a log stays
// within a few times the size of its day's totals.
//
// Take renames the day's log to "2006-01-02.taken": the day is claimed, and
// its counts stay there until Release empties the file. The empty file
// remembers for 31 days that the day was taken, so that late counts for it
// are refused. A store opened on the directory after a crash is the
// claimant of the days its predecessor claimed and did not release: its
// Take returns their counts again. Take and Release thus hand a day out
// exactly once across crashes, when the reports made of it are kept, before
// Release, where a crash does not lose them (OpenFileOutbox).
//
// The store holds the counts of the days not yet taken in memory too, and
// owns its directory: two stores, of one process or two, must not share
// one. It is safe for concurrent use.
//
// Each line of a log is a batch: the CRC-32 (IEEE) of the JSON that follows,
// in eight hexadecimal digits, a space, and a JSON object holding the format
// version and the counts to add, as a report's "policies" would hold them:
//
//	1b2c3d4e {"v":1,"policies":[{"policy":{...},"summary":{...},"failure-details":[...]}]}
//
// A result of a recipient domain (Policy.RecipientDomain) also holds
// "recipient-domain", and one that causes no report by itself
// (PolicyResult.CountOnly) "count-only". Lines without it, such as those of earlier releases,
// are results of no recipient domain; earlier releases ignore it, and add
// the counts of the recipient domains of a policy up.
//
// OpenFileStore creates dir (mode 0700) when missing, and reads the counts
// of the days not yet taken from it. It removes temporary files that a crash during a
// compaction left, and the marks of days taken more than 31 days before the
// last one taken. It returns an error when dir cannot be created, read or
// written to (it writes and removes a probe file: a store that cannot write
// would lose every count at Close), or a log cannot be read or holds a batch
// of an unknown format version.
//
// The Store it returns is also an io.Closer: Close closes its files, after
// the last Recorder using it is closed (Recorder.Close flushes to it).
// Everything Add returned for is on disk already, so a process that ends
// without Close loses nothing; calls after Close return errors.
func OpenFileStore(dir string) (Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tlsrpt: file store in %s: %w", dir, err)
	}
	if err := probeWritable(dir); err != nil {
		return nil, fmt.Errorf("tlsrpt: file store in %s: the directory is not writable: %w", dir, err)
	}
	s := &fileStore{dir: dir, days: map[int64]*fileDay{}, taken: map[int64]bool{}, compactMin: 1 << 20}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: file store in %s: %w", dir, err)
	}
	var logs []int64
	for _, e := range entries {
		name := e.Name()
		base, ext, _ := strings.Cut(name, ".")
		day, ok := parseDayName(base)
		switch {
		case strings.HasPrefix(name, tempPrefix):
			// Only this store writes to dir: no write is in progress.
			os.Remove(filepath.Join(dir, name))
		case ok && ext == "taken":
			s.taken[day] = true
			if info, err := e.Info(); err == nil && info.Size() > 0 {
				s.taken[day] = false // claimed, not released
			}
		case ok && ext == "log":
			logs = append(logs, day)
		}
	}
	if len(s.taken) > 0 {
		s.forgetTaken(slices.Max(slices.Collect(maps.Keys(s.taken))))
	}
	for day, released := range s.taken {
		if released {
			continue
		}
		fd, err := s.readLog(s.takenPath(day))
		if err != nil {
			return nil, err
		}
		s.days[day] = fd
	}
	for _, day := range logs {
		if _, ok := s.taken[day]; ok {
			// Not written by this package, which renames the log.
			os.Remove(s.logPath(day))
			continue
		}
		fd, err := s.readLog(s.logPath(day))
		if err != nil {
			return nil, err
		}
		s.days[day] = fd
	}
	return s, nil
}

func (s *fileStore) logPath(day int64) string {
	return filepath.Join(s.dir, dayName(day)+".log")
}

func (s *fileStore) takenPath(day int64) string {
	return filepath.Join(s.dir, dayName(day)+".taken")
}

// readLog reads the log at path. A last line without its line end, written
// in part when the process died, is cut off, so that the next batch starts
// a line of its own; a line whose checksum does not match is skipped.
func (s *fileStore) readLog(path string) (*fileDay, error) {
	data, err := readFileMax(path, maxLogFile)
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: file store: %w", err)
	}
	fd := &fileDay{data: newStoredDay()}
	off, lineNo := 0, 0
	for off < len(data) {
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			if err := os.Truncate(path, int64(off)); err != nil {
				return nil, fmt.Errorf("tlsrpt: file store: cutting the unfinished batch off %s: %w", path, err)
			}
			break
		}
		lineNo++
		policies, err := decodeLogLine(data[off : off+nl])
		if errors.Is(err, errLogVersion) {
			return nil, fmt.Errorf("tlsrpt: file store: %s line %d: %w", path, lineNo, err)
		}
		if err == nil {
			fd.data.apply(policies)
		}
		off += nl + 1
	}
	fd.size = int64(off)
	return fd, nil
}

var errLogVersion = errors.New("batch of an unknown format version, written by a later release?")

// encodeLogLine returns the log line of a batch of policies.
func encodeLogLine(policies []PolicyResult) ([]byte, error) {
	b := fileBatch{Version: fileLogVersion, Policies: make([]fileResult, len(policies))}
	for i, pr := range policies {
		b.Policies[i] = fileResult{PolicyResult: pr, RecipientDomain: pr.Policy.RecipientDomain, CountOnly: pr.CountOnly}
	}
	js, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	line := make([]byte, 0, len(js)+10)
	line = fmt.Appendf(line, "%08x ", crc32.ChecksumIEEE(js))
	line = append(line, js...)
	return append(line, '\n'), nil
}

// decodeLogLine returns the policies of a log line without its line end.
func decodeLogLine(line []byte) ([]PolicyResult, error) {
	sum, js, ok := bytes.Cut(line, []byte{' '})
	if !ok || len(sum) != 8 {
		return nil, errors.New("no checksum")
	}
	want, err := strconv.ParseUint(string(sum), 16, 32)
	if err != nil || uint32(want) != crc32.ChecksumIEEE(js) {
		return nil, errors.New("checksum mismatch")
	}
	var b fileBatch
	if err := json.Unmarshal(js, &b); err != nil {
		return nil, err
	}
	if b.Version != fileLogVersion {
		return nil, fmt.Errorf("%w: version %d", errLogVersion, b.Version)
	}
	out := make([]PolicyResult, len(b.Policies))
	for i, fr := range b.Policies {
		out[i] = fr.PolicyResult
		out[i].Policy.RecipientDomain = fr.RecipientDomain
		out[i].CountOnly = fr.CountOnly
	}
	return out, nil
}

var errStoreClosed = errors.New("tlsrpt: file store closed")

// Add implements Store. It returns once the batch is synced to disk. It
// returns an error wrapping ErrDayTaken for a day already taken, and an
// error when the log cannot be written or synced; the batch is then not
// added, and what was written of it is cut off the log.
func (s *fileStore) Add(ctx context.Context, b Batch) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	day := dayOf(b.Day)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return 0, errStoreClosed
	case s.isTaken(day):
		return 0, dayTakenError(day)
	case len(b.Results) == 0:
		return 0, nil
	}
	fd := s.days[day]
	if fd == nil {
		fd = &fileDay{data: newStoredDay()}
		s.days[day] = fd
	}
	results, dropped := fd.data.admit(b.Results, b.MaxDetailRows)
	line, err := encodeLogLine(results)
	if err != nil {
		return 0, fmt.Errorf("tlsrpt: file store: encoding a batch of %s: %w", dayName(day), err)
	}
	if err := s.append(day, fd, line); err != nil {
		return 0, fmt.Errorf("tlsrpt: file store: %w", err)
	}
	fd.data.apply(results)
	if fd.size > 2*fd.compacted+s.compactMin {
		// A failed compaction leaves the log as it was, durable; the
		// next Add tries again.
		s.compact(day, fd)
	}
	return dropped, nil
}

// append appends line to the log of day and syncs it.
func (s *fileStore) append(day int64, fd *fileDay, line []byte) error {
	if fd.f == nil {
		f, err := os.OpenFile(s.logPath(day), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		// The log's name must survive a crash as well as its lines.
		if err := syncDir(s.dir); err != nil {
			f.Close()
			return err
		}
		fd.f = f
	}
	_, err := fd.f.Write(line)
	if err == nil {
		err = fd.f.Sync()
	}
	if err != nil {
		// Cut off what was written, so that the log holds whole
		// batches only, each added once.
		fd.f.Truncate(fd.size)
		return fmt.Errorf("writing to %s: %w", fd.f.Name(), err)
	}
	fd.size += int64(len(line))
	return nil
}

// compact replaces the log of day by one line of its totals.
func (s *fileStore) compact(day int64, fd *fileDay) error {
	line, err := encodeLogLine(fd.data.results())
	if err != nil {
		return err
	}
	if err := replaceFile(s.dir, s.logPath(day), line); err != nil {
		return err
	}
	fd.f.Close()
	fd.f = nil // reopened by the next append
	fd.size, fd.compacted = int64(len(line)), int64(len(line))
	return syncDir(s.dir)
}

// Days implements Store.
func (s *fileStore) Days(ctx context.Context) ([]time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedDays(s.days), ctx.Err()
}

// isTaken reports whether day was taken, claimed or released.
func (s *fileStore) isTaken(day int64) bool {
	_, ok := s.taken[day]
	return ok
}

// Take implements Store: it renames the day's log to "2006-01-02.taken",
// or writes an empty one for a day without counts, and syncs the
// directory. It returns an error when the rename or the sync fails; the
// day is then not taken.
func (s *fileStore) Take(ctx context.Context, day time.Time) ([]PolicyResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := dayOf(day)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errStoreClosed
	}
	if released, ok := s.taken[n]; ok {
		if fd := s.days[n]; !released && fd != nil {
			return fd.data.results(), nil // claimed before: the same counts
		}
		return nil, nil
	}
	fd := s.days[n]
	taken := s.takenPath(n)
	var err error
	if fd != nil && fd.size > 0 {
		err = os.Rename(s.logPath(n), taken)
	} else {
		err = writeSynced(taken, nil)
		if errors.Is(err, fs.ErrExist) {
			err = nil
		}
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: file store: taking %s: %w", dayName(n), err)
	}
	if fd != nil && fd.f != nil {
		fd.f.Close()
		fd.f = nil
	}
	if fd == nil || fd.size == 0 {
		// Nothing to report: taken and released at once.
		s.taken[n] = true
		delete(s.days, n)
		s.forgetTaken(n)
		return nil, nil
	}
	s.taken[n] = false
	return fd.data.results(), nil
}

// Release implements Store: it empties the day's ".taken" file and syncs it.
// It returns an error when the file cannot be emptied; the day stays
// claimed.
func (s *fileStore) Release(ctx context.Context, day time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := dayOf(day)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	if released, ok := s.taken[n]; !ok || released {
		return nil
	}
	if err := truncateSynced(s.takenPath(n)); err != nil {
		return fmt.Errorf("tlsrpt: file store: releasing %s: %w", dayName(n), err)
	}
	s.taken[n] = true
	delete(s.days, n)
	s.forgetTaken(n)
	return nil
}

// Results implements Store.
func (s *fileStore) Results(ctx context.Context, day time.Time) ([]PolicyResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errStoreClosed
	}
	if fd := s.days[dayOf(day)]; fd != nil {
		return fd.data.results(), nil
	}
	return nil, nil
}

// Delete implements Store: each day not taken that held results of domain
// gets its log rewritten, as a compaction does, without them, or removed
// when nothing is left. It returns an error when a log cannot be written;
// the days before it are done.
func (s *fileStore) Delete(ctx context.Context, domain string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStoreClosed
	}
	for _, n := range slices.Sorted(maps.Keys(s.days)) {
		fd := s.days[n]
		if s.isTaken(n) || !fd.data.forget(domain) {
			continue
		}
		var err error
		if len(fd.data.domains) == 0 {
			if fd.f != nil {
				fd.f.Close()
				fd.f = nil
			}
			err = os.Remove(s.logPath(n))
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				delete(s.days, n)
				err = syncDir(s.dir)
			}
		} else {
			err = s.compact(n, fd)
		}
		if err != nil {
			return fmt.Errorf("tlsrpt: file store: deleting the results of %s from %s: %w", domain, dayName(n), err)
		}
	}
	return nil
}

// forgetTaken removes the marks of days released more than 31 days before
// day, the last one taken: the store's own days, not the clock, tell what is old.
func (s *fileStore) forgetTaken(day int64) {
	for t, released := range s.taken {
		if released && t < day-takenMemory/secondsPerDay {
			delete(s.taken, t)
			os.Remove(s.takenPath(t))
		}
	}
}

// Close closes the store's files. Everything Add returned for is on disk
// already. Calls after Close return errors.
func (s *fileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for _, fd := range s.days {
		if fd.f != nil {
			errs = append(errs, fd.f.Close())
			fd.f = nil
		}
	}
	return errors.Join(errs...)
}
