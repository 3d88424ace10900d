package redisstore

import (
	"cmp"
	"context"
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

// outbox is the tlsrpt.Outbox of NewOutbox.
type outbox struct {
	rdb  redis.UniversalClient
	opts Options
	now  func() time.Time
}

// NewOutbox returns a tlsrpt.Outbox in Redis using rdb, e.g. from
// redis.NewUniversalClient; it does not contact Redis. A fleet of MTAs
// shares it, beside the store of NewReportStore: a day's reports, put by
// the member that took the day, or put again by one that took the day over
// after a crash (and skipped, being of the same tlsrpt.Report.Key), are
// handed to one member at a time, and each is sent once by the fleet. It
// reads Options.Prefix, Owner and Lease. The outbox is safe for concurrent
// use.
//
// Pending leases each report it returns to Owner until now+Lease,
// atomically per report, so that while a lease holds no other member gets
// the report; the owner's own Pending gets it again and renews the lease.
// A lease that lapsed, as its member died, lets any member take the report
// over, with the rua URIs already delivered to. A report that does not
// decode is named in Pending's error, every time, and left in place,
// leased to no one: for an operator to look at and remove, or for a member
// of a later release to send.
//
// # Keys
//
// All keys share the Redis Cluster hash tag {tlsrpt} of NewReportStore, so
// that its scripts, which touch several, run in a Cluster too. With the
// default Prefix, and <key> a report's Key, e.g. "2016-04-01
// company-y.example":
//
//   - "mtasts:{tlsrpt}:outbox:reports" is a hash of the reports pending:
//     <key> holds the report's JSON (RFC 8460 4.4) as tlsrpt.Report
//     marshals it.
//   - "mtasts:{tlsrpt}:outbox:leases" is a hash of the leases of reports
//     pending: <key> holds "<ms> <owner>", the lease lapsing at <ms>, a
//     Unix time in milliseconds, and <owner> the Owner of the
//     member that holds it.
//   - "mtasts:{tlsrpt}:outbox:delivered:<key>" is the list of the rua URIs
//     that took the report, in the order they did.
//   - "mtasts:{tlsrpt}:outbox:done" is a sorted set of the reports done:
//     <key>, scored by the Unix time of the report's DateRange.Start. A
//     Put removes the marks of reports that start more than 31 days
//     before the latest report it puts.
//
// Done removes a report's field of "reports" and "leases" and its
// "delivered" list, and adds its mark to "done", in one script. None of
// the keys expires: the reports pending stay until done, and the marks
// until a Put forgets them.
func NewOutbox(rdb redis.UniversalClient, opts Options) tlsrpt.Outbox {
	opts = opts.withDefaults(time.Hour)
	return &outbox{rdb: rdb, opts: opts, now: opts.clock()}
}

func (o *outbox) key(name string) string {
	return o.opts.Prefix + "{tlsrpt}:outbox:" + name
}

func (o *outbox) deliveredKey(reportKey string) string {
	return o.key("delivered:" + reportKey)
}

// outboxMemory is how long the outbox remembers a report done, counted
// from its day (see tlsrpt.Outbox).
const outboxMemory = 31 * 24 * time.Hour

// chunkReports bounds the reports of one run of a script, which blocks
// Redis while it runs.
const chunkReports = 500

// putScript puts the reports that follow ARGV[1], as key, start and JSON,
// in the hash KEYS[1], unless a report of the same key is there, or marked
// done in the sorted set KEYS[2]; then it removes the marks scored below
// ARGV[1]. It returns the number of reports put.
var putScript = redis.NewScript(`
local put = 0
for i = 2, #ARGV, 3 do
	local k = ARGV[i]
	if redis.call("HEXISTS", KEYS[1], k) == 0 and not redis.call("ZSCORE", KEYS[2], k) then
		redis.call("HSET", KEYS[1], k, ARGV[i+2])
		put = put + 1
	end
end
redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", "(" .. ARGV[1])
return put
`)

// Put implements tlsrpt.Outbox: it puts the reports whose Key is neither
// pending nor marked done, atomically per chunk of 500 reports. It returns
// an error when a report cannot be marshalled or Redis fails; the chunks
// before have been put.
func (o *outbox) Put(ctx context.Context, reports []tlsrpt.Report) error {
	keys := []string{o.key("reports"), o.key("done")}
	for i := 0; i < len(reports); i += chunkReports {
		chunk := reports[i:min(i+chunkReports, len(reports))]
		args := make([]any, 1, 1+3*len(chunk))
		var latest time.Time
		for j := range chunk {
			r := &chunk[j]
			js, err := encodeReport(r)
			if err != nil {
				return fmt.Errorf("redisstore: tlsrpt outbox: putting report %q: %w", r.ReportID, err)
			}
			args = append(args, r.Key(), r.DateRange.Start.Unix(), js)
			if r.DateRange.Start.After(latest) {
				latest = r.DateRange.Start
			}
		}
		args[0] = latest.Add(-outboxMemory).Unix()
		if err := putScript.Run(ctx, o.rdb, keys, args...).Err(); err != nil {
			return fmt.Errorf("redisstore: tlsrpt outbox: putting report %q and %d more: %w", chunk[0].ReportID, len(chunk)-1, err)
		}
	}
	return nil
}

// leaseScript leases the reports of the keys ARGV[4:], pending in the hash
// KEYS[1], that are not leased, in the hash KEYS[2], to another owner than
// ARGV[1] until after ARGV[2]: it leases them to ARGV[1] until ARGV[3], and
// returns, for each, its key, its JSON and its list of URIs delivered to,
// KEYS[i-1] for ARGV[i].
var leaseScript = redis.NewScript(`
local out = {}
for i = 4, #ARGV do
	local k = ARGV[i]
	local js = redis.call("HGET", KEYS[1], k)
	local free = js ~= false
	if free then
		local lease = redis.call("HGET", KEYS[2], k)
		if lease then
			local lapse, holder = string.match(lease, "^(%d+) (.*)$")
			free = not lapse or holder == ARGV[1] or tonumber(lapse) <= tonumber(ARGV[2])
		end
	end
	if free then
		redis.call("HSET", KEYS[2], k, ARGV[3] .. " " .. ARGV[1])
		out[#out+1] = k
		out[#out+1] = js
		out[#out+1] = redis.call("LRANGE", KEYS[i-1], 0, -1)
	end
end
return out
`)

// unleaseScript ends the lease of the report ARGV[1] in the hash KEYS[1]
// when it is ARGV[2].
var unleaseScript = redis.NewScript(`
if redis.call("HGET", KEYS[1], ARGV[1]) == ARGV[2] then redis.call("HDEL", KEYS[1], ARGV[1]) end
return 0
`)

// Pending implements tlsrpt.Outbox: it returns the reports pending that no
// other member holds a lease of, and leases them to this Owner until
// now+Lease, in order of DateRange.Start, policy domain, then
// report-id. A report that does not decode is left in place, leased to no
// one, and named in the error returned along with the other reports. It
// returns an error when Redis fails, with the reports leased before.
func (o *outbox) Pending(ctx context.Context) ([]tlsrpt.PendingReport, error) {
	reportsKey, leasesKey := o.key("reports"), o.key("leases")
	all, err := o.rdb.HKeys(ctx, reportsKey).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: tlsrpt outbox: listing the reports pending: %w", err)
	}
	now := o.now()
	lapse := strconv.FormatInt(now.Add(o.opts.Lease).UnixMilli(), 10)
	var out []tlsrpt.PendingReport
	var errs []error
	for i := 0; i < len(all); i += chunkReports {
		chunk := all[i:min(i+chunkReports, len(all))]
		keys := make([]string, 2, 2+len(chunk))
		keys[0], keys[1] = reportsKey, leasesKey
		args := make([]any, 3, 3+len(chunk))
		args[0], args[1], args[2] = o.opts.Owner, now.UnixMilli(), lapse
		for _, k := range chunk {
			keys = append(keys, o.deliveredKey(k))
			args = append(args, k)
		}
		res, err := leaseScript.Run(ctx, o.rdb, keys, args...).Slice()
		if err != nil {
			errs = append(errs, fmt.Errorf("redisstore: tlsrpt outbox: leasing the reports pending: %w", err))
			break
		}
		for j := 0; j+2 < len(res); j += 3 {
			k, _ := res[j].(string)
			js, _ := res[j+1].(string)
			p := tlsrpt.PendingReport{Delivered: []string{}}
			if uris, ok := res[j+2].([]any); ok {
				for _, u := range uris {
					if s, ok := u.(string); ok {
						p.Delivered = append(p.Delivered, s)
					}
				}
			}
			if len(p.Delivered) == 0 {
				p.Delivered = nil
			}
			if err := decodeReport(js, &p.Report); err != nil {
				errs = append(errs, o.undecodable(ctx, k, lapse, err))
				continue
			}
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b tlsrpt.PendingReport) int {
		return cmp.Or(
			a.Report.DateRange.Start.Compare(b.Report.DateRange.Start),
			strings.Compare(reportDomain(&a.Report), reportDomain(&b.Report)),
			strings.Compare(a.Report.ReportID, b.Report.ReportID),
		)
	})
	return out, errors.Join(errs...)
}

