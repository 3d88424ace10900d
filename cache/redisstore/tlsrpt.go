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
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts/tlsrpt"
)

// TLSRPTOptions configure a TLSRPTStore.
type TLSRPTOptions struct {
	// Prefix starts every key, e.g. "mtasts:" (the default) gives
	// "mtasts:{tlsrpt}:day:2016-04-01".
	Prefix string
	// Retention is how long a day's counts stay in Redis after the last
	// counts added to it when no one takes it, and how long the mark of a
	// day taken lasts. Default 7 days.
	Retention time.Duration
}

// TLSRPTStore is a tlsrpt.Store in Redis: every MTA of a fleet adds to the
// same counters, so that the fleet sends one report per policy domain and
// day (RFC 8460 4.1), not one per MTA, and one MTA takes each day. It is safe
// for concurrent use.
//
// # Keys
//
// All keys share the Redis Cluster hash tag {tlsrpt}, so that its scripts,
// which touch several, run in a Cluster too. With the default Prefix:
//
//   - "mtasts:{tlsrpt}:day:2016-04-01" is a hash of the day's counts, kept
//     for Retention after the last Add. Per policy, of id <pid> (the first
//     128 bits of the SHA-256 of its JSON, in hex): "p:<pid>" holds its
//     JSON as a report writes it, "s:<pid>" and "f:<pid>" its successful
//     and failed sessions, "r:<pid>:<row>" the sessions of a failure-detail
//     row, <row> being the row's JSON with a count of 0. "n:<domain>"
//     counts a policy domain's distinct rows, for the cap on them, and
//     "q:<source>" the last batch added from a recorder.
//   - "mtasts:{tlsrpt}:days" is the set of the days with counts.
//   - "mtasts:{tlsrpt}:taken:2016-04-01", set when the day is taken, holds
//     the token of the store value that took it, for Retention.
//   - "mtasts:{tlsrpt}:taking:2016-04-01" is the day's hash, renamed by
//     the Take that got it while it reads it, then deleted.
//
// Add runs one script per thousand policies: HINCRBY on the counters, the
// cap on rows checked and counted in the same script, nothing when the day
// was taken. Take runs a script that marks the day taken and renames its
// hash, atomically, so that of any number of Takes, by any number of MTAs,
// one gets the day; it then reads the hash with HSCAN and deletes it. A
// Take that fails while reading can be called again on the same store
// value, which resumes; should its MTA die before, the day's counts stay
// under the "taking" key for Retention, unreported.
type TLSRPTStore struct {
	rdb   redis.UniversalClient
	opts  TLSRPTOptions
	token string // identifies this store value's Takes

	// takeMu makes this value's Takes one at a time: one that resumes
	// must not read a day another is reading.
	takeMu sync.Mutex
}

var _ tlsrpt.Store = (*TLSRPTStore)(nil)

// NewTLSRPTStore returns a TLSRPTStore using rdb, e.g. from
// redis.NewUniversalClient. It does not contact Redis.
func NewTLSRPTStore(rdb redis.UniversalClient, opts TLSRPTOptions) *TLSRPTStore {
	if opts.Prefix == "" {
		opts.Prefix = "mtasts:"
	}
	if opts.Retention <= 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	return &TLSRPTStore{rdb: rdb, opts: opts, token: newToken()}
}

func (s *TLSRPTStore) key(kind, day string) string {
	return s.opts.Prefix + "{tlsrpt}:" + kind + ":" + day
}

func (s *TLSRPTStore) daysKey() string { return s.opts.Prefix + "{tlsrpt}:days" }

func (s *TLSRPTStore) retentionSeconds() int64 {
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

// addScript adds a chunk of a batch to the day's hash KEYS[1], unless the
// day was taken (KEYS[2] exists: it returns {-1, 0}) or the chunk was added
// before (its number ARGV[5] is not above the field "q:" ARGV[4]: {0, 0}).
// Else it returns {1, dropped}: the failed sessions whose rows it dropped,
// past ARGV[1] distinct rows per policy domain. It keeps the hash, and the
// set of days KEYS[3], to which it adds the day ARGV[3], for ARGV[2]
// seconds. The policies follow from ARGV[6]: id, JSON, domain, successes,
// failures, number of rows, then per row its JSON and sessions.
var addScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[2]) == 1 then return {-1, 0} end
if ARGV[4] ~= "" then
	local q = "q:" .. ARGV[4]
	local last = redis.call("HGET", KEYS[1], q)
	if last and tonumber(ARGV[5]) <= tonumber(last) then return {0, 0} end
	redis.call("HSET", KEYS[1], q, ARGV[5])
end
local cap = tonumber(ARGV[1])
local dropped = 0
local i = 6
while i <= #ARGV do
	local pid, dom = ARGV[i], ARGV[i+2]
	local ok, failed, rows = tonumber(ARGV[i+3]), tonumber(ARGV[i+4]), tonumber(ARGV[i+5])
	redis.call("HSETNX", KEYS[1], "p:" .. pid, ARGV[i+1])
	if ok ~= 0 then redis.call("HINCRBY", KEYS[1], "s:" .. pid, ok) end
	if failed ~= 0 then redis.call("HINCRBY", KEYS[1], "f:" .. pid, failed) end
	i = i + 6
	for j = 1, rows do
		local field, n = "r:" .. pid .. ":" .. ARGV[i], ARGV[i+1]
		i = i + 2
		if redis.call("HEXISTS", KEYS[1], field) == 1 then
			redis.call("HINCRBY", KEYS[1], field, n)
		elseif cap <= 0 or tonumber(redis.call("HGET", KEYS[1], "n:" .. dom) or "0") < cap then
			redis.call("HINCRBY", KEYS[1], "n:" .. dom, 1)
			redis.call("HINCRBY", KEYS[1], field, n)
		else
			dropped = dropped + tonumber(n)
		end
	end
