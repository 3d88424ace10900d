package tlsrpt_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// errCrash is what the calls of a crashed process return.
var errCrash = errors.New("process crashed")

// crashPoint names where a test kills the process: a hook of an outbox or
// store call returns true to crash instead of making it.
type crashPoint struct {
	mu    sync.Mutex
	dead  bool
	died  chan struct{}      // closed by kill
	crash context.CancelFunc // stops the Reporter's Run
}

// kill crashes the process: the Reporter's Run ends and every later call of
// its store and outbox fails without touching the disk, as after a real
// crash nothing more would be written.
func (c *crashPoint) kill() {
	c.mu.Lock()
	if !c.dead {
		c.dead = true
		close(c.died)
	}
	c.mu.Unlock()
	c.crash()
}

func (c *crashPoint) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// crashOutbox is an Outbox that calls its hooks before each call, and stops
// working after a crash.
type crashOutbox struct {
	tlsrpt.Outbox
	cp                   *crashPoint
	put, delivered, done func(r *tlsrpt.Report, uri string) bool // true: crash instead
}

func (o *crashOutbox) hook(h func(*tlsrpt.Report, string) bool, r *tlsrpt.Report, uri string) bool {
	if o.cp.isDead() {
		return true
	}
	if h != nil && h(r, uri) {
		o.cp.kill()
		return true
	}
	return false
}

func (o *crashOutbox) Put(ctx context.Context, reports []tlsrpt.Report) error {
	if o.hook(o.put, &reports[0], "") {
		return errCrash
	}
	return o.Outbox.Put(ctx, reports)
}

func (o *crashOutbox) Pending(ctx context.Context) ([]tlsrpt.PendingReport, error) {
	if o.cp.isDead() {
		return nil, errCrash
	}
	return o.Outbox.Pending(ctx)
}

func (o *crashOutbox) Delivered(ctx context.Context, r *tlsrpt.Report, uri string) error {
	if o.hook(o.delivered, r, uri) {
		return errCrash
	}
	return o.Outbox.Delivered(ctx, r, uri)
}

func (o *crashOutbox) Done(ctx context.Context, r *tlsrpt.Report) error {
	if o.hook(o.done, r, "") {
		return errCrash
	}
	return o.Outbox.Done(ctx, r)
}

// crashStore is a Store whose Release crashes when release says so.
type crashStore struct {
	tlsrpt.Store
	cp      *crashPoint
	release func() bool
}

func (s *crashStore) Release(ctx context.Context, day time.Time) error {
	if s.cp.isDead() || (s.release != nil && s.release()) {
		s.cp.kill()
		return errCrash
	}
	return s.Store.Release(ctx, day)
}

// acceptingCollector is an HTTPS collector that counts the reports it took
// (answered 200), by report-id.
type acceptingCollector struct {
	*collector
	mu       sync.Mutex
	accepted []string // report-ids
}

func newAcceptingCollector(t *testing.T, before func(n int) (crash bool)) *acceptingCollector {
	a := &acceptingCollector{}
	a.collector = newCollector(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if before != nil && before(n) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var rep tlsrpt.Report
		if err := json.Unmarshal(gunzip(t, a.received()[n-1].body), &rep); err != nil {
			t.Errorf("collector got no report: %v", err)
		}
		a.mu.Lock()
		a.accepted = append(a.accepted, rep.ReportID)
		a.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	return a
}

func (a *acceptingCollector) ids() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.accepted)
}

