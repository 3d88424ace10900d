package tlsrpt_test

import (
	"bytes"
	"errors"
	"net/mail"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts/tlsrpt"
)

// smallReport returns a valid report from contact, for policyDomain, over
// [start, end], with id.
func smallReport(contact, policyDomain string, start, end int64, id string) *tlsrpt.Report {
	return &tlsrpt.Report{
		OrganizationName: "Sender Org",
		DateRange:        tlsrpt.DateRange{Start: time.Unix(start, 0).UTC(), End: time.Unix(end, 0).UTC()},
		ContactInfo:      contact,
		ReportID:         id,
		Policies: []tlsrpt.PolicyResult{{
			Policy:  tlsrpt.Policy{PolicyType: tlsrpt.PolicyTypeNoPolicyFound, PolicyDomain: policyDomain},
			Summary: tlsrpt.Summary{TotalSuccessfulSessionCount: 1},
		}},
	}
}

// The file name of RFC 8460 5.1, with its own example, A-labels, and the
// unique-id made from report-ids that are not letters and digits.
func TestPayloadFilename(t *testing.T) {
	tests := []struct {
		contact, domain string
		start, end      int64
		id              string
		want            string
	}{
		// RFC 8460 5.1's example, for the policy domain example.net
		// from the sending MTA mail.sndr.example.com.
		{"tlsrpt@mail.sndr.example.com", "example.net", 1470013207, 1470186007, "001",
			"mail.sndr.example.com!example.net!1470013207!1470186007!001.json.gz"},
		// "the domain MUST consist of the Punycode-encoded A-labels".
		{"tlsrpt@bücher.example", "xn--caf-dma.example", 1459468800, 1459555199, "x1",
			"xn--bcher-kva.example!xn--caf-dma.example!1459468800!1459555199!x1.json.gz"},
		{"tlsrpt@Mail.Example.COM", "Example.NET", 1459468800, 1459555199, "a",
			"mail.example.com!example.net!1459468800!1459555199!a.json.gz"},
		// unique-id = 1*(ALPHA / DIGIT): a UUID keeps its letters and
		// digits.
		{"tlsrpt@mail.example.com", "example.net", 1459468800, 1459555200, "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
			"mail.example.com!example.net!1459468800!1459555200!5065427c23d347cab6e0946ea0e8c4be.json.gz"},
		// No letters or digits: a hash, so that ids still differ.
		{"tlsrpt@mail.example.com", "example.net", 1459468800, 1459555200, "--",
			"mail.example.com!example.net!1459468800!1459555200!d8156bae0c4243d3742fc4e9774d8ace.json.gz"},
	}
	for _, tc := range tests {
		p, err := tlsrpt.BuildPayload(smallReport(tc.contact, tc.domain, tc.start, tc.end, tc.id))
		if err != nil {
			t.Errorf("%s: BuildPayload: %v", tc.want, err)
			continue
		}
		if p.Filename != tc.want {
			t.Errorf("Filename\n %q, want\n %q", p.Filename, tc.want)
		}
	}

	// A long report-id gives a bounded unique-id.
	p, err := tlsrpt.BuildPayload(smallReport("a@mail.example.com", "example.net", 0, 86399, strings.Repeat("ab", 100)))
	if err != nil {
		t.Fatal(err)
	}
	if id := p.Filename[strings.LastIndexByte(p.Filename, '!')+1:]; len(id) != len("0123456789abcdef0123456789abcdef.json.gz") {
		t.Errorf("unique-id of a 200-character report-id: %q", id)
	}
}

// The gzip data is deterministic, so that every copy and retry of a report
// has the same bytes, and starts with the gzip magic number.
func TestPayloadGzip(t *testing.T) {
	r := appendixB(t)
	p1, err := tlsrpt.BuildPayload(r)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := tlsrpt.BuildPayload(r)
	if !bytes.Equal(p1.Gzip, p2.Gzip) {
		t.Error("two payloads of one report differ")
	}
	if !bytes.HasPrefix(p1.Gzip, []byte{0x1f, 0x8b}) {
		t.Error("no gzip magic number (RFC 8460 6.5)")
	}
	got, err := tlsrpt.ParseReport(gunzip(t, p1.Gzip))
	if err != nil {
		t.Fatal(err)
	}
	sameReport(t, got, r)
	if p1.PolicyDomain.ASCII != "company-y.example" || p1.Submitter.ASCII != "company-x.example" {
		t.Errorf("policy domain %q, submitter %q", p1.PolicyDomain.ASCII, p1.Submitter.ASCII)
	}
}

