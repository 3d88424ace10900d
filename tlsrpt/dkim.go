package tlsrpt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/quoted"
)

// maxDKIMSignatures is how many DKIM signatures of a message VerifyDKIM
// verifies, each costing a key lookup; the rest are ignored. A report is
// signed once by its sender, and perhaps again by a relay or a mailing
// list.
const maxDKIMSignatures = 8

// DKIMResult is the verdict on one DKIM signature (RFC 6376) of a report
// message. RFC 8460 3: "Reports sent via SMTP MUST contain a valid DomainKeys
// Identified Mail (DKIM) [RFC6376] signature by the reporting domain.
// Reports lacking such a signature MUST be ignored by the recipient."
type DKIMResult struct {
	// Domain is the signing domain, the signature's d= tag, as written.
	Domain string `json:"domain"`
	// Selector is the signature's s= tag, naming the key at
	// <selector>._domainkey.<domain>.
	Selector string `json:"selector"`
	// Pass reports whether the signature verified against its key, over a
	// body it covers whole.
	Pass bool `json:"pass"`
	// Reason says why the signature failed, e.g. "body hash did not
	// verify"; empty when it passed.
	Reason string `json:"reason,omitempty"`
	// ReportingDomain reports whether Domain is the reporting domain, or a
	// parent domain of it: the domain of the report's contact-info, or that
	// of the message's TLS-Report-Submitter field when the signature
	// covers that field (RFC 8460 3, 5.3); an unsigned field could be
	// anyone's. A parent domain controls its subdomains' DNS, and so could
	// sign for them anyway; a subdomain of the reporting domain may be
	// another party's, and is not the reporting domain.
	ReportingDomain bool `json:"reporting-domain"`
	// BodyLength reports whether the signature has the l= tag, limiting
	// the body it covers. RFC 8460 3: "DKIM signatures MUST NOT use the
	// "l=" attribute"; such a signature never passes.
	BodyLength bool `json:"body-length,omitempty"`
	// Services are the service types of the key's s= tag, e.g. "tlsrpt";
	// nil when the key has none, which means all ("*", RFC 6376 3.6.1), or
	// was not found.
	Services []string `json:"services,omitempty"`
	// ServiceTLSRPT reports whether the key serves TLSRPT: its s= tag is
	// missing or names "tlsrpt" or "*". RFC 8460 3: "The DKIM TXT record
	// SHOULD contain the appropriate service type declaration, "s=tlsrpt".
	// If not present, the receiving system MAY ignore reports lacking that
	// service type." Valid does not ask for it; a caller that ignores such
	// reports checks it.
	ServiceTLSRPT bool `json:"service-tlsrpt"`
}

// Valid reports whether the signature is what RFC 8460 3 asks of a report
// sent by mail: one that passes, by the reporting domain.
func (r *DKIMResult) Valid() bool {
	return r.Pass && r.ReportingDomain
}

// VerifyDKIM verifies the DKIM signatures of message, a report message as
// ReadReport reads it, and returns one result per signature, in the order
// of the message header; none for an unsigned message. At most the first 8
// signatures are verified. report is the report the message holds, for the
// domain of its contact-info; it may be nil.
//
// Keys are looked up through resolver, at <selector>._domainkey.<domain>,
// with ctx bounding each lookup; a selector or domain that is not a host
// name's labels is not looked up. A key's s= service types are judged as
// RFC 8460 3 asks (see DKIMResult.ServiceTLSRPT), not as RFC 6376 3.6.1 does
// for mail in general ("email").
//
// Verifying is done with github.com/emersion/go-msgauth/dkim, which refuses
// rsa-sha1 (RFC 8301) and RSA keys shorter than 1024 bits. The error, wrapping
// ErrNoReport, is for a message whose header cannot be read.
func VerifyDKIM(ctx context.Context, resolver mtasts.Resolver, message []byte, report *Report) ([]DKIMResult, error) {
	sigs, err := dkimSignatures(message)
	if err != nil {
		return nil, err
	}
	if len(sigs) == 0 {
		return nil, nil
	}
	reporting := reportingDomains(message, report)
	keys := &keyLookup{ctx: ctx, resolver: resolver, services: map[string][]string{}}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(message), &dkim.VerifyOptions{
		LookupTXT:        keys.lookupTXT,
		MaxVerifications: maxDKIMSignatures,
	})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return nil, fmt.Errorf("%w: verifying dkim signatures: %w", ErrNoReport, quoted.Cause(err))
	}
	results := make([]DKIMResult, 0, len(verifs))
	for i, v := range verifs {
		var tags map[string]string
		if i < len(sigs) {
			tags = sigs[i]
		}
		results = append(results, dkimResult(v, tags, reporting, keys))
	}
	return results, nil
}