// undecodable ends the lease, until lapse, of the report of key that did
// not decode with err, and returns the error naming it.
func (o *outbox) undecodable(ctx context.Context, key, lapse string, err error) error {
	err = fmt.Errorf("redisstore: tlsrpt outbox: report %q in the hash %s does not decode, left in place: %w", key, o.key("reports"), err)
	if uerr := unleaseScript.Run(ctx, o.rdb, []string{o.key("leases")}, key, lapse+" "+o.opts.Owner).Err(); uerr != nil {
		err = errors.Join(err, fmt.Errorf("redisstore: tlsrpt outbox: ending the lease of %q: %w", key, uerr))
	}
	return err
}

// storedReport is a report with a Domain as the hash of reports holds it;
// one without is held as its JSON alone.
type storedReport struct {
	Domain string          `json:"domain"`
	Report json.RawMessage `json:"report"`
}

// encodeReport returns the JSON of r to hold in the hash of reports.
func encodeReport(r *tlsrpt.Report) ([]byte, error) {
	js, err := json.Marshal(r)
	if err != nil || r.Domain == "" {
		return js, err
	}
	return json.Marshal(storedReport{Domain: r.Domain, Report: js})
}

// decodeReport reads what encodeReport wrote into r.
func decodeReport(js string, r *tlsrpt.Report) error {
	if !strings.HasPrefix(js, `{"domain":`) {
		return json.Unmarshal([]byte(js), r)
	}
	var sr storedReport
	if err := json.Unmarshal([]byte(js), &sr); err != nil {
		return err
	}
	if err := json.Unmarshal(sr.Report, r); err != nil {
		return err
	}
	r.Domain = sr.Domain
	return nil
}

