package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts/tlsrpt"
)

// reportStore is the tlsrpt.Store of NewReportStore.
type reportStore struct {
	rdb  redis.UniversalClient
	opts Options
	now  func() time.Time
}

// NewReportStore returns a tlsrpt.Store in Redis using rdb, e.g. from
// redis.NewUniversalClient; it does not contact Redis. Every MTA of a fleet
// adds to the same counters, so that the fleet sends one report per policy
// domain and day (RFC 8460 4.1), not one per MTA, and one MTA takes each
// day. It reads Options.Prefix, Owner, Lease and Retention. The store is
// safe for concurrent use.
//
// # Keys
//
// All keys share the Redis Cluster hash tag {tlsrpt}, so that its scripts,
// which touch several, run in a Cluster too. With the default Prefix:
//
//   - "mtasts:{tlsrpt}:day:2016-04-01" is a hash of the counts of a day not
//     taken, kept for Retention after the last Add. Per policy, of id
//     <pid> (the first 128 bits of the SHA-256 of its JSON, in hex; of its
//     JSON, a NUL and its recipient domain for a policy of a recipient
//     domain, tlsrpt.Policy.RecipientDomain):
//     "p:<pid>" holds its JSON as a report writes it, "d:<pid>" its
//     recipient domain when it has one, "z:<pid>" "1" while every count
//     added was tlsrpt.PolicyResult.CountOnly, "s:<pid>" and
//     "f:<pid>" its successful and failed sessions, "r:<pid>:<row>" the
//     sessions of a failure-detail row, <row> being the row's JSON with a
//     count of 0. "n:<domain>" counts a policy domain's distinct rows, for
//     the cap on them, and "q:<source>" the last batch added from a
//     recorder.
//   - "mtasts:{tlsrpt}:taking:2016-04-01" is the same hash once the day is
//     claimed: Take renames it, and Release deletes it. It is kept for
//     Retention after the last Take.
//   - "mtasts:{tlsrpt}:days" is the set of the days with counts, claimed
//     ones included: Release removes a day. It is kept for Retention after
//     the last Add or Take.
//   - "mtasts:{tlsrpt}:taken:2016-04-01", set when the day is taken, marks
//     it so that Add refuses late counts. While the day is claimed it holds
//     "claimed <ms> <owner>": the claim lapses at <ms>, a Unix time in
//     milliseconds, and <owner> is the claimant's Owner. Released,
//     or taken with nothing to report, it holds "released". It is kept for
//     Retention after the last Take or the Release.
//
// The fields "d:" and "z:" came with recipient domains; a day written
// before reads as results of no recipient domain, whose ids are unchanged.
// A member of a fleet still running an earlier release reads a recipient
// domain's results as more results of the same policy, listed apart in its
// report: upgrade the fleet before reporting per recipient domain.
//
// Add runs one script per thousand policies: HINCRBY on the counters, the
// cap on rows checked and counted in the same script, nothing when the day
// was taken, and nothing when a key or counter holds a value of the wrong
// type, which the script checks before its first write.
//
// # Claims
//
// Take runs a script that, atomically, claims the day for Owner until
// now+Lease and renames its hash to "taking", unless another owner holds a
// claim that has not lapsed; so that of any number of Takes, by any
// number of MTAs, one gets the day. It then reads the hash with HSCAN, and
// checks that the claim is still its own. The counts stay until Release, so
// a Take that failed, while reading or later, or whose MTA died, is
// resumed by a Take of the same Owner, which renews the claim, or, once
// the claim lapsed, of any other.
//
// Release deletes the counts only while the claim names this store value's
// Owner, lapsed or not. When an owner's claim lapsed and another took the
// day over, the first owner's late Release does nothing: the counts stay
// for the new claimant, until it releases the day. Both may have made the
// day's reports by then; theirs carry the same policy domain and day
// (tlsrpt.Report.Key), and an outbox the fleet shares (NewOutbox) keeps
// the first made and skips the other, so that the fleet sends each once.
// With an outbox per MTA, the takeover of a claimant that was slow, not
// dead, sends the day twice: hence a Lease well above the time from a Take
// to its Release.
func NewReportStore(rdb redis.UniversalClient, opts Options) tlsrpt.Store {
	opts = opts.withDefaults(15 * time.Minute)
	if opts.Retention <= 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	return &reportStore{rdb: rdb, opts: opts, now: opts.clock()}
}

