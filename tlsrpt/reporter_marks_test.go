package tlsrpt_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// staleOutbox is an outbox whose second Pending reads the reports while the
// first pass's delivery is under way, and returns what it read only after
// that delivery's Done: a slow outbox, whose read of the reports raced with
// the marks.
type staleOutbox struct {
	tlsrpt.Outbox
	calls    atomic.Int32
	read     chan struct{} // closed once the second Pending read the outbox
	done     chan struct{} // closed once a Done returned
	doneOnce sync.Once
}

func newStaleOutbox(box tlsrpt.Outbox) *staleOutbox {
	return &staleOutbox{Outbox: box, read: make(chan struct{}), done: make(chan struct{})}
}

func (o *staleOutbox) Pending(ctx context.Context) ([]tlsrpt.PendingReport, error) {
	if o.calls.Add(1) != 2 {
		return o.Outbox.Pending(ctx)
	}
	pending, err := o.Outbox.Pending(ctx)
	close(o.read)
	<-o.done
	// Within synctest's bubble: the delivery's goroutine ends before this
	// returns.
	time.Sleep(time.Second)
	return pending, err
}

func (o *staleOutbox) Done(ctx context.Context, r *tlsrpt.Report) error {
	err := o.Outbox.Done(ctx, r)
	o.doneOnce.Do(func() { close(o.done) })
	return err
}

// A Pending that read the outbox before a delivery was marked done, and
// returns after, hands the Reporter a stale copy of the report: it must not
// be sent again. One report, one send, with each outbox.
func TestReporterStalePending(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) tlsrpt.Outbox{
		"memory": func(*testing.T) tlsrpt.Outbox { return tlsrpt.NewMemoryOutbox() },
		"file": func(t *testing.T) tlsrpt.Outbox {
			box, err := tlsrpt.OpenFileOutbox(t.TempDir())
			must(t, err)
			return box
		},
	} {
		t.Run(name, func(t *testing.T) {
			box := open(t)
			synctest.Test(t, func(t *testing.T) {
				rec, _ := newRecorder(t, tlsrpt.RecorderOptions{})
				defer rec.Close()
				must(t, rec.Success(sts("a.example", "enforce")))
				time.Sleep(time.Until(closes(time.Now().UTC().Truncate(24 * time.Hour))))
				stale := newStaleOutbox(box)
				var s sending
				var first atomic.Bool
				s.fail = func(ctx context.Context, r *tlsrpt.Report) error {
					if first.CompareAndSwap(false, true) {
						<-stale.read // the next pass reads the outbox meanwhile
					}
					return nil
				}
				stop := startReporter(t, tlsrpt.WithTestSend(tlsrpt.ReporterOptions{Recorder: rec, Outbox: stale,
					MaxDelay: -1, Spread: -1}, s.send))
				time.Sleep(time.Hour)
				stop()
				if got := s.all(); len(got) != 1 {
					t.Errorf("the report was sent %d times, want once", len(got))
				}
				if n := stale.calls.Load(); n < 3 {
					t.Errorf("%d passes, want the stale one and more", n)
				}
				if pending, err := box.Pending(context.Background()); err != nil || len(pending) != 0 {
					t.Errorf("pending: %+v, %v; want none", pending, err)
				}
			})
		})
	}
}

// flakyOutbox is an outbox whose Delivered and Done fail their first fails
// calls each, as during a short outage of a shared outbox.
type flakyOutbox struct {
	tlsrpt.Outbox
	fails               int32
	delivered, doneCall atomic.Int32
}

var errOutage = errors.New("outbox unavailable")

func (o *flakyOutbox) Delivered(ctx context.Context, r *tlsrpt.Report, uri string) error {
	if o.delivered.Add(1) <= o.fails {
		return errOutage
	}
	return o.Outbox.Delivered(ctx, r, uri)
}

func (o *flakyOutbox) Done(ctx context.Context, r *tlsrpt.Report) error {
	if o.doneCall.Add(1) <= o.fails {
		return errOutage
	}
	return o.Outbox.Done(ctx, r)
}

// A short outage of the outbox, during which the first marks and the first
// Done fail, does not make a live Reporter send the report again: both are
// retried within their time limit. One report, one POST, and nothing left
// pending.
func TestReporterMarkRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec, _ := newRecorder(t, tlsrpt.RecorderOptions{})
		defer rec.Close()
		must(t, rec.Success(sts("a.example", "enforce")))
		time.Sleep(time.Until(closes(time.Now().UTC().Truncate(24 * time.Hour))))
		resolver := mtaststest.NewResolver()
		resolver.SetTXT("_smtp._tls.a.example", "v=TLSRPTv1; rua=https://c1.example/r,https://c2.example/r")
		tr := &memTransport{answer: status(http.StatusOK)}
		sender := newSender(t, tlsrpt.SenderOptions{Resolver: resolver, Transport: tr})
		const fails = 3
		box := &flakyOutbox{Outbox: tlsrpt.NewMemoryOutbox(), fails: fails}
		stop := startReporter(t, tlsrpt.ReporterOptions{Recorder: rec, Sender: sender, Outbox: box,
			MaxDelay: -1, Spread: -1})
		time.Sleep(time.Hour)
		stop()
		if n := len(tr.attempts(time.Time{})); n != 2 {
			t.Errorf("%d POSTs, want one to each of the 2 rua URIs", n)
		}
		if pending, err := box.Outbox.Pending(context.Background()); err != nil || len(pending) != 0 {
			t.Errorf("pending: %+v, %v; want none", pending, err)
		}
		if d, n := box.delivered.Load(), box.doneCall.Load(); d < fails+2 || n != fails+1 {
			t.Errorf("%d calls of Delivered and %d of Done, want at least %d and %d", d, n, fails+2, fails+1)
		}
	})
}
