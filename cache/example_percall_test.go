package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// A mail server whose deliveries each bring a resolver (a test's mock, say)
// and a logger with the delivery's id passes them to the cache in ctx; the
// cache's own serve the rest.
func ExampleWithResolver() {
	// The policy host, stood in for by the test kit's: the cache fetches
	// through a Client whose HTTPClient trusts it.
	server, err := mtaststest.StartPolicyServer()
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	server.SetPolicy("example.com", "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n")
	client := &mtasts.Client{HTTPClient: server.Client()}
	// Time, expiry and error are left out so that the output is the same
	// on each run.
	handler := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == "expires" || a.Key == "err" {
			return slog.Attr{}
		}
		return a
	}})
	c, err := cache.New(cache.Options{Resolver: mtaststest.NewResolver(), Client: client, Logger: slog.New(handler)})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	domain, _ := mtasts.ParseDomain("example.com")

	// Delivery 1 brings its resolver and logger.
	mock := mtaststest.NewResolver()
	mock.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
	ctx := cache.WithResolver(context.Background(), mock)
	ctx = cache.WithLogger(ctx, slog.New(handler).With("msgid", "msg1"))
	r := c.Get(ctx, domain)
	fmt.Println("msg1:", r.Policy.Mode, "lookups by its resolver:", mock.Lookups("_mta-sts.example.com"))

	// Delivery 2 rechecks before failing a message: the new id's policy
	// cannot be fetched, and the warning carries its id.
	mock.SetTXT("_mta-sts.example.com", "v=STSv1; id=2")
	server.SetResponse("example.com", mtaststest.Response{Status: 503})
	ctx = cache.WithResolver(context.Background(), mock)
	ctx = cache.WithLogger(ctx, slog.New(handler).With("msgid", "msg2"))
	r = c.Recheck(ctx, domain)
	fmt.Println("msg2:", r.Policy.Mode, errors.Is(r.Err, mtasts.ErrPolicyFetch))
	// Output:
	// msg1: enforce lookups by its resolver: 1
	// level=WARN msg="mta-sts: refreshing cached policy failed, keeping it" msgid=msg2 domain=example.com mode=enforce
	// msg2: enforce true
}
