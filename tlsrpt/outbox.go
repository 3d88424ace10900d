package tlsrpt

import (
	"cmp"
	"context"
	"maps"
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
// The default, a nil ReporterOptions.Outbox, keeps the reports in memory
// until the process ends; OpenFileOutbox keeps them on disk across restarts;
// redisstore has one that a fleet shares, which hands each report to one member at a time. An
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
	// Sent returns the Keys of the reports marked done that the outbox
	// remembers (31 days, counted from the newest report's day):
	// delivered, given up on, or without a TLSRPT record. They are in
	// order of day, then domain, for an admin page beside Pending.
	Sent(ctx context.Context) ([]string, error)
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
// day and the domain it is sent to (Domain, or else its policy domain),
// e.g. "2016-04-01 company-y.example", followed by " mx-host" for a report
// to an MX host (ReportInfo.MXHosts): one whose every policy names
// Domain as its mx-host and another policy domain. A sender makes one
// report of each kind per domain and day (RFC 8460 4.1), so two reports of
// one key are the same report, made twice.
func (r *Report) Key() string {
	return r.DateRange.Start.UTC().Format(time.DateOnly) + " " + keyDomain(r)
}

// keyDomain returns the domain part of r's Key.
func keyDomain(r *Report) string {
	if hostReport(r) {
		return r.Domain + " mx-host"
	}
	return reportDomain(r)
}

// hostReport reports whether r is a report to an MX host, as
// a Reporter makes them (ReportInfo.MXHosts): to Domain, each policy naming Domain as its
// mx-host and a recipient domain as its policy domain.
func hostReport(r *Report) bool {
	if r.Domain == "" || len(r.Policies) == 0 {
		return false
	}
	for i := range r.Policies {
		p := &r.Policies[i].Policy
		if p.PolicyDomain == r.Domain || len(p.MXHost) != 1 || p.MXHost[0] != r.Domain {
			return false
		}
	}
	return true
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

// reportDomain returns the domain r is sent to: r.Domain, or else the policy
// domain of its first policy, or "".
func reportDomain(r *Report) string {
	if r.Domain != "" {
		return r.Domain
	}
	if len(r.Policies) == 0 {
		return ""
	}
	return r.Policies[0].Policy.PolicyDomain
}

// outboxEntry is a report of an outbox, with the URIs that took it.
type outboxEntry struct {
	report    Report
	delivered []string
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

// memoryOutbox is an Outbox in memory, the Reporter's default: reports
// pending when the process ends are lost. It is safe for concurrent use.
type memoryOutbox struct {
	mu      sync.Mutex
	pending map[string]*outboxEntry // by Report.Key
	done    map[string]int64        // the days of the reports done, by Report.Key
	newest  int64                   // the newest day put
}

// newMemoryOutbox returns an empty memoryOutbox.
func newMemoryOutbox() *memoryOutbox {
	return &memoryOutbox{pending: map[string]*outboxEntry{}, done: map[string]int64{}}
}

// Put implements Outbox. It returns only ctx's error.
func (o *memoryOutbox) Put(ctx context.Context, reports []Report) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range reports {
		k := r.Key()
		if _, done := o.done[k]; !done && o.pending[k] == nil {
			o.pending[k] = &outboxEntry{report: r}
		}
		o.newest = max(o.newest, dayOf(r.DateRange.Start))
	}
	// Forget the reports done long ago, by the outbox's own days.
	for k, day := range o.done {
		if day < o.newest-outboxMemory/secondsPerDay {
			delete(o.done, k)
		}
	}
	return nil
}

// Pending implements Outbox. It returns only ctx's error.
func (o *memoryOutbox) Pending(ctx context.Context) ([]PendingReport, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o.mu.Lock()
	out := make([]PendingReport, 0, len(o.pending))
	for _, e := range o.pending {
		out = append(out, PendingReport{Report: e.report, Delivered: slices.Clone(e.delivered)})
	}
	o.mu.Unlock()
	sortPending(out)
	return out, nil
}

// Delivered implements Outbox. It returns only ctx's error.
func (o *memoryOutbox) Delivered(ctx context.Context, report *Report, uri string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if e := o.pending[report.Key()]; e != nil {
		e.deliveredTo(uri)
	}
	return nil
}

// Sent implements Outbox. It returns only ctx's error.
func (o *memoryOutbox) Sent(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o.mu.Lock()
	keys := slices.Collect(maps.Keys(o.done))
	o.mu.Unlock()
	slices.Sort(keys) // a Key starts with its day
	return keys, nil
}

// Done implements Outbox. It returns only ctx's error.
func (o *memoryOutbox) Done(ctx context.Context, report *Report) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	k := report.Key()
	if e := o.pending[k]; e != nil {
		delete(o.pending, k)
		o.done[k] = dayOf(e.report.DateRange.Start)
	}
	return nil
}
