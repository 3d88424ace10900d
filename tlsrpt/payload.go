package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"sync"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/quoted"
)

// payload is a report made ready to deliver, as RFC 8460 5 sends it: its
// JSON compressed with gzip, the file name of 5.1, and the two domains the
// e-mail headers of 5.3 name. The same payload is sent to every rua URI and
// on every retry, so that each copy carries the same bytes and report-id.
type payload struct {
	// Report is the report the payload was built from. It must not be
	// changed while the payload is in use.
	Report *Report
	// PolicyDomain is the domain whose TLSRPT record says where to send
	// the report: Report.Domain, or the policy domain of its policies.
	PolicyDomain mtasts.Domain
	// Submitter is the domain of the report's contact-info, the
	// "Sender-Domain" of TLS-Report-Submitter (RFC 8460 5.3) and the
	// "sender" of the file name (5.1).
	Submitter mtasts.Domain
	// Filename is the file name RFC 8460 5.1 recommends, e.g.
	// "mail.sndr.example.com!example.net!1470013207!1470186007!001.json.gz".
	Filename string
	// Gzip is the report's JSON compressed with gzip (RFC 8460 5.2), of
	// media type application/tlsrpt+gzip (6.5).
	Gzip []byte
}

// buildPayload validates r (see Report.Validate), marshals it to JSON and
// compresses it with gzip (RFC 8460 5.2: "The report SHOULD be subjected to
// gzip [RFC1952] compression for both email and HTTPS transport").
//
// A report goes to the TLSRPT record of one domain (RFC 8460 3), and its
// e-mail names one (TLS-Report-Domain, 5.3): r.Domain when set, or else the
// policy domain of r's policies, which must then all have one. The domain of r.ContactInfo is the submitter.
// Both are written in A-labels, as 5.1 requires of the file name.
//
// The gzip data has no file name and no modification time in its header, so
// the same report always compresses to the same bytes.
//
// It returns an error wrapping ErrInvalidReport (a *SyntaxError naming the
// JSON path) when r is not valid or its policies name several domains, and
// ErrTooLarge when the JSON is larger than 20 MiB, which receivers
// following this package would refuse.
func buildPayload(r *Report) (*payload, error) {
	if r == nil {
		return nil, &SyntaxError{Kind: ErrInvalidReport, Msg: "no report"}
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	policyDomain, err := reportPolicyDomain(r)
	if err != nil {
		return nil, err
	}
	submitter, err := contactDomain(r.ContactInfo)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("%w: marshalling the report: %w", ErrInvalidReport, err)
	}
	if len(data) > maxReportSize {
		return nil, fmt.Errorf("%w: %d bytes of JSON, more than the maximum of %d receivers accept", ErrTooLarge, len(data), maxReportSize)
	}
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	zw.Write(data) // writes to a bytes.Buffer do not fail
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &payload{
		Report:       r,
		PolicyDomain: policyDomain,
		Submitter:    submitter,
		Filename:     reportFilename(submitter.ASCII, policyDomain.ASCII, r, "json.gz"),
		Gzip:         buf.Bytes(),
	}, nil
}

// gzipWriters holds gzip writers of the best compression, for buildPayload:
// each holds near a megabyte of compressor state, too much to make per
// report. Reset gives the same bytes as a new writer.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestCompression) // a valid level: no error
	return zw
}}

// reportPolicyDomain returns the domain r is for: r.Domain, or else the one
// policy domain of r's policies, which Validate found to be a domain name in
// A-labels.
func reportPolicyDomain(r *Report) (mtasts.Domain, error) {
	if r.Domain != "" {
		d, err := mtasts.ParseDomain(r.Domain)
		switch {
		case err != nil:
			return mtasts.Domain{}, &SyntaxError{Kind: ErrInvalidReport, Field: "Domain", Msg: fmt.Sprintf("%s is not a domain name: %v", quoted.String(r.Domain), err)}
		case d.ASCII != r.Domain:
			return mtasts.Domain{}, &SyntaxError{Kind: ErrInvalidReport, Field: "Domain", Msg: fmt.Sprintf("%s is not in A-labels (RFC 8460 5.1)", quoted.String(r.Domain))}
		}
		return d, nil
	}
	first := r.Policies[0].Policy.PolicyDomain
	d, err := mtasts.ParseDomain(first)
	if err != nil {
		return mtasts.Domain{}, &SyntaxError{Kind: ErrInvalidReport, Field: "policies[0].policy.policy-domain", Msg: err.Error()}
	}
	for i := 1; i < len(r.Policies); i++ {
		other := r.Policies[i].Policy.PolicyDomain
		if o, err := mtasts.ParseDomain(other); err != nil || o.ASCII != d.ASCII {
			return mtasts.Domain{}, &SyntaxError{
				Kind:  ErrInvalidReport,
				Field: "policies[" + strconv.Itoa(i) + "].policy.policy-domain",
				Msg:   fmt.Sprintf("%s differs from %s of policies[0]: a report is for one policy domain (RFC 8460 3, 5.3)", quoted.String(other), quoted.String(first)),
			}
		}
	}
	return d, nil
}

