package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/redisstore"
)

// TestList: the store lists the entries under its prefix, and no others, in
// batches; a bad value is an error in the listing, which goes on.
func TestList(t *testing.T) {
	srv := startRedis(t, "")
	rdb := srv.client()
	ctx := context.Background()
	s := redisstore.New(rdb, redisstore.Options{Prefix: "a*[x]:"})
	other := redisstore.New(rdb, redisstore.Options{Prefix: "ab:"})
	var want []string
	for i := range 1200 {
		d := fmt.Sprintf("d%d.example", i)
		if err := s.Save(ctx, entry(d)); err != nil {
			t.Fatal(err)
		}
		want = append(want, d)
	}
	if err := other.Save(ctx, entry("other.example")); err != nil {
		t.Fatal(err)
	}
	rdb.Set(ctx, "a*[x]:policy:garbage.example", "not a value", 0)
	rdb.HSet(ctx, "a*[x]:policy:hash.example", "f", "v")

	var got []string
	errs := 0
	var lister cache.Lister = s
	for e, err := range lister.List(ctx) {
		if err != nil {
			errs++
			continue
		}
		got = append(got, e.Domain)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || errs != 1 {
		t.Errorf("listed %d entries and %d errors, want %d and 1 (the garbage value; the hash is skipped)", len(got), errs, len(want))
	}

	n := 0
	for range s.List(ctx) {
		n++
		if n == 10 {
			break
		}
	}
	if n != 10 {
		t.Errorf("listing went on after break: %d", n)
	}
}
