//go:build linux

// Command postfixbench measures "mtasts postfix" and Debian's
// postfix-mta-sts-resolver (mta-sts-daemon) over Postfix's socketmap
// protocol, on the same domains served by the same DNS server and HTTPS
// policy host. scripts/bench-postfix.sh builds and runs it; it needs root.
//
// It re-executes itself in a private network and mount namespace
// (internal/netlab), where the test kit's DNS server answers on
// 127.0.0.1:53, named by a resolv.conf bind-mounted there only, and its
// policy host on 127.0.0.1:443. Both daemons use the system's resolver and
// port 443, as in production; the peer trusts the lab's CA through
// SSL_CERT_FILE, ours through --ca. A bare socketmap echo server, which
// answers every query with the same reply, gives the protocol's own limit.
//
// For each daemon, in one run: cold lookups of 1,000 domains over 64
// connections; cached answers with 1 and with 64 connections (latency p50
// and p99, throughput); the resident memory per cached domain, from the
// growth of RSS between 1,000 and each of -domains cached; and repeated
// queries for domains without MTA-STS, counting the DNS queries they cause.
// It prints a Markdown table.
package main

import (
	"bufio"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mtasts-go/mtasts/internal/netlab"
	"github.com/mtasts-go/mtasts/mtaststest"
)

var (
	mtastsBin = flag.String("mtasts", "", "the mtasts binary")
	peerBin   = flag.String("peer", "", "mta-sts-daemon, or empty to measure mtasts alone")
	domainsF  = flag.String("domains", "10000,100000", "cached-domain counts for the memory figure, comma-separated")
	duration  = flag.Duration("duration", 3*time.Second, "how long each cached-answer run lasts")
	rounds    = flag.Int("rounds", 5, "cached-answer runs of each server, interleaved")
	echoAddr  = flag.String("echo", "", "internal: serve as the echo server on this address")
	oursLog   = flag.String("log-level", "warn", "mtasts postfix's --log-level")
)

const (
	coldDomains = 1000
	negDomains  = 10  // domains without MTA-STS
	negRepeats  = 100 // queries of each
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("postfixbench: ")
	flag.Parse()
	if *echoAddr != "" {
		serveEcho(*echoAddr)
		return
	}
	if !netlab.Inside() {
		cmd := netlab.Command(os.Args[0], os.Args[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				os.Exit(exit.ExitCode())
			}
			log.Fatalf("making a private network namespace (root needed): %v", err)
		}
		return
	}
	if *mtastsBin == "" {
		log.Fatal("-mtasts is required")
	}
	var counts []int
	for s := range strings.SplitSeq(*domainsF, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= coldDomains {
			log.Fatalf("-domains %q: expected counts above %d", *domainsF, coldDomains)
		}
		counts = append(counts, n)
	}
	slices.Sort(counts)
	if err := run(counts); err != nil {
		log.Fatal(err)
	}
}

// lab is the DNS server and policy host, on their well-known ports.
type lab struct {
	dir      string
	dns      *mtaststest.DNSServer
	policies *mtaststest.PolicyServer
	caFile   string
}

func domainName(i int) string { return "d" + strconv.Itoa(i) + ".example" }
func negName(i int) string    { return "nosts" + strconv.Itoa(i) + ".example" }

