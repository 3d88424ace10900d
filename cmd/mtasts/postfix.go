package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
)

// "mtasts postfix": Postfix's smtp_tls_policy_maps over socketmap, answered
// from the policy cache. docs/postfix.md is the operator's page.

// stringList is a flag that may be given several times.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// postfixOptions are the flags of postfix, described in usageText.
type postfixOptions struct {
	listen, names              stringList
	store, metrics, logLevel   string
	unixMode                   string
	tlsrpt, strictTesting      bool
	lookupTimeout, idleTimeout time.Duration
	readTimeout, drainTimeout  time.Duration
	checkInterval              time.Duration
	maxConns, maxEntries       int
	gcPercent                  int
	resolver, ca               string
	httpsPort                  uint
	allowPrivate               bool
}

// Defaults of postfix's flags.
const (
	// The address and map name of postfix-mta-sts-resolver, so that a
	// main.cf written for it works unchanged.
	defaultPostfixListen = "127.0.0.1:8461"
	defaultPostfixName   = "postfix"
	defaultPostfixStore  = "/var/lib/mtasts/policies"
	// The daemon's heap is mostly its cache, long-lived, and a cached
	// answer allocates little: a collection target below Go's 100 costs
	// a few collections while policies are being fetched, and keeps the
	// resident memory per cached domain closer to the live data.
	defaultPostfixGCPercent = 25
)

func postfixFlags() (*flag.FlagSet, *postfixOptions) {
	o := &postfixOptions{}
	fs := flag.NewFlagSet("postfix", flag.ContinueOnError)
	fs.Var(&o.listen, "listen", "")
	fs.Var(&o.names, "name", "")
	fs.StringVar(&o.store, "store", defaultPostfixStore, "")
	fs.StringVar(&o.metrics, "metrics", "", "")
	fs.StringVar(&o.logLevel, "log-level", "info", "")
	fs.StringVar(&o.unixMode, "unix-mode", "0666", "")
	fs.BoolVar(&o.tlsrpt, "tlsrpt", false, "")
	fs.BoolVar(&o.strictTesting, "strict-testing", false, "")
	// Postfix's socketmap client gives up after 100 seconds; the
	// answer must come well before.
	fs.DurationVar(&o.lookupTimeout, "lookup-timeout", 20*time.Second, "")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 2*time.Minute, "")
	fs.DurationVar(&o.readTimeout, "read-timeout", 10*time.Second, "")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 10*time.Second, "")
	fs.DurationVar(&o.checkInterval, "check-interval", time.Hour, "")
	fs.IntVar(&o.maxConns, "max-connections", 1000, "")
	fs.IntVar(&o.maxEntries, "max-entries", 100000, "")
	fs.IntVar(&o.gcPercent, "gc-percent", defaultPostfixGCPercent, "")
	fs.StringVar(&o.resolver, "resolver", "", "")
	fs.StringVar(&o.ca, "ca", "", "")
	fs.UintVar(&o.httpsPort, "https-port", 443, "")
	fs.BoolVar(&o.allowPrivate, "allow-private", false, "")
	return fs, o
}

func runPostfix(ctx context.Context, args []string, sio *stdio) (int, error) {
	fs, o := postfixFlags()
	args, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage, err
	}
	if len(args) > 0 {
		return exitUsage, usagef("postfix: unexpected argument %q", args[0])
	}
	setGCPercent(fs, o.gcPercent)
	d, err := startPostfix(o, sio)
	if err != nil {
		return exitFail, err
	}
	if err := d.wait(ctx); err != nil {
		return exitFail, err
	}
	return exitOK, nil
}

// setGCPercent sets the garbage collector's target to percent, as GOGC
// does, unless --gc-percent was not given and GOGC is set: the operator's
// environment then decides.
func setGCPercent(fs *flag.FlagSet, percent int) {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "gc-percent" })
	if given || os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
}

// postfixDaemon is a running "mtasts postfix".
type postfixDaemon struct {
	opts    *postfixOptions
	logger  *slog.Logger
	network *network
	// fetch is the transport of the cache's client; SIGHUP replaces
	// what it delegates to, to trust new roots.
	fetch   swapTransport
	cache   *cache.Cache
	server  *smServer
	addrs   []net.Addr
	metrics *http.Server
	hup     chan os.Signal
	stopHUP func()

	runCancel context.CancelFunc
	errc      chan error // the first listener that fails
	wg        sync.WaitGroup
}

