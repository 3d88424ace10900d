// Package redisstore keeps MTA-STS policies in Redis, so that a fleet of MTAs
// shares one policy cache: a policy one MTA fetched protects mail from all of
// them, a new or restarted MTA starts with the fleet's memory, and when
// several miss a domain at once one fetches for all (see cache.Locker).
//
// For TLS reporting (RFC 8460, package tlsrpt), NewReportStore and NewOutbox
// let the fleet count its sessions in one place and send each policy domain's
// daily report once, across crashes of its members.
//
// It is a module of its own, so that importing mtasts or its cache never pulls
// in a Redis client.
//
// A Redis that is down or slow never stops mail: every operation is bounded by
// a short timeout, and the cache goes on with its memory and the network,
// counting and logging the errors; after a failure the store leaves Redis
// alone for a second (Options.RetryAfter), then tries again, and go-redis
// reconnects when Redis is back.
// The bound holds even for a Redis that accepts commands and never answers,
// and even with a client that ignores contexts (go-redis does, unless
// ContextTimeoutEnabled is set): the store then stops waiting at the timeout
// and leaves the command to the client's own ReadTimeout. Setting
// ContextTimeoutEnabled, with short dial, read and write timeouts, saves that
// goroutine per hung command.
//
// Any go-redis client works: a single server (with a password, with TLS), a
// Cluster or a Sentinel set-up, through redis.NewUniversalClient.
//
// # Keys
//
// A policy is kept under Options.Prefix + "policy:" + the domain in A-label
// form, e.g. "mtasts:policy:xn--bcher-kva.example", and expires in Redis when
// the policy does. The fetch lock of a domain is Options.Prefix + "lock:" +
// the domain; it holds a random token, new for each Lock, so that only the
// Lock that took it releases it (by a compare-and-delete script), also among
// caches sharing one Store value. It is taken for twice Options.Timeout
// (SET NX PX), then, once that reply came in time, extended to
// Options.Lease (a compare-and-expire script). A reply that comes too late
// thus leaves a lock of twice Timeout at most, never one of Lease that the
// cache, whose Lock failed, would not release; the store also deletes such a
// lock at once, best effort.
//
// # Values
//
// A value is a JSON object whose "v" member is the version of its encoding.
// Version 1, written today:
//
//	{"v":1,"domain":"example.com","id":"20240101","policy":"version: STSv1\r\n...",
//	 "fetched":1704067200000,"expires":1704672000000}
//
// domain is the policy domain in A-label form, id the id of the TXT record
// that announced the policy, policy the policy text as fetched, and fetched
// and expires are Unix times in milliseconds. Releases keep reading every
// version ever written. A member that readers may ignore can be added to
// version 1 (readers ignore members they do not know); any other change
// takes a new version. A value a release cannot decode, of a version it does
// not know included, and a key of another type than a string (a hash, a
// list), is counted, logged and treated as absent: the cache fetches the
// policy and the value is overwritten. Such a value is no failure of Redis:
// the store goes on using Redis for every key.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
)

