package tlsrpt_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// An MTA's Reporter sends the report of each day once the day has closed,
// here to a test HTTPS collector on 127.0.0.1. A Reporter sends the closed
// days its Recorder's store holds: here a store on disk that holds the
// counts of 2025-06-01, as after a restart, added as a Recorder's flush
// adds them (Store.Add). MaxDelay and Spread are turned off, so that the
// report goes at once; production keeps their defaults.
func ExampleReporter() {
	received := make(chan string, 1)
	collector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		report, _, err := tlsrpt.ReadReport(r.Body, tlsrpt.ReadOptions{}) // bounded in size by ReadReport
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s := report.Policies[0].Summary
		received <- fmt.Sprintf("collector: report of %s for %s: %d successful, %d failed sessions",
			report.Policies[0].Policy.PolicyDomain, report.DateRange.Start.Format(time.DateOnly),
			s.TotalSuccessfulSessionCount, s.TotalFailureSessionCount)
	}))
	defer collector.Close()
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_smtp._tls.example.com", "v=TLSRPTv1; rua="+collector.URL+"/tlsrpt")
	transport := mtasts.NewTransport(mtasts.AllowLoopback)
	transport.TLSClientConfig.RootCAs = x509.NewCertPool()
	transport.TLSClientConfig.RootCAs.AddCert(collector.Certificate())

	dir, err := os.MkdirTemp("", "tlsrpt")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := tlsrpt.OpenFileStore(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer store.(io.Closer).Close()
	policy := tlsrpt.Policy{
		PolicyType:   tlsrpt.PolicyTypeSTS,
		PolicyString: []string{"version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 604800"},
		PolicyDomain: "example.com",
		MXHost:       []string{"mx.example.com"},
	}
	_, err = store.Add(context.Background(), tlsrpt.Batch{
		Day: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
		Results: []tlsrpt.PolicyResult{{
			Policy:  policy,
			Summary: tlsrpt.Summary{TotalSuccessfulSessionCount: 41, TotalFailureSessionCount: 1},
			FailureDetails: []tlsrpt.FailureDetail{{ResultType: mtasts.ResultCertificateExpired,
				ReceivingMXHostname: "mx.example.com", FailedSessionCount: 1}},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{Store: store})
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close()
	go rec.Run(context.Background()) // flushes every second; Close stops it

	sender, err := tlsrpt.NewSender(tlsrpt.SenderOptions{Resolver: resolver, Transport: transport})
	if err != nil {
		log.Fatal(err)
	}
	reporter, err := tlsrpt.NewReporter(tlsrpt.ReporterOptions{
		Recorder: rec,
		Sender:   sender,
		Info:     tlsrpt.ReportInfo{OrganizationName: "Sender Org", ContactInfo: "tlsrpt@mail.sender.example"},
		MaxDelay: -1,
		Spread:   -1,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reporter.Run(ctx) }()
	fmt.Println(<-received)
	cancel()
	fmt.Println("reporter:", <-done)
	// Output:
	// collector: report of example.com for 2025-06-01: 41 successful, 1 failed sessions
	// reporter: context canceled
}
