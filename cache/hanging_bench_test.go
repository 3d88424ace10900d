package cache_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/internal/testkit"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// BenchmarkHangingDomains measures what 10,000 cold Gets of distinct domains
// cost while every policy host hangs: a loopback listener accepts each
// connection and never answers, so each fetch waits in its TLS handshake. It
// reports the goroutines besides the callers', the live heap and the
// process's resident memory, measured while all of them wait. Run it alone:
//
//	go test -run x -bench HangingDomains -benchtime 1x ./cache
func BenchmarkHangingDomains(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	b.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	// The library's own guarded transport, allowed to reach loopback, with
	// every policy host dialled at the hanging listener.
	tr := mtasts.NewTransport(mtasts.AllowLoopback)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial(ctx, network, l.Addr().String())
	}
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	saved := mtasts.HTTPClient
	mtasts.HTTPClient = &http.Client{Transport: tr}
	b.Cleanup(func() { mtasts.HTTPClient = saved })

	const domains = 10_000
	resolver := mtaststest.NewResolver()
	for i := range domains {
		resolver.SetTXT(fmt.Sprintf("_mta-sts.hang%d.example", i), "v=STSv1; id=1")
	}
	for _, limit := range []int{0, domains} {
		name := "default"
		if limit != 0 {
			name = "unbounded" // as before Options.MaxNetwork
		}
		b.Run(name, func(b *testing.B) { hangingDomains(b, resolver, domains, limit) })
	}
}

func hangingDomains(b *testing.B, resolver mtasts.Resolver, domains, limit int) {
	for b.Loop() {
		c, err := cache.New(cache.Options{Resolver: resolver, MaxNetwork: limit})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		before := runtime.NumGoroutine()
		var wg sync.WaitGroup
		for i := range domains {
			wg.Go(func() { c.Get(ctx, mtasts.Domain{ASCII: fmt.Sprintf("hang%d.example", i)}) })
		}
		time.Sleep(2 * time.Second) // all have asked, the fetches hang
		goroutines := runtime.NumGoroutine() - before - domains
		heap := heapInUse()
		rss := residentBytes()
		cancel()
		wg.Wait()
		c.Close()
		b.ReportMetric(float64(goroutines), "goroutines")
		b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
	}
}

// residentBytes returns the process's resident memory, from /proc; 0 where
// there is none.
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkHealthyBehindHanging measures how long a Get for a healthy,
// uncached domain takes when it is made 3 seconds after cold Gets of N
// domains whose policy hosts finish TLS and never answer HTTP (the test kit's
// policy server, holding each response back for an hour), as an attacker
// with N domains could arrange. The N callers wait for ever; the cache has its
// default options. It reports the healthy Get's latency, and the goroutines
// besides the callers', the live heap and the resident memory of the whole
// process (policy server included) measured just after it. Run it alone:
//
//	go test -run x -bench HealthyBehindHanging -benchtime 1x ./cache
func BenchmarkHealthyBehindHanging(b *testing.B) {
	for _, n := range []int{300, 10_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			ps := testkit.PolicyServer(b)
			b.Cleanup(ps.Install())
			resolver := mtaststest.NewResolver()
			for i := range n {
				d := fmt.Sprintf("hang%d.example", i)
				resolver.SetTXT("_mta-sts."+d, "v=STSv1; id=1")
				ps.SetResponse(d, mtaststest.Response{Body: "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 86400\n", Delay: time.Hour})
			}
			resolver.SetTXT("_mta-sts.healthy.example", "v=STSv1; id=1")
			ps.SetPolicy("healthy.example", "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 86400\n")
			for b.Loop() {
				healthyBehindHangingHosts(b, resolver, n)
			}
		})
	}
}

func healthyBehindHangingHosts(b *testing.B, resolver mtasts.Resolver, n int) {
	c, err := cache.New(cache.Options{Resolver: resolver})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { c.Get(ctx, mtasts.Domain{ASCII: fmt.Sprintf("hang%d.example", i)}) })
	}
	time.Sleep(3 * time.Second)
	start := time.Now()
	r := c.Get(context.Background(), mtasts.Domain{ASCII: "healthy.example"})
	took := time.Since(start)
	goroutines := runtime.NumGoroutine() - before - n
	heap, rss := heapInUse(), residentBytes()
	cancel()
	wg.Wait()
	if r.Policy == nil {
		b.Fatalf("healthy Get = %+v; want its policy", r)
	}
	b.ReportMetric(took.Seconds(), "healthy-s")
	b.ReportMetric(float64(goroutines), "goroutines")
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
}
