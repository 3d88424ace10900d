package redisstore

import "time"

// The codec of the policy store's values, for the tests of
// redisstore_test.
var (
	Encode = encode
	Decode = decode
)

// WithNow returns opts with the clock now, for the claims of
// NewReportStore and the leases of NewOutbox.
func WithNow(opts Options, now func() time.Time) Options {
	opts.now = now
	return opts
}