// contactDomain returns the domain of contact-info, an addr-spec (RFC 8460
// 4.4), in A-labels. RFC 8460 5.1: the file name's sender "is used as the
// domain for the `contact-info` address in the report body"; 5.3: the
// "TLS-Report-Submitter" value "MUST match the value found in the domain
// [RFC5321] of the "contact-info"".
func contactDomain(contact string) (mtasts.Domain, error) {
	a, err := mail.ParseAddress(contact)
	if err != nil {
		return mtasts.Domain{}, &SyntaxError{Kind: ErrInvalidReport, Field: "contact-info", Msg: fmt.Sprintf("%s is not an e-mail address: %v", quoted.String(contact), quoted.Cause(err))}
	}
	at := strings.LastIndexByte(a.Address, '@')
	d, err := mtasts.ParseDomain(a.Address[at+1:])
	if err != nil {
		return mtasts.Domain{}, &SyntaxError{Kind: ErrInvalidReport, Field: "contact-info", Msg: fmt.Sprintf("the domain of %s is not a host name, as the submitter of RFC 8460 5.3 must be: %v", quoted.String(contact), err)}
	}
	return d, nil
}

// reportFilename returns the file name of RFC 8460 5.1:
//
//	filename = sender "!" policy-domain "!" begin-timestamp
//	           "!" end-timestamp [ "!" unique-id ] "." extension
//
// with the timestamps in "seconds since 00:00:00 UTC January 1, 1970" of
// the report's date range, and the unique-id made from its report-id (see
// uniqueID). sender and policyDomain are in A-labels.
func reportFilename(sender, policyDomain string, r *Report, ext string) string {
	var b strings.Builder
	b.WriteString(sender)
	b.WriteByte('!')
	b.WriteString(policyDomain)
	b.WriteByte('!')
	b.WriteString(strconv.FormatInt(r.DateRange.Start.Unix(), 10))
	b.WriteByte('!')
	b.WriteString(strconv.FormatInt(r.DateRange.End.Unix(), 10))
	if id := uniqueID(r.ReportID); id != "" {
		b.WriteByte('!')
		b.WriteString(id)
	}
	b.WriteByte('.')
	b.WriteString(ext)
	return b.String()
}

// maxUniqueID bounds the unique-id of a file name, which goes into a header
// line of the report's e-mail.
const maxUniqueID = 64

// uniqueID returns the unique-id of a file name, unique-id = 1*(ALPHA /
// DIGIT) (RFC 8460 5.1), for a report-id: the report-id itself when it is
// letters and digits, as newReportID makes them; else its letters and
// digits, e.g. "5065427c23d347cab6e0946ea0e8c4be" for a UUID. When those are
// none, or more than 64, it is 32 hex digits of the report-id's SHA-256, so
// that distinct report-ids still give distinct names.
func uniqueID(reportID string) string {
	var b strings.Builder
	for i := 0; i < len(reportID); i++ {
		if c := reportID[i]; isAlnum(c) {
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 || b.Len() > maxUniqueID {
		sum := sha256.Sum256([]byte(reportID))
		return hex.EncodeToString(sum[:16])
	}
	return b.String()
}

// idEncoding writes random identifiers in lower-case letters and digits.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randomID returns 26 letters and digits holding 128 random bits.
func randomID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24)
	return idEncoding.EncodeToString(b[:])
}

// newReportID returns a new report-id: 26 lower-case letters and digits
// holding 128 random bits, unique to the report (RFC 8460 4.4: "A unique
// identifier for the report"). Being letters and digits only, it is also the
// unique-id of the report's file name (RFC 8460 5.1) and the id-left of the
// Report-ID in its e-mail's Subject (5.3), unchanged.
//
// Make the id once per report and keep it: a report sent again, after a
// retry or a restart, should carry the same report-id, so that the receiver
// can tell it is a duplicate (RFC 8460 5.3).
func newReportID() string {
	return randomID()
}