// RFC 8460 4.1 and issue 13's point 5: a report is sent once to each rua
// URI, whatever the point at which the process dies, with the file store and
// outbox on disk, and a real HTTPS collector per URI.
func TestReporterCrashPoints(t *testing.T) {
	for _, tc := range []struct {
		name string
		// arm sets the crash point of the first run; delivered is
		// closed once the outbox marked the first URI delivered.
		arm func(o *crashOutbox, s *crashStore, c2 *atomic.Pointer[func(n int) bool], delivered chan struct{})
	}{
		{"after Take, before Put", func(o *crashOutbox, s *crashStore, _ *atomic.Pointer[func(int) bool], _ chan struct{}) {
			o.put = func(*tlsrpt.Report, string) bool { return true }
		}},
		{"after Put, before Release", func(o *crashOutbox, s *crashStore, _ *atomic.Pointer[func(int) bool], _ chan struct{}) {
			s.release = func() bool { return true }
		}},
		{"after the first URI took it", func(o *crashOutbox, s *crashStore, c2 *atomic.Pointer[func(int) bool], delivered chan struct{}) {
			hook := func(int) bool {
				<-delivered
				o.cp.kill()
				return true
			}
			c2.Store(&hook)
		}},
		{"after delivery, before Done", func(o *crashOutbox, s *crashStore, _ *atomic.Pointer[func(int) bool], _ chan struct{}) {
			o.done = func(*tlsrpt.Report, string) bool { return true }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			day := storefixture.DayOne
			clk := newClock(afterDay(day))
			var c2hook atomic.Pointer[func(n int) bool]
			c1 := newAcceptingCollector(t, nil)
			c2 := newAcceptingCollector(t, func(n int) bool {
				h := c2hook.Load()
				return h != nil && (*h)(n)
			})
			resolver := mtaststest.NewResolver()
			resolver.SetTXT("_smtp._tls.a.example", "v=TLSRPTv1; rua="+c1.srv.URL+"/a,"+c2.srv.URL+"/a")
			sender := newSender(t, tlsrpt.SenderOptions{Resolver: resolver, Transport: c1.transport(mtasts.AllowLoopback)})

			first := true
			// run starts the MTA on dir, with a recorder dated clk; it
			// returns what the test needs to watch it.
			run := func(arm func(*crashOutbox, *crashStore)) (stop func(), cp *crashPoint, done chan string, putIDs chan string) {
				fs, err := tlsrpt.OpenFileStore(filepath.Join(dir, "store"))
				must(t, err)
				fo, err := tlsrpt.OpenFileOutbox(filepath.Join(dir, "outbox"))
				must(t, err)
				ctx, cancel := context.WithCancel(context.Background())
				cp = &crashPoint{crash: cancel, died: make(chan struct{})}
				done, putIDs = make(chan string, 10), make(chan string, 10)
				box := &crashOutbox{Outbox: fo, cp: cp}
				store := &crashStore{Store: fs, cp: cp}
				arm(box, store)
				put, finished := box.put, box.done
				box.put = func(r *tlsrpt.Report, uri string) bool {
					if put != nil && put(r, uri) {
						return true
					}
					putIDs <- r.ReportID
					return false
				}
				box.done = func(r *tlsrpt.Report, uri string) bool {
					if finished != nil && finished(r, uri) {
						return true
					}
					done <- r.ReportID
					return false
				}
				rec, err := tlsrpt.NewRecorder(tlsrpt.WithNow(tlsrpt.RecorderOptions{Store: store}, clk.now))
				must(t, err)
				if first {
					// A session of the day, flushed to the store.
					clk.set(day.Add(time.Hour))
					must(t, rec.Success(sts("a.example", "enforce")))
					must(t, rec.Flush(context.Background()))
					clk.set(afterDay(day))
				}
				rep, err := tlsrpt.NewReporter(tlsrpt.ReporterOptions{Recorder: rec, Sender: sender, Outbox: box,
					Info: info, MaxDelay: -1, Spread: -1})
				must(t, err)
				ended := make(chan error, 1)
				go func() { ended <- rep.Run(ctx) }()
				return func() {
					cancel()
					if err := <-ended; !errors.Is(err, context.Canceled) {
						t.Errorf("Run: %v", err)
					}
					fs.(io.Closer).Close()
				}, cp, done, putIDs
			}

			// The first run, until the crash.
			delivered := make(chan struct{})
			stop, cp, _, putIDs := run(func(o *crashOutbox, s *crashStore) {
				var once sync.Once
				o.delivered = func(*tlsrpt.Report, string) bool {
					once.Do(func() { close(delivered) })
					return false
				}
				tc.arm(o, s, &c2hook, delivered)
			})
			select {
			case <-cp.died:
			case <-time.After(time.Minute):
				t.Fatal("the process did not reach its crash point")
			}
			stop()
			var firstID string
			select {
			case firstID = <-putIDs:
			default:
			}

			// The restart.
			first = false
			c2hook.Store(nil)
			stop, _, done, _ := run(func(*crashOutbox, *crashStore) {})
			var doneID string
			select {
			case doneID = <-done:
			case <-time.After(time.Minute):
				t.Fatal("the report was not done after the restart")
			}
			stop()
			if firstID != "" && doneID != firstID {
				t.Errorf("report-id %s after the restart, want %s, put before the crash", doneID, firstID)
			}
			for i, c := range []*acceptingCollector{c1, c2} {
				if ids := c.ids(); len(ids) != 1 || ids[0] != doneID {
					t.Errorf("collector %d took %v, want report %s once", i+1, ids, doneID)
				}
			}
			// The day was released, and its mark stays, empty.
			fi, err := os.Stat(filepath.Join(dir, "store", day.Format(time.DateOnly)+".taken"))
			if err != nil || fi.Size() != 0 {
				t.Errorf("the day's mark: %v, %v; want an empty file", fi, err)
			}
		})
	}
}
