// Package storefixture holds the policies, rows, results and reports that
// the tests of TLS-RPT stores and outboxes use: tlsrpt/storetest's checks,
// and the tests of the stores in tlsrpt and redisstore.
package storefixture

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// DayOne and DayTwo are the days the checks use.
var (
	DayOne = time.Date(2016, 4, 1, 0, 0, 0, 0, time.UTC)
	DayTwo = DayOne.AddDate(0, 0, 1)
)

// STS returns an MTA-STS policy of domain, of the given mode.
func STS(domain, mode string) tlsrpt.Policy {
	return tlsrpt.Policy{
		PolicyType:   tlsrpt.PolicyTypeSTS,
		PolicyString: []string{"version: STSv1", "mode: " + mode, "mx: *.mail." + domain, "max_age: 604800"},
		PolicyDomain: domain,
		MXHost:       []string{"*.mail." + domain},
	}
}

// Row returns a failure-detail row of count sessions, with the MX host
// mx.<domain> and the receiving IP 192.0.2.<n>.
func Row(rt mtasts.ResultType, domain string, n byte, count int64) tlsrpt.FailureDetail {
	return tlsrpt.FailureDetail{
		ResultType:          rt,
		SendingMTAIP:        netip.MustParseAddr("2001:db8::25"),
		ReceivingMXHostname: "mx." + domain,
		ReceivingIP:         netip.AddrFrom4([4]byte{192, 0, 2, n}),
		FailedSessionCount:  count,
		FailureReasonCode:   "X509_V_ERR_CERT_HAS_EXPIRED",
	}
}

// Result returns a PolicyResult of p with the given counts and rows.
func Result(p tlsrpt.Policy, ok, failed int64, rows ...tlsrpt.FailureDetail) tlsrpt.PolicyResult {
	return tlsrpt.PolicyResult{
		Policy:         p,
		Summary:        tlsrpt.Summary{TotalSuccessfulSessionCount: ok, TotalFailureSessionCount: failed},
		FailureDetails: rows,
	}
}

// Canonical returns results in one order, each row list in one order, and
// with no empty row list, for comparing; it does not change results.
func Canonical(results []tlsrpt.PolicyResult) string {
	lines := make([]string, 0, len(results))
	for _, pr := range results {
		rows := make([]string, 0, len(pr.FailureDetails))
		for _, fd := range pr.FailureDetails {
			rows = append(rows, fmt.Sprintf("\n    %s %s %s %s %s %q %q = %d", fd.ResultType, fd.SendingMTAIP, fd.ReceivingMXHostname,
				fd.ReceivingMXHelo, fd.ReceivingIP, fd.FailureReasonCode, fd.AdditionalInformation, fd.FailedSessionCount))
		}
		slices.Sort(rows)
		rcpt := ""
		if pr.Policy.RecipientDomain != "" {
			rcpt = " for " + pr.Policy.RecipientDomain
		}
		if pr.CountOnly {
			rcpt += " (count only)"
		}
		lines = append(lines, fmt.Sprintf("%s %s %q %q%s: %d ok, %d failed%s", pr.Policy.PolicyDomain, pr.Policy.PolicyType,
			pr.Policy.PolicyString, pr.Policy.MXHost, rcpt, pr.Summary.TotalSuccessfulSessionCount, pr.Summary.TotalFailureSessionCount,
			strings.Join(rows, "")))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TLSA returns a DANE policy of the MX host mx, one TLSA record, for
// deliveries to recipient ("" for none), as Target.TLSA makes it.
func TLSA(mx, recipient string) tlsrpt.Policy {
	return tlsrpt.Policy{
		PolicyType:      tlsrpt.PolicyTypeTLSA,
		PolicyString:    []string{"3 1 1 " + strings.Repeat("AB", 32)},
		PolicyDomain:    mx,
		MXHost:          []string{mx},
		RecipientDomain: recipient,
	}
}

// Report returns a report of day for domain, of report-id id, with one
// policy of domain and ok successful sessions.
func Report(day time.Time, domain, id string, ok int64) tlsrpt.Report {
	return tlsrpt.Report{
		OrganizationName: "Sender Org",
		DateRange:        tlsrpt.DateRange{Start: day, End: day.Add(24*time.Hour - time.Second)},
		ContactInfo:      "tlsrpt@sender.example",
		ReportID:         id,
		Policies:         []tlsrpt.PolicyResult{Result(STS(domain, "enforce"), ok, 0)},
	}
}
