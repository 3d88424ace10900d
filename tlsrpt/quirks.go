package tlsrpt

import (
	"strconv"
	"strings"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/quoted"
)

// Reading received reports as real senders write them: check, run by a
// lenient read (see ReadOptions) in place of Report.Validate, checks what
// Validate does, but forgives the deviations ReadOptions lists with a
// warning each, and normalises or escapes the values at fault.

// check checks a report decoded laxly, returning the first error that stays
// one, as Validate would.
func (rd *reading) check(r *Report) error {
	c := &checker{rd: rd}
	// RFC 8460 4.4: "organization-name": "The name of the organization
	// responsible for the report". Display text.
	if r.OrganizationName == "" && !rd.warns.has("organization-name") {
		rd.warns.add("organization-name", "empty, expected the name of the organization (RFC 8460 4.4)")
	}
	if dr := &r.DateRange; !dr.Start.IsZero() && !dr.End.IsZero() && dr.Start.After(dr.End) {
		// RFC 8460 4.4: "start-datetime" and "end-datetime" bound the
		// report's period; a sender that wrote them the wrong way round
		// still says which period it means.
		rd.warns.add("date-range", "start-datetime %s is after end-datetime %s (RFC 8460 4.4); read swapped",
			dr.Start.Format(time.RFC3339), dr.End.Format(time.RFC3339))
		dr.Start, dr.End = dr.End, dr.Start
	}
	c.must(func(v *validator) { v.dateRange(r.DateRange) })
	// RFC 8460 4.4: "contact-info": "The contact information for the
	// party responsible for the report", an RFC 5322 addr-spec.
	switch {
	case r.ContactInfo == "" && !rd.warns.has("contact-info"):
		rd.warns.add("contact-info", "empty, expected an e-mail address (RFC 8460 4.4)")
	case r.ContactInfo != "" && !passes(func(v *validator) { v.contactInfo(r.ContactInfo) }) &&
		passes(func(v *validator) { v.text("contact-info", r.ContactInfo, maxHelo) }):
		// A name with the address, or a web address: display text,
		// kept as sent. Text with control characters is refused below.
		rd.warns.add("contact-info", "%s is not a bare e-mail address (RFC 8460 4.4: an RFC 5322 addr-spec); kept as sent", quoted.String(r.ContactInfo))
	case r.ContactInfo != "":
		c.must(func(v *validator) { v.contactInfo(r.ContactInfo) })
	}
	c.must(func(v *validator) { v.nonEmpty("report-id", r.ReportID) })
	if len(r.Policies) == 0 {
		// RFC 8460 4: reports contain the policies applied.
		c.must(func(v *validator) { v.fail("policies", "empty, expected at least one policy") })
	}
	for i := range r.Policies {
		if c.err != nil {
			break
		}
		c.policyResult("policies["+strconv.Itoa(i)+"]", &r.Policies[i])
	}
	return c.err
}

// checker keeps the first error of a lax check.
type checker struct {
	rd  *reading
	err error
}

// must runs a check of Validate's, keeping its error.
func (c *checker) must(check func(v *validator)) {
	if c.err != nil {
		return
	}
	v := validator{}
	check(&v)
	c.err = v.err
}

// passes reports whether a check of Validate's passes.
func passes(check func(v *validator)) bool {
	v := validator{}
	check(&v)
	return v.err == nil
}

func (c *checker) policyResult(path string, pr *PolicyResult) {
	c.policy(path+".policy", &pr.Policy)
	c.must(func(v *validator) {
		v.count(path+".summary.total-successful-session-count", pr.Summary.TotalSuccessfulSessionCount)
		v.count(path+".summary.total-failure-session-count", pr.Summary.TotalFailureSessionCount)
	})
	for i := range pr.FailureDetails {
		c.failureDetail(path+".failure-details["+strconv.Itoa(i)+"]", &pr.FailureDetails[i])
	}
}

func (c *checker) policy(path string, p *Policy) {
	for i, l := range p.PolicyString {
		// RFC 8460 4.5 gives the policy "including any errors that may
		// be present", which may be control characters: escaped, as
		// Target.FromCache writes such lines.
		if at := controlAt(l); at >= 0 {
			p.PolicyString[i] = quoted.Text(l, len(l))
			c.rd.warns.add(path+".policy-string["+strconv.Itoa(i)+"]", "control character at byte %d; escaped", at)
		}
	}
	c.must(func(v *validator) {
		v.policyType(path+".policy-type", p.PolicyType)
		v.policyString(path+".policy-string", p.PolicyString)
	})
	c.policyDomain(path+".policy-domain", p)
	if n := joinedLen(p.MXHost); n > mtasts.MaxPolicySize {
		c.must(func(v *validator) {
			v.fail(path+".mx-host", "%d patterns of %d bytes, more than the %d bytes of the largest policy (RFC 8461 3.3)", len(p.MXHost), n, mtasts.MaxPolicySize)
		})
		return
	}
	for i := range p.MXHost {
		// mx-host-pattern, RFC 8460 4.4; a wildcard is "*." and a
		// domain.
		c.hostText(path+".mx-host["+strconv.Itoa(i)+"]", &p.MXHost[i], func(v *validator, path, s string) {
			v.domain(path, strings.TrimPrefix(s, "*."), true)
		})
	}
}

