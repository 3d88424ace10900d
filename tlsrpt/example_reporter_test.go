package tlsrpt_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// An MTA records a day's sessions, and its Reporter sends the day's report
// once the day has closed, here to a test HTTPS collector on 127.0.0.1. The
// recorder's clock is set, so that the day closes at once; MaxDelay and
// Spread are turned off for the same reason, where production keeps their
// defaults.
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

	day := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(day.Add(9 * time.Hour).UnixNano())
	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{
		Now: func() time.Time { return time.Unix(0, now.Load()).UTC() },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close()
	policy := tlsrpt.Policy{
		PolicyType:   tlsrpt.PolicyTypeSTS,
		PolicyString: []string{"version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 604800"},
		PolicyDomain: "example.com",
		MXHost:       []string{"mx.example.com"},
	}
	for range 41 {
		rec.Success(policy)
	}
	rec.Failure(policy, tlsrpt.FailureDetail{ResultType: mtasts.ResultCertificateExpired, ReceivingMXHostname: "mx.example.com"})
	now.Store(day.AddDate(0, 0, 1).Add(time.Hour).UnixNano()) // the next day, 01:00 UTC

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
