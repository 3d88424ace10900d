package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtasts-go/mtasts"
)

// serveOptions are the flags of serve, described in usageText.
type serveOptions struct {
	policy, addr, cert, key string
	collect                 string
}

func serveFlags() (*flag.FlagSet, *serveOptions) {
	o := &serveOptions{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&o.policy, "policy", "", "")
	fs.StringVar(&o.addr, "addr", "", "")
	fs.StringVar(&o.cert, "cert", "", "")
	fs.StringVar(&o.key, "key", "", "")
	fs.StringVar(&o.collect, "collect", "", "")
	return fs, o
}

func runServe(ctx context.Context, args []string, sio *stdio) (int, error) {
	fs, o := serveFlags()
	args, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage, err
	}
	switch {
	case len(args) > 0:
		return exitUsage, usagef("serve: unexpected argument %q", args[0])
	case o.policy == "":
		return exitUsage, usagef("serve: --policy FILE is required")
	case (o.cert == "") != (o.key == ""):
		return exitUsage, usagef("serve: --cert and --key go together")
	}
	data, err := readFileLimited(o.policy, mtasts.MaxPolicySize)
	if err != nil {
		return exitUsage, usagef("serve: %v", err)
	}
	policy, err := mtasts.ParsePolicy(string(data))
	if err != nil {
		return exitFail, fmt.Errorf("%s: %s (run \"mtasts policy %s\" for details)", o.policy, errText(err), o.policy)
	}
	logger := log.New(sio.err, "mtasts serve: ", 0)
	served := newPolicySwitch(o.policy, policy, logger)
	var handler http.Handler = served
	if o.collect != "" {
		if err := checkCollectDir(o.collect); err != nil {
			return exitUsage, usagef("serve: %v", err)
		}
		handler = withCollector(served, o.collect, logger)
	}

	var tlsConfig *tls.Config
	if o.cert != "" {
		cert, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return exitUsage, usagef("serve: %v", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if o.addr == "" {
		o.addr = "127.0.0.1:8080"
		if tlsConfig != nil {
			o.addr = ":443"
		}
	}

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return exitFail, err
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	srv := &http.Server{
		TLSConfig:         tlsConfig,
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          logger,
	}
	if sio.notifyHUP != nil {
		// Asked for before the line below, so that a SIGHUP sent once
		// serve says it is serving is not lost.
		sigs := make(chan os.Signal, 1)
		stop := sio.notifyHUP(sigs)
		defer stop()
		reloadCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			reloadOn(reloadCtx, sigs, served.reload)
		}()
		defer func() {
			cancel()
			<-done
		}()
	}
	fmt.Fprintf(sio.err, "mtasts: serving %s (mode %s) at %s://%s%s\n", o.policy, policy.Mode, scheme, ln.Addr(), mtasts.WellKnownPath)
	if o.collect != "" {
		fmt.Fprintf(sio.err, "mtasts: collecting TLS reports posted to %s://%s%s into %s\n", scheme, ln.Addr(), collectPath, o.collect)
	}

	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			// ServeTLS, unlike Serve on a TLS listener, offers HTTP/2.
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return exitFail, err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		// Requests still running after the grace period, or a client's
		// connection that sent none yet (net/http counts those as idle
		// only after 5 s): close them. Stopping when asked is no failure.
		err = srv.Close()
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return exitFail, err
	}
	return exitOK, nil
}

// policySwitch serves the policy of a file, and reads the file again on
// reload. Requests and reloads may run at the same time: each request is
// served whole by one policy, the old or the new.
type policySwitch struct {
	file string
	log  *log.Logger
	mu   sync.Mutex // serialises reloads
	cur  atomic.Pointer[servedPolicy]
}

// servedPolicy is a policy and the handler that serves it.
type servedPolicy struct {
	policy  *mtasts.Policy
	handler http.Handler
}

func newPolicySwitch(file string, policy *mtasts.Policy, logger *log.Logger) *policySwitch {
	ps := &policySwitch{file: file, log: logger}
	ps.cur.Store(&servedPolicy{policy, mtasts.PolicyHandler(policy)})
	return ps
}

// ServeHTTP serves the current policy.
func (ps *policySwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ps.cur.Load().handler.ServeHTTP(w, r)
}

// reload reads the policy file again and, when it holds a valid policy by
// mtasts.ParsePolicy, the parser senders use, serves it from then on. On an
// unreadable file or an invalid policy it logs why, keeps serving the
// previous policy, and returns the error.
func (ps *policySwitch) reload() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	old := ps.cur.Load().policy
	data, err := readFileLimited(ps.file, mtasts.MaxPolicySize)
	var policy *mtasts.Policy
	if err == nil {
		policy, err = mtasts.ParsePolicy(string(data))
	}
	if err != nil {
		ps.log.Printf("reloading %s: %s; still serving the previous policy (mode %s)", ps.file, escapeText(oneLine(errText(err))), old.Mode)
		return err
	}
	ps.cur.Store(&servedPolicy{policy, mtasts.PolicyHandler(policy)})
	note := ""
	if policy.String() != old.String() {
		// RFC 8461 3.1: the id must change whenever the policy does,
		// or senders keep the cached one.
		note = "; publish a new id in the _mta-sts TXT record (mtasts record)"
	}
	ps.log.Printf("reloaded %s (mode %s)%s", ps.file, policy.Mode, note)
	return nil
}

// reloadOn calls reload for each signal on sigs until ctx is done.
func reloadOn(ctx context.Context, sigs <-chan os.Signal, reload func() error) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sigs:
			reload() // reload logs its own errors
		}
	}
}
