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
	"time"

	"github.com/mtasts-go/mtasts"
)

// serveOptions are the flags of serve, described in usageText.
type serveOptions struct {
	policy, addr, cert, key string
}

func serveFlags() (*flag.FlagSet, *serveOptions) {
	o := &serveOptions{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&o.policy, "policy", "", "")
	fs.StringVar(&o.addr, "addr", "", "")
	fs.StringVar(&o.cert, "cert", "", "")
	fs.StringVar(&o.key, "key", "", "")
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
		Handler:           mtasts.PolicyHandler(policy),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(sio.err, "mtasts serve: ", 0),
	}
	fmt.Fprintf(sio.err, "mtasts: serving %s (mode %s) at %s://%s%s\n", o.policy, policy.Mode, scheme, ln.Addr(), mtasts.WellKnownPath)

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
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return exitFail, err
	}
	return exitOK, nil
}
