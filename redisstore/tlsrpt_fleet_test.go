package redisstore_test

import (
	"compress/gzip"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/redisstore"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// fleetCollector is an HTTPS report collector on 127.0.0.1 that takes the
// reports (answers 200) sent while it is open, and refuses them (503)
// otherwise.
//
// Whether it was open is decided when a report is sent, not when the
// collector reads the request: the fleet's transport (transport) stamps
// each request with it. A member stopped as a crash would stop it may
// leave a POST that the server reads only later: the collector, down when
// the member tried, must refuse it then too, as a collector down at the
// time would have; it is not a report the fleet sent twice.
type fleetCollector struct {
	srv  *httptest.Server
	open atomic.Bool
	// hit, when set, is called with each request, before the answer.
	hit atomic.Pointer[func()]

	mu       sync.Mutex
	accepted map[string][]string // report-ids by policy domain
}

func newFleetCollector(t *testing.T) *fleetCollector {
	c := &fleetCollector{accepted: map[string][]string{}}
	c.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := c.hit.Load(); h != nil {
			(*h)()
		}
		if r.Header.Get(sentOpenHeader) == "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		zr, err := gzip.NewReader(r.Body)
		var rep tlsrpt.Report
		if err == nil {
			err = json.NewDecoder(zr).Decode(&rep)
		}
		if err != nil {
			t.Errorf("collector: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		dom := rep.Policies[0].Policy.PolicyDomain
		c.accepted[dom] = append(c.accepted[dom], rep.ReportID)
		c.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// sentOpenHeader marks a request sent while the collector was open.
const sentOpenHeader = "X-Test-Sent-Open"

// transport returns rt stamping each request with whether c is open when
// it is sent (sentOpenHeader).
func (c *fleetCollector) transport(rt http.RoundTripper) http.RoundTripper {
	return collectorTransport{rt, c}
}

// collectorTransport is the RoundTripper of fleetCollector.transport.
type collectorTransport struct {
	rt http.RoundTripper
	c  *fleetCollector
}

func (t collectorTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.c.open.Load() {
		r = r.Clone(r.Context())
		r.Header.Set(sentOpenHeader, "1")
	}
	return t.rt.RoundTrip(r)
}

func (c *fleetCollector) taken() map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]string{}
	for k, v := range c.accepted {
		out[k] = slices.Clone(v)
	}
	return out
}

// fleetMember is an MTA of a fleet: its recorder, store and outbox in one
// Redis, and a Reporter delivering to a collector.
type fleetMember struct {
	owner  string
	store  tlsrpt.Store
	rec    *tlsrpt.Recorder
	box    *fleetOutbox
	cancel context.CancelFunc
	ended  chan error
}

// fleetOutbox is the member's Redis outbox, whose Put may crash the member.
type fleetOutbox struct {
	tlsrpt.Outbox
	crashPut func() bool
	done     chan string
	passes   chan struct{} // a send per Pending, dropped when full
}

func (o *fleetOutbox) Pending(ctx context.Context) ([]tlsrpt.PendingReport, error) {
	select {
	case o.passes <- struct{}{}:
	default:
	}
	return o.Outbox.Pending(ctx)
}

func (o *fleetOutbox) Put(ctx context.Context, reports []tlsrpt.Report) error {
	if o.crashPut != nil && o.crashPut() {
		return errors.New("crashed")
	}
	return o.Outbox.Put(ctx, reports)
}

func (o *fleetOutbox) Done(ctx context.Context, r *tlsrpt.Report) error {
	err := o.Outbox.Done(ctx, r)
	o.done <- r.Key()
	return err
}

// fleet is a test fleet on one redis-server, sharing a clock.
type fleet struct {
	t         *testing.T
	srv       *redisServer
	now       atomic.Int64
	collector *fleetCollector
	sender    *tlsrpt.Sender
	done      chan string // the keys of the reports done, by any member
}

func newFleet(t *testing.T) *fleet {
	f := &fleet{t: t, srv: startRedis(t, ""), collector: newFleetCollector(t), done: make(chan string, 100)}
	resolver := mtaststest.NewResolver()
	for _, dom := range []string{"a.example", "b.example"} {
		resolver.SetTXT("_smtp._tls."+dom, "v=TLSRPTv1; rua="+f.collector.srv.URL+"/"+dom)
	}
	tr := mtasts.NewTransport(mtasts.AllowLoopback)
	tr.TLSClientConfig.RootCAs = x509.NewCertPool()
	tr.TLSClientConfig.RootCAs.AddCert(f.collector.srv.Certificate())
	sender, err := tlsrpt.NewSender(tlsrpt.SenderOptions{Resolver: resolver, Transport: f.collector.transport(tr)})
	if err != nil {
		t.Fatal(err)
	}
	f.sender = sender
	return f
}

func (f *fleet) clock() time.Time { return time.Unix(0, f.now.Load()).UTC() }

// member makes member i, named "mta-<i>".
func (f *fleet) member(i int) *fleetMember {
	owner := fmt.Sprintf("mta-%d", i)
	store := redisstore.NewReportStore(f.srv.client(), redisstore.WithNow(redisstore.Options{Owner: owner}, f.clock))
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{Store: store})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { rec.Close() })
	box := &fleetOutbox{
		Outbox: redisstore.NewOutbox(f.srv.client(), redisstore.WithNow(redisstore.Options{Owner: owner}, f.clock)),
		done:   f.done,
		passes: make(chan struct{}, 1),
	}
	return &fleetMember{owner: owner, store: store, rec: rec, box: box}
}