func startLab(maxDomains int) (*lab, func(), error) {
	dir, err := os.MkdirTemp("", "postfixbench-")
	if err != nil {
		return nil, nil, err
	}
	var closers []func()
	cleanup := func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
		os.RemoveAll(dir)
	}
	fail := func(err error) (*lab, func(), error) {
		cleanup()
		return nil, nil, err
	}
	if err := netlab.Setup(dir); err != nil {
		return fail(err)
	}
	l := &lab{dir: dir, caFile: filepath.Join(dir, "ca.pem")}
	if l.dns, err = mtaststest.StartDNSServer(); err != nil {
		return fail(err)
	}
	closers = append(closers, l.dns.Close)
	if l.policies, err = mtaststest.StartPolicyServer(); err != nil {
		return fail(err)
	}
	closers = append(closers, l.policies.Close)
	dnsFwd, err := netlab.Forward("127.0.0.1:53", l.dns.Addr(), true)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, dnsFwd.Close)
	httpsFwd, err := netlab.Forward("127.0.0.1:443", l.policies.Addr(), false)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, httpsFwd.Close)
	if err := os.WriteFile(l.caFile, l.policies.CACertificatePEM(), 0o644); err != nil {
		return fail(err)
	}
	loopback := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	for i := range maxDomains {
		d := domainName(i)
		l.dns.Set("_mta-sts."+d, mtaststest.DNSRecords{TXT: [][]string{{"v=STSv1; id=20260101"}}})
		l.dns.Set("mta-sts."+d, mtaststest.DNSRecords{Addrs: loopback})
		l.policies.SetPolicy(d, "version: STSv1\nmode: enforce\nmx: mx1."+d+"\nmx: *.mx."+d+"\nmax_age: 604800\n")
	}
	// The policy host's certificates, issued now rather than on first
	// use, which would make the first daemon measured pay for them.
	log.Printf("issuing %d certificates", maxDomains)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Go(func() {
			now := time.Now()
			for i := w; i < maxDomains; i += 2 {
				d := domainName(i)
				c, err := l.policies.IssueCertificate(now.Add(-time.Hour), now.Add(7*24*time.Hour), "mta-sts."+d)
				if err != nil {
					errs <- err
					return
				}
				l.policies.SetCertificate(d, c)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fail(err)
	}
	return l, cleanup, nil
}

// daemon is a socketmap server under test, run as a process.
type daemon struct {
	name, addr string
	cmd        *exec.Cmd
}

func (d *daemon) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// cpu returns the CPU time, user and system, that d's process has used:
// fields 14 and 15 of /proc/PID/stat, in clock ticks (USER_HZ, 100 on
// Linux).
func (d *daemon) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:])) // from field 3 on
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: short /proc stat", d.name)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * (time.Second / 100), nil
}

func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}