end
redis.call("EXPIRE", KEYS[1], ARGV[2])
redis.call("SADD", KEYS[3], ARGV[3])
redis.call("EXPIRE", KEYS[3], ARGV[2])
return {1, dropped}
`)

// chunkPolicies bounds the policies of one run of addScript, which blocks
// Redis while it runs.
const chunkPolicies = 1000

// chunkSeq numbers the chunks of a batch: chunk i of batch seq is
// seq*chunkSeq+i, which Lua's numbers hold exactly up to seq 9e9.
const chunkSeq = 1000000

// Add implements tlsrpt.Store. A batch is added in chunks of a thousand
// policies, each atomically, and once: given again after a failure (see
// tlsrpt.Batch.Seq), the chunks added before are skipped. It returns an
// error wrapping tlsrpt.ErrDayTaken when the day was taken, and an error
// when Redis fails.
func (s *TLSRPTStore) Add(ctx context.Context, b tlsrpt.Batch) (int64, error) {
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
		res, err := addScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
		if err != nil {
			return dropped, fmt.Errorf("redisstore: tlsrpt: adding to %s: %w", day, err)
		}
		if len(res) != 2 {
			return dropped, fmt.Errorf("redisstore: tlsrpt: adding to %s: unexpected reply %v", day, res)
		}
		if res[0] == -1 {
			return dropped, fmt.Errorf("redisstore: tlsrpt: %w: %s", tlsrpt.ErrDayTaken, day)
		}
		dropped += res[1]
	}
	return dropped, nil
}

// addArgs returns the arguments of addScript for a chunk of b.
func (s *TLSRPTStore) addArgs(b tlsrpt.Batch, day string, chunk int, results []tlsrpt.PolicyResult) ([]any, error) {
	seq := ""
	if b.Source != "" {
		seq = strconv.FormatInt(b.Seq*chunkSeq+int64(chunk), 10)
	}
	args := make([]any, 0, 5+6*len(results))
	args = append(args, b.MaxDetailRows, s.retentionSeconds(), day, b.Source, seq)
	for _, pr := range results {
		pj, err := json.Marshal(pr.Policy)
		if err != nil {
			return nil, fmt.Errorf("redisstore: tlsrpt: policy of %s: %w", pr.Policy.PolicyDomain, err)
		}
		rows := 0
		for _, fd := range pr.FailureDetails {
			if fd.FailedSessionCount > 0 {
				rows++
			}
		}
		args = append(args, policyID(pj), pj, pr.Policy.PolicyDomain,
			pr.Summary.TotalSuccessfulSessionCount, pr.Summary.TotalFailureSessionCount, rows)
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
func (s *TLSRPTStore) Days(ctx context.Context) ([]time.Time, error) {
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

// claimScript takes the day: unless it was taken (KEYS[2] exists), it marks
// it taken by ARGV[1] for ARGV[3] seconds, removes the day ARGV[2] from the
// set KEYS[4], and renames the day's hash KEYS[1] to KEYS[3]. It returns 1
// when the caller is to read KEYS[3]: it took the day now, or took it
// before and has not finished reading it; else 0.
var claimScript = redis.NewScript(`
local owner = redis.call("GET", KEYS[2])
if owner then
	if owner == ARGV[1] and redis.call("EXISTS", KEYS[3]) == 1 then return 1 end
	return 0
end
redis.call("SET", KEYS[2], ARGV[1], "EX", ARGV[3])
redis.call("SREM", KEYS[4], ARGV[2])
if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
redis.call("RENAME", KEYS[1], KEYS[3])
redis.call("EXPIRE", KEYS[3], ARGV[3])
return 1
`)

// Take implements tlsrpt.Store: of all the Takes of a day, of any MTA, one
// gets its counts. It returns an error when Redis fails or the day's hash
// holds a field it cannot read; a Take that failed after it took the day
// resumes when called again on the same store value.
func (s *TLSRPTStore) Take(ctx context.Context, day time.Time) ([]tlsrpt.PolicyResult, error) {
	s.takeMu.Lock()
	defer s.takeMu.Unlock()
	name := dayName(day)
	taking := s.key("taking", name)
	keys := []string{s.key("day", name), s.key("taken", name), taking, s.daysKey()}
	n, err := claimScript.Run(ctx, s.rdb, keys, s.token, name, s.retentionSeconds()).Int()
	if err != nil {
		return nil, fmt.Errorf("redisstore: tlsrpt: taking %s: %w", name, err)
	}
	if n == 0 {
		return nil, nil
	}
	// HSCAN may return a field twice: a map keeps one.
	fields := map[string]string{}
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, taking, cursor, "", 10000).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: tlsrpt: reading %s: %w", taking, err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			fields[kv[i]] = kv[i+1]
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	results, err := decodeDay(fields)
	if err != nil {
		return nil, fmt.Errorf("redisstore: tlsrpt: reading %s: %w", taking, err)
	}
	if err := s.rdb.Unlink(ctx, taking).Err(); err != nil {
		return nil, fmt.Errorf("redisstore: tlsrpt: deleting %s: %w", taking, err)
	}
	return results, nil
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
	for f, v := range fields {
		kind, rest, _ := strings.Cut(f, ":")
		switch kind {
		case "p":
			pr := get(rest)
			if err := json.Unmarshal([]byte(v), &pr.Policy); err != nil {
				return nil, fmt.Errorf("field %q: %w", f, err)
			}
			seen = append(seen, rest)
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
		results = append(results, *byID[pid])
	}
	return results, nil
}