// run starts the member's Reporter, a pass every 20 ms.
func (f *fleet) run(m *fleetMember) {
	rep, err := tlsrpt.NewReporter(tlsrpt.ReporterOptions{
		Recorder: m.rec, Sender: f.sender, Outbox: m.box,
		Info:     tlsrpt.ReportInfo{OrganizationName: "Fleet", ContactInfo: "tlsrpt@fleet.example"},
		MaxDelay: -1, Spread: -1, RetryInterval: 20 * time.Millisecond,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.ended = cancel, make(chan error, 1)
	go func() { m.ended <- rep.Run(ctx) }()
	f.t.Cleanup(m.stop)
}

// stop stops the member's Reporter, as a crash would: nothing of it runs
// after.
func (m *fleetMember) stop() {
	if m.cancel != nil {
		m.cancel()
		<-m.ended
		m.cancel = nil
	}
}

// record adds a session of the day per policy domain from each of
// members to Redis, as their recorders' flushes do, then closes the day.
// The recorders' clock is the real one: the day, long past, is closed and
// due; the clock of the stores and outboxes, for claims and leases, is the
// fleet's.
func (f *fleet) record(day time.Time, members ...*fleetMember) {
	f.now.Store(day.Add(10 * time.Hour).UnixNano())
	for _, m := range members {
		var results []tlsrpt.PolicyResult
		for _, dom := range []string{"a.example", "b.example"} {
			results = append(results, tlsrpt.PolicyResult{Policy: storefixture.STS(dom, "enforce"),
				Summary: tlsrpt.Summary{TotalSuccessfulSessionCount: 1}})
		}
		b := tlsrpt.Batch{Day: day, Results: results, MaxDetailRows: 1000, Source: m.owner, Seq: 1}
		if _, err := m.store.Add(context.Background(), b); err != nil {
			f.t.Fatal(err)
		}
	}
	f.now.Store(day.AddDate(0, 0, 1).Add(6 * time.Minute).UnixNano())
}

// takeOver runs the members left after one died: they send nothing, why,
// pass after pass; then, the clock moved by lapse, they take over and the
// fleet sends each report once.
func (f *fleet) takeOver(why string, lapse time.Duration, members ...*fleetMember) {
	for _, m := range members {
		f.run(m)
	}
	f.noneDone(why, members...)
	f.now.Add(int64(lapse))
	f.waitDone()
	for _, m := range members {
		m.stop()
	}
	f.checkOnce()
}

// noneDone checks that no report is done while the members make three
// passes each.
func (f *fleet) noneDone(why string, members ...*fleetMember) {
	for _, m := range members {
		for range 3 {
			select {
			case <-m.box.passes:
			case key := <-f.done:
				f.t.Fatalf("report %s done %s", key, why)
			case <-time.After(time.Minute):
				f.t.Fatal("no pass in a minute")
			}
		}
	}
	select {
	case key := <-f.done:
		f.t.Fatalf("report %s done %s", key, why)
	default:
	}
}

// waitDone waits until the reports of both domains are done.
func (f *fleet) waitDone() {
	timeout := time.After(time.Minute)
	for n := 0; n < 2; {
		select {
		case <-f.done:
			n++
		case <-timeout:
			f.t.Fatalf("%d reports done after a minute, want 2", n)
		}
	}
}

// checkOnce checks that the collector took each domain's report once, with
// the fleet's counts: one session per member.
func (f *fleet) checkOnce() {
	got := f.collector.taken()
	for _, dom := range []string{"a.example", "b.example"} {
		if len(got[dom]) != 1 {
			f.t.Errorf("the collector took %d reports of %s, want 1: %v", len(got[dom]), dom, got[dom])
		}
	}
}

// A member that takes the day and dies before its reports are in the outbox
// leaves the day claimed; once the claim lapses (the report store's
// Options.Lease, 15 minutes), another member takes it over and the fleet
// sends each report once.
func TestTLSRPTFleetMemberDiesAfterTake(t *testing.T) {
	f := newFleet(t)
	f.collector.open.Store(true)
	ms := []*fleetMember{f.member(0), f.member(1), f.member(2)}
	f.record(storefixture.DayOne, ms...)

	crashed := make(chan struct{})
	var once sync.Once
	ms[0].box.crashPut = func() bool {
		once.Do(func() { close(crashed) })
		return true
	}
	f.run(ms[0])
	<-crashed
	ms[0].stop()
	f.takeOver("while member 0's claim held", 16*time.Minute, ms[1], ms[2])
}

// A member that dies while it delivers the reports leaves them leased to it
// in the shared outbox; once the lease lapses
// (Options.Lease of the outbox), another member delivers them, and the
// fleet sends each report once.
func TestTLSRPTFleetMemberDiesDelivering(t *testing.T) {
	f := newFleet(t)
	ms := []*fleetMember{f.member(0), f.member(1), f.member(2)}
	f.record(storefixture.DayOne, ms...)

	// The collector is down when member 0 first tries; member 0 dies
	// then, its reports put, the day released. The collector refuses
	// every report member 0 sent, also one it reads after member 0
	// stopped and it opened (see fleetCollector).
	crashed := make(chan struct{})
	var once sync.Once
	hit := func() { once.Do(func() { close(crashed) }) }
	f.collector.hit.Store(&hit)
	f.run(ms[0])
	<-crashed
	ms[0].stop()
	f.collector.hit.Store(nil)
	f.collector.open.Store(true)
	f.takeOver("while member 0's lease held", 2*time.Hour, ms[1], ms[2])
	if days, err := ms[1].store.Days(context.Background()); err != nil || len(days) != 0 {
		t.Errorf("days left in the store: %v, %v", days, err)
	}
}
