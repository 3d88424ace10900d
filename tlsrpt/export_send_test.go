package tlsrpt

import (
	"context"
	"time"
)

// Test-only doors onto the sending side (this file is compiled in tests
// alone).

// SendRecordForTest delivers report to the rua URIs of record, as Send
// does after its lookup.
func (s *Sender) SendRecordForTest(ctx context.Context, report *Report, record *Record) ([]Delivery, error) {
	return s.sendRecord(ctx, report, record)
}

// WithTestSend returns opts with send delivering each report in place of a
// Sender, in one round.
func WithTestSend(opts ReporterOptions, send func(ctx context.Context, report *Report) ([]Delivery, error)) ReporterOptions {
	opts.send = send
	return opts
}

// WithTestRand returns opts with rand giving the random delays and spread
// offsets: a random duration in [0, n), n > 0.
func WithTestRand(opts ReporterOptions, rand func(n time.Duration) time.Duration) ReporterOptions {
	opts.rand = rand
	return opts
}

// The steps a Sender takes, for tests of each.
var (
	BuildPayload   = buildPayload
	ComposeMessage = composeMessage
	NewReportID    = newReportID
)

// MaxRUA is the most rua URIs of one record that a Sender delivers to.
const MaxRUA = maxRUA

// TransportForTest returns how d went: "https" or "mailto".
func (d Delivery) TransportForTest() string { return d.transport }
