package mtasts

import (
	"context"
	"log/slog"
	"testing"

	"github.com/mjl-/adns"
)

type oneRecordResolver struct{}

func (oneRecordResolver) LookupTXT(context.Context, string) ([]string, adns.Result, error) {
	return []string{"v=STSv1; id=20240101"}, adns.Result{}, nil
}

// Quiet by default: a Client without a logger, or with one not enabled for
// debug, allocates no more than the lookup itself.
func TestClientQuietAllocs(t *testing.T) {
	ctx := context.Background()
	d := Domain{ASCII: "example.com"}
	base := testing.AllocsPerRun(200, func() {
		if _, _, _, err := lookupRecord(ctx, oneRecordResolver{}, d); err != nil {
			t.Fatal(err)
		}
	})
	for name, c := range map[string]*Client{
		"nil logger":      {},
		"discard handler": {Logger: slog.New(slog.DiscardHandler)},
		"info level":      {Logger: slog.New(slog.NewTextHandler(nil, &slog.HandlerOptions{Level: slog.LevelInfo}))},
	} {
		got := testing.AllocsPerRun(200, func() {
			if _, _, err := c.LookupRecord(ctx, oneRecordResolver{}, d); err != nil {
				t.Fatal(err)
			}
		})
		if got != base {
			t.Errorf("%s: %v allocations per lookup, want %v as without a Client", name, got, base)
		}
	}
}
