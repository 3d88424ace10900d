package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/redisstore"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// TestWrongTypeKey puts a hash, then a list, under a policy key, as a
// mistaken operator or another program might. Redis answers GET with
// WRONGTYPE: that is a bad value under one key, not a Redis failing. Load
// reports it (counted, logged) without leaving Redis alone for RetryAfter,
// other domains are served at once, and the next Save repairs the key.
func TestWrongTypeKey(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	h := &countingHandler{}
	// A RetryAfter far longer than the test: a store that took
	// WRONGTYPE for a failing Redis would refuse everything below.
	store := redisstore.New(rdb, redisstore.Options{RetryAfter: time.Hour, Logger: slog.New(h)})
	reg := prometheus.NewPedanticRegistry()
	if err := store.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const key = "mtasts:policy:example.com"

	for i, put := range []struct {
		name string
		do   func() error
	}{
		{"hash", func() error { return rdb.HSet(ctx, key, "policy", "x").Err() }},
		{"list", func() error { return rdb.RPush(ctx, key, "x", "y").Err() }},
	} {
		t.Run(put.name, func(t *testing.T) {
			rdb.Del(ctx, key)
			if err := put.do(); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := store.Load(ctx, "example.com"); ok || err == nil || errors.Is(err, redisstore.ErrUnavailable) {
				t.Errorf("Load of a %s = %v, %v; want an error about the value", put.name, ok, err)
			}
			if n := counter(t, reg, "mtastsgo_redisstore_errors_total"); n != float64(i+1) {
				t.Errorf("%v errors counted, want %d", n, i+1)
			}
			if n := h.warnings.Load(); n != int64(i+1) {
				t.Errorf("%d warnings logged, want %d", n, i+1)
			}

			// Redis is still in use, for other domains at once.
			other := entry("example.org")
			if err := store.Save(ctx, other); err != nil {
				t.Errorf("Save of another domain after WRONGTYPE: %v", err)
			}
			if e, ok, err := store.Load(ctx, "example.org"); err != nil || !ok || e.Policy != other.Policy {
				t.Errorf("Load of another domain after WRONGTYPE = %+v, %v, %v", e, ok, err)
			}

			// The next Save overwrites the key, whatever its type.
			e := entry("example.com")
			if err := store.Save(ctx, e); err != nil {
				t.Fatalf("Save over a %s: %v", put.name, err)
			}
			if typ := rdb.Type(ctx, key).Val(); typ != "string" {
				t.Errorf("key is a %s after Save, want a string", typ)
			}
			if got, ok, err := store.Load(ctx, "example.com"); err != nil || !ok || got.Policy != e.Policy {
				t.Errorf("Load after the repairing Save = %+v, %v, %v", got, ok, err)
			}
		})
	}

	// Through a cache: a Get treats the key as absent, fetches, and its
	// Save repairs the key.
	rdb.Del(ctx, key)
	rdb.HSet(ctx, key, "policy", "x")
	resolver, server := world(t)
	c, err := cache.New(cache.Options{Resolver: resolver, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r := c.Get(ctx, mustDomain(t, "example.com")); r.Policy == nil || !r.Fresh {
		t.Fatalf("Get over a hash = %+v; want a fetched policy", r)
	}
	if e, ok, err := store.Load(ctx, "example.com"); err != nil || !ok || e.RecordID != "1" || server.Requests("example.com") != 1 {
		t.Errorf("after Get: %+v, %v, %v; %d fetches", e, ok, err, server.Requests("example.com"))
	}
}

// TestTLSRPTAddWrongType puts values of the wrong type where Add writes: the
// set of days, the day's hash, a counter of it. Add fails then and adds
// nothing, not even the mark of its batch, so that the same batch given
// again, once the key is repaired, adds its counts once; and the day is
// listed by Days.
func TestTLSRPTAddWrongType(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	ctx := context.Background()
	const (
		dayKey  = "mtasts:{tlsrpt}:day:2016-04-01"
		daysKey = "mtasts:{tlsrpt}:days"
	)
	p := storefixture.STS("a.example", "enforce")
	result := storefixture.Result(p, 3, 2, storefixture.Row(mtasts.ResultCertificateExpired, "a.example", 1, 2))
	batch := tlsrpt.Batch{Day: storefixture.DayOne, Source: "mta1", Seq: 1, MaxDetailRows: 10, Results: []tlsrpt.PolicyResult{result}}
	want := storefixture.Canonical([]tlsrpt.PolicyResult{result})

	for _, tc := range []struct {
		name         string
		spoil, mend  func() error
		fieldsLeft   int64 // of the day's hash after the failed Add
		errorMention string
	}{
		{"days key a string",
			func() error { return rdb.Set(ctx, daysKey, "x", 0).Err() },
			func() error { return rdb.Del(ctx, daysKey).Err() }, 0, daysKey},
		{"days key a hash",
			func() error { return rdb.HSet(ctx, daysKey, "2016-04-01", "x").Err() },
			func() error { return rdb.Del(ctx, daysKey).Err() }, 0, daysKey},
		{"day key a list",
			func() error { return rdb.RPush(ctx, dayKey, "x").Err() },
			func() error { return rdb.Del(ctx, dayKey).Err() }, 0, dayKey},
		{"row count not a number",
			func() error { return rdb.HSet(ctx, dayKey, "n:a.example", "x").Err() },
			func() error { return rdb.HDel(ctx, dayKey, "n:a.example").Err() }, 1, "n:a.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb.FlushAll(ctx)
			s := redisstore.NewReportStore(rdb, redisstore.Options{Owner: "mta1"})
			if err := tc.spoil(); err != nil {
				t.Fatal(err)
			}
			_, err := s.Add(ctx, batch)
			if err == nil || !strings.Contains(err.Error(), tc.errorMention) {
				t.Errorf("Add over a spoilt key: %v, want an error naming %s", err, tc.errorMention)
			}
			if typ := rdb.Type(ctx, dayKey).Val(); typ == "hash" {
				if n := rdb.HLen(ctx, dayKey).Val(); n != tc.fieldsLeft {
					fields := rdb.HKeys(ctx, dayKey).Val()
					t.Errorf("the failed Add left %d fields, want %d: %q", n, tc.fieldsLeft, fields)
				}
			}
			if err := tc.mend(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Add(ctx, batch); err != nil {
				t.Fatalf("Add again, the key mended: %v", err)
			}
			days, err := s.Days(ctx)
			if err != nil || len(days) != 1 || !days[0].Equal(storefixture.DayOne) {
				t.Errorf("Days = %v, %v; want %v", days, err, storefixture.DayOne)
			}
			got, err := s.Take(ctx, storefixture.DayOne)
			if err != nil {
				t.Fatal(err)
			}
			if c := storefixture.Canonical(got); c != want {
				t.Errorf("Take:\n%s\nwant the batch once:\n%s", c, want)
			}
		})
	}
}

// TestTLSRPTAddCountBound checks that Add refuses a count that HINCRBY could
// overflow on, adding nothing, rather than failing in the middle of its
// script: 5e18 sessions added twice pass int64.
func TestTLSRPTAddCountBound(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	ctx := context.Background()
	s := redisstore.NewReportStore(rdb, redisstore.Options{})
	p := storefixture.STS("a.example", "enforce")
	for _, r := range []tlsrpt.PolicyResult{
		storefixture.Result(p, 5e18, 0),
		storefixture.Result(p, 0, 5e18),
		storefixture.Result(p, -1, 0),
		storefixture.Result(p, 0, 1, storefixture.Row(mtasts.ResultCertificateExpired, "a.example", 1, 5e18)),
	} {
		for seq := range int64(2) {
			b := tlsrpt.Batch{Day: storefixture.DayOne, Source: "mta1", Seq: seq, Results: []tlsrpt.PolicyResult{r}}
			if _, err := s.Add(ctx, b); err == nil {
				t.Errorf("Add of %+v: no error", r.Summary)
			}
		}
		if n := rdb.DBSize(ctx).Val(); n != 0 {
			t.Errorf("Add of %+v refused, yet %d keys in Redis, want none", r.Summary, n)
			rdb.FlushAll(ctx)
		}
	}
}

// BenchmarkTLSRPTAdd1000 measures the Add of one chunk, a thousand policies
// with a failure-detail row each, to a day that has them all: the checks of
// addScript before it writes, and its writes. It reports Redis's own time
// per script run (INFO commandstats), apart from the round trip.
func BenchmarkTLSRPTAdd1000(b *testing.B) {
	srv := startRedis(b, "")
	rdb := srv.client()
	s := redisstore.NewReportStore(rdb, redisstore.Options{})
	var results []tlsrpt.PolicyResult
	for i := range 1000 {
		d := fmt.Sprintf("d%d.example", i)
		results = append(results, storefixture.Result(storefixture.STS(d, "enforce"), 1, 1, storefixture.Row(mtasts.ResultCertificateExpired, d, 1, 1)))
	}
	ctx := context.Background()
	rdb.ConfigResetStat(ctx)
	for b.Loop() {
		if _, err := s.Add(ctx, tlsrpt.Batch{Day: storefixture.DayOne, MaxDetailRows: 100, Results: results}); err != nil {
			b.Fatal(err)
		}
	}
	for line := range strings.Lines(rdb.Info(ctx, "commandstats").Val()) {
		stats, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for kv := range strings.SplitSeq(stats, ",") {
			if v, ok := strings.CutPrefix(kv, "usec_per_call="); ok {
				if us, err := strconv.ParseFloat(v, 64); err == nil {
					b.ReportMetric(us, "redis-µs/add")
				}
			}
		}
	}
}
