package tlsrpt_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/storefixture"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// kindsDay returns the results of a day of deliveries to a.example (MTA-STS,
// MX mx.a.example without DANE) and to b.example and c.example, both served
// by the DANE MX host mx.hoster.example (RFC 8460 1.1: its policy domain is
// the host), and c.example by no MTA-STS.
func kindsDay(t *testing.T) tlsrpt.DayResults {
	t.Helper()
	dom := func(s string) mtasts.Domain {
		d, err := mtasts.ParseDomain(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	tlsa := func(rcpt string) tlsrpt.Policy {
		p, err := tlsrpt.Target{Recipient: dom(rcpt), MX: dom("mx.hoster.example")}.TLSA([]string{"3 1 1 " + strings.Repeat("ab", 32)})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	staA := storefixture.STS("a.example", "enforce")
	staA.RecipientDomain = "a.example"
	npfB := tlsrpt.Target{Recipient: dom("b.example")}.NoPolicyFound()
	row := func(rt mtasts.ResultType, n int64) tlsrpt.FailureDetail {
		return tlsrpt.FailureDetail{ResultType: rt, ReceivingMXHostname: "mx.hoster.example",
			ReceivingIP: netip.MustParseAddr("192.0.2.25"), FailedSessionCount: n}
	}
	return tlsrpt.DayResults{Day: storefixture.DayOne, Results: []tlsrpt.PolicyResult{
		storefixture.Result(staA, 10, 0),
		storefixture.Result(npfB, 4, 0),
		storefixture.Result(tlsa("b.example"), 3, 1, row(mtasts.ResultTLSAInvalid, 1)),
		// DANE alone: no MTA-STS result for c.example.
		storefixture.Result(tlsa("c.example"), 5, 3, row(mtasts.ResultDNSSECInvalid, 2), row(mtasts.ResultDANERequired, 1)),
	}}
}

// describeReports returns each report's Key, report-id, domain and JSON
// policies, one per line.
func describeReports(t *testing.T, reports []tlsrpt.Report) string {
	t.Helper()
	var b strings.Builder
	for _, r := range reports {
		fmt.Fprintf(&b, "%s (%s):", r.Key(), r.ReportID)
		for _, pr := range r.Policies {
			fmt.Fprintf(&b, "\n  %s %s mx=%v %d/%d", pr.Policy.PolicyDomain, pr.Policy.PolicyType, pr.Policy.MXHost,
				pr.Summary.TotalSuccessfulSessionCount, pr.Summary.TotalFailureSessionCount)
			for _, fd := range pr.FailureDetails {
				fmt.Fprintf(&b, " %s=%d", fd.ResultType, fd.FailedSessionCount)
			}
			if pr.Policy.RecipientDomain != "" {
				t.Errorf("report %s: policy of %s carries recipient domain %s", r.Key(), pr.Policy.PolicyDomain, pr.Policy.RecipientDomain)
			}
		}
		if err := r.Validate(); err != nil {
			t.Errorf("report %s: %v", r.Key(), err)
		}
		if _, err := tlsrpt.BuildPayload(&r); err != nil {
			t.Errorf("report %s: BuildPayload: %v", r.Key(), err)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// The reporting rules of ReportInfo: per policy domain (the default), per
// recipient domain, per MX host, and both, as mox makes them. Each DANE
// result type of RFC 8460 4.3.2.1 is reported, and a DANE-only delivery
// (c.example) gets its reports.
func TestReportKinds(t *testing.T) {
	info := tlsrpt.ReportInfo{OrganizationName: "Sender", ContactInfo: "tlsrpt@sender.example"}
	policyDomains := `2016-04-01 a.example (2016-04-01_a.example):
  a.example sts mx=[*.mail.a.example] 10/0
2016-04-01 b.example (2016-04-01_b.example):
  b.example no-policy-found mx=[] 4/0
2016-04-01 mx.hoster.example (2016-04-01_mx.hoster.example):
  mx.hoster.example tlsa mx=[mx.hoster.example] 8/4 dnssec-invalid=2 dane-required=1 tlsa-invalid=1
`
	recipients := `2016-04-01 a.example (2016-04-01_a.example):
  a.example sts mx=[*.mail.a.example] 10/0
2016-04-01 b.example (2016-04-01_b.example):
  b.example no-policy-found mx=[] 4/0
  mx.hoster.example tlsa mx=[mx.hoster.example] 3/1 tlsa-invalid=1
2016-04-01 c.example (2016-04-01_c.example):
  mx.hoster.example tlsa mx=[mx.hoster.example] 5/3 dnssec-invalid=2 dane-required=1
`
	hosts := `2016-04-01 mx.hoster.example mx-host (2016-04-01_mx.hoster.example_mx-host):
  b.example tlsa mx=[mx.hoster.example] 3/1 tlsa-invalid=1
  c.example tlsa mx=[mx.hoster.example] 5/3 dnssec-invalid=2 dane-required=1
`
	for _, tc := range []struct {
		name                string
		recipients, mxHosts bool
		want                string
	}{
		{"policy domains", false, false, policyDomains},
		{"recipient domains", true, false, recipients},
		{"mx hosts", false, true, hosts},
		{"both", true, true, recipients + hosts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := info
			info.Recipients, info.MXHosts = tc.recipients, tc.mxHosts
			d := kindsDay(t)
			before, _ := json.Marshal(d.Results)
			got := describeReports(t, d.Reports(info))
			if got != tc.want {
				t.Errorf("Reports:\n%s\nwant:\n%s", got, tc.want)
			}
			if after, _ := json.Marshal(d.Results); string(after) != string(before) {
				t.Errorf("Reports changed the day's results")
			}
		})
	}
}

// A report to an MX host and one to a recipient domain of the same name
// are two reports: their keys differ, and an outbox keeps both, with their
// domains, across a restart.
func TestReportKindsKeys(t *testing.T) {
	host := tlsrpt.Report{Domain: "mx.example", DateRange: tlsrpt.DateRange{Start: storefixture.DayOne, End: storefixture.DayTwo.Add(-time.Second)},
		Policies: []tlsrpt.PolicyResult{storefixture.Result(tlsrpt.Policy{PolicyType: tlsrpt.PolicyTypeTLSA, PolicyDomain: "a.example", MXHost: []string{"mx.example"}}, 1, 0)}}
	rcpt := host
	rcpt.Policies = []tlsrpt.PolicyResult{storefixture.Result(tlsrpt.Policy{PolicyType: tlsrpt.PolicyTypeTLSA, PolicyDomain: "mx.example", MXHost: []string{"mx.example"}}, 1, 0)}
	if host.Key() == rcpt.Key() {
		t.Errorf("host and recipient reports share the key %q", host.Key())
	}
	if want := "2016-04-01 mx.example mx-host"; host.Key() != want {
		t.Errorf("host report key %q, want %q", host.Key(), want)
	}
}
