package cache

import (
	"errors"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/mtasts-go/mtasts"
)

// Result is the cache's answer for a domain.
type Result struct {
	// Policy is the policy to apply; nil means the domain has no usable
	// policy and mail is delivered as without MTA-STS (RFC 8461 5.1).
	// A policy in mode none is returned as such.
	//
	// The policy is shared with the cache and other callers: it must not
	// be modified. Hits on a domain in use share one policy; otherwise
	// the pointer may differ between calls for the same policy (the call
	// that fetched it, a hit after the domain was idle for a round of
	// Run), so compare policies by value. A policy handed out never
	// changes, and stays valid for as long as the caller holds it.
	Policy *mtasts.Policy
	// RecordID is the id of the TXT record that announced the policy.
	// Policy.String gives the policy's text; the text as fetched is not
	// kept, since memory holds the parsed policy alone.
	RecordID string
	// Fetched is when the policy was fetched, and Expires Fetched plus
	// its max_age: the last instant at which it applies (RFC 8461 5.1,
	// "time-since-fetch has not exceeded its max_age").
	Fetched time.Time
	Expires time.Time
	// Fresh is set when Policy was fetched over HTTPS by this cache for
	// this call, or for a concurrent call whose update this one shared.
	// It is clear when Policy came from memory, from the store (also when
	// another cache of a fleet had just fetched and saved it), and when
	// there is no Policy.
	Fresh bool
	// Checked is when this cache last looked the domain's TXT record up,
	// or began a background check of it, to the second; zero when it has
	// not since the domain entered memory (a policy loaded from the store,
	// say).
	Checked time.Time

	// Err is the latest failure to discover or fetch the domain's policy,
	// also when a cached Policy still applies; nil when the last attempt
	// succeeded, when the domain simply publishes no policy, and when the
	// cached policy is in mode none (RFC 8461 6). For a TLS report (RFC
	// 8460 4.3), mtasts.TLSReportResultType and
	// mtasts.TLSReportFailureReason describe Err. Both give "" when Err
	// says nothing about the domain's policy: the
	// caller's context ended, the cache was closed (ErrClosed), or the
	// domain is no host name (mtasts.ErrInvalidDomain, e.g. a label with
	// "_"). Deliver as without a policy then, as RFC 8461 5.1 does when
	// none can be had; such an Err is for logs, not for a TLS report.
	Err error
	// Remembered is set when Err is a failure of an earlier attempt that
	// the cache remembers while its back-off runs (RFC 8461 3.3), and no
	// attempt was made for this call; clear when this call, or an update
	// it shared, made the attempt that failed. A TLS report counts a
	// remembered failure for each session it affects all the same; a
	// retry decision may wait for RetryAt instead.
	Remembered bool
	// RetryAt is, when Err is set, when the back-off of the failed attempt
	// ends and the cache tries again; zero when it tries at the next
	// call.
	RetryAt time.Time
	// PolicyText is, when Err wraps mtasts.ErrPolicySyntax because the
	// policy the domain served did not parse, what it served: its first
	// 2048 bytes, cut after a line end. A TLS report gives that
	// policy "including any errors that may be present" (RFC 8460 4.5):
	// a tlsrpt.Recorder makes its policy-string of PolicyText. Empty
	// otherwise; the text of a valid Policy is Policy.String.
	PolicyText string
}

// snapshot is what the cache knows of a domain at one time. It is never
// changed once published, but for policy, the decoded form of what it
// holds; a new snapshot replaces it.
type snapshot struct {
	// compact is the cached policy and its record id when hasPolicy, in
	// the compact form of compact.go: one string, copied out of neither
	// the fetched text nor the record, which are not kept.
	compact          string
	fetched, expires int64 // unix nanoseconds; fetched is 0 without a policy

	fail *failure // the latest failure; nil when the last attempt succeeded

	// policy is compact decoded, which hits hand out, or nil: the first
	// hit decodes it, and Run drops it again when the domain is not used
	// from one round to the next (see sweep), so that an idle domain
	// costs its compact form alone. A caller that holds a policy handed
	// out keeps it, unchanged.
	policy atomic.Pointer[mtasts.Policy]
}

// id returns the record id of s's policy, "" without one.
func (s *snapshot) id() string { return compactID(s.compact) }

// noRecord is the snapshot of every domain that publishes no policy: most
// domains, so they share it. When such a domain may be looked up again
// follows from its item's checkedAt (see Cache.backingOff).
var noRecord = &snapshot{}

