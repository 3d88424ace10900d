package tlsrpt_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// Collectors that hold each POST hold at most MaxDeliveries reports at
// once, counted at the collector, and the goroutines stay bounded: the
// reports beyond wait their turn, without a goroutine. The test watches the
// first three rounds of POSTs.
//   - slow: the collector answers 503 after holding each POST 200 ms, and
//     counts it done before answering, so that the count is exact.
//   - silent: the collector never answers, and the Sender gives up after
//     AttemptTimeout; the collector learns of it a little later, when the
//     connection closes, so that its count may run ahead by a few.
func TestReporterBoundsDeliveries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hold  func(r *http.Request)
		slack int
	}{
		{"slow", func(*http.Request) { time.Sleep(200 * time.Millisecond) }, 0},
		{"silent", func(r *http.Request) { <-r.Context().Done() }, 4},
	} {
		t.Run(tc.name, func(t *testing.T) { testBoundsDeliveries(t, tc.hold, tc.slack) })
	}
}

func testBoundsDeliveries(t *testing.T, hold func(r *http.Request), slack int) {
	const n, bound, want = 40, 4, 3 * 4 // want: the POSTs to wait for, three rounds
	var mu sync.Mutex
	var inFlight, maxInFlight, maxGoroutines, seen int
	all := make(chan struct{})
	c := newCollector(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		seen++
		maxInFlight = max(maxInFlight, inFlight)
		maxGoroutines = max(maxGoroutines, runtime.NumGoroutine())
		if seen == want {
			close(all)
		}
		mu.Unlock()
		hold(r)
		mu.Lock()
		inFlight--
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	resolver := mtaststest.NewResolver()
	box := tlsrpt.NewMemoryOutbox()
	for i := range n {
		d := fmt.Sprintf("d%d.example", i)
		resolver.SetTXT("_smtp._tls."+d, "v=TLSRPTv1; rua="+c.srv.URL+"/"+d)
		must(t, box.Put(context.Background(), []tlsrpt.Report{storefixture.Report(storefixture.DayOne, d, "id-"+d, 1)}))
	}
	// All the reports go to one collector here: the transport must not
	// bound them first.
	tr := c.transport(mtasts.AllowLoopback)
	tr.MaxConnsPerHost = 0
	sender := newSender(t, tlsrpt.SenderOptions{Resolver: resolver, Transport: tr, AttemptTimeout: 500 * time.Millisecond})
	rec, _ := newRecorder(t, tlsrpt.RecorderOptions{})
	defer rec.Close()
	base := runtime.NumGoroutine()
	stop := startReporter(t, tlsrpt.ReporterOptions{Recorder: rec, Sender: sender, Outbox: box,
		MaxDeliveries: bound, MaxDelay: -1, Spread: -1})
	select {
	case <-all:
	case <-time.After(time.Minute):
		t.Fatalf("%d POSTs reached the collector within a minute, want %d", seen, want)
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d deliveries at once at most, %d goroutines more than before", maxInFlight, maxGoroutines-base)
	if maxInFlight > bound+slack {
		t.Errorf("%d deliveries at once, want at most MaxDeliveries, %d (+%d)", maxInFlight, bound, slack)
	}
	// Per delivery: its own, its rua URI's, the client's connection (2)
	// and the server's (1); and the connections closing.
	if g := maxGoroutines - base; g > 10*bound {
		t.Errorf("%d goroutines more while delivering, want at most %d", g, 10*bound)
	}
	if pending, _ := box.Pending(context.Background()); len(pending) != n {
		t.Errorf("%d reports pending, want all %d, left for a retry", len(pending), n)
	}
}

// RFC 8460 5.5 through a Reporter: a collector that keeps failing gets the
// report after 1, 2, 4, ... minutes, doubling up to 4 hours, until 24 hours
// after the first attempt, as Sender.Send retries; but in rounds of later
// passes, the report pending meanwhile. Given up, it is done, counted as
// failed; a collector that mends takes it once, and nothing follows.
func TestReporterRetryRounds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		failing int // the attempts answered 503; the rest 200
		want    []time.Duration
		outcome string
	}{
		{"given up", 1 << 30, minutes(0, 1, 3, 7, 15, 31, 63, 127, 255, 495, 735, 975, 1215), "failed"},
		{"mended", 3, minutes(0, 1, 3, 7), "delivered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec, _ := newRecorder(t, tlsrpt.RecorderOptions{})
				defer rec.Close()
				must(t, rec.Success(sts("a.example", "enforce")))
				time.Sleep(time.Until(closes(time.Now().UTC().Truncate(24 * time.Hour))))
				resolver := mtaststest.NewResolver()
				resolver.SetTXT("_smtp._tls.a.example", "v=TLSRPTv1; rua=https://c.example/r")
				var n int
				tr := &memTransport{answer: func(r *http.Request) (*http.Response, error) {
					n++
					if n <= tc.failing {
						return status(http.StatusServiceUnavailable)(r)
					}
					return status(http.StatusOK)(r)
				}}
				sender := newSender(t, tlsrpt.SenderOptions{Resolver: resolver, Transport: tr})
				box := tlsrpt.NewMemoryOutbox()
				rep, err := tlsrpt.NewReporter(tlsrpt.ReporterOptions{Recorder: rec, Sender: sender, Outbox: box,
					Info: info, MaxDelay: -1, Spread: -1})
				must(t, err)
				reg := prometheus.NewPedanticRegistry()
				must(t, rep.RegisterMetrics(reg))
				ctx, cancel := context.WithCancel(context.Background())
				ended := make(chan error, 1)
				start := time.Now()
				go func() { ended <- rep.Run(ctx) }()
				time.Sleep(time.Hour)
				synctest.Wait()
				if pending, _ := box.Pending(context.Background()); tc.failing > 3 && len(pending) != 1 {
					t.Errorf("%d reports pending while retrying, want 1", len(pending))
				}
				time.Sleep(3 * 24 * time.Hour)
				cancel()
				<-ended
				if got := tr.attempts(start); !slices.Equal(got, tc.want) {
					t.Errorf("attempts at\n %v, want\n %v", got, tc.want)
				}
				if pending, _ := box.Pending(context.Background()); len(pending) != 0 {
					t.Errorf("%d reports pending, want none", len(pending))
				}
				if got := counters(t, reg)["mtastsgo_tlsrpt_reports_done_total{outcome="+tc.outcome+"}"]; got != 1 {
					t.Errorf("reports done as %s: %v, want 1", tc.outcome, got)
				}
			})
		})
	}
}