// checkPostfixOptions validates the flags and sets the defaults of the
// repeatable ones.
func checkPostfixOptions(o *postfixOptions) (*slog.LevelVar, os.FileMode, error) {
	if len(o.listen) == 0 {
		o.listen = stringList{defaultPostfixListen}
	}
	if len(o.names) == 0 {
		o.names = stringList{defaultPostfixName}
	}
	for _, n := range o.names {
		if n == "" || strings.ContainsAny(n, " \t\r\n:") {
			return nil, 0, usagef("postfix: --name %q: a socketmap name has no spaces or colons", n)
		}
	}
	level := new(slog.LevelVar)
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, 0, usagef("postfix: --log-level %q: expected debug, info, warn or error", o.logLevel)
	}
	mode, err := strconv.ParseUint(o.unixMode, 8, 32)
	if err != nil || mode > 0o777 {
		return nil, 0, usagef("postfix: --unix-mode %q: expected an octal file mode such as 0660", o.unixMode)
	}
	for name, d := range map[string]time.Duration{"lookup-timeout": o.lookupTimeout, "idle-timeout": o.idleTimeout, "read-timeout": o.readTimeout, "drain-timeout": o.drainTimeout, "check-interval": o.checkInterval} {
		if d <= 0 {
			return nil, 0, usagef("postfix: --%s must be positive", name)
		}
	}
	switch {
	case o.maxConns < 1:
		return nil, 0, usagef("postfix: --max-connections must be at least 1")
	case o.maxEntries < 1:
		return nil, 0, usagef("postfix: --max-entries must be at least 1")
	case o.httpsPort == 0 || o.httpsPort > 65535:
		return nil, 0, usagef("postfix: --https-port must be 1 to 65535")
	}
	return level, os.FileMode(mode), nil
}

// startPostfix builds the cache and starts listening; the daemon runs
// until wait's context ends.
func startPostfix(o *postfixOptions, sio *stdio) (_ *postfixDaemon, err error) {
	level, unixMode, err := checkPostfixOptions(o)
	if err != nil {
		return nil, err
	}
	d := &postfixDaemon{opts: o, errc: make(chan error, len(o.listen)+1)}
	d.logger = slog.New(slog.NewTextHandler(sio.err, &slog.HandlerOptions{Level: level}))

	if err := d.setNetwork(); err != nil {
		return nil, usagef("postfix: %v", err)
	}
	var store cache.Store
	if o.store != "" {
		// RFC 8461 5.1: policies outlive a restart.
		fstore, err := cache.OpenFileStore(o.store)
		if err != nil {
			return nil, fmt.Errorf("--store: %w", err)
		}
		store = fstore
	}
	d.cache, err = cache.New(cache.Options{
		Resolver:      txtResolver{d.network},
		Store:         store,
		MaxEntries:    o.maxEntries,
		CheckInterval: o.checkInterval,
		Logger:        d.logger,
		Client:        &mtasts.Client{HTTPClient: &http.Client{Transport: &d.fetch}},
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.cache.Close()
		}
	}()

	pm := &policyMap{get: d.cache.Get, names: o.names, strictTesting: o.strictTesting, tlsrpt: o.tlsrpt, timeout: o.lookupTimeout, logger: d.logger}
	d.server = newSMServer(pm.lookup, d.logger)
	d.server.maxConns = o.maxConns
	d.server.idleTimeout = o.idleTimeout
	d.server.readTimeout = o.readTimeout

	reg := prometheus.NewRegistry()
	if o.metrics != "" {
		if d.server.metrics, err = newSMMetrics(reg); err != nil {
			return nil, err
		}
		if err := d.cache.RegisterMetrics(reg); err != nil {
			return nil, err
		}
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}

	var lns []net.Listener
	defer func() {
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
		}
	}()
	for _, addr := range o.listen {
		ln, err := listenSocketmap(addr, unixMode)
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
	}
	if o.metrics != "" {
		ln, err := net.Listen("tcp", o.metrics)
		if err != nil {
			return nil, fmt.Errorf("--metrics: %w", err)
		}
		lns = append(lns, ln)
		mux := http.NewServeMux()
		mux.Handle("/metrics", metricsHandler(reg))
		d.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
		d.logger.Info("serving metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
		d.wg.Go(func() {
			if err := d.metrics.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				d.errc <- fmt.Errorf("metrics: %w", err)
			}
		})
		lns = lns[:len(lns)-1] // the server owns it now
	}

	if sio.notifyHUP != nil {
		// Asked for before the log line below, so that a SIGHUP sent
		// once the daemon says it is listening is not lost.
		d.hup = make(chan os.Signal, 1)
		d.stopHUP = sio.notifyHUP(d.hup)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	d.runCancel = cancel
	d.wg.Go(func() { d.cache.Run(runCtx) })
	for _, ln := range lns {
		d.addrs = append(d.addrs, ln.Addr())
		d.logger.Info("listening", "addr", listenerName(ln), "names", o.names.String())
		d.wg.Go(func() {
			if err := d.server.serve(ln); err != nil {
				d.errc <- fmt.Errorf("%s: %w", listenerName(ln), err)
			}
		})
	}
	return d, nil
}

