package cache

import (
	"slices"
	"strings"
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
// changed once published; a new one replaces it. Most domains publish no
// policy, and their snapshot is these three words alone.
type snapshot struct {
	*cached          // the policy; nil when there is none
	fail    *failure // the latest failure; nil when the last attempt succeeded
	retryAt int64    // unix nanoseconds; no network attempt before it
}

// cached is a policy held in memory.
type cached struct {
	policy           mtasts.Policy
	text, id         string
	fetched, expires int64 // unix nanoseconds
}

// failure is a failed lookup or fetch, with its report fields.
type failure struct {
	err                error
	resultType, reason string
	// id is the record id whose fetch failed; empty when the record
	// itself could not be had.
	id string
}

// newCached returns p, fetched as text for record id at fetched and valid
// until expires, as memory holds it: one block for the policy, its mx list
// cut to size (ParsePolicy leaves room for four), and the record id copied
// out of the record's text, which is not kept.
func newCached(p *mtasts.Policy, text, id string, fetched, expires time.Time) *cached {
	c := &cached{policy: *p, text: text, id: strings.Clone(id), fetched: fetched.UnixNano(), expires: expires.UnixNano()}
	c.policy.MX = slices.Clip(slices.Clone(p.MX))
	c.policy.Extensions = slices.Clip(slices.Clone(p.Extensions))
	return c
}

// newFailure returns err as a failure of record id ("" for the record).
func newFailure(err error, id string) *failure {
	return &failure{err: err, resultType: mtasts.TLSReportResultType(err), reason: mtasts.TLSReportFailureReason(err), id: id}
}

// valid reports whether s holds a policy that has not expired at now. RFC
// 8461 5.1: a cached policy "whose time-since-fetch has not exceeded its
// max_age" applies, so it is still valid at the very instant it expires.
func (s *snapshot) valid(now time.Time) bool {
	return s != nil && s.cached != nil && now.UnixNano() <= s.expires
}

// backingOff reports whether s holds no usable policy at now and no new
// attempt is due yet: the domain has no policy, or its last attempt failed
// less than Backoff ago (RFC 8461 3.3).
func (s *snapshot) backingOff(now time.Time) bool {
	return s != nil && !s.valid(now) && now.UnixNano() < s.retryAt
}

// failedFor reports whether the fetch of record id failed less than Backoff
// ago: RFC 8461 3.3 limits further attempts "to a period of five minutes or
// longer per version ID".
func (s *snapshot) failedFor(id string, now time.Time) bool {
	return s != nil && s.fail != nil && s.fail.id == id && now.UnixNano() < s.retryAt
}

// result returns s as a Result at now. A policy that has expired at now is
// not in it, whatever else s holds: RFC 8461 5.1 applies a cached policy only
// while its "time-since-fetch has not exceeded its max_age". The failure, if
// any, is.
func (s *snapshot) result(now time.Time, fresh bool) Result {
	var r Result
	if f := s.fail; f != nil {
		r.Err, r.ResultType, r.FailureReason = f.err, f.resultType, f.reason
	}
	if s.valid(now) {
		r.Policy, r.Text, r.RecordID, r.Fresh = &s.policy, s.text, s.id, fresh
		r.Fetched, r.Expires = time.Unix(0, s.fetched), time.Unix(0, s.expires)
	}
	return r
}

// none reports whether s holds a policy in mode none.
func (s *snapshot) none() bool {
	return s.cached != nil && s.policy.Mode == mtasts.ModeNone
}

// withFailure returns a copy of s with the failure f (nil for none) and no
// attempt before retryAt. A domain whose cached policy is in mode none has
// turned MTA-STS off, and its failures are not reported: RFC 8461 6 makes
// reportable "policy fetch failures of any kind when a valid policy exists in
// the policy cache, except if that policy's mode is 'none'", and RFC 8461 3.3
// and 10.2 ask for no alerts in that case. The back-off holds all the same.
func (s *snapshot) withFailure(f *failure, retryAt int64) *snapshot {
	n := *s
	if f != nil && n.none() {
		f = &failure{id: f.id}
	}
	n.fail, n.retryAt = f, retryAt
	return &n
}
