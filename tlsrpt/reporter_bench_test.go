package tlsrpt_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// hangingTransport is a collector that never answers: each POST waits for
// its context, which the Sender ends after AttemptTimeout.
type hangingTransport struct {
	posts atomic.Int64
	all   chan struct{} // closed at the want-th POST
	want  int64
}

func (h *hangingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if h.posts.Add(1) == h.want {
		close(h.all)
	}
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// peaks samples the goroutines and the heap until stop is called, which
// returns the largest of each seen.
func peaks() (stop func() (goroutines, heap uint64)) {
	samples := []metrics.Sample{{Name: "/sched/goroutines:goroutines"}, {Name: "/memory/classes/heap/objects:bytes"}}
	var g, h uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(samples)
			g, h = max(g, samples[0].Value.Uint64()), max(h, samples[1].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() (uint64, uint64) {
		close(done)
		wg.Wait()
		return g, h
	}
}

// BenchmarkReporterHangingCollectors delivers 10,000 pending reports, each
// of its own policy domain, to collectors that never answer, until each has
// had its first POST: the peak of goroutines and of heap objects while the
// Reporter runs, with the default bound on deliveries.
//
//	go test -run '^$' -bench ReporterHangingCollectors -benchtime 1x -benchmem ./tlsrpt
func BenchmarkReporterHangingCollectors(b *testing.B) {
	const n = 10_000
	ctx := context.Background()
	resolver := mtaststest.NewResolver()
	reports := make([]tlsrpt.Report, n)
	for i := range reports {
		d := fmt.Sprintf("d%d.example", i)
		reports[i] = storefixture.Report(storefixture.DayOne, d, fmt.Sprintf("id%d", i), 1)
		resolver.SetTXT("_smtp._tls."+d, "v=TLSRPTv1; rua=https://collector."+d+"/v1")
	}
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer rec.Close()
	var goroutines, heap uint64
	for b.Loop() {
		tr := &hangingTransport{all: make(chan struct{}), want: n}
		sender, err := tlsrpt.NewSender(tlsrpt.SenderOptions{Resolver: resolver, Transport: tr, AttemptTimeout: 20 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		box := tlsrpt.NewMemoryOutbox()
		if err := box.Put(ctx, reports); err != nil {
			b.Fatal(err)
		}
		rep, err := tlsrpt.NewReporter(tlsrpt.ReporterOptions{Recorder: rec, Sender: sender, Outbox: box,
			Info: info, MaxDelay: -1, Spread: -1})
		if err != nil {
			b.Fatal(err)
		}
		stop := peaks()
		rctx, cancel := context.WithCancel(ctx)
		ended := make(chan error, 1)
		go func() { ended <- rep.Run(rctx) }()
		<-tr.all
		cancel()
		if err := <-ended; !errors.Is(err, context.Canceled) {
			b.Fatal(err)
		}
		g, h := stop()
		goroutines, heap = max(goroutines, g), max(heap, h)
	}
	b.ReportMetric(float64(goroutines), "peak-goroutines")
	b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
}
