package tlsrpt_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// A sending MTA delivers a day's report to the domain's HTTPS collector,
// here a test server on 127.0.0.1 that reads what it receives with the
// package's own reader. The MTA's own mail queue would take mailto reports
// through Submit.
func ExampleSender() {
	collector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		report, _, err := tlsrpt.ReadReport(r.Body, tlsrpt.ReadOptions{}) // bounded in size by ReadReport
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Printf("collector: %s %s, report %s from %s\n", r.Method, r.Header.Get("Content-Type"), report.ReportID, report.OrganizationName)
		w.WriteHeader(http.StatusCreated)
	}))
	defer collector.Close()

	// The collector's domain publishes its TLSRPT record.
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_smtp._tls.example.com", "v=TLSRPTv1; rua="+collector.URL+"/tlsrpt")

	// Reports go through the library's guarded transport; this test
	// collector is on loopback, with a certificate of its own.
	transport := mtasts.NewTransport(mtasts.AllowLoopback)
	transport.TLSClientConfig.RootCAs = x509.NewCertPool()
	transport.TLSClientConfig.RootCAs.AddCert(collector.Certificate())

	sender, err := tlsrpt.NewSender(tlsrpt.SenderOptions{
		Resolver:  resolver,
		Transport: transport,
		Submit: func(ctx context.Context, msg *tlsrpt.Message) error {
			// The MTA DKIM-signs msg.Data for msg.Submitter and
			// queues it from msg.From to msg.To, to be delivered
			// without MTA-STS or DANE enforced and not recorded,
			// as tlsrpt.IsReportSubmission(ctx) says.
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	day := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	report := &tlsrpt.Report{
		OrganizationName: "Sender Org",
		DateRange:        tlsrpt.DateRange{Start: day, End: day.Add(24*time.Hour - time.Second)},
		ContactInfo:      "tlsrpt@mail.sender.example",
		ReportID:         "20250601example",
		Policies: []tlsrpt.PolicyResult{{
			Policy: tlsrpt.Policy{
				PolicyType:   tlsrpt.PolicyTypeSTS,
				PolicyString: []string{"version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 604800"},
				PolicyDomain: "example.com",
				MXHost:       []string{"mx.example.com"},
			},
			Summary: tlsrpt.Summary{TotalSuccessfulSessionCount: 1200, TotalFailureSessionCount: 2},
			FailureDetails: []tlsrpt.FailureDetail{{
				ResultType:          mtasts.ResultCertificateExpired,
				ReceivingMXHostname: "mx.example.com",
				FailedSessionCount:  2,
			}},
		}},
	}
	deliveries, err := sender.Send(context.Background(), report)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range deliveries {
		uri := strings.Replace(d.URI, collector.URL, "https://collector", 1)
		fmt.Printf("sender: %s delivered in %d attempt(s): %v\n", uri, d.Attempts, d.Err == nil)
	}
	// Output:
	// collector: POST application/tlsrpt+gzip, report 20250601example from Sender Org
	// sender: https://collector/tlsrpt delivered in 1 attempt(s): true
}