// policyDomain checks "policy-domain", "The Policy Domain against which the
// MTA-STS or DANE policy is defined" (RFC 8460 4.4), normalising its form.
func (c *checker) policyDomain(path string, p *Policy) {
	rd := c.rd
	if p.PolicyDomain == "" && p.PolicyType == PolicyTypeNoPolicyFound {
		if rd.reportDomain != "" {
			p.PolicyDomain = rd.reportDomain
			rd.warns.add(path, "missing from a no-policy-found policy, which RFC 8460 4.4 requires; taken from the message's TLS-Report-Domain, %s",
				quoted.String(rd.reportDomain))
			return
		}
		rd.warns.add(path, "missing from a no-policy-found policy, which RFC 8460 4.4 requires; left empty")
		return
	}
	c.must(func(v *validator) { v.domain(path, p.PolicyDomain, true) })
	if c.err != nil {
		return
	}
	// A domain in A-labels is ASCII; DNS names are compared without
	// case (RFC 4343), and a trailing dot names the root.
	norm := strings.ToLower(strings.TrimSuffix(p.PolicyDomain, "."))
	if norm != p.PolicyDomain {
		rd.warns.add(path, "%s read as %s: domains are written in lower case without a trailing dot", quoted.String(p.PolicyDomain), quoted.String(norm))
		p.PolicyDomain = norm
	}
}

func (c *checker) failureDetail(path string, fd *FailureDetail) {
	c.must(func(v *validator) {
		v.token(path+".result-type", string(fd.ResultType), "a result type such as \"certificate-expired\"")
		v.addr(path+".sending-mta-ip", fd.SendingMTAIP)
		v.addr(path+".receiving-ip", fd.ReceivingIP)
		v.count(path+".failed-session-count", fd.FailedSessionCount)
	})
	if fd.ReceivingMXHostname != "" {
		c.hostText(path+".receiving-mx-hostname", &fd.ReceivingMXHostname, func(v *validator, path, s string) {
			v.domain(path, s, false)
		})
	}
	// The receiving MX's and the sender's own words (RFC 8460 4.4).
	c.text(path+".receiving-mx-helo", &fd.ReceivingMXHelo, maxHelo)
	c.text(path+".additional-information", &fd.AdditionalInformation, maxRowText)
	c.text(path+".failure-reason-code", &fd.FailureReasonCode, maxRowText)
}

// hostText checks a field that names a host, for display: an mx-host
// pattern or a receiving-mx-hostname. One that is not a domain name, such
// as an address, is kept as text with its control characters escaped, if
// it is no longer than a domain name may be (RFC 5321 4.5.3.1.2).
func (c *checker) hostText(path string, s *string, check func(v *validator, path, s string)) {
	if c.err != nil || passes(func(v *validator) { check(v, path, *s) }) {
		return
	}
	if len(*s) > maxHelo {
		c.must(func(v *validator) {
			v.fail(path, "%s, more than %d bytes, is no host name", quoted.String(*s), maxHelo)
		})
		return
	}
	c.rd.warns.add(path, "%s is not a domain name; kept as text", quoted.String(*s))
	*s = escapeControls(*s)
}

// text checks a text field of at most limit bytes; its control characters
// are escaped, with a warning.
func (c *checker) text(path string, s *string, limit int) {
	if c.err != nil {
		return
	}
	if len(*s) > limit {
		c.must(func(v *validator) { v.text(path, *s, limit) })
		return
	}
	if i := controlAt(*s); i >= 0 {
		c.rd.warns.add(path, "control character %s at byte %d in %s; kept escaped", quoted.Char(*s, i), i, quoted.String(*s))
		*s = escapeControls(*s)
	}
}

// escapeControls returns s with each control character that controlAt
// finds escaped as internal/quoted escapes it ("\x1b", "\u0085"), and the
// rest as it is.
func escapeControls(s string) string {
	i := controlAt(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	for i >= 0 {
		n := 1
		if s[i] == 0xc2 {
			n = 2 // C1, in UTF-8
		}
		b.WriteString(s[:i])
		b.WriteString(quoted.Text(s[i:i+n], n))
		s = s[i+n:]
		i = controlAt(s)
	}
	b.WriteString(s)
	return b.String()
}
