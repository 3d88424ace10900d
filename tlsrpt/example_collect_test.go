package tlsrpt_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/mtasts-go/mtasts/tlsrpt"
)

// A Collector takes the reports other domains post to the rua=https: URI of
// your TLSRPT record, and hands each one read to your store.
func ExampleCollector() {
	c := &tlsrpt.Collector{Store: func(ctx context.Context, r *tlsrpt.Report) error {
		fmt.Printf("report %s from %s: %d failed sessions\n", r.ReportID, r.OrganizationName, r.Policies[0].Summary.TotalFailureSessionCount)
		return nil
	}}
	mux := http.NewServeMux()
	mux.Handle("/tlsrpt", c)
	srv := httptest.NewServer(mux) // http.ListenAndServeTLS in production
	defer srv.Close()

	// What a sending MTA does (RFC 8460 5.4).
	f, err := os.Open("testdata/rfc8460-appendix-b.json")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	resp, err := http.Post(srv.URL+"/tlsrpt", "application/tlsrpt+json", f)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output:
	// report 5065427c-23d3-47ca-b6e0-946ea0e8c4be from Company-X: 303 failed sessions
	// 201 Created
}