// A report that is invalid, or about several policy domains, is refused
// with the JSON path at fault.
func TestPayloadInvalid(t *testing.T) {
	two := appendixB(t)
	other := two.Policies[0]
	other.Policy.PolicyDomain = "company-z.example"
	two.Policies = append(two.Policies, other)

	noPolicies := appendixB(t)
	noPolicies.Policies = nil

	literal := appendixB(t)
	literal.ContactInfo = "reports@[192.0.2.1]"

	for _, tc := range []struct {
		name string
		r    *tlsrpt.Report
		path string
	}{
		{"two policy domains", two, "policies[1].policy.policy-domain"},
		{"no policies", noPolicies, "policies"},
		{"address literal", literal, "contact-info"},
		{"nil", nil, ""},
	} {
		_, err := tlsrpt.BuildPayload(tc.r)
		var rerr *tlsrpt.SyntaxError
		if !errors.As(err, &rerr) || rerr.Field != tc.path || !errors.Is(err, tlsrpt.ErrInvalidReport) {
			t.Errorf("%s: BuildPayload: %v, want a *SyntaxError at %q", tc.name, err, tc.path)
		}
	}
}

// The Subject's Report-ID has the msg-id form RFC 8460 5.3 asks for, made
// from the report-id.
func TestSubjectReportID(t *testing.T) {
	tests := []struct{ id, want string }{
		{"5065427c-23d3-47ca-b6e0-946ea0e8c4be", "<5065427c-23d3-47ca-b6e0-946ea0e8c4be@mail.sender.example.com>"},
		// RFC 8460 5.3's own example is one already.
		{"735ff.e317+bf22029@mailexample.net", "<735ff.e317+bf22029@mailexample.net>"},
		{"2016-04-01_company-y.example", "<2016-04-01_company-y.example@mail.sender.example.com>"},
		// Not dot-atom-text: its letters and digits.
		{"a b\r\nBcc: x", "<abBccx@mail.sender.example.com>"},
		{"a..b", "<ab@mail.sender.example.com>"},
		{"a@b@c", "<abc@mail.sender.example.com>"},
	}
	for _, tc := range tests {
		m := &mta{}
		s := newSender(t, tlsrpt.SenderOptions{Submit: m.submit})
		r := smallReport("tlsrpt@mail.sender.example.com", "example.net", 1459468800, 1459555199, tc.id)
		if _, err := s.SendRecordForTest(t.Context(), r, record("mailto:tlsrpt@example.net")); err != nil {
			t.Fatalf("%q: %v", tc.id, err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(m.messages()[0].msg))
		if err != nil {
			t.Fatal(err)
		}
		subject := msg.Header.Get("Subject")
		want := "Report Domain: example.net Submitter: mail.sender.example.com Report-ID: " + tc.want
		if subject != want {
			t.Errorf("report-id %q: Subject\n %q, want\n %q", tc.id, subject, want)
		}
		if msg.Header.Get("Bcc") != "" {
			t.Errorf("report-id %q added a header field", tc.id)
		}
	}
}

// NewReportID makes distinct ids of letters and digits, usable unchanged as
// the file name's unique-id.
func TestNewReportID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := tlsrpt.NewReportID()
		if len(id) != 26 || seen[id] {
			t.Fatalf("NewReportID() = %q: length %d, seen before %v", id, len(id), seen[id])
		}
		seen[id] = true
		for _, c := range id {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
				t.Fatalf("NewReportID() = %q: not lower-case letters and digits", id)
			}
		}
	}
	id := tlsrpt.NewReportID()
	p, err := tlsrpt.BuildPayload(smallReport("a@mail.example.com", "example.net", 0, 86399, id))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p.Filename, "!"+id+".json.gz") {
		t.Errorf("Filename %q does not end in the report-id %q", p.Filename, id)
	}
}

// Building a payload costs the report's bytes, not a new compressor each
// time (near a megabyte at the best compression): a Reporter builds one per
// delivery, retries included.
func TestPayloadAllocations(t *testing.T) {
	r := appendixB(t)
	const builds = 100
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range builds {
		if _, err := tlsrpt.BuildPayload(r); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	// At most half a compressor per payload: the race detector drops a
	// quarter of what goes back to a sync.Pool.
	if per := (after.TotalAlloc - before.TotalAlloc) / builds; per > 400<<10 {
		t.Errorf("%d bytes allocated per payload, want at most 400 KiB", per)
	}
}
