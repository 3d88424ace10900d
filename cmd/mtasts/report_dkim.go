package main

import (
	"context"
	"strings"
	"time"

	"github.com/mtasts-go/mtasts/tlsrpt"
)

// dkimTimeout bounds the key lookups of a report message's DKIM signatures.
const dkimTimeout = 20 * time.Second

// verifyReportDKIM verifies the DKIM signatures of a report message, looking
// keys up through resolverAddr or the system's resolver, and puts the
// verdict in res. RFC 8460 3 says a receiver ignores a report without a
// valid signature by the reporting domain; reading one file, report shows
// the verdict and still the report, as archives are often read offline,
// their keys long rotated. Only a bad --resolver is an error.
func verifyReportDKIM(res *reportResult, resolverAddr string, message []byte) error {
	n, err := newNetwork(resolverAddr, nil)
	if err != nil {
		return usagef("report: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dkimTimeout)
	defer cancel()
	results, err := tlsrpt.VerifyDKIM(ctx, n.resolver, message, res.Report)
	valid := false
	for i := range results {
		valid = valid || results[i].Valid()
	}
	res.DKIM, res.DKIMValid = results, &valid
	if err != nil {
		// The message was read whole, so its header can be; kept for
		// completeness.
		res.DKIM = []tlsrpt.DKIMResult{{Reason: strings.TrimPrefix(err.Error(), "tlsrpt: ")}}
	}
	return nil
}

// printDKIM prints the DKIM verdict of a report message: a line per
// signature, then a warning when none is valid.
func printDKIM(p *printer, res *reportResult) {
	if res.DKIMValid == nil {
		return
	}
	for _, d := range res.DKIM {
		st, verdict := statusPass, "pass"
		if !d.Pass {
			st, verdict = statusFail, "fail ("+d.Reason+")"
		}
		who := "the reporting domain"
		if !d.ReportingDomain {
			who = "not the reporting domain"
			st = statusFail
		}
		key := "key s=" + strings.Join(d.Services, ":")
		switch {
		case d.Services == nil && d.ServiceTLSRPT:
			key = "key without s= (all services)"
		case d.Services == nil:
			key = "key not found"
		case !d.ServiceTLSRPT:
			// RFC 8460 3: the key "SHOULD contain ... "s=tlsrpt"".
			key += ", not tlsrpt as RFC 8460 3 asks"
			if st == statusPass {
				st = statusWarn
			}
		}
		p.finding(st, "dkim", "d="+shown(d.Domain)+" s="+shown(d.Selector)+": "+verdict+"; "+who+"; "+key)
	}
	if !*res.DKIMValid {
		what := "unsigned"
		if len(res.DKIM) > 0 {
			what = "no valid DKIM signature by the reporting domain"
		}
		// RFC 8460 3: "Reports lacking such a signature MUST be ignored
		// by the recipient."
		p.finding(statusWarn, "dkim", what+": RFC 8460 3 says to ignore this report; shown as read")
	}
}
