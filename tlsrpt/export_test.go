package tlsrpt

import (
	"context"
	"time"
)

// The in-memory store and outbox, which a nil RecorderOptions.Store and a
// nil ReporterOptions.Outbox mean, for the tests of package tlsrpt_test.
var (
	NewMemoryStore  = newMemoryStore
	NewMemoryOutbox = newMemoryOutbox
)

// MemoryOutbox is the in-memory outbox, for tests that wrap it.
type MemoryOutbox = memoryOutbox

// The steps a Reporter takes, for the tests that check each.
var ErrDayOpen = errDayOpen

// DayResults are the counts of a day that Take returns.
type DayResults = dayResults

// Reports returns the day's reports, as a Reporter makes them.
func (d dayResults) Reports(info ReportInfo) []Report { return d.reports(info) }

// ClosedDays returns the closed days the store holds.
func (r *Recorder) ClosedDays(ctx context.Context) ([]time.Time, error) { return r.closedDays(ctx) }

// Take takes a closed day from the store.
func (r *Recorder) Take(ctx context.Context, day time.Time) (DayResults, error) {
	return r.take(ctx, day)
}

// Release releases a day taken.
func (r *Recorder) Release(ctx context.Context, day time.Time) error { return r.release(ctx, day) }

// WithNow returns opts with the clock now, read on every call that records.
func WithNow(opts RecorderOptions, now func() time.Time) RecorderOptions {
	opts.now = now
	return opts
}

// Flush gives the counts to the store, as Run does every FlushInterval.
func (r *Recorder) Flush(ctx context.Context) error { return r.flush(ctx) }