// Options configure what this package makes: the policy store (New), the
// TLS reporting store (NewReportStore) and outbox (NewOutbox). One Options
// value may serve all three; each reads the fields it names, and a zero
// field means the default of the constructor.
type Options struct {
	// Prefix starts every key, e.g. "mtasts:" (the default) gives
	// "mtasts:policy:example.com", "mtasts:lock:example.com" and
	// "mtasts:{tlsrpt}:day:2016-04-01".
	Prefix string
	// Timeout bounds each Redis operation of the policy store (New).
	// Default 250 milliseconds: a slow Redis must not hold mail up.
	Timeout time.Duration
	// Lease is how long a mark of ownership lasts unless renewed or
	// released, so that a member of the fleet that died blocks the others
	// for that long at most:
	//   - New: a policy fetch lock. Long enough for a policy fetch.
	//     Default 90 seconds, the cache's fetch timeout. A lock lasts
	//     twice Timeout until Lock has Redis's reply, see Store.Lock.
	//   - NewReportStore: the claim on a day, counted from the claimant's
	//     last Take of it. Past it, unless released, any store value may
	//     take the day over and gets the same counts. It must be well
	//     above the time between a Take and its Release (putting the
	//     day's reports in an outbox): a claimant that is slower may see
	//     its day taken over. Default 15 minutes.
	//   - NewOutbox: the lease on a report that Pending returned, counted
	//     from its last Pending. A tlsrpt.Reporter calls Pending at each
	//     pass, every RetryInterval (5 minutes) once the deliveries of the
	//     pass before have started (within its Spread, 30 minutes), which
	//     renews the leases of the reports it is still delivering; so the
	//     lease must be longer than RetryInterval plus Spread. Default 1
	//     hour.
	Lease time.Duration
	// Retention is how long a day's counts stay in Redis (NewReportStore)
	// after the last counts added to it when no one takes it, how long
	// those of a day claimed and never released stay after the last Take,
	// and how long the mark of a day taken lasts. Default 7 days.
	Retention time.Duration
	// Owner names the member of the fleet that claims days
	// (NewReportStore) and leases reports (NewOutbox): a stable name of
	// the MTA, unique in the fleet, such as its host name, so that the MTA
	// restarted after a crash resumes its claims and leases at once.
	// Default: a random token, new for each store or outbox value, whose
	// claims and leases other values, the MTA restarted included, take
	// over only once they lapse (Lease).
	Owner string
	// RetryAfter is how long, after a Redis command of the policy store
	// (New) failed, the store sends none: operations fail at once with
	// ErrUnavailable. A Redis that is down or hangs then costs one
	// operation a Timeout per RetryAfter, instead of every operation of
	// every cold Get. Default 1 second.
	RetryAfter time.Duration
	// Logger receives the Redis errors of the policy store (New).
	// Default: nothing is logged.
	Logger *slog.Logger

	// now, set by the tests, is the clock of claims and leases; nil
	// means time.Now.
	now func() time.Time
}

// clock returns the clock of opts.
// withDefaults returns o with the defaults every constructor shares set:
// Prefix, an Owner of its own, and Lease, whose default each kind of mark
// has its own of.
func (o Options) withDefaults(lease time.Duration) Options {
	if o.Prefix == "" {
		o.Prefix = "mtasts:"
	}
	if o.Owner == "" {
		o.Owner = newToken()
	}
	if o.Lease <= 0 {
		o.Lease = lease
	}
	return o
}

func (o *Options) clock() func() time.Time {
	if o.now == nil {
		return time.Now
	}
	return o.now
}

// Store is a cache.Store and cache.Locker in Redis. It is safe for
// concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	opts   Options
	log    *slog.Logger
	errors *prometheus.CounterVec

	// bounded is set when the client bounds its socket reads and writes
	// by the context (go-redis's ContextTimeoutEnabled); when it is not,
	// each operation runs in a goroutine that the store stops waiting
	// for at Timeout.
	bounded bool

	// downUntil is when, in Unix nanoseconds, the store tries Redis
	// again after a failed command.
	downUntil atomic.Int64
}

var (
	_ cache.Store  = (*Store)(nil)
	_ cache.Locker = (*Store)(nil)
)

// New returns a Store using rdb, e.g. from redis.NewUniversalClient. It does
// not contact Redis, and so cannot fail: a Redis that is down at start is one
// that is down, see the package documentation.
func New(rdb redis.UniversalClient, opts Options) *Store {
	opts = opts.withDefaults(90 * time.Second)
	if opts.Timeout <= 0 {
		opts.Timeout = 250 * time.Millisecond
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{
		rdb:  rdb,
		opts: opts,
		log:  log,
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mtastsgo_redisstore_errors_total",
			Help: "Failed Redis operations of the MTA-STS policy store, by operation.",
		}, []string{"op"}),
		bounded: honoursContext(rdb),
	}
}

