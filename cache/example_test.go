package cache_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// Delivery code asks the cache once per message and applies the answer to
// each MX host. Here the DNS and the policy host are the test kit's; in
// production, Resolver is &adns.Resolver{} and Client is nil (or a Client
// with a Logger).
func Example() {
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=20240101")
	server, err := mtaststest.StartPolicyServer()
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	server.SetPolicy("example.com", "version: STSv1\nmode: enforce\nmx: *.mail.example.com\nmax_age: 604800\n")
	client := &mtasts.Client{HTTPClient: server.Client()} // trusts the test server

	c, err := cache.New(cache.Options{Resolver: resolver, Client: client})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go c.Run(ctx) // proactive refresh

	domain, _ := mtasts.ParseDomain("example.com")
	for range 2 {
		r := c.Get(ctx, domain)
		if r.Err != nil {
			// Report mtasts.TLSReportResultType(r.Err) and mtasts.TLSReportFailureReason(r.Err) (RFC 8460);
			// r.Policy, if set, still applies.
			fmt.Println("report:", mtasts.TLSReportResultType(r.Err), mtasts.TLSReportFailureReason(r.Err))
		}
		if r.Policy == nil || r.Policy.Mode == mtasts.ModeNone {
			fmt.Println("deliver without MTA-STS")
			continue
		}
		for _, name := range []string{"mx1.mail.example.com", "mx.other.example"} {
			mx, _ := mtasts.ParseDomain(name)
			allowed := r.Policy.Matches(mx)
			fmt.Printf("fresh=%v %s allowed=%v enforce=%v\n", r.Fresh, name, allowed, r.Policy.Mode == mtasts.ModeEnforce)
		}
	}
	fmt.Println("fetches:", server.Requests("example.com"))
	// Output:
	// fresh=true mx1.mail.example.com allowed=true enforce=true
	// fresh=true mx.other.example allowed=false enforce=true
	// fresh=false mx1.mail.example.com allowed=true enforce=true
	// fresh=false mx.other.example allowed=false enforce=true
	// fetches: 1
}

// A file store keeps policies across restarts: a new Cache on the same
// directory applies the policy without fetching it, even while the policy
// host is unreachable.
func ExampleOpenFileStore() {
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=20240101")
	server, err := mtaststest.StartPolicyServer()
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	server.SetPolicy("example.com", "version: STSv1\nmode: enforce\nmx: *.mail.example.com\nmax_age: 604800\n")
	client := &mtasts.Client{HTTPClient: server.Client()} // trusts the test server

	dir, err := os.MkdirTemp("", "mtasts-policies")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	domain, _ := mtasts.ParseDomain("example.com")

	for run := 1; run <= 2; run++ {
		store, err := cache.OpenFileStore(dir)
		if err != nil {
			log.Fatal(err)
		}
		c, err := cache.New(cache.Options{Resolver: resolver, Store: store, Client: client})
		if err != nil {
			log.Fatal(err)
		}
		r := c.Get(context.Background(), domain)
		fmt.Printf("run %d: mode=%s id=%s fresh=%v\n", run, r.Policy.Mode, r.RecordID, r.Fresh)
		c.Close()
		server.Remove("example.com") // the policy host goes away
	}
	fmt.Println("fetches:", server.Requests("example.com"))
	// Output:
	// run 1: mode=enforce id=20240101 fresh=true
	// run 2: mode=enforce id=20240101 fresh=false
	// fetches: 1
}

// Before a message is permanently failed because of an enforce policy, RFC
// 8461 5.1 step 3 asks for a check of the TXT record: Recheck looks it up at
// once and fetches the policy when its id changed.
func ExampleCache_Recheck() {
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
	server, err := mtaststest.StartPolicyServer()
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	server.SetPolicy("example.com", "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 604800\n")
	client := &mtasts.Client{HTTPClient: server.Client()} // trusts the test server

	c, err := cache.New(cache.Options{Resolver: resolver, Client: client})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	domain, _ := mtasts.ParseDomain("example.com")
	mx, _ := mtasts.ParseDomain("mx2.example.com")

	r := c.Get(ctx, domain)
	fmt.Println("id", r.RecordID, "mx2 allowed:", r.Policy.Matches(mx))

	// The domain moves its mail to mx2 and publishes a new policy.
	server.SetPolicy("example.com", "version: STSv1\nmode: enforce\nmx: mx2.example.com\nmax_age: 604800\n")
	resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=2")

	// Delivery to mx2 fails the cached policy; check before bouncing.
	r = c.Recheck(ctx, domain)
	fmt.Println("id", r.RecordID, "mx2 allowed:", r.Policy.Matches(mx))
	// Output:
	// id 1 mx2 allowed: false
	// id 2 mx2 allowed: true
}