func (s *reportStore) key(kind, day string) string {
	return s.opts.Prefix + "{tlsrpt}:" + kind + ":" + day
}

func (s *reportStore) daysKey() string { return s.opts.Prefix + "{tlsrpt}:days" }

func (s *reportStore) retentionSeconds() int64 {
	return int64(max(s.opts.Retention/time.Second, 1))
}

// dayName returns the name of the UTC day of t in keys.
func dayName(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// policyID returns the id of a policy's fields: the first 128 bits of the
// SHA-256 of its JSON, in hex, equal on every MTA of a fleet.
func policyID(policyJSON []byte) string {
	sum := sha256.Sum256(policyJSON)
	return hex.EncodeToString(sum[:16])
}

// btoa returns "1" for true, "0" for false.
func btoa(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// resultID returns the id of a policy's counts for recipient, "" for none:
// policyID of its JSON, and of a NUL and the recipient domain after it when
// there is one, so that the ids of results without one are those of before
// recipient domains were kept.
func resultID(policyJSON []byte, recipient string) string {
	if recipient == "" {
		return policyID(policyJSON)
	}
	return policyID(append(append(slices.Clip(policyJSON), 0), recipient...))
}

// addScript adds a chunk of a batch to the day's hash KEYS[1], unless the
// day was taken (KEYS[2] exists: it returns {-1, 0}) or the chunk was added
// before (its number ARGV[5] is not above the field "q:" ARGV[4]: {0, 0}).
// Else it returns {1, dropped}: the failed sessions whose rows it dropped,
// past ARGV[1] distinct rows per policy domain. It keeps the hash, and the
// set of days KEYS[3], to which it adds the day ARGV[3], for ARGV[2]
// seconds. The policies follow from ARGV[6]: id, JSON, domain, successes,
// failures, number of rows, recipient domain (or ""), count-only ("1" or
// "0"), then per row its JSON and sessions.
//
// Redis keeps what a script wrote before a command of it failed: a failure
// after the batch's mark "q:" would have the batch taken as added when given
// again, its counts lost. So the script first checks, writing nothing, all
// that could make a write fail: it returns {-2, n, type} when KEYS[n] holds
// a value of another type than a hash (KEYS[1]) or a set (KEYS[3]), and
// {-3, field} when a field it reads or adds to is not a count HINCRBY takes,
// with room to add (at most 18 digits; addArgs bounds what is added).
var addScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[2]) == 1 then return {-1, 0} end
local t = redis.call("TYPE", KEYS[1]).ok
if t ~= "none" and t ~= "hash" then return {-2, 1, t} end
t = redis.call("TYPE", KEYS[3]).ok
if t ~= "none" and t ~= "set" then return {-2, 3, t} end
-- have[field] is the count in a field read, false for one absent.
local have = {}
local function count(field)
	if have[field] ~= nil then return true end
	local v = redis.call("HGET", KEYS[1], field)
	if v and (#v > 18 or not string.match(v, "^%-?%d+$")) then return false end
	have[field] = v and tonumber(v)
	return true
end
local q
if ARGV[4] ~= "" then
	q = "q:" .. ARGV[4]
	if not count(q) then return {-3, q} end
	if have[q] and tonumber(ARGV[5]) <= have[q] then return {0, 0} end
end
-- The names of the fields of rows, in order, made once.
local names = {}
local i = 6
while i <= #ARGV do
	local pid, rows = ARGV[i], tonumber(ARGV[i+5])
	if not count("s:" .. pid) then return {-3, "s:" .. pid} end
	if not count("f:" .. pid) then return {-3, "f:" .. pid} end
	if rows > 0 and not count("n:" .. ARGV[i+2]) then return {-3, "n:" .. ARGV[i+2]} end
	i = i + 8
	for j = 1, rows do
		local f = "r:" .. pid .. ":" .. ARGV[i]
		if not count(f) then return {-3, f} end
		names[#names+1] = f
		i = i + 2
	end
end
if q then redis.call("HSET", KEYS[1], q, ARGV[5]) end
local cap = tonumber(ARGV[1])
local dropped = 0
local k = 0
i = 6
while i <= #ARGV do
	local pid = ARGV[i]
	local ok, failed, rows = tonumber(ARGV[i+3]), tonumber(ARGV[i+4]), tonumber(ARGV[i+5])
	-- "z:" marks a result of count-only adds alone: set by the first add
	-- if count-only, removed by any other.
	if ARGV[i+7] ~= "1" then
		redis.call("HDEL", KEYS[1], "z:" .. pid)
	elseif redis.call("HSETNX", KEYS[1], "p:" .. pid, ARGV[i+1]) == 1 then
		redis.call("HSET", KEYS[1], "z:" .. pid, "1")
	end
	redis.call("HSETNX", KEYS[1], "p:" .. pid, ARGV[i+1])
	if ARGV[i+6] ~= "" then redis.call("HSETNX", KEYS[1], "d:" .. pid, ARGV[i+6]) end
	if ok ~= 0 then redis.call("HINCRBY", KEYS[1], "s:" .. pid, ok) end
	if failed ~= 0 then redis.call("HINCRBY", KEYS[1], "f:" .. pid, failed) end
	local n = "n:" .. ARGV[i+2]
	i = i + 8
	for j = 1, rows do
		k = k + 1
		local field, add = names[k], ARGV[i+1]
		i = i + 2
		if have[field] then
			redis.call("HINCRBY", KEYS[1], field, add)
		elseif cap <= 0 or (have[n] or 0) < cap then
			have[n] = redis.call("HINCRBY", KEYS[1], n, 1)
			have[field] = redis.call("HINCRBY", KEYS[1], field, add)
		else
			dropped = dropped + tonumber(add)
		end
	end
end
redis.call("EXPIRE", KEYS[1], ARGV[2])
redis.call("SADD", KEYS[3], ARGV[3])
redis.call("EXPIRE", KEYS[3], ARGV[2])
return {1, dropped}
`)

// maxAddCount bounds a count Add adds: below it, and below it in Redis (18
// digits at most, as addScript checks), HINCRBY cannot overflow int64.
const maxAddCount = 1e18

// chunkPolicies bounds the policies of one run of addScript, which blocks
// Redis while it runs.
const chunkPolicies = 1000

// chunkSeq numbers the chunks of a batch: chunk i of batch seq is
// seq*chunkSeq+i, which Lua's numbers hold exactly up to seq 9e9.
const chunkSeq = 1000000

// Add implements tlsrpt.Store. A batch is added in chunks of a thousand
// policies, each atomically, and once: given again after a failure (see
// tlsrpt.Batch.Seq), the chunks added before are skipped. A chunk that fails
// adds nothing: its script checks, before it writes, that the keys it
// writes hold a hash and a set (or nothing) and that the counters it adds to
// are counts, and Add refuses a count of 1e18 or more, or below 0, which
// could overflow one. It returns an error wrapping tlsrpt.ErrDayTaken when
// the day was taken, an error naming the key or field when one holds a
// value of the wrong type, and an error when Redis fails.
func (s *reportStore) Add(ctx context.Context, b tlsrpt.Batch) (int64, error) {
	day := dayName(b.Day)
	keys := []string{s.key("day", day), s.key("taken", day), s.daysKey()}
	var dropped int64
	for i, chunk := 0, 0; i < len(b.Results); i, chunk = i+chunkPolicies, chunk+1 {
		if chunk >= chunkSeq {
			return dropped, fmt.Errorf("redisstore: tlsrpt: batch of %d policies, more than %d", len(b.Results), chunkPolicies*chunkSeq)
		}
		args, err := s.addArgs(b, day, chunk, b.Results[i:min(i+chunkPolicies, len(b.Results))])
		if err != nil {
			return dropped, err
		}
		res, err := addScript.Run(ctx, s.rdb, keys, args...).Slice()
		if err != nil {
			return dropped, fmt.Errorf("redisstore: tlsrpt: adding to %s: %w", day, err)
		}
		code, _ := res[0].(int64)
		switch {
		case code == -1:
			return dropped, fmt.Errorf("redisstore: tlsrpt: %w: %s", tlsrpt.ErrDayTaken, day)
		case code == -2 && len(res) == 3:
			// A wrong type, found before the script wrote anything.
			n, _ := res[1].(int64)
			typ, _ := res[2].(string)
			want := map[int64]string{1: "hash", 3: "set"}[n]
			if n < 1 || int(n) > len(keys) || want == "" {
				break
			}
			return dropped, fmt.Errorf("redisstore: tlsrpt: adding to %s: key %s holds a %s, not a %s; nothing added", day, keys[n-1], quoteCut(typ), want)
		case code == -3 && len(res) == 2:
			field, _ := res[1].(string)
			return dropped, fmt.Errorf("redisstore: tlsrpt: adding to %s: field %s of %s is not a count; nothing added", day, quoteCut(field), keys[0])
		case (code == 0 || code == 1) && len(res) == 2:
			n, _ := res[1].(int64)
			dropped += n
			continue
		}
		return dropped, fmt.Errorf("redisstore: tlsrpt: adding to %s: unexpected reply %v", day, res)
	}
	return dropped, nil
}

// quoteCut returns s quoted for an error message, escaped, its first 64
// bytes at most: a field name carries a failure-detail row's JSON.
func quoteCut(s string) string {
	if len(s) <= 64 {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:64]) + "...(" + strconv.Itoa(len(s)) + " bytes)"
}

// addArgs returns the arguments of addScript for a chunk of b.
func (s *reportStore) addArgs(b tlsrpt.Batch, day string, chunk int, results []tlsrpt.PolicyResult) ([]any, error) {
	seq := ""
	if b.Source != "" {
		seq = strconv.FormatInt(b.Seq*chunkSeq+int64(chunk), 10)
	}
	args := make([]any, 0, 5+8*len(results))
	args = append(args, b.MaxDetailRows, s.retentionSeconds(), day, b.Source, seq)
	for _, pr := range results {
		pj, err := json.Marshal(pr.Policy)
		if err != nil {
			return nil, fmt.Errorf("redisstore: tlsrpt: policy of %s: %w", pr.Policy.PolicyDomain, err)
		}
		rows := 0
		for _, fd := range pr.FailureDetails {
			if fd.FailedSessionCount >= maxAddCount {
				return nil, fmt.Errorf("redisstore: tlsrpt: policy of %s: failed-session-count %d, not below %d", quoteCut(pr.Policy.PolicyDomain), fd.FailedSessionCount, int64(maxAddCount))
			}
			if fd.FailedSessionCount > 0 {
				rows++
			}
		}
		if ok, failed := pr.Summary.TotalSuccessfulSessionCount, pr.Summary.TotalFailureSessionCount; ok < 0 || failed < 0 || ok >= maxAddCount || failed >= maxAddCount {
			return nil, fmt.Errorf("redisstore: tlsrpt: policy of %s: session counts %d and %d, not from 0 to %d", quoteCut(pr.Policy.PolicyDomain), ok, failed, int64(maxAddCount-1))
		}
		args = append(args, resultID(pj, pr.Policy.RecipientDomain), pj, pr.Policy.PolicyDomain,
			pr.Summary.TotalSuccessfulSessionCount, pr.Summary.TotalFailureSessionCount, rows, pr.Policy.RecipientDomain, btoa(pr.CountOnly))
		for _, fd := range pr.FailureDetails {
			if fd.FailedSessionCount <= 0 {
				continue
			}
			n := fd.FailedSessionCount
			fd.FailedSessionCount = 0
			rj, err := json.Marshal(fd)
			if err != nil {
				return nil, fmt.Errorf("redisstore: tlsrpt: failure detail of %s: %w", pr.Policy.PolicyDomain, err)
			}
			args = append(args, rj, n)
		}
	}
	return args, nil
}

// Days implements tlsrpt.Store. It returns an error when Redis fails.
func (s *reportStore) Days(ctx context.Context) ([]time.Time, error) {
	names, err := s.rdb.SMembers(ctx, s.daysKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: tlsrpt: listing days: %w", err)
	}
	days := make([]time.Time, 0, len(names))
	for _, name := range names {
		if t, err := time.Parse(time.DateOnly, name); err == nil {
			days = append(days, t)
		}
	}
	slices.SortFunc(days, time.Time.Compare)
	return days, nil
}

// claimPrefix starts the value of a day's "taken" key while it is claimed.
const claimPrefix = "claimed "

// claimScript claims the day ARGV[5] for the owner ARGV[1] until ARGV[3]
// (Unix milliseconds), unless it was released (its mark KEYS[2] holds
// anything but a claim: it returns {0}) or another owner holds a claim not
// lapsed at ARGV[2] ({-1, mark}). The first claim renames the
// day's hash KEYS[1] to KEYS[3]; a day without counts is marked released
// at once ({0}). Else it returns {1}: the caller is to read KEYS[3]. The
// mark and the hash, and the set of days KEYS[4], are kept for ARGV[4]
// seconds at least.
var claimScript = redis.NewScript(`
local mark = redis.call("GET", KEYS[2])
if mark then
	local lapse, holder = string.match(mark, "^claimed (%d+) (.*)$")
	if not lapse then return {0} end
	if holder ~= ARGV[1] and tonumber(lapse) > tonumber(ARGV[2]) then return {-1, mark} end
elseif redis.call("EXISTS", KEYS[1]) == 1 then
	redis.call("RENAME", KEYS[1], KEYS[3])
end
if redis.call("EXISTS", KEYS[3]) == 0 then
	redis.call("SET", KEYS[2], "released", "EX", ARGV[4])
	redis.call("SREM", KEYS[4], ARGV[5])
	return {0}
end
redis.call("SET", KEYS[2], "claimed " .. ARGV[3] .. " " .. ARGV[1], "EX", ARGV[4])
redis.call("EXPIRE", KEYS[3], ARGV[4])
if redis.call("TTL", KEYS[4]) < tonumber(ARGV[4]) then redis.call("EXPIRE", KEYS[4], ARGV[4]) end
return {1}
`)

// Take implements tlsrpt.Store: of all the Takes of a day, of any MTA, one
// claims it and gets its counts; the claimant's Takes get them again until
// Release. It returns an error wrapping tlsrpt.ErrDayClaimed when another
// Owner holds a claim that has not lapsed (or took the day over while this
// Take read it), and an error when Redis fails or the day's hash holds a
// field it cannot read; the day then stays claimed, and a Take of the same
// Owner resumes.
func (s *reportStore) Take(ctx context.Context, day time.Time) ([]tlsrpt.PolicyResult, error) {
	name := dayName(day)
	taking, taken := s.key("taking", name), s.key("taken", name)
	keys := []string{s.key("day", name), taken, taking, s.daysKey()}
	now := s.now()
	lapse := now.Add(s.opts.Lease).UnixMilli()
	res, err := claimScript.Run(ctx, s.rdb, keys, s.opts.Owner, now.UnixMilli(), lapse, s.retentionSeconds(), name).Slice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: tlsrpt: taking %s: %w", name, err)
	}
	code, _ := res[0].(int64)
	switch {
	case code == -1 && len(res) == 2:
		mark, _ := res[1].(string)
		return nil, s.claimedError(name, mark)
	case code == 0:
		return nil, nil
	case code != 1:
		return nil, fmt.Errorf("redisstore: tlsrpt: taking %s: unexpected reply %v", name, res)
	}
	fields, err := s.readHash(ctx, taking)
	if err != nil {
		return nil, err
	}
	// The claim may have lapsed while reading, and another taken the
	// day over and released it: what was read may be a part.
	mark, err := s.rdb.Get(ctx, taken).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: tlsrpt: taking %s: checking the claim: %w", name, err)
	}
	holder, _, claimed := parseClaim(mark)
	switch {
	case !claimed:
		return nil, nil // released meanwhile, by an owner that took over
	case holder != s.opts.Owner:
		return nil, s.claimedError(name, mark)
	}
	results, err := decodeDay(fields)
	if err != nil {
		return nil, fmt.Errorf("redisstore: tlsrpt: reading %s: %w", taking, err)
	}
	return results, nil
}

// readHash returns the fields of the hash key, read with HSCAN.
func (s *reportStore) readHash(ctx context.Context, key string) (map[string]string, error) {
	// HSCAN may return a field twice: a map keeps one.
	fields := map[string]string{}
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, key, cursor, "", 10000).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: tlsrpt: reading %s: %w", key, err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			fields[kv[i]] = kv[i+1]
		}
		if cursor = next; cursor == 0 {
			return fields, nil
		}
	}
}

// parseClaim returns the owner of the claim mark, and when it lapses; ok is
// false when mark is no claim.
func parseClaim(mark string) (owner string, lapse time.Time, ok bool) {
	rest, ok := strings.CutPrefix(mark, claimPrefix)
	if !ok {
		return "", time.Time{}, false
	}
	ms, owner, ok := strings.Cut(rest, " ")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil {
		return "", time.Time{}, false
	}
	return owner, time.UnixMilli(n).UTC(), true
}

// claimedError returns the error of a Take of day, claimed as mark says.
func (s *reportStore) claimedError(day, mark string) error {
	owner, lapse, _ := parseClaim(mark)
	return fmt.Errorf("redisstore: tlsrpt: taking %s: %w: by %q until %s", day, tlsrpt.ErrDayClaimed, owner, lapse.Format(time.RFC3339))
}

// releaseScript releases the day ARGV[3] when its mark KEYS[1] holds a claim
// of the owner ARGV[1], lapsed or not: it marks the day released for ARGV[2]
// seconds, deletes its counts KEYS[2] and removes it from the set KEYS[3],
// and returns 1. Else it returns 0.
var releaseScript = redis.NewScript(`
local mark = redis.call("GET", KEYS[1])
if not mark then return 0 end
local lapse, holder = string.match(mark, "^claimed (%d+) (.*)$")
if not lapse or holder ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[1], "released", "EX", ARGV[2])
redis.call("UNLINK", KEYS[2])
redis.call("SREM", KEYS[3], ARGV[3])
return 1
`)

// Release implements tlsrpt.Store: it deletes the counts of day when the
// day's claim is this store value's Owner's, lapsed or not, and leaves the
// day marked taken for Retention. A day claimed by another Owner (one that
// took it over after this one's claim lapsed), released, or never taken is
// left as it is. It returns an error when Redis fails.
func (s *reportStore) Release(ctx context.Context, day time.Time) error {
	name := dayName(day)
	keys := []string{s.key("taken", name), s.key("taking", name), s.daysKey()}
	if err := releaseScript.Run(ctx, s.rdb, keys, s.opts.Owner, s.retentionSeconds(), name).Err(); err != nil {
		return fmt.Errorf("redisstore: tlsrpt: releasing %s: %w", name, err)
	}
	return nil
}

// Results implements tlsrpt.Store: it reads the hash of day, not taken or
// claimed, with HSCAN, without claiming it. Counts added while it reads
// may or may not be in it. It returns an error when Redis fails or the hash
// holds a field it cannot read.
func (s *reportStore) Results(ctx context.Context, day time.Time) ([]tlsrpt.PolicyResult, error) {
	name := dayName(day)
	for _, kind := range []string{"day", "taking"} {
		key := s.key(kind, name)
		fields, err := s.readHash(ctx, key)
		if err != nil {
			return nil, err
		}
		if len(fields) == 0 {
			continue
		}
		results, err := decodeDay(fields)
		if err != nil {
			return nil, fmt.Errorf("redisstore: tlsrpt: reading %s: %w", key, err)
		}
		return results, nil
	}
	return nil, nil
}

// deleteScript deletes from the day's hash KEYS[1] the results whose policy
// domain (in the JSON of "p:<pid>") or recipient domain ("d:<pid>") is
// ARGV[1]: all their fields, and their rows from the count "n:" of their
// policy domain. It returns the number of fields deleted. It reads every
// field name of the hash (HKEYS), which blocks Redis for a moment on a day
// of many policies: an admin's operation, not a delivery's.
var deleteScript = redis.NewScript(`
if redis.call("TYPE", KEYS[1]).ok ~= "hash" then return 0 end
local fields = redis.call("HKEYS", KEYS[1])
local gone, domainOf = {}, {}
for _, f in ipairs(fields) do
	local kind, pid = string.sub(f, 1, 2), string.sub(f, 3)
	if kind == "p:" then
		local ok, p = pcall(cjson.decode, redis.call("HGET", KEYS[1], f))
		if ok and type(p) == "table" then
			domainOf[pid] = p["policy-domain"]
			if p["policy-domain"] == ARGV[1] then gone[pid] = true end
		end
	elseif kind == "d:" and redis.call("HGET", KEYS[1], f) == ARGV[1] then
		gone[pid] = true
	end
end
local n, rows = 0, {}
for _, f in ipairs(fields) do
	local kind, rest = string.sub(f, 1, 2), string.sub(f, 3)
	local pid = rest
	if kind == "r:" then pid = string.match(rest, "^([^:]*)") end
	if (kind == "p:" or kind == "s:" or kind == "f:" or kind == "d:" or kind == "z:" or kind == "r:") and gone[pid] then
		redis.call("HDEL", KEYS[1], f)
		n = n + 1
		local d = domainOf[pid]
		if kind == "r:" and d then rows[d] = (rows[d] or 0) + 1 end
	end
end
for d, c in pairs(rows) do
	local left = tonumber(redis.call("HGET", KEYS[1], "n:" .. d) or "0") or 0
	if left - c > 0 then
		redis.call("HSET", KEYS[1], "n:" .. d, left - c)
	else
		redis.call("HDEL", KEYS[1], "n:" .. d)
	end
end
return n
`)

// Delete implements tlsrpt.Store: for each day not taken, a script deletes
// the fields of domain's results from the day's hash, atomically, so that
// counts added meanwhile either go before or come after. It returns an
// error when Redis fails; the days before are done.
func (s *reportStore) Delete(ctx context.Context, domain string) error {
	names, err := s.rdb.SMembers(ctx, s.daysKey()).Result()
	if err != nil {
		return fmt.Errorf("redisstore: tlsrpt: deleting the results of %s: listing days: %w", quoteCut(domain), err)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := deleteScript.Run(ctx, s.rdb, []string{s.key("day", name)}, domain).Err(); err != nil {
			return fmt.Errorf("redisstore: tlsrpt: deleting the results of %s from %s: %w", quoteCut(domain), name, err)
		}
	}
	return nil
}

// decodeDay returns the policies of a day's hash fields.
func decodeDay(fields map[string]string) ([]tlsrpt.PolicyResult, error) {
	byID := map[string]*tlsrpt.PolicyResult{}
	get := func(pid string) *tlsrpt.PolicyResult {
		pr := byID[pid]
		if pr == nil {
			pr = &tlsrpt.PolicyResult{}
			byID[pid] = pr
		}
		return pr
	}
	var seen []string // ids with a policy, in no order
	recipients := map[string]string{}
	countOnly := map[string]bool{}
	for f, v := range fields {
		kind, rest, _ := strings.Cut(f, ":")
		switch kind {
		case "p":
			pr := get(rest)
			if err := json.Unmarshal([]byte(v), &pr.Policy); err != nil {
				return nil, fmt.Errorf("field %q: %w", f, err)
			}
			seen = append(seen, rest)
		case "d":
			recipients[rest] = v
		case "z":
			countOnly[rest] = v == "1"
		case "s", "f":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f, err)
			}
			if kind == "s" {
				get(rest).Summary.TotalSuccessfulSessionCount = n
			} else {
				get(rest).Summary.TotalFailureSessionCount = n
			}
		case "r":
			pid, row, ok := strings.Cut(rest, ":")
			n, err := strconv.ParseInt(v, 10, 64)
			if !ok || err != nil {
				return nil, fmt.Errorf("field %q: not a failure-detail row of a count", f)
			}
			var fd tlsrpt.FailureDetail
			if err := json.Unmarshal([]byte(row), &fd); err != nil {
				return nil, fmt.Errorf("field %q: %w", f, err)
			}
			fd.FailedSessionCount = n
			pr := get(pid)
			pr.FailureDetails = append(pr.FailureDetails, fd)
		}
	}
	if len(seen) != len(byID) {
		return nil, errors.New("counts of a policy without its policy")
	}
	results := make([]tlsrpt.PolicyResult, 0, len(seen))
	for _, pid := range seen {
		pr := byID[pid]
		pr.Policy.RecipientDomain = recipients[pid]
		pr.CountOnly = countOnly[pid]
		results = append(results, *pr)
	}
	return results, nil
}
