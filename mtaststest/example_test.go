package mtaststest_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// A test of delivery code publishes a domain's record and policy, points
// mtasts at the server, and runs the library unchanged. In a test, use
// NewPolicyServer(t) and Use(t), which clean up by themselves.
func Example() {
	resolver := mtaststest.NewResolver()
	resolver.SetRecord("example.com", "v=STSv1; id=20240101")

	server, err := mtaststest.StartPolicyServer()
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	server.SetPolicy("example.com", "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n")
	restore := server.Install()
	defer restore()

	domain, _ := mtasts.ParseDomain("example.com")
	record, policy, _, err := mtasts.Get(context.Background(), resolver, domain)
	fmt.Println(record.ID, policy.Mode, policy.MX[0], err)
	fmt.Println(resolver.Lookups("_mta-sts.example.com"), server.Requests("example.com"))

	resolver.ServFail("_mta-sts.example.com")
	_, _, _, err = mtasts.Get(context.Background(), resolver, domain)
	fmt.Println(errors.Is(err, mtasts.ErrDNS))
	// Output:
	// 20240101 enforce mail.example.com <nil>
	// 1 1
	// true
}
