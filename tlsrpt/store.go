package tlsrpt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Store keeps the counts a Recorder flushes, per UTC day, until the day is
// taken to be reported: in memory (a nil RecorderOptions.Store), on disk
// (OpenFileStore), or in Redis for a whole fleet of MTAs (package
// redisstore, a module of its own).
//
// What an implementation must guarantee:
//   - It is safe for concurrent use, by several recorders too (a fleet), and
//     honours the context.
//   - Add adds; it never replaces. Counts from any number of recorders add
//     up exactly, so that a fleet sends one report per policy domain and day.
//     The results of one policy for distinct recipient domains
//     (Policy.RecipientDomain) are kept apart. A result is CountOnly while
//     every batch that added to it that day had it CountOnly.
//   - Per policy domain and day it keeps at most Batch.MaxDetailRows distinct
//     failure-detail rows (RFC 8460 4.4 "failure-details"), over all the
//     batches it was given: the sessions of a row past the cap still count in
//     the summary's total-failure-session-count, their detail is dropped, and
//     Add returns how many sessions that was.
//   - Take hands a day out exactly once, in two steps, so that a crash
//     between taking a day and keeping its reports elsewhere loses
//     nothing. Take claims the day and returns its counts, which stay in
//     the store (and the day in Days) until Release deletes them. Until
//     then, a Take of the day by its claimant returns the same counts
//     again: after a failure, and after a restart for a store that
//     survives one. While a claim holds, Takes by other store values
//     sharing the storage get an error wrapping ErrDayClaimed; a shared
//     store lets a claim lapse after a while, so that the day of a member
//     that died is taken over by another (see redisstore).
//   - An Add for a day taken (claimed or released) returns an error
//     wrapping ErrDayTaken and adds nothing, so that no second report is
//     made of late counts.
//   - A batch is added once: a failed Add adds nothing, or else the store
//     recognises the batch when the recorder gives it again (see
//     Batch.Seq).
type Store interface {
	// Add adds the counts of b to those of b.Day. It returns the number
	// of failed sessions whose detail it dropped, past
	// b.MaxDetailRows, and an error when it could not add (wrapping
	// ErrDayTaken when the day was taken).
	Add(ctx context.Context, b Batch) (dropped int64, err error)
	// Days returns the days the store holds counts of, as 00:00 UTC,
	// oldest first: the days not taken, and those taken but not
	// released.
	Days(ctx context.Context) ([]time.Time, error)
	// Take claims day (00:00 UTC) for reporting and returns its counts:
	// one PolicyResult per policy and recipient domain, in any order,
	// each with its CountOnly, with failure details
	// whose FailedSessionCount is the row's count. The counts stay in
	// the store until Release; a Take by the claimant returns them
	// again. It returns nothing, and no error, when the day holds
	// nothing or was released; an error wrapping ErrDayClaimed when
	// another store value sharing the storage holds the claim.
	Take(ctx context.Context, day time.Time) ([]PolicyResult, error)
	// Release deletes the counts of day, claimed by this store value's
	// Take, once the reports made of them are kept elsewhere (an
	// Outbox). The day stays taken: late counts are refused. Releasing a
	// day not claimed by this store value does nothing, and is no
	// error.
	Release(ctx context.Context, day time.Time) error
	// Results returns the counts of day (00:00 UTC) as Take would, for
	// an admin page: without claiming the day, nor taking its counts. It
	// returns nothing, and no error, for a day without counts or
	// released.
	Results(ctx context.Context, day time.Time) ([]PolicyResult, error)
	// Delete deletes, from the days not taken, the results whose policy
	// domain or recipient domain is domain (in A-labels), as when an
	// admin stops reporting to it. Days taken keep theirs: their reports
	// are being made. The domain's distinct failure-detail rows stop
	// counting towards the cap of Batch.MaxDetailRows.
	Delete(ctx context.Context, domain string) error
}