// startDaemon runs cmd and waits until addr answers a query.
func startDaemon(name, addr string, cmd *exec.Cmd) (*daemon, error) {
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	d := &daemon{name: name, addr: addr, cmd: cmd}
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := dial(addr)
		if err == nil {
			_, err = c.query("postfix", "warmup.invalid")
			c.close()
			if err == nil {
				return d, nil
			}
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("%s did not answer on %s in 30 s: %v", name, addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// client is one socketmap connection, asking as Postfix does: one request,
// then its reply.
type client struct {
	c net.Conn
	r *bufio.Reader
	w []byte
}

func dial(addr string) (*client, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &client{c: c, r: bufio.NewReader(c)}, nil
}

func (c *client) close() { c.c.Close() }

// query sends "name key" as a netstring and returns the reply.
func (c *client) query(name, key string) (string, error) {
	c.w = strconv.AppendInt(c.w[:0], int64(len(name)+1+len(key)), 10)
	c.w = append(c.w, ':')
	c.w = append(append(append(c.w, name...), ' '), key...)
	c.w = append(c.w, ',')
	c.c.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := c.c.Write(c.w); err != nil {
		return "", err
	}
	return readNetstring(c.r)
}

func readNetstring(r *bufio.Reader) (string, error) {
	lenStr, err := r.ReadString(':')
	if err != nil {
		return "", err
	}
	n, err := strconv.Atoi(lenStr[:len(lenStr)-1])
	if err != nil || n < 0 || n > 100000 {
		return "", fmt.Errorf("bad netstring length %q", lenStr)
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	if buf[n] != ',' {
		return "", errors.New("netstring without its comma")
	}
	return string(buf[:n]), nil
}

// serveEcho is the bare socketmap server: it answers every request with
// the same secure reply, with no lookup.
func serveEcho(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	const reply = "OK secure match=mx1.d0.example:.mx.d0.example servername=hostname"
	out := []byte(strconv.Itoa(len(reply)) + ":" + reply + ",")
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				if _, err := readNetstring(r); err != nil {
					return
				}
				if _, err := c.Write(out); err != nil {
					return
				}
			}
		}()
	}
}

// load runs conns connections, each querying keys[i] for i from its own
// offset on, until dur passes or, when dur is 0, until the keys are each
// asked once. It returns the latencies and the elapsed time, and fails on
// a reply that check rejects.
func load(addr string, conns int, keys []string, dur time.Duration, check func(key, reply string) error) ([]time.Duration, time.Duration, error) {
	var (
		mu       sync.Mutex
		all      []time.Duration
		firstErr error
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	start := time.Now()
	for w := range conns {
		wg.Go(func() {
			c, err := dial(addr)
			if err != nil {
				mu.Lock()
				firstErr = firstOf(firstErr, err)
				mu.Unlock()
				return
			}
			defer c.close()
			lat := make([]time.Duration, 0, 1024)
			for i := w; ; i++ {
				var key string
				if dur == 0 {
					j := next.Add(1) - 1
					if j >= int64(len(keys)) {
						break
					}
					key = keys[j]
				} else {
					if time.Since(start) >= dur {
						break
					}
					key = keys[i%len(keys)]
				}
				t0 := time.Now()
				reply, err := c.query("postfix", key)
				lat = append(lat, time.Since(t0))
				if err == nil {
					err = check(key, reply)
				}
				if err != nil {
					mu.Lock()
					firstErr = firstOf(firstErr, fmt.Errorf("%s: %w", key, err))
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all, time.Since(start), firstErr
}

func firstOf(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func secure(key, reply string) error {
	want := "OK secure match=mx1." + key + ":.mx." + key + " servername=hostname"
	alt := "OK secure match=.mx." + key + ":mx1." + key + " servername=hostname" // the peer's set order
	if reply != want && reply != alt {
		return fmt.Errorf("reply %q, want %q", reply, want)
	}
	return nil
}

func anyReply(string, string) error { return nil }

func notFound(key, reply string) error {
	if !strings.HasPrefix(reply, "NOTFOUND") {
		return fmt.Errorf("reply %q, want NOTFOUND", reply)
	}
	return nil
}

func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[int(float64(len(lat)-1)*p)]
}

// result is one daemon's row of figures.
type result struct {
	name      string
	cold      time.Duration
	rss0      int64            // resident memory with coldDomains cached
	runs      map[int][]sample // cached-answer runs by connection count
	perDomain map[int]string
	dnsPerNeg string
}

// sample is one cached-answer run.
type sample struct {
	rate     float64 // answers per second
	p50, p99 time.Duration
	cpu      time.Duration // the server's CPU time (user and system) per answer
}

func keys(from, to int) []string {
	k := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		k = append(k, domainName(i))
	}
	return k
}

// cached measures one run of cached answers with conns connections; the
// echo server answers anything, the daemons the cold lookups' domains.
func cached(d *daemon, conns int, echo bool) (sample, error) {
	check, ks := secure, keys(0, coldDomains)
	if echo {
		check, ks = anyReply, keys(0, 1)
	}
	cpu0, err := d.cpu()
	if err != nil {
		return sample{}, err
	}
	lat, elapsed, err := load(d.addr, conns, ks, *duration, check)
	if err != nil {
		return sample{}, fmt.Errorf("%s, cached: %w", d.name, err)
	}
	cpu1, err := d.cpu()
	if err != nil || len(lat) == 0 {
		return sample{}, err
	}
	return sample{rate: float64(len(lat)) / elapsed.Seconds(), p50: percentile(lat, 0.50), p99: percentile(lat, 0.99),
		cpu: (cpu1 - cpu0) / time.Duration(len(lat))}, nil
}

func fmtDur(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

// cold makes d look up the cold domains, and notes the time it took and
// the resident memory after.
func cold(d *daemon, r *result) error {
	log.Printf("%s: cold lookups of %d domains", d.name, coldDomains)
	_, elapsed, err := load(d.addr, 64, keys(0, coldDomains), 0, secure)
	if err != nil {
		return fmt.Errorf("%s, cold: %w", d.name, err)
	}
	r.cold = elapsed
	r.rss0, err = d.rss()
	return err
}

// negative asks d for the domains without MTA-STS, and counts the DNS
// queries it made for them.
func negative(l *lab, d *daemon, r *result) error {
	log.Printf("%s: %d domains without MTA-STS, %d queries each", d.name, negDomains, negRepeats)
	var neg []string
	for range negRepeats {
		for i := range negDomains {
			neg = append(neg, negName(i))
		}
	}
	before := 0
	for i := range negDomains {
		before += l.dns.Queries("_mta-sts." + negName(i))
	}
	if _, _, err := load(d.addr, 1, neg, 0, notFound); err != nil {
		return fmt.Errorf("%s, no MTA-STS: %w", d.name, err)
	}
	after := 0
	for i := range negDomains {
		after += l.dns.Queries("_mta-sts." + negName(i))
	}
	r.dnsPerNeg = fmt.Sprintf("%d for %d answers", after-before, len(neg))
	return nil
}

// fill caches each of counts domains in turn, noting the resident memory
// per domain added since the cold lookups.
func fill(d *daemon, r *result, counts []int) error {
	have := coldDomains
	for _, n := range counts {
		log.Printf("%s: filling the cache to %d domains", d.name, n)
		if _, _, err := load(d.addr, 64, keys(have, n), 0, secure); err != nil {
			return fmt.Errorf("%s, filling: %w", d.name, err)
		}
		have = n
		rss, err := d.rss()
		if err != nil {
			return err
		}
		r.perDomain[n] = fmt.Sprintf("%d B", (rss-r.rss0)/int64(n-coldDomains))
	}
	return nil
}

// run measures the daemons. Cached answers are measured in -rounds rounds,
// each of which runs every server in turn, starting with a different one
// each round, so that load from elsewhere on the host falls on all alike;
// the table gives the median round.
func run(counts []int) error {
	maxDomains := counts[len(counts)-1]
	l, cleanup, err := startLab(maxDomains)
	if err != nil {
		return err
	}
	defer cleanup()

	echo, err := startDaemon("bare socketmap echo server", "127.0.0.1:8460", exec.Command(os.Args[0], "-echo", "127.0.0.1:8460"))
	if err != nil {
		return err
	}
	defer echo.stop()
	ours, err := startDaemon("mtasts postfix", "127.0.0.1:8461", exec.Command(*mtastsBin, "postfix",
		"--listen", "127.0.0.1:8461", "--store", "", "--ca", l.caFile, "--allow-private",
		"--max-entries", strconv.Itoa(2*maxDomains), "--log-level", *oursLog))
	if err != nil {
		return err
	}
	defer ours.stop()
	daemons := []*daemon{ours}
	if *peerBin != "" {
		conf := filepath.Join(l.dir, "mta-sts-daemon.yml")
		// The internal cache, sized for every domain; cache_grace (how
		// long an answer is served before the TXT record is asked
		// again) raised from 60 s, so that cached answers are cached.
		yml := fmt.Sprintf("host: 127.0.0.1\nport: 8462\ncache_grace: 3600\ncache:\n  type: internal\n  options:\n    cache_size: %d\n", 2*maxDomains)
		if err := os.WriteFile(conf, []byte(yml), 0o644); err != nil {
			return err
		}
		cmd := exec.Command(*peerBin, "-c", conf, "-v", "error")
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+l.caFile)
		peer, err := startDaemon("postfix-mta-sts-resolver", "127.0.0.1:8462", cmd)
		if err != nil {
			return err
		}
		defer peer.stop()
		daemons = append(daemons, peer)
	}

	all := append([]*daemon{echo}, daemons...)
	results := map[*daemon]*result{}
	for _, d := range all {
		results[d] = &result{name: d.name, runs: map[int][]sample{}, perDomain: map[int]string{}}
	}
	for _, d := range daemons {
		if err := cold(d, results[d]); err != nil {
			return err
		}
	}
	for round := range *rounds {
		for _, conns := range []int{1, 64} {
			log.Printf("round %d of %d: cached answers, %d connections, %v each", round+1, *rounds, conns, *duration)
			for i := range all {
				d := all[(i+round)%len(all)]
				rn, err := cached(d, conns, d == echo)
				if err != nil {
					return err
				}
				results[d].runs[conns] = append(results[d].runs[conns], rn)
			}
		}
	}
	for _, d := range daemons {
		if err := negative(l, d, results[d]); err != nil {
			return err
		}
	}
	for _, d := range daemons {
		if err := fill(d, results[d], counts); err != nil {
			return err
		}
	}
	var rows []*result
	for _, d := range daemons {
		rows = append(rows, results[d])
	}
	printTable(results[echo], rows, counts)
	return nil
}

// median returns the run of the median rate, and the lowest and highest
// rates.
func median(runs []sample) (mid sample, lo, hi float64) {
	if len(runs) == 0 {
		return sample{}, 0, 0
	}
	rs := slices.Clone(runs)
	slices.SortFunc(rs, func(a, b sample) int { return cmp.Compare(a.rate, b.rate) })
	return rs[len(rs)/2], rs[0].rate, rs[len(rs)-1].rate
}

func printTable(echo *result, results []*result, counts []int) {
	header := "| | " + echo.name
	sep := "|---|---"
	for _, r := range results {
		header += " | " + r.name
		sep += "|---"
	}
	fmt.Println(header + " |")
	fmt.Println(sep + "|")
	row := func(label, echoVal string, f func(*result) string) {
		line := "| " + label + " | " + echoVal
		for _, r := range results {
			line += " | " + f(r)
		}
		fmt.Println(line + " |")
	}
	for _, conns := range []int{1, 64} {
		rate := func(r *result) string {
			mid, lo, hi := median(r.runs[conns])
			return fmt.Sprintf("%.0f (%.0f-%.0f)", mid.rate, lo, hi)
		}
		lat := func(r *result) string {
			mid, _, _ := median(r.runs[conns])
			return fmtDur(mid.p50) + " / " + fmtDur(mid.p99)
		}
		row(fmt.Sprintf("cached answers, %d connection(s): per second, median (range) of %d runs", conns, *rounds), rate(echo), rate)
		row(fmt.Sprintf("cached answers, %d connection(s): p50 / p99 of the median run", conns), lat(echo), lat)
		cpu := func(r *result) string {
			var all []time.Duration
			for _, rn := range r.runs[conns] {
				all = append(all, rn.cpu)
			}
			return fmt.Sprintf("%.1f µs", float64(percentile(all, 0.5).Nanoseconds())/1000)
		}
		row(fmt.Sprintf("cached answers, %d connection(s): server CPU time per answer, median of the runs", conns), cpu(echo), cpu)
	}
	row(fmt.Sprintf("cold lookups, %d domains, 64 connections", coldDomains), "", func(r *result) string { return fmt.Sprintf("%.2f s", r.cold.Seconds()) })
	for _, n := range counts {
		row(fmt.Sprintf("memory per cached domain, %d domains", n), "", func(r *result) string { return r.perDomain[n] })
	}
	row(fmt.Sprintf("DNS queries for %d domains without MTA-STS asked %d times each", negDomains, negRepeats), "", func(r *result) string { return r.dnsPerNeg })
}