// reportDomain returns the domain r is sent to: its Domain, or else the
// policy domain of its first policy, or "".
func reportDomain(r *tlsrpt.Report) string {
	if r.Domain != "" {
		return r.Domain
	}
	if len(r.Policies) == 0 {
		return ""
	}
	return r.Policies[0].Policy.PolicyDomain
}

// deliveredScript appends ARGV[2] to the list KEYS[2] of the report ARGV[1]
// unless it holds it or the report is not pending in the hash KEYS[1].
var deliveredScript = redis.NewScript(`
if redis.call("HEXISTS", KEYS[1], ARGV[1]) == 0 then return 0 end
for _, u in ipairs(redis.call("LRANGE", KEYS[2], 0, -1)) do
	if u == ARGV[2] then return 0 end
end
redis.call("RPUSH", KEYS[2], ARGV[2])
return 1
`)

// Delivered implements tlsrpt.Outbox: it appends uri to the URIs that took
// report, once. A report not pending is left as it is. It returns an error
// when Redis fails.
func (o *outbox) Delivered(ctx context.Context, report *tlsrpt.Report, uri string) error {
	k := report.Key()
	if err := deliveredScript.Run(ctx, o.rdb, []string{o.key("reports"), o.deliveredKey(k)}, k, uri).Err(); err != nil {
		return fmt.Errorf("redisstore: tlsrpt outbox: marking report %q delivered to %s: %w", report.ReportID, uri, err)
	}
	return nil
}

// doneScript removes the report ARGV[1] from the hash KEYS[1], its lease
// from KEYS[2] and its list KEYS[4], and marks it done in the sorted set
// KEYS[3] with the score ARGV[2]; unless it is not pending.
var doneScript = redis.NewScript(`
if redis.call("HDEL", KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call("HDEL", KEYS[2], ARGV[1])
redis.call("DEL", KEYS[4])
redis.call("ZADD", KEYS[3], ARGV[2], ARGV[1])
return 1
`)

// Sent implements tlsrpt.Outbox: it reads the sorted set of the reports
// done, whose members are their Keys, scored by their day. It returns an
// error when Redis fails.
func (o *outbox) Sent(ctx context.Context) ([]string, error) {
	keys, err := o.rdb.ZRange(ctx, o.key("done"), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: tlsrpt outbox: listing the reports done: %w", err)
	}
	return keys, nil
}

// Done implements tlsrpt.Outbox: it removes report, whichever member holds
// its lease, and marks its Key done. A report not pending is left as it
// is. It returns an error when Redis fails.
func (o *outbox) Done(ctx context.Context, report *tlsrpt.Report) error {
	k := report.Key()
	keys := []string{o.key("reports"), o.key("leases"), o.key("done"), o.deliveredKey(k)}
	if err := doneScript.Run(ctx, o.rdb, keys, k, report.DateRange.Start.Unix()).Err(); err != nil {
		return fmt.Errorf("redisstore: tlsrpt outbox: marking report %q done: %w", report.ReportID, err)
	}
	return nil
}
