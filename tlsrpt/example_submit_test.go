package tlsrpt_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net/mail"
	"time"

	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// An MTA mails a day's report through its own queue: Submit gets the
// message with the parts the queue needs, one message for all the mailto
// addresses of the record (OneMessage), less the address the MTA has on its
// suppression list, and without the https URI (NoHTTPS).
func ExampleSender_mail() {
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_smtp._tls.example.com",
		"v=TLSRPTv1; rua=mailto:tlsrpt@example.com,mailto:bounced@example.com,https://tlsrpt.example.com/r,mailto:ops@example.net")

	sender, err := tlsrpt.NewSender(tlsrpt.SenderOptions{
		Resolver:   resolver,
		From:       "TLS reports <tlsrpt@mail.sender.example>",
		OneMessage: true,
		NoHTTPS:    true,
		Suppress: func(ctx context.Context, addr string) bool {
			return addr == "bounced@example.com" // reports to it bounced
		},
		Submit: func(ctx context.Context, msg *tlsrpt.Message) error {
			// The MTA signs msg.Data with DKIM for msg.Submitter and
			// queues it from msg.From to msg.To, delivered despite
			// MTA-STS or DANE failures and not recorded.
			fmt.Println("from:", msg.From)
			fmt.Println("to:", msg.To)
			fmt.Println("subject:", msg.Subject)
			fmt.Println("sign for:", msg.Submitter.ASCII, "smtputf8:", msg.SMTPUTF8)
			fmt.Println("report mark:", tlsrpt.IsReportSubmission(ctx))
			m, err := mail.ReadMessage(bytes.NewReader(msg.Data))
			if err != nil {
				return err
			}
			fmt.Println("TLS-Required:", m.Header.Get("TLS-Required"))
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
			Summary: tlsrpt.Summary{TotalSuccessfulSessionCount: 1200},
		}},
	}
	deliveries, err := sender.Send(context.Background(), report)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range deliveries {
		fmt.Printf("%s: delivered %v, skipped %v\n", d.URI, d.Err == nil, d.Skipped)
	}
	// Output:
	// from: tlsrpt@mail.sender.example
	// to: [tlsrpt@example.com ops@example.net]
	// subject: Report Domain: example.com Submitter: mail.sender.example Report-ID: <20250601example@mail.sender.example>
	// sign for: mail.sender.example smtputf8: false
	// report mark: true
	// TLS-Required: No
	// mailto:tlsrpt@example.com: delivered true, skipped false
	// mailto:bounced@example.com: delivered false, skipped true
	// https://tlsrpt.example.com/r: delivered false, skipped true
	// mailto:ops@example.net: delivered true, skipped false
}
