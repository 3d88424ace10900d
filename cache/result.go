package cache

import (
	"time"

	"github.com/mtasts-go/mtasts"
)

// Result is the cache's answer for a domain.
type Result struct {
	// Policy is the policy to apply; nil means the domain has no usable
	// policy and mail is delivered as without MTA-STS (RFC 8461 5.1).
	// A policy in mode none is returned as such.
	Policy *mtasts.Policy
	// Text is the policy as fetched, and RecordID the id of the TXT
	// record that announced it.
	Text     string
	RecordID string
	// Fetched is when the policy was fetched, and Expires Fetched plus
	// its max_age: the last instant at which it applies (RFC 8461 5.1,
	// "time-since-fetch has not exceeded its max_age").
	Fetched time.Time
	Expires time.Time
	// Fresh is set when the policy was fetched from the network for this
	// call, or for a call it waited for; clear when it came from memory or
	// the store.
	Fresh bool

	// Err is the latest failure to discover or fetch the domain's policy,
	// also when a cached Policy still applies; nil when the last attempt
	// succeeded, when the domain simply publishes no policy, and when the
	// cached policy is in mode none (RFC 8461 6). ResultType and
	// FailureReason describe Err for a TLS report (RFC 8460 4.3):
	// mtasts.TLSReportResultType and mtasts.TLSReportFailureReason.
	Err           error
	ResultType    string
	FailureReason string
}

// snapshot is what the cache knows of a domain at one time. It is never
// changed once published; a new one replaces it.
type snapshot struct {
	policy   *mtasts.Policy // nil: no usable policy
	text, id string
	fetched  time.Time
	expires  time.Time

	err        error // latest failure, with its report fields
	resultType string
	reason     string
	retryAt    time.Time // no network attempt before this time
	failedID   string    // the record id whose fetch failed
}

// valid reports whether s holds a policy that has not expired at now. RFC
// 8461 5.1: a cached policy "whose time-since-fetch has not exceeded its
// max_age" applies, so it is still valid at the very instant it expires.
func (s *snapshot) valid(now time.Time) bool {
	return s != nil && s.policy != nil && !now.After(s.expires)
}

// backingOff reports whether s holds no usable policy at now and no new
// attempt is due yet: the domain has no policy, or its last attempt failed
// less than Backoff ago (RFC 8461 3.3).
func (s *snapshot) backingOff(now time.Time) bool {
	return s != nil && !s.valid(now) && now.Before(s.retryAt)
}

// result returns s as a Result at now. A policy that has expired at now is
// not in it, whatever else s holds: RFC 8461 5.1 applies a cached policy only
// while its "time-since-fetch has not exceeded its max_age". The failure, if
// any, is.
func (s *snapshot) result(now time.Time, fresh bool) Result {
	if !s.valid(now) {
		return Result{Err: s.err, ResultType: s.resultType, FailureReason: s.reason}
	}
	return Result{
		Policy: s.policy, Text: s.text, RecordID: s.id, Fetched: s.fetched, Expires: s.expires, Fresh: fresh,
		Err: s.err, ResultType: s.resultType, FailureReason: s.reason,
	}
}

// none reports whether s holds a policy in mode none.
func (s *snapshot) none() bool {
	return s.policy != nil && s.policy.Mode == mtasts.ModeNone
}

// withErr returns a copy of s that reports err. A domain whose cached policy
// is in mode none has turned MTA-STS off, and its failures are not reported:
// RFC 8461 6 makes reportable "policy fetch failures of any kind when a valid
// policy exists in the policy cache, except if that policy's mode is
// 'none'", and RFC 8461 3.3 and 10.2 ask for no alerts in that case.
func (s *snapshot) withErr(err error) *snapshot {
	n := *s
	if n.none() {
		err = nil
	}
	n.err, n.resultType, n.reason = err, mtasts.TLSReportResultType(err), mtasts.TLSReportFailureReason(err)
	return &n
}
