package tlsrpt_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// submitted is a message handed to SenderOptions.Submit.
type submitted struct {
	m        tlsrpt.Message
	from, to string // m.From, m.To joined by ", "
	msg      []byte // m.Data
	marked   bool   // IsReportSubmission(ctx)
	deadline bool
}

// mta captures what a Sender submits, failing the first fail calls.
type mta struct {
	mu   sync.Mutex
	got  []submitted
	fail int
}

func (m *mta) submit(ctx context.Context, msg *tlsrpt.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, hasDeadline := ctx.Deadline()
	c := *msg
	c.To = slices.Clone(msg.To)
	c.Data = bytes.Clone(msg.Data)
	m.got = append(m.got, submitted{c, msg.From, strings.Join(msg.To, ", "), c.Data, tlsrpt.IsReportSubmission(ctx), hasDeadline})
	if m.fail > 0 {
		m.fail--
		return errors.New("queue full")
	}
	return nil
}

func (m *mta) messages() []submitted {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]submitted(nil), m.got...)
}

// A report sent to a mailto rua URI is the message of RFC 8460 5.3, checked
// here by parsing it back with net/mail and mime/multipart.
func TestSendMailto(t *testing.T) {
	m := &mta{}
	s := newSender(t, tlsrpt.SenderOptions{Submit: m.submit})
	report := appendixB(t)
	deliveries, err := s.SendRecordForTest(t.Context(), report, record("mailto:tlsrpt@company-y.example?subject=ignored"))
	if err != nil {
		t.Fatalf("SendRecord: %v", err)
	}
	if len(deliveries) != 1 || deliveries[0].TransportForTest() != "mailto" || deliveries[0].Attempts != 1 {
		t.Errorf("deliveries %+v, want one mailto delivery in 1 attempt", deliveries)
	}
	got := m.messages()
	if len(got) != 1 {
		t.Fatalf("%d messages submitted, want 1", len(got))
	}
	sub := got[0]
	// The envelope: from the contact-info by default, to the rua address.
	if sub.from != "sts-reporting@company-x.example" || sub.to != "tlsrpt@company-y.example" {
		t.Errorf("envelope from %q to %q", sub.from, sub.to)
	}
	// The mark the MTA delivers reports by without enforcing MTA-STS.
	if !sub.marked || !sub.deadline {
		t.Errorf("Submit's context: IsReportSubmission %v, deadline %v; want both", sub.marked, sub.deadline)
	}
	checkReportMessage(t, sub.msg, report, "sts-reporting@company-x.example", "tlsrpt@company-y.example",
		"company-x.example!company-y.example!1459468800!1459555199!5065427c23d347cab6e0946ea0e8c4be.json.gz")

	// The parts the MTA queues the message by, as the message has them,
	// so that it need not parse them back.
	msg := sub.m
	h, err := mail.ReadMessage(bytes.NewReader(msg.Data))
	if err != nil {
		t.Fatal(err)
	}
	if msg.From != "sts-reporting@company-x.example" || !slices.Equal(msg.To, []string{"tlsrpt@company-y.example"}) {
		t.Errorf("Message From %q, To %q", msg.From, msg.To)
	}
	if msg.ReportID != report.ReportID {
		t.Errorf("Message.ReportID %q, want %q", msg.ReportID, report.ReportID)
	}
	if msg.PolicyDomain.ASCII != "company-y.example" || msg.Submitter.ASCII != "company-x.example" {
		t.Errorf("Message.PolicyDomain %q, Submitter %q", msg.PolicyDomain.ASCII, msg.Submitter.ASCII)
	}
	if msg.Subject != h.Header.Get("Subject") || !strings.HasPrefix(msg.Subject, "Report Domain: company-y.example ") {
		t.Errorf("Message.Subject %q, the field %q", msg.Subject, h.Header.Get("Subject"))
	}
	if msg.MessageID == "" || msg.MessageID != h.Header.Get("Message-ID") {
		t.Errorf("Message.MessageID %q, the field %q", msg.MessageID, h.Header.Get("Message-ID"))
	}
	if msg.SMTPUTF8 {
		t.Error("Message.SMTPUTF8 set for ASCII addresses")
	}
}

// checkLines checks that the lines of msg end in CRLF and are short.
func checkLines(t *testing.T, msg []byte) {
	t.Helper()
	for i, line := range strings.SplitAfter(string(msg), "\n") {
		if line != "" && !strings.HasSuffix(line, "\r\n") {
			t.Fatalf("line %d does not end in CRLF: %q", i+1, line)
		}
		// RFC 5322 2.1.1: lines "SHOULD be no more than 78
		// characters", "MUST be no more than 998". The file name is
		// kept whole, not split by RFC 2231 continuations that simple
		// readers of reports may not know.
		if max := 78; len(line)-2 > max && !strings.Contains(line, "filename=") || len(line)-2 > 998 {
			t.Errorf("line %d is %d characters long (RFC 5322 2.1.1)", i+1, len(line)-2)
		}
	}
}