// Batch is what a Recorder gives a Store: counts of one UTC day to add.
type Batch struct {
	// Day is the UTC day of the counts, as 00:00 UTC (RFC 8460 4.1).
	Day time.Time
	// Results holds the counts to add, at most one per policy and
	// recipient domain (Policy.RecipientDomain): the
	// summary's, and the failure-detail rows with FailedSessionCount the
	// number to add.
	Results []PolicyResult
	// MaxDetailRows caps the distinct failure-detail rows kept per policy
	// domain and day; 0 or less means no cap.
	MaxDetailRows int
	// Source identifies the Recorder that made the batch, and Seq the
	// batch among those of Source: it grows with each new batch. A
	// Recorder whose Add failed gives the same batch again, before any
	// newer one of its day. A store that may have added a batch when its
	// Add fails, as a network store whose reply was lost, adds a batch
	// of a Source and day only when its Seq is above the last it added;
	// a store that knows (the memory and file stores) may ignore them.
	Source string
	Seq    int64
}

// ErrDayTaken is returned, wrapped, by Store.Add for a day already taken
// for reporting: its counts came too late for the day's report.
var ErrDayTaken = errors.New("tlsrpt: day already taken for reporting")

// ErrDayClaimed is returned, wrapped, by Store.Take for a day that another
// store value sharing the storage, such as another MTA of a fleet, has
// claimed and not released: that one reports it.
var ErrDayClaimed = errors.New("tlsrpt: day claimed for reporting by another")

// errDayOpen is returned, wrapped, by Recorder.take for a day that is not
// closed yet.
var errDayOpen = errors.New("tlsrpt: day not closed yet")

// secondsPerDay is the length of a UTC day: RFC 8460 4.1 reports cover
// "00:00-24:00 UTC", and Unix time has no leap seconds.
const secondsPerDay = 24 * 60 * 60

// dayOf returns the number of the UTC day of t, counted from 1970-01-01.
func dayOf(t time.Time) int64 {
	s := t.Unix()
	d := s / secondsPerDay
	if s%secondsPerDay < 0 {
		d-- // floor, for times before 1970
	}
	return d
}

// dayStart returns 00:00 UTC of day number d.
func dayStart(d int64) time.Time {
	return time.Unix(d*secondsPerDay, 0).UTC()
}

// dayName returns the name of day number d, as "2006-01-02", for keys and
// file names.
func dayName(d int64) string {
	return dayStart(d).Format(time.DateOnly)
}

// parseDayName parses a name of dayName.
func parseDayName(s string) (int64, bool) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Format(time.DateOnly) != s {
		return 0, false
	}
	return dayOf(t), true
}

// clonePolicy returns a copy of p that shares no slice with it, so that a
// caller reusing its slices changes no policy held.
func clonePolicy(p Policy) Policy {
	p.PolicyString = slices.Clone(p.PolicyString)
	p.MXHost = slices.Clone(p.MXHost)
	return p
}

// rowKey identifies a failure-detail row: a FailureDetail with a count of
// zero. Its fields are comparable, so it keys a map as it is.
func rowKey(fd FailureDetail) FailureDetail {
	fd.FailedSessionCount = 0
	return fd
}

// storedDay holds one day's counts in memory, as memoryStore and fileStore
// keep them. It is not safe for concurrent use.
type storedDay struct {
	domains map[string]*storedDomain
}

// storedDomain is a policy domain's part of a day: its policies, one or two
// as a rule, and the number of its distinct failure-detail rows, for
// Batch.MaxDetailRows.
type storedDomain struct {
	policies []*storedPolicy
	rows     int
}

type storedPolicy struct {
	policy    Policy
	countOnly bool // every count added was PolicyResult.CountOnly
	summary   Summary
	rows      map[FailureDetail]int64 // by rowKey
	rowOrder  []FailureDetail         // rows in the order first seen
}

func newStoredDay() *storedDay {
	return &storedDay{domains: map[string]*storedDomain{}}
}

// lookup returns the counts of p, or nil.
func (d *storedDay) lookup(p *Policy) *storedPolicy {
	if sd := d.domains[p.PolicyDomain]; sd != nil {
		for _, sp := range sd.policies {
			if policyEqual(&sp.policy, p) {
				return sp
			}
		}
	}
	return nil
}