// failure is a failed lookup or fetch, with its report fields.
type failure struct {
	err error
	// id is the record id whose fetch failed; empty when the record
	// itself could not be had.
	id string
	// retryAt is when a new attempt is due, in unix nanoseconds (RFC
	// 8461 3.3); 0 for at once.
	retryAt int64
	// text is the start of the policy served, when it did not parse:
	// Result.PolicyText.
	text string
}

// maxPolicyText bounds Result.PolicyText: the start of a policy that did not
// parse, kept for a TLS report. A valid policy of a dozen mx patterns takes
// a few hundred bytes; a hostile host may serve mtasts.MaxPolicySize, which
// the cache does not keep per failing domain.
const maxPolicyText = 2048

// keepText keeps the start of text, the policy served, when f is about a
// policy that did not parse (RFC 8460 4.5: a report gives the policy
// "including any errors that may be present"): at most maxPolicyText bytes,
// cut after a line end when there is one, else before a character.
func (f *failure) keepText(text string) {
	if text == "" || !errors.Is(f.err, mtasts.ErrPolicySyntax) {
		return
	}
	if len(text) > maxPolicyText {
		cut := strings.LastIndexByte(text[:maxPolicyText], '\n') + 1
		if cut == 0 {
			cut = maxPolicyText
			for cut > 0 && !utf8.RuneStart(text[cut]) {
				cut--
			}
		}
		text = text[:cut]
	}
	f.text = strings.Clone(text)
}

// newSnapshot returns a snapshot of p, announced by record id, fetched at
// fetched and valid until expires. It holds them in their compact form, a
// block of its own, and not the policy text or the record text they were
// cut from: a million cached domains keep a million compact policies, not a
// million texts. The policy is decoded when a hit first wants it.
func newSnapshot(p *mtasts.Policy, id string, fetched, expires time.Time) *snapshot {
	s := &snapshot{fetched: fetched.UnixNano(), expires: expires.UnixNano()}
	s.compact, _ = encodePolicy(p, id)
	return s
}

// usePolicy returns s's policy for a hit: the one it holds decoded, or a
// decoding of its compact form that it then holds, so that the hits that
// follow share it. Of hits that decode at once, all get the policy of the
// first to store it.
func (s *snapshot) usePolicy() *mtasts.Policy {
	if p := s.policy.Load(); p != nil {
		return p
	}
	return s.decodeAndKeep()
}

// decodeAndKeep is usePolicy's path for a snapshot that holds no decoded
// policy, kept out of line so that a hit stays small.
func (s *snapshot) decodeAndKeep() *mtasts.Policy {
	p := decodePolicy(s.compact)
	if s.policy.CompareAndSwap(nil, p) {
		return p
	}
	return s.policy.Load()
}

// peekPolicy returns s's policy for an answer that is not a hit (an update's,
// Memory's): the one it holds decoded, or else a decoding of its own, which s
// does not keep: a domain just fetched, or listed, is not thereby in use.
func (s *snapshot) peekPolicy() *mtasts.Policy {
	if p := s.policy.Load(); p != nil {
		return p
	}
	return decodePolicy(s.compact)
}

// dropPolicy drops the decoded policy that s holds, if any, for Run to call
// on a domain not in use.
func (s *snapshot) dropPolicy() {
	if s.policy.Load() != nil {
		s.policy.Store(nil)
	}
}

// newFailure returns err as a failure of record id ("" for the record), with
// no new attempt before retryAt.
func newFailure(err error, id string, retryAt time.Time) *failure {
	return &failure{err: err, id: id, retryAt: retryAt.UnixNano()}
}

// hasPolicy reports whether s holds a policy, valid or not.
func (s *snapshot) hasPolicy() bool {
	return s.fetched != 0
}

// retryDue reports whether a new attempt may be made at now (RFC 8461 3.3).
func (s *snapshot) retryDue(now time.Time) bool {
	return s.fail == nil || now.UnixNano() >= s.fail.retryAt
}

// valid reports whether s holds a policy that has not expired at now. RFC
// 8461 5.1: a cached policy "whose time-since-fetch has not exceeded its
// max_age" applies, so it is still valid at the very instant it expires.
func (s *snapshot) valid(now time.Time) bool {
	return s != nil && s.hasPolicy() && now.UnixNano() <= s.expires
}

