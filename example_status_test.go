package mtasts_test

import (
	"context"
	"fmt"
	"log"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// A mail server's metrics of HTTP requests are labelled by status: a fetch
// that succeeded got 200, a failed one tells its status with HTTPStatus, 0
// when no response came. The policy host here is the test kit's.
func ExampleHTTPStatus() {
	server, err := mtaststest.StartPolicyServer()
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	defer server.Install()()
	server.SetPolicy("example.com", "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n")
	server.SetResponse("example.org", mtaststest.Response{Status: 500})
	server.SetResponse("example.net", mtaststest.Response{Status: 404})
	// nohost.example has no policy host: no response, no status.

	for _, name := range []string{"example.com", "example.org", "example.net", "nohost.example"} {
		domain, _ := mtasts.ParseDomain(name)
		_, _, err := mtasts.FetchPolicy(context.Background(), domain)
		status := 200
		if err != nil {
			status = mtasts.HTTPStatus(err)
		}
		reason := "ok"
		if err != nil {
			reason = mtasts.TLSReportFailureReason(err)
		}
		fmt.Println(name, status, reason)
	}
	// Output:
	// example.com 200 ok
	// example.org 500 mta-sts-policy-http-status-500
	// example.net 404 mta-sts-policy-not-found
	// nohost.example 0 mta-sts-policy-not-found
}