// checkReportMessage parses msg and checks it against RFC 8460 5.3 and the
// report it carries.
func checkReportMessage(t *testing.T, msg []byte, report *tlsrpt.Report, from, to, filename string) {
	t.Helper()
	checkLines(t, msg)
	for i, line := range strings.SplitAfter(string(msg), "\n") {
		for _, c := range []byte(line) {
			if c >= 0x80 {
				t.Fatalf("line %d is not 7-bit: %q", i+1, line)
			}
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("net/mail cannot read the message: %v\n%s", err, msg)
	}
	h := m.Header
	if a, err := h.AddressList("From"); err != nil || len(a) != 1 || a[0].Address != from {
		t.Errorf("From %q (%v), want %s", h.Get("From"), err, from)
	}
	if a, err := h.AddressList("To"); err != nil || len(a) != 1 || a[0].Address != to {
		t.Errorf("To %q (%v), want %s", h.Get("To"), err, to)
	}
	if d, err := h.Date(); err != nil || time.Since(d) > time.Hour || time.Since(d) < -time.Minute {
		t.Errorf("Date %q (%v), want now", h.Get("Date"), err)
	}
	if id := h.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@company-x.example>") {
		t.Errorf("Message-ID %q, want <...@company-x.example>", id)
	}
	// RFC 8460 5.3: the Subject of the tlsrpt-subject rule, the policy
	// domain first, then the submitter: the domain of contact-info.
	wantSubject := "Report Domain: company-y.example Submitter: company-x.example Report-ID: <5065427c-23d3-47ca-b6e0-946ea0e8c4be@company-x.example>"
	if got := h.Get("Subject"); got != wantSubject {
		t.Errorf("Subject\n %q, want\n %q", got, wantSubject)
	}
	// "These message header fields MUST be included"; the submitter
	// "MUST match the value found in the domain [RFC5321] of the
	// "contact-info"".
	if got := h.Get("TLS-Report-Domain"); got != "company-y.example" {
		t.Errorf("TLS-Report-Domain %q, want company-y.example", got)
	}
	if got := h.Get("TLS-Report-Submitter"); got != "company-x.example" {
		t.Errorf("TLS-Report-Submitter %q, want company-x.example", got)
	}
	if h.Get("MIME-Version") != "1.0" || h.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("MIME-Version %q, Auto-Submitted %q", h.Get("MIME-Version"), h.Get("Auto-Submitted"))
	}
	// RFC 8689 3: "TLS-Required: No" asks every MTA on the way to deliver
	// despite MTA-STS or DANE failures, as RFC 8460 5.3 wants for reports.
	if got := h["Tls-Required"]; len(got) != 1 || got[0] != "No" {
		t.Errorf("TLS-Required %q, want one field \"No\" (RFC 8689)", got)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "tlsrpt" {
		t.Fatalf("Content-Type %q (%v), want multipart/report; report-type=\"tlsrpt\"", h.Get("Content-Type"), err)
	}

	// "Inside it, there are two parts: The first part is human readable,
	// typically "text/plain", and the second part is machine readable".
	mr := multipart.NewReader(m.Body, params["boundary"])
	var parts []*multipart.Part
	var bodies [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("mime/multipart: %v", err)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
		bodies = append(bodies, body)
	}
	if len(parts) != 2 {
		t.Fatalf("%d parts, want 2", len(parts))
	}
	if mt, _, _ := mime.ParseMediaType(parts[0].Header.Get("Content-Type")); mt != "text/plain" {
		t.Errorf("first part of type %q, want text/plain", mt)
	}
	// NextPart decodes quoted-printable.
	if text := string(bodies[0]); !strings.Contains(text, "company-y.example") || !strings.Contains(text, "Failed TLS sessions:     303") {
		t.Errorf("the text part does not say what the report is:\n%s", text)
	}
	p := parts[1]
	if got := p.Header.Get("Content-Type"); got != "application/tlsrpt+gzip" {
		t.Errorf("report part of type %q, want application/tlsrpt+gzip", got)
	}
	if got := p.Header.Get("Content-Transfer-Encoding"); got != "base64" {
		t.Errorf("report part Content-Transfer-Encoding %q, want base64", got)
	}
	disp, dparams, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil || disp != "attachment" || dparams["filename"] != filename {
		t.Errorf("Content-Disposition %q (%v), want attachment with filename %q", p.Header.Get("Content-Disposition"), err, filename)
	}
	if p.FileName() != filename {
		t.Errorf("FileName() %q, want %q", p.FileName(), filename)
	}
	gz, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(bodies[1]), "\r\n", ""))
	if err != nil {
		t.Fatalf("the report part is not base64: %v", err)
	}
	got, err := tlsrpt.ParseReport(gunzip(t, gz))
	if err != nil {
		t.Fatalf("the attachment does not parse: %v", err)
	}
	sameReport(t, got, report)

	// And the package's own reader of received reports takes it.
	got, _, err = tlsrpt.ReadReport(bytes.NewReader(msg), tlsrpt.ReadOptions{})
	if err != nil {
		t.Fatalf("ReadReport: %v", err)
	}
	sameReport(t, got, report)
}