// honoursContext reports whether rdb ends socket reads and writes at the
// context's deadline. go-redis does so only with ContextTimeoutEnabled; by
// default a Redis that accepts a command and never answers holds it for
// ReadTimeout (3 seconds) and its retries, whatever the context says.
func honoursContext(rdb redis.UniversalClient) bool {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// ErrUnavailable is returned, wrapped, by operations that the store did not
// send to Redis because a command failed less than Options.RetryAfter ago.
var ErrUnavailable = errors.New("redisstore: Redis failed recently, not tried")

// do runs op with a context that ends at Timeout, and returns by then even
// when the client does not honour contexts: op then runs in a goroutine of
// its own, which ends when the client gives up (its ReadTimeout), and whose
// result nobody waits for. A hung Redis thus costs a few goroutines for a few
// seconds, and no delivery more than Timeout.
//
// When op fails, for another reason than the caller's context or a key of
// the wrong type, no command is sent for RetryAfter: do returns
// ErrUnavailable at once. The first operation after that tries Redis again.
func (s *Store) do(ctx context.Context, op func(ctx context.Context) error) error {
	if time.Now().UnixNano() < s.downUntil.Load() {
		return ErrUnavailable
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	var err error
	if s.bounded {
		err = op(ctx)
	} else {
		done := make(chan error, 1)
		go func() { done <- op(ctx) }()
		select {
		case err = <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil && !errors.Is(err, redis.Nil) && !wrongType(err) && parent.Err() == nil {
		s.downUntil.Store(time.Now().Add(s.opts.RetryAfter).UnixNano())
	}
	return err
}

// wrongType reports whether err is Redis's WRONGTYPE reply: a key holds a
// hash, a list or another type where a string was expected. That is a bad
// value under one key, which the next Save overwrites, and no reason to
// leave Redis alone.
func wrongType(err error) bool {
	return redis.HasErrorPrefix(err, "WRONGTYPE")
}

// RegisterMetrics registers the store's error counter,
// mtastsgo_redisstore_errors_total by operation (load, decode, save, delete,
// lock, unlock), with reg; operations not sent because Redis failed less
// than RetryAfter ago count as failed. The options, those of
// mtasts.RegisterMetrics, put a namespace before the name and constant labels
// on it. It returns an error for an invalid namespace, or reg's error, e.g.
// when the counter is already registered.
func (s *Store) RegisterMetrics(reg prometheus.Registerer, opts ...mtasts.MetricsOption) error {
	reg, err := mtasts.MetricsRegisterer(reg, opts...)
	if err != nil {
		return err
	}
	return reg.Register(s.errors)
}

func (s *Store) policyKey(domain string) string { return s.opts.Prefix + "policy:" + domain }
func (s *Store) lockKey(domain string) string   { return s.opts.Prefix + "lock:" + domain }

// aLabel returns domain in the A-label form that keys use, so that
// "Bücher.example" and "xn--bcher-kva.example" share one entry; it returns an
// error for a name that is not a domain.
func aLabel(domain string) (string, error) {
	d, err := mtasts.ParseDomain(domain)
	if err != nil {
		return "", err
	}
	return d.ASCII, nil
}

// fail counts and logs a failed operation, unless the caller's ctx has
// ended, and returns err, wrapped.
func (s *Store) fail(ctx context.Context, op, domain string, err error) error {
	if ctx.Err() != nil {
		// The caller gave up: no failure of Redis.
		return fmt.Errorf("redisstore: %s %s: %w", op, domain, err)
	}
	s.errors.WithLabelValues(op).Inc()
	if !errors.Is(err, ErrUnavailable) {
		// Logged once per failure of Redis, not for each operation
		// skipped after it.
		s.log.Warn("mta-sts: redis store failed", "op", op, "domain", domain, "err", err)
	}
	return fmt.Errorf("redisstore: %s %s: %w", op, domain, err)
}

// value is version 1 of the value encoding, documented in the package doc.
type value struct {
	Version  int    `json:"v"`
	Domain   string `json:"domain"`
	RecordID string `json:"id"`
	Policy   string `json:"policy"`
	Fetched  int64  `json:"fetched"`
	Expires  int64  `json:"expires"`
}

const valueVersion = 1

// encode returns the stored form of e: version 1 of the encoding described in
// the package documentation.
func encode(e cache.Entry) []byte {
	b, _ := json.Marshal(value{valueVersion, e.Domain, e.RecordID, e.Policy, e.Fetched.UnixMilli(), e.Expires.UnixMilli()})
	return b
}

// decode reads a stored value of any version this package knows. It returns
// an error for a value that is not JSON, has a version it does not know, or
// lacks the domain or the policy.
func decode(b []byte) (cache.Entry, error) {
	var v value
	if err := json.Unmarshal(b, &v); err != nil {
		return cache.Entry{}, fmt.Errorf("redisstore: undecodable value: %w", err)
	}
	if v.Version != valueVersion {
		return cache.Entry{}, fmt.Errorf("redisstore: value of unknown version %d", v.Version)
	}
	if v.Domain == "" || v.Policy == "" {
		return cache.Entry{}, errors.New("redisstore: value without domain or policy")
	}
	return cache.Entry{Domain: v.Domain, RecordID: v.RecordID, Policy: v.Policy, Fetched: time.UnixMilli(v.Fetched), Expires: time.UnixMilli(v.Expires)}, nil
}

// Load implements cache.Store. It returns ok false and an error when Redis
// fails (ErrUnavailable, wrapped, when it failed less than RetryAfter ago),
// when domain is not a domain name, and when the value does not decode, holds
// another domain or is not a string (a hash, say): the cache then treats the
// entry as absent, and the policy it fetches overwrites the value. A bad
// value is no failure of Redis: the store goes on using it.
func (s *Store) Load(ctx context.Context, domain string) (cache.Entry, bool, error) {
	ascii, err := aLabel(domain)
	if err != nil {
		return cache.Entry{}, false, s.fail(ctx, "load", domain, err)
	}
	domain = ascii
	var b []byte
	err = s.do(ctx, func(ctx context.Context) (err error) {
		b, err = s.rdb.Get(ctx, s.policyKey(domain)).Bytes()
		return err
	})
	if errors.Is(err, redis.Nil) {
		return cache.Entry{}, false, nil
	}
	if wrongType(err) {
		// A hash or a list under the key: undecodable, as garbage
		// would be, and overwritten by the next Save (SET replaces a
		// key of any type).
		return cache.Entry{}, false, s.fail(ctx, "decode", domain, fmt.Errorf("key %s holds no string: %w", s.policyKey(domain), err))
	}
	if err != nil {
		return cache.Entry{}, false, s.fail(ctx, "load", domain, err)
	}
	e, err := decode(b)
	if err == nil && e.Domain != domain {
		err = fmt.Errorf("redisstore: value of domain %q", e.Domain)
	}
	if err != nil {
		return cache.Entry{}, false, s.fail(ctx, "decode", domain, err)
	}
	return e, true, nil
}

// Save implements cache.Store. The key expires with the policy, so dead
// entries clean themselves; an entry already expired is not stored. It
// replaces whatever the key held, of any type. It returns an error when
// Redis fails or e.Domain is not a domain name.
func (s *Store) Save(ctx context.Context, e cache.Entry) error {
	ttl := time.Until(e.Expires)
	if ttl <= 0 {
		return nil
	}
	// Redis counts in milliseconds: round up, so that the key outlives
	// the policy rather than the reverse (the cache checks Expires on
	// load).
	ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
	domain, err := aLabel(e.Domain)
	if err != nil {
		return s.fail(ctx, "save", e.Domain, err)
	}
	e.Domain = domain
	v := encode(e)
	err = s.do(ctx, func(ctx context.Context) error {
		return s.rdb.Set(ctx, s.policyKey(e.Domain), v, ttl).Err()
	})
	if err != nil {
		return s.fail(ctx, "save", e.Domain, err)
	}
	return nil
}

// Delete implements cache.Store. It returns an error when Redis fails or
// domain is not a domain name.
func (s *Store) Delete(ctx context.Context, domain string) error {
	ascii, err := aLabel(domain)
	if err != nil {
		return s.fail(ctx, "delete", domain, err)
	}
	domain = ascii
	err = s.do(ctx, func(ctx context.Context) error {
		return s.rdb.Del(ctx, s.policyKey(domain)).Err()
	})
	if err != nil {
		return s.fail(ctx, "delete", domain, err)
	}
	return nil
}

// Lock implements cache.Locker with a random token per call, so that a
// release is exact even between caches sharing this Store value. It takes
// the lock with SET NX PX for twice Timeout only, then, once that reply has
// come within Timeout, extends it to Lease with a script that checks the
// token. A SET NX whose reply comes too late thus leaves a lock of twice
// Timeout at most, which Lock also deletes, best effort, in the background:
// Lock then fails, and the cache, with no token, releases nothing. held is
// false when another holds the lock; on an error, when Redis fails or domain
// is not a domain name, it is false too.
func (s *Store) Lock(ctx context.Context, domain string) (string, bool, error) {
	ascii, err := aLabel(domain)
	if err != nil {
		return "", false, s.fail(ctx, "lock", domain, err)
	}
	key := s.lockKey(ascii)
	token := newToken()
	first := min(2*s.opts.Timeout, s.opts.Lease)
	// held is written by op, which may run on after do returns: it is
	// read only when do returned op's own result.
	var held bool
	err = s.do(ctx, func(ctx context.Context) error {
		ok, err := s.rdb.SetNX(ctx, key, token, first).Result()
		if err != nil || !ok || first == s.opts.Lease {
			held = ok
			return err
		}
		if err := ctx.Err(); err != nil {
			// The reply came after do gave up: the lock is
			// short-lived, and release deletes it.
			return err
		}
		n, err := extendScript.Run(ctx, s.rdb, []string{key}, token, s.opts.Lease.Milliseconds()).Int()
		held = n == 1
		return err
	})
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			// The SET NX, or the extension, may have run with its
			// reply lost or late: no one would release that lock.
			go s.release(key, token)
		}
		return "", false, s.fail(ctx, "lock", ascii, err)
	}
	if !held {
		return "", false, nil
	}
	return token, true, nil
}

// newToken returns a random lock token, 128 bits in hex.
func newToken() string {
	var raw [16]byte
	rand.Read(raw[:])
	return hex.EncodeToString(raw[:])
}

// extendScript sets the lifetime of the lock KEYS[1] to ARGV[2] milliseconds
// if it still holds the token ARGV[1], and returns 1; else 0. Run after the
// cleanup of release, it finds no token and does nothing.
var extendScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)

// unlockScript deletes the lock KEYS[1] only if it still holds the token
// ARGV[1]: a lock that expired and was taken by another cache is not ours to
// release.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// release deletes the lock key if it still holds token, after a Lock whose
// outcome is unknown. It sends the script even when Redis failed less than
// RetryAfter ago, as that failure is likely the Lock's own, and is bounded by
// Timeout; a failure is only logged at debug level, since the Lock's failure
// was counted and logged already, and the lock lasts twice Timeout, or
// Lease if the extension ran, at most.
func (s *Store) release(key, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	if err := unlockScript.Run(ctx, s.rdb, []string{key}, token).Err(); err != nil {
		s.log.Debug("mta-sts: redis store could not delete a lock after a failed Lock", "key", key, "err", err)
	}
}

// Unlock implements cache.Locker: it deletes the lock of domain if it still
// holds token, which Lock returned, and leaves it otherwise. It returns an
// error when Redis fails or domain is not a domain name; the lock then
// expires after Lease.
func (s *Store) Unlock(ctx context.Context, domain, token string) error {
	ascii, err := aLabel(domain)
	if err != nil {
		return s.fail(ctx, "unlock", domain, err)
	}
	if token == "" {
		return nil // no Lock returns it: nothing of ours to release
	}
	err = s.do(ctx, func(ctx context.Context) error {
		return unlockScript.Run(ctx, s.rdb, []string{s.lockKey(ascii)}, token).Err()
	})
	if err != nil {
		return s.fail(ctx, "unlock", ascii, err)
	}
	return nil
}
