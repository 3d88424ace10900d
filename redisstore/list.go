package redisstore

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts/cache"
)

// listBatch is how many keys one SCAN asks for, and one MGET reads.
const listBatch = 512

// List implements cache.Lister: the entries under the store's prefix, in no
// order, read with SCAN and MGET so that Redis serves other clients between
// batches; on a Redis Cluster, from every master. An undecodable value, or a
// key of another type, is listed as an error and the listing goes on; a
// failing Redis ends it with its error. Keys that expire or change during the
// listing may or may not be listed.
func (s *Store) List(ctx context.Context) iter.Seq2[cache.Entry, error] {
	return func(yield func(cache.Entry, error) bool) {
		if cc, ok := s.rdb.(*redis.ClusterClient); ok {
			// ForEachMaster runs its function on the masters at
			// once: gather, then yield from this goroutine.
			var (
				mu  sync.Mutex
				all []listed
			)
			err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
				return s.scan(ctx, c, func(l listed) bool {
					mu.Lock()
					defer mu.Unlock()
					all = append(all, l)
					return true
				})
			})
			for _, l := range all {
				if !yield(l.e, l.err) {
					return
				}
			}
			if err != nil {
				yield(cache.Entry{}, s.fail(ctx, "list", "", err))
			}
			return
		}
		err := s.scan(ctx, s.rdb, func(l listed) bool { return yield(l.e, l.err) })
		if err != nil && err != errStop {
			yield(cache.Entry{}, s.fail(ctx, "list", "", err))
		}
	}
}

// listed is one entry of a listing, or its error.
type listed struct {
	e   cache.Entry
	err error
}

// errStop ends a scan whose caller wants no more.
var errStop = stopError{}

type stopError struct{}

func (stopError) Error() string { return "redisstore: listing ended by its caller" }

// scan lists the policy keys of one Redis to f, until f returns false
// (errStop) or Redis fails.
func (s *Store) scan(ctx context.Context, rdb redis.Cmdable, f func(listed) bool) error {
	pattern := globEscape(s.opts.Prefix) + "policy:*"
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, pattern, listBatch).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			values, err := rdb.MGet(ctx, keys...).Result()
			if err != nil {
				return err
			}
			for i, v := range values {
				l, ok := s.decodeListed(keys[i], v)
				if ok && !f(l) {
					return errStop
				}
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// decodeListed decodes the value v of key, as MGET returned it: nil for a key
// gone, or of another type, since the SCAN.
func (s *Store) decodeListed(key string, v any) (listed, bool) {
	str, ok := v.(string)
	if !ok {
		// MGET gives nil for both; tell them apart no further: a key of
		// another type is reported by Load, and repaired by Save.
		return listed{}, false
	}
	e, err := decode([]byte(str))
	if err == nil && s.policyKey(e.Domain) != key {
		err = fmt.Errorf("value of domain %q under key %q", e.Domain, key)
	}
	if err != nil {
		return listed{err: s.fail(context.Background(), "decode", strings.TrimPrefix(key, s.opts.Prefix+"policy:"), err)}, true
	}
	return listed{e: e}, true
}

// globEscape escapes the characters that SCAN's MATCH pattern gives a
// meaning: a prefix is matched as written.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