// admit returns the part of results that the cap of maxRows distinct rows
// per policy domain lets in, and the sessions whose detail it drops. It
// changes nothing: apply adds what it returns. When nothing is dropped, it
// returns results.
func (d *storedDay) admit(results []PolicyResult, maxRows int) ([]PolicyResult, int64) {
	if maxRows <= 0 {
		return results, 0
	}
	var dropped int64
	var out []PolicyResult   // nil while nothing is dropped
	var added map[string]int // new rows of this batch, by domain
	type domainRow struct {
		domain string
		row    FailureDetail
	}
	var seen map[domainRow]bool // new rows of this batch
	for i, pr := range results {
		dom := pr.Policy.PolicyDomain
		sp := d.lookup(&pr.Policy)
		rows := 0
		if sd := d.domains[dom]; sd != nil {
			rows = sd.rows
		}
		var keep []FailureDetail // nil while nothing is dropped
		for j, fd := range pr.FailureDetails {
			k := domainRow{dom, rowKey(fd)}
			_, known := sp.rowsMap()[k.row]
			switch {
			case known, seen[k]:
			case rows+added[dom] < maxRows:
				if added == nil {
					added, seen = map[string]int{}, map[domainRow]bool{}
				}
				added[dom]++
				seen[k] = true
			default:
				dropped += fd.FailedSessionCount
				if keep == nil {
					keep = slices.Clone(pr.FailureDetails[:j])
				}
				continue
			}
			if keep != nil {
				keep = append(keep, fd)
			}
		}
		if keep != nil {
			pr.FailureDetails = keep
			if out == nil {
				out = slices.Clone(results[:i])
			}
		}
		if out != nil {
			out = append(out, pr)
		}
	}
	if out == nil {
		return results, dropped
	}
	return out, dropped
}

// rowsMap returns the rows of sp, nil when sp is.
func (sp *storedPolicy) rowsMap() map[FailureDetail]int64 {
	if sp == nil {
		return nil
	}
	return sp.rows
}

// apply adds results, already admitted, to the day.
func (d *storedDay) apply(results []PolicyResult) {
	for i := range results {
		pr := &results[i]
		dom := pr.Policy.PolicyDomain
		sd := d.domains[dom]
		if sd == nil {
			sd = &storedDomain{}
			d.domains[dom] = sd
		}
		sp := d.lookup(&pr.Policy)
		if sp == nil {
			sp = &storedPolicy{policy: clonePolicy(pr.Policy), countOnly: true}
			sd.policies = append(sd.policies, sp)
		}
		sp.countOnly = sp.countOnly && pr.CountOnly
		sp.summary.TotalSuccessfulSessionCount += pr.Summary.TotalSuccessfulSessionCount
		sp.summary.TotalFailureSessionCount += pr.Summary.TotalFailureSessionCount
		for _, fd := range pr.FailureDetails {
			if fd.FailedSessionCount <= 0 {
				continue
			}
			k := rowKey(fd)
			if _, ok := sp.rows[k]; !ok {
				if sp.rows == nil {
					sp.rows = map[FailureDetail]int64{}
				}
				sp.rowOrder = append(sp.rowOrder, k)
				sd.rows++
			}
			sp.rows[k] += fd.FailedSessionCount
		}
	}
}

// results returns the day's counts, a PolicyResult per policy.
func (d *storedDay) results() []PolicyResult {
	n := 0
	for _, sd := range d.domains {
		n += len(sd.policies)
	}
	out := make([]PolicyResult, 0, n)
	for _, sd := range d.domains {
		for _, sp := range sd.policies {
			pr := PolicyResult{Policy: sp.policy, Summary: sp.summary, CountOnly: sp.countOnly}
			if len(sp.rowOrder) > 0 {
				pr.FailureDetails = make([]FailureDetail, len(sp.rowOrder))
				for i, k := range sp.rowOrder {
					k.FailedSessionCount = sp.rows[k]
					pr.FailureDetails[i] = k
				}
			}
			out = append(out, pr)
		}
	}
	return out
}

// takenMemory is how long memoryStore and fileStore remember that a day was
// taken, to refuse late counts for it: long past any report's delay.
const takenMemory = 31 * secondsPerDay