// dkimResult judges one signature, from go-msgauth's verification and the
// signature's own tags.
func dkimResult(v *dkim.Verification, tags map[string]string, reporting reportingDomain, keys *keyLookup) DKIMResult {
	res := DKIMResult{
		Domain:   quoted.Text(stripFWS(tags["d"]), quoted.Max),
		Selector: quoted.Text(stripFWS(tags["s"]), quoted.Max),
	}
	if tags == nil || !strings.EqualFold(stripFWS(tags["d"]), v.Domain) {
		// The fields go-msgauth verified and those read here are the
		// same fields in the same order; this guards the pairing.
		res.Reason = "signature field could not be paired with its verification"
		return res
	}
	_, res.BodyLength = tags["l"]
	res.ReportingDomain = isReportingDomain(v.Domain, reporting.contact)
	if !res.ReportingDomain && signsField(v.HeaderKeys, HeaderReportSubmitter) {
		res.ReportingDomain = isReportingDomain(v.Domain, reporting.submitter)
	}
	services, found := keys.servicesOf(stripFWS(tags["s"]) + "._domainkey." + v.Domain)
	res.Services = services
	res.ServiceTLSRPT = found && servesTLSRPT(services)
	switch {
	case res.BodyLength:
		// RFC 8460 3: "DKIM signatures MUST NOT use the "l=" attribute
		// to limit the body length used in the signature."
		res.Reason = "signature has l=, limiting the body it covers, which RFC 8460 3 forbids"
	case v.Err != nil:
		res.Reason = quoted.Text(strings.TrimPrefix(v.Err.Error(), "dkim: "), quoted.MaxCause)
	default:
		res.Pass = true
	}
	return res
}

// dkimSignatures returns the tags of each DKIM-Signature field of message's
// header, in order. It reads the header as go-msgauth does, so that the
// fields pair with its verifications: a line starting with a space or tab
// continues the field before it.
func dkimSignatures(message []byte) ([]map[string]string, error) {
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(message)))
	var fields []string
	for {
		line, err := tr.ReadLine()
		if err != nil {
			return nil, fmt.Errorf("%w: reading message header: %w", ErrNoReport, quoted.Cause(err))
		}
		if line == "" {
			break
		}
		if len(fields) > 0 && (line[0] == ' ' || line[0] == '\t') {
			fields[len(fields)-1] += "\r\n" + line
			continue
		}
		fields = append(fields, line)
	}
	var sigs []map[string]string
	for _, f := range fields {
		name, value, _ := strings.Cut(f, ":")
		if strings.EqualFold(strings.TrimSpace(name), "DKIM-Signature") {
			sigs = append(sigs, tagList(value))
		}
	}
	return sigs, nil
}

// tagList reads a DKIM tag list (RFC 6376 3.2), "tag=value; ...", keeping
// the first of repeated tags. Malformed entries are skipped: go-msgauth
// judges the signature's syntax, this only reads its tags.
func tagList(s string) map[string]string {
	tags := map[string]string{}
	for _, spec := range strings.Split(s, ";") {
		name, value, ok := strings.Cut(spec, "=")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		if _, dup := tags[name]; !dup {
			tags[name] = strings.TrimSpace(value)
		}
	}
	return tags
}

// stripFWS removes the folding white space a tag value may hold (RFC 6376
// 3.2).
func stripFWS(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}

// reportingDomain is the reporting domain as RFC 8460 names it: the domain
// of the TLS-Report-Submitter field ("TLS-Report-Submitter: Sender-Domain",
// 5.3) and that of the report's contact-info, which 5.3 says it "MUST
// match". Both count, since senders differ in which they sign for.
type reportingDomain struct {
	submitter, contact []string
}