// backingOff reports whether the snapshot s of it holds no usable policy at
// now and no new attempt is due yet: the domain has no policy (RFC 8461 5.1),
// its last attempt failed less than Backoff ago, or its policy expired less
// than Backoff after it was fetched (RFC 8461 3.3).
func (c *Cache) backingOff(it *item, s *snapshot, now time.Time) bool {
	switch {
	case s == nil || s.valid(now):
		return false
	case s == noRecord:
		return c.clock(now)-min(it.checkedAt.Load(), c.clock(now)) < c.backoffSeconds
	case s.fail == nil && s.fetchedRecently(s.id(), now, c.opts.Backoff):
		// A policy that expired less than Backoff after its fetch
		// (max_age 0, say) is not fetched again before then (RFC
		// 8461 3.3 allows senders to rate-limit fetches): until then,
		// the domain has no policy to apply (RFC 8461 5.1).
		return true
	default:
		return !s.retryDue(now)
	}
}

// fetchedRecently reports whether s holds a policy of record id, expired at
// now, that was fetched less than backoff ago.
func (s *snapshot) fetchedRecently(id string, now time.Time, backoff time.Duration) bool {
	return s != nil && s.hasPolicy() && s.id() == id && !s.valid(now) && now.UnixNano()-s.fetched < int64(backoff)
}

// failedFor reports whether the fetch of record id failed less than Backoff
// ago: RFC 8461 3.3 limits further attempts "to a period of five minutes or
// longer per version ID".
func (s *snapshot) failedFor(id string, now time.Time) bool {
	return s != nil && s.fail != nil && s.fail.id == id && !s.retryDue(now)
}

// origin is how an update came by the snapshot that it returns.
type origin uint8

const (
	// fromMemory: what memory or the store held; no attempt was made
	// for this call, and a failure in it is remembered.
	fromMemory origin = iota
	// fetchedNow: the policy was fetched for this call.
	fetchedNow
	// triedNow: the attempt made for this call failed.
	triedNow
)

// result returns the snapshot s of it as a Result at now. A policy that has
// expired at now is not in it, whatever else s holds: RFC 8461 5.1 applies a
// cached policy only while its "time-since-fetch has not exceeded its
// max_age". The failure, if any, is.
func (c *Cache) result(it *item, s *snapshot, now time.Time, o origin) Result {
	var r Result
	c.fillResult(&r, it, s, now, o, false)
	return r
}

// fillResult sets *r, zero, to what result returns; for a hit, its policy
// is the one s holds decoded, which s then keeps (see snapshot.usePolicy).
// Get's hit path calls it on its own result: a Result
// is 200 bytes, and returning result's copied them twice more, a fifth of a
// hit's time (BenchmarkGetHit).
func (c *Cache) fillResult(r *Result, it *item, s *snapshot, now time.Time, o origin, hit bool) {
	if f := s.fail; f != nil {
		r.Err, r.PolicyText = f.err, f.text
		r.Remembered = o == fromMemory
		if f.retryAt != 0 {
			r.RetryAt = time.Unix(0, f.retryAt)
		}
	}
	if s.valid(now) {
		if hit {
			r.Policy = s.usePolicy()
		} else {
			r.Policy = s.peekPolicy()
		}
		r.RecordID, r.Fresh = s.id(), o == fetchedNow
		r.Fetched, r.Expires = time.Unix(0, s.fetched), time.Unix(0, s.expires)
	}
	if sec := it.checkedAt.Load(); sec != 0 {
		r.Checked = c.epoch.Add(time.Duration(sec) * time.Second)
	}
}

// none reports whether s holds a policy in mode none.
func (s *snapshot) none() bool {
	return s.hasPolicy() && compactMode(s.compact) == mtasts.ModeNone
}

// withFailure returns a copy of s with the failure f, nil for none. A domain
// whose cached policy is in mode none has turned MTA-STS off, and its
// failures are not reported: RFC 8461 6 makes reportable "policy fetch
// failures of any kind when a valid policy exists in the policy cache, except
// if that policy's mode is 'none'", and RFC 8461 3.3 and 10.2 ask for no
// alerts in that case. The back-off holds all the same.
func (s *snapshot) withFailure(f *failure) *snapshot {
	if f != nil && s.none() {
		f = &failure{id: f.id, retryAt: f.retryAt}
	}
	n := &snapshot{compact: s.compact, fetched: s.fetched, expires: s.expires, fail: f}
	n.policy.Store(s.policy.Load())
	return n
}