// setNetwork builds the resolver and the policy fetcher from the lab flags
// and the CA file, as check does. reload calls it again.
func (d *postfixDaemon) setNetwork() error {
	o := d.opts
	var caPEM []byte
	if o.ca != "" {
		var err error
		if caPEM, err = readFileLimited(o.ca, 1<<20); err != nil {
			return fmt.Errorf("--ca: %v", err)
		}
	}
	n, err := newNetwork(o.resolver, caPEM)
	if err != nil {
		return err
	}
	n.httpsPort = strconv.FormatUint(uint64(o.httpsPort), 10)
	if o.allowPrivate {
		n.allow = mtasts.AllowPrivate
	}
	if d.network == nil {
		d.network = n // the resolver stays: its flag cannot change
	} else {
		n.resolver, n.custom = d.network.resolver, d.network.custom
	}
	tr := n.policyTransport()
	// A policy host is asked about once a day: a kept connection is never
	// reused, and HTTP/2 keeps them beyond MaxIdleConns, one per domain
	// fetched in the last IdleConnTimeout.
	tr.DisableKeepAlives = true
	if old := d.fetch.cur.Swap(tr); old != nil {
		old.CloseIdleConnections()
	}
	return nil
}

// swapTransport sends each request through the transport stored last, so
// that a reload gives the cache's client new roots while fetches made with
// the old ones finish.
type swapTransport struct {
	cur atomic.Pointer[http.Transport]
}

func (t *swapTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.cur.Load().RoundTrip(r)
}

// metricsHandler serves what g gathers in Prometheus's text format. (The
// client library's promhttp would add a compression module to the
// dependencies, for a page scraped over loopback.)
func metricsHandler(g prometheus.Gatherer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mfs, err := g.Gather()
		if err != nil && len(mfs) == 0 {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		format := expfmt.NewFormat(expfmt.TypeTextPlain)
		w.Header().Set("Content-Type", string(format))
		enc := expfmt.NewEncoder(w, format)
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return
			}
		}
	})
}

// listenerName returns how the logs name a listener.
func listenerName(ln net.Listener) string {
	if ln.Addr().Network() == "unix" {
		return "unix:" + ln.Addr().String()
	}
	return ln.Addr().String()
}

// listenSocketmap listens on addr: "unix:/path" for a unix socket, made
// with mode, replacing a socket a previous run left; else a TCP host:port.
func listenSocketmap(addr string, mode os.FileMode) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, usagef("postfix: --listen %q: expected HOST:PORT or unix:/PATH", addr)
		}
		return net.Listen("tcp", addr)
	}
	if path == "" {
		return nil, usagef("postfix: --listen %q: no path after unix:", addr)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("--listen %s: exists and is no socket", addr)
		}
		// A socket left by a run that did not end cleanly; one that a
		// running daemon holds answers, and is not removed.
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("--listen %s: another process is listening there", addr)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// wait runs the daemon until ctx ends (SIGTERM, SIGINT) or a listener
// fails, reloading on SIGHUP; then it drains the connections and stops. It
// returns the listener's error, or nil.
func (d *postfixDaemon) wait(ctx context.Context) error {
	var hup <-chan os.Signal = d.hup
	var err error
	for {
		select {
		case <-hup:
			d.reload()
			continue
		case err = <-d.errc:
			d.logger.Error("stopping", "err", err)
		case <-ctx.Done():
			d.logger.Info("stopping: draining connections", "drain_timeout", d.opts.drainTimeout)
		}
		break
	}
	d.stop()
	return err
}

// reload is SIGHUP: it reads the --ca file and the system's roots again, so
// that policy fetches trust the new ones, as after a CA bundle update. The
// other flags are not read again; restarting keeps the policies, which are
// in the store.
func (d *postfixDaemon) reload() {
	if err := d.setNetwork(); err != nil {
		d.logger.Error("reloading; keeping the trusted roots as they were", "err", err)
		return
	}
	n := 0
	for range d.cache.Memory() {
		n++
	}
	d.logger.Info("reloaded the trusted roots", "domains_in_memory", n)
}

// stop drains the socketmap connections, answering the requests in flight,
// for at most --drain-timeout, then stops the cache and the metrics server.
func (d *postfixDaemon) stop() {
	if d.stopHUP != nil {
		d.stopHUP()
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.drainTimeout)
	defer cancel()
	if err := d.server.drain(ctx); err != nil {
		d.logger.Warn("drain timeout passed; closed the connections still answering")
	}
	d.runCancel()
	d.cache.Close()
	if d.metrics != nil {
		d.metrics.Shutdown(ctx)
		d.metrics.Close()
	}
	d.wg.Wait()
	d.logger.Info("stopped")
}