func reportingDomains(message []byte, report *Report) reportingDomain {
	var rd reportingDomain
	add := func(l *[]string, s string) {
		if d, err := mtasts.ParseDomain(strings.TrimSpace(s)); err == nil {
			*l = append(*l, d.ASCII)
		}
	}
	if msg, err := mail.ReadMessage(bytes.NewReader(message)); err == nil {
		// Of several, which one a signature covers is unclear: none
		// counts.
		if v := msg.Header[textproto.CanonicalMIMEHeaderKey(HeaderReportSubmitter)]; len(v) == 1 {
			add(&rd.submitter, v[0])
		}
	}
	if report != nil {
		if i := strings.LastIndexByte(report.ContactInfo, '@'); i >= 0 {
			add(&rd.contact, report.ContactInfo[i+1:])
		}
	}
	return rd
}

// signsField reports whether a signature's h= tag names the field.
func signsField(keys []string, field string) bool {
	for _, k := range keys {
		if strings.EqualFold(strings.TrimSpace(k), field) {
			return true
		}
	}
	return false
}

// isReportingDomain reports whether the signing domain d is one of the
// reporting domains or a parent domain of one.
func isReportingDomain(d string, reporting []string) bool {
	sd, err := mtasts.ParseDomain(d)
	if err != nil {
		return false
	}
	for _, r := range reporting {
		if r == sd.ASCII || strings.HasSuffix(r, "."+sd.ASCII) {
			return true
		}
	}
	return false
}

// servesTLSRPT reports whether a key's service types allow TLSRPT (RFC 8460
// 3); none means all (RFC 6376 3.6.1: 'default is "*"').
func servesTLSRPT(services []string) bool {
	if services == nil {
		return true
	}
	for _, s := range services {
		if s == "tlsrpt" || s == "*" {
			return true
		}
	}
	return false
}

// keyLookup looks up DKIM keys for go-msgauth through a Resolver, and keeps
// each key's service types. go-msgauth verifies several signatures at once,
// so lookups may run concurrently.
type keyLookup struct {
	ctx      context.Context
	resolver mtasts.Resolver

	mu       sync.Mutex
	services map[string][]string // by lower-case key name; nil: none given
}

// lookupTXT returns the key record at name. The s= tag is taken out of the
// record handed to go-msgauth, which would refuse a key without "email"
// (RFC 6376 3.6.1), where RFC 8460 3 asks for "tlsrpt"; servicesOf gives it.
func (k *keyLookup) lookupTXT(name string) ([]string, error) {
	if msg := checkKeyName(name); msg != "" {
		return nil, fmt.Errorf("key name %s: %s", quoted.String(name), msg)
	}
	if k.resolver == nil {
		return nil, errors.New("no resolver")
	}
	txts, _, err := k.resolver.LookupTXT(k.ctx, name+".")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, quoted.Cause(err))
	}
	if len(txts) != 1 {
		// go-msgauth refuses none and several (RFC 6376 3.6.2.2).
		return txts, nil
	}
	var kept []string
	var services []string
	for _, spec := range strings.Split(txts[0], ";") {
		tag, value, _ := strings.Cut(spec, "=")
		if strings.TrimSpace(tag) != "s" {
			kept = append(kept, spec)
			continue
		}
		services = []string{}
		for _, s := range strings.Split(value, ":") {
			services = append(services, strings.ToLower(stripFWS(s)))
		}
	}
	k.mu.Lock()
	k.services[strings.ToLower(name)] = services
	k.mu.Unlock()
	return []string{strings.Join(kept, ";")}, nil
}

// servicesOf returns the service types of the key at name, and whether the
// key was found.
func (k *keyLookup) servicesOf(name string) ([]string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, ok := k.services[strings.ToLower(name)]
	return s, ok
}

// checkKeyName says what is wrong with a key's DNS name,
// <selector>._domainkey.<domain>, built from the sender's tags; "" when it is
// labels of 1 to 63 letters, digits, hyphens and underscores, 253 bytes at
// most. Nothing else is sent to the resolver.
func checkKeyName(name string) string {
	if name == "" || len(name) > 253 {
		return "not 1 to 253 bytes"
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return "has an empty or overlong label"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "has the character " + quoted.Char(label, i)
			}
		}
	}
	return ""
}
