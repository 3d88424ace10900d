package tlsrpt_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mtasts-go/mtasts/tlsrpt"
)

// memTransport answers POSTs in memory, so that a Sender can run in a
// synctest bubble, where network I/O cannot. It notes when each request
// came, on the bubble's clock.
type memTransport struct {
	mu     sync.Mutex
	times  []time.Time
	answer func(r *http.Request) (*http.Response, error)
}

func (m *memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	m.mu.Lock()
	m.times = append(m.times, time.Now())
	m.mu.Unlock()
	return m.answer(r)
}

func (m *memTransport) attempts(start time.Time) []time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var d []time.Duration
	for _, t := range m.times {
		d = append(d, t.Sub(start))
	}
	return d
}

func status(code int) func(*http.Request) (*http.Response, error) {
	return func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: code, Status: strconv.Itoa(code) + " " + http.StatusText(code), Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	}
}

func minutes(m ...int) []time.Duration {
	var d []time.Duration
	for _, n := range m {
		d = append(d, time.Duration(n)*time.Minute)
	}
	return d
}

// With the defaults, a collector that keeps failing is tried again after 1,
// 2, 4, ... minutes, the wait doubling up to 4 hours, until 24 hours after
// the first attempt (RFC 8460 5.5), and no later.
func TestSendRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &memTransport{answer: status(http.StatusServiceUnavailable)}
		s := newSender(t, tlsrpt.SenderOptions{Transport: tr})
		start := time.Now()
		deliveries, err := s.SendRecordForTest(t.Context(), appendixB(t), record("https://reports.company-y.example/tlsrpt"))
		if !errors.Is(err, tlsrpt.ErrNotDelivered) {
			t.Errorf("SendRecord: %v, want ErrNotDelivered", err)
		}
		got := tr.attempts(start)
		// 1, 2, 4, ..., 128 minutes, then 4 hours; the next after
		// 1215 minutes would begin at 1455, past 24 hours (1440).
		want := minutes(0, 1, 3, 7, 15, 31, 63, 127, 255, 495, 735, 975, 1215)
		if !slices.Equal(got, want) {
			t.Errorf("attempts at\n %v, want\n %v", got, want)
		}
		if len(deliveries) != 1 || deliveries[0].Attempts != len(want) {
			t.Errorf("deliveries %+v, want %d attempts", deliveries, len(want))
		}
		if msg := deliveries[0].Err.Error(); !strings.Contains(msg, "503") || !strings.Contains(msg, "gave up after 13 attempts") {
			t.Errorf("error %q does not say the answer and how often it was tried", msg)
		}
		if elapsed := time.Since(start); elapsed > 24*time.Hour {
			t.Errorf("SendRecord returned after %s, more than the 24 hours of RFC 8460 5.5", elapsed)
		}
	})
}

// A collector that never answers holds each attempt for AttemptTimeout,
// no longer, and the retries still end within the window.
func TestSendRetrySlowCollector(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &memTransport{answer: func(r *http.Request) (*http.Response, error) {
			<-r.Context().Done()
			return nil, r.Context().Err()
		}}
		s := newSender(t, tlsrpt.SenderOptions{Transport: tr, AttemptTimeout: time.Minute, FirstRetry: time.Minute, RetryWindow: 10 * time.Minute})
		start := time.Now()
		deliveries, err := s.SendRecordForTest(t.Context(), appendixB(t), record("https://reports.company-y.example/tlsrpt"))
		if err == nil || !errors.Is(deliveries[0].Err, context.DeadlineExceeded) {
			t.Fatalf("SendRecord: %+v, %v; want the attempts' deadline exceeded", deliveries, err)
		}
		// Attempts of a minute each, with waits of 1, 2 and 4 minutes
		// between: 0-1, 2-3, 5-6, 10-11; the next would begin at
		// 11+8 minutes, past the window.
		if got, want := tr.attempts(start), minutes(0, 2, 5, 10); !slices.Equal(got, want) {
			t.Errorf("attempts at %v, want %v", got, want)
		}
		if elapsed := time.Since(start); elapsed != 11*time.Minute {
			t.Errorf("SendRecord took %s, want 11m0s", elapsed)
		}
	})
}

// Cancelling the context stops the retries at once, with the context's
// error, and leaves no goroutine behind (synctest.Test checks that).
func TestSendRetryCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &memTransport{answer: status(http.StatusInternalServerError)}
		m := &mta{fail: 1 << 30}
		s := newSender(t, tlsrpt.SenderOptions{Transport: tr, Submit: m.submit})
		ctx, cancel := context.WithCancel(t.Context())
		var (
			deliveries []tlsrpt.Delivery
			err        error
			done       = make(chan struct{})
		)
		start := time.Now()
		go func() {
			defer close(done)
			deliveries, err = s.SendRecordForTest(ctx, appendixB(t), record("https://reports.company-y.example/", "mailto:tlsrpt@company-y.example"))
		}()
		time.Sleep(90 * time.Second) // the bubble's clock: both are waiting for their second retry
		synctest.Wait()
		cancel()
		<-done
		if elapsed := time.Since(start); elapsed != 90*time.Second {
			t.Errorf("SendRecord returned %s after starting, want at the cancel, 1m30s", elapsed)
		}
		if !errors.Is(err, tlsrpt.ErrNotDelivered) {
			t.Errorf("SendRecord: %v", err)
		}
		for _, d := range deliveries {
			if !errors.Is(d.Err, context.Canceled) || d.Attempts != 2 {
				t.Errorf("delivery %+v, want canceled after 2 attempts", d)
			}
		}
	})
}

// A failure of one URI does not hold up the others: they are delivered at
// the same time.
func TestSendURIsConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		delivered := map[string]time.Duration{}
		start := time.Now()
		tr := &memTransport{answer: func(r *http.Request) (*http.Response, error) {
			if r.URL.Host == "down.example" {
				return status(http.StatusBadGateway)(r)
			}
			mu.Lock()
			delivered[r.URL.Host] = time.Since(start)
			mu.Unlock()
			return status(http.StatusOK)(r)
		}}
		s := newSender(t, tlsrpt.SenderOptions{Transport: tr, RetryWindow: time.Hour})
		deliveries, err := s.SendRecordForTest(t.Context(), appendixB(t), record("https://down.example/", "https://up.example/"))
		if err != nil {
			t.Fatalf("SendRecord: %v (up.example took the report)", err)
		}
		if d, ok := delivered["up.example"]; !ok || d != 0 {
			t.Errorf("up.example delivered at %v (ok %v), want at once", d, ok)
		}
		if deliveries[0].Err == nil || deliveries[1].Err != nil {
			t.Errorf("deliveries %+v", deliveries)
		}
	})
}