// memoryStore is a Store in memory, the Recorder's default: its counts end
// with the process. It is safe for concurrent use. It holds each day until
// it is taken and released; one memoryStore is its own claimant.
type memoryStore struct {
	mu    sync.Mutex
	days  map[int64]*storedDay
	taken map[int64]bool // true: released
}

// newMemoryStore returns an empty memoryStore.
func newMemoryStore() *memoryStore {
	return &memoryStore{days: map[int64]*storedDay{}, taken: map[int64]bool{}}
}

// Add implements Store. It returns an error wrapping ErrDayTaken for a day
// already taken.
func (s *memoryStore) Add(ctx context.Context, b Batch) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	day := dayOf(b.Day)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.taken[day]; ok {
		return 0, dayTakenError(day)
	}
	d := s.days[day]
	if d == nil {
		d = newStoredDay()
		s.days[day] = d
	}
	results, dropped := d.admit(b.Results, b.MaxDetailRows)
	d.apply(results)
	return dropped, nil
}

// dayTakenError is the error of an Add for day number day, taken.
func dayTakenError(day int64) error {
	return fmt.Errorf("%w: %s", ErrDayTaken, dayName(day))
}

// Days implements Store.
func (s *memoryStore) Days(ctx context.Context) ([]time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedDays(s.days), ctx.Err()
}

func sortedDays[V any](m map[int64]V) []time.Time {
	nums := make([]int64, 0, len(m))
	for d := range m {
		nums = append(nums, d)
	}
	slices.Sort(nums)
	days := make([]time.Time, len(nums))
	for i, d := range nums {
		days[i] = dayStart(d)
	}
	return days
}

// Take implements Store.
func (s *memoryStore) Take(ctx context.Context, day time.Time) ([]PolicyResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := dayOf(day)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.taken[n]; !ok {
		s.taken[n] = false
		for t := range s.taken {
			if t < n-takenMemory/secondsPerDay {
				delete(s.taken, t)
			}
		}
	}
	if d := s.days[n]; d != nil {
		return d.results(), nil
	}
	return nil, nil
}

// Release implements Store.
func (s *memoryStore) Release(ctx context.Context, day time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := dayOf(day)
	s.mu.Lock()
	defer s.mu.Unlock()
	if released, ok := s.taken[n]; ok && !released {
		s.taken[n] = true
		delete(s.days, n)
	}
	return nil
}

// Results implements Store.
func (s *memoryStore) Results(ctx context.Context, day time.Time) ([]PolicyResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.days[dayOf(day)]; d != nil {
		return d.results(), nil
	}
	return nil, nil
}

// Delete implements Store.
func (s *memoryStore) Delete(ctx context.Context, domain string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, d := range s.days {
		if _, taken := s.taken[n]; taken {
			continue
		}
		if d.forget(domain) && len(d.domains) == 0 {
			delete(s.days, n)
		}
	}
	return nil
}

// forget deletes the results whose policy domain or recipient domain is
// domain, and reports whether there were any.
func (d *storedDay) forget(domain string) bool {
	changed := false
	for name, sd := range d.domains {
		n := len(sd.policies)
		sd.policies = slices.DeleteFunc(sd.policies, func(sp *storedPolicy) bool {
			return name == domain || sp.policy.RecipientDomain == domain
		})
		if len(sd.policies) == n {
			continue
		}
		changed = true
		if len(sd.policies) == 0 {
			delete(d.domains, name)
			continue
		}
		sd.rows = 0
		for _, sp := range sd.policies {
			sd.rows += len(sp.rowOrder)
		}
	}
	return changed
}

// compareResults orders policy results by policy domain, then policy type,
// then the rest of the policy, as Recorder.take returns them.
func compareResults(a, b *PolicyResult) int {
	if c := strings.Compare(a.Policy.PolicyDomain, b.Policy.PolicyDomain); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Policy.PolicyType), string(b.Policy.PolicyType)); c != 0 {
		return c
	}
	if c := slices.Compare(a.Policy.PolicyString, b.Policy.PolicyString); c != 0 {
		return c
	}
	if c := slices.Compare(a.Policy.MXHost, b.Policy.MXHost); c != 0 {
		return c
	}
	return strings.Compare(a.Policy.RecipientDomain, b.Policy.RecipientDomain)
}