// SenderOptions.From sets the From field and the envelope sender; a failed
// Submit is retried with the same message.
func TestSendMailtoFromAndRetry(t *testing.T) {
	m := &mta{fail: 1}
	s := newSender(t, tlsrpt.SenderOptions{Submit: m.submit, From: "TLS reports <tlsrpt@mail.company-x.example>", FirstRetry: 1})
	deliveries, err := s.SendRecordForTest(t.Context(), appendixB(t), record("mailto:tlsrpt@company-y.example"))
	if err != nil || deliveries[0].Attempts != 2 {
		t.Fatalf("SendRecord: %+v, %v; want delivered in 2 attempts", deliveries, err)
	}
	got := m.messages()
	if got[0].from != "tlsrpt@mail.company-x.example" {
		t.Errorf("envelope from %q", got[0].from)
	}
	if !bytes.Equal(got[0].msg, got[1].msg) {
		t.Error("the retry submitted another message")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(got[0].msg))
	if err != nil {
		t.Fatal(err)
	}
	if a, err := msg.Header.AddressList("From"); err != nil || a[0].Name != "TLS reports" || a[0].Address != "tlsrpt@mail.company-x.example" {
		t.Errorf("From %q", msg.Header.Get("From"))
	}
	// RFC 8460 5.3 ties the submitter to the contact-info, not to From.
	if got := msg.Header.Get("TLS-Report-Submitter"); got != "company-x.example" {
		t.Errorf("TLS-Report-Submitter %q, want company-x.example", got)
	}
}

// Without a Submit function mailto URIs are skipped, and the report counts
// as delivered when an https URI took it.
func TestSendMailtoWithoutSubmit(t *testing.T) {
	c := newCollector(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	s := newSender(t, tlsrpt.SenderOptions{Transport: c.transport(mtasts.AllowLoopback)})
	deliveries, err := s.SendRecordForTest(t.Context(), appendixB(t), record("mailto:tlsrpt@company-y.example", c.srv.URL))
	if err != nil {
		t.Fatalf("SendRecord: %v (one of two URIs took the report)", err)
	}
	if len(deliveries) != 2 || !errors.Is(deliveries[0].Err, tlsrpt.ErrPermanent) || deliveries[0].Attempts != 0 || deliveries[1].Err != nil {
		t.Errorf("deliveries %+v, want mailto skipped and https delivered", deliveries)
	}
}

// The rua address is the record publisher's text: it never adds header
// fields or recipients to the message.
func TestSendMailtoHostileURI(t *testing.T) {
	tests := []struct {
		uri  string
		to   string // "" for refused
		want string // in the error
	}{
		{"mailto:tlsrpt@company-y.example", "tlsrpt@company-y.example", ""},
		{"MAILTO:TLSRPT@Company-Y.Example", "TLSRPT@company-y.example", ""},
		{"mailto:tls%2Drpt@company-y.example?subject=x&bcc=victim@example.com", "tls-rpt@company-y.example", ""},
		{"mailto:tlsrpt@b%C3%BCcher.example", "tlsrpt@xn--bcher-kva.example", ""},
		{"mailto:a@company-y.example%0D%0ABcc:%20victim@example.com", "", "control character"},
		{"mailto:a@company-y.example%2Cvictim@example.com", "", "several addresses"},
		{"mailto:Victim%20%3Cvictim@example.com%3E", "", "not an addr-spec"},
		{"mailto:%C3%BC@company-y.example", "", "non-ASCII local part"},
		{"mailto:a@%5B127.0.0.1%5D", "", "not a host name"},
		{"mailto:?to=a@company-y.example", "", "no address"},
		{"mailto:a@company-y.example%zz", "", "percent-encoding"},
	}
	for _, tc := range tests {
		t.Run(tc.uri, func(t *testing.T) {
			m := &mta{}
			s := newSender(t, tlsrpt.SenderOptions{Submit: m.submit})
			deliveries, err := s.SendRecordForTest(t.Context(), appendixB(t), record(tc.uri))
			got := m.messages()
			if tc.to != "" {
				if err != nil || len(got) != 1 || got[0].to != tc.to {
					t.Fatalf("SendRecord: %v; submitted %d, want one to %s", err, len(got), tc.to)
				}
				msg, err := mail.ReadMessage(bytes.NewReader(got[0].msg))
				if err != nil {
					t.Fatal(err)
				}
				if msg.Header.Get("Bcc") != "" || msg.Header.Get("Subject") == "x" {
					t.Errorf("the URI's header fields reached the message: %q", got[0].msg)
				}
				return
			}
			if len(got) != 0 {
				t.Errorf("submitted %q", got[0].msg)
			}
			if len(deliveries) != 1 || !errors.Is(deliveries[0].Err, tlsrpt.ErrPermanent) || !strings.Contains(deliveries[0].Err.Error(), tc.want) {
				t.Errorf("deliveries %+v, want a permanent error saying %q", deliveries, tc.want)
			}
		})
	}
}

// A context that no Sender made carries no mark of a report's submission.
func TestIsReportSubmissionUnmarked(t *testing.T) {
	if tlsrpt.IsReportSubmission(context.Background()) {
		t.Error("IsReportSubmission(context.Background()) = true")
	}
}
