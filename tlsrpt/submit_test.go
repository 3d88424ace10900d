package tlsrpt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtasts-go/mtasts/mtaststest"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// With OneMessage, the mailto rua addresses of a record share one message,
// all in its To field, as an MTA sends a message to several recipients;
// each URI's Delivery has that message's outcome. A failed Submit is
// retried with the same message. Without it, each address gets its own.
func TestSendMailtoOneMessage(t *testing.T) {
	tr := &memTransport{answer: status(http.StatusOK)}
	rec := record("mailto:a@company-y.example", "https://r.example/", "mailto:b@company-y.example",
		"mailto:a@company-y.example", "mailto:c@company-z.example")
	wantTo := []string{"a@company-y.example", "b@company-y.example", "c@company-z.example"}

	m := &mta{fail: 1}
	s := newSender(t, tlsrpt.SenderOptions{Submit: m.submit, Transport: tr, OneMessage: true, FirstRetry: 1})
	deliveries, err := s.SendRecordForTest(t.Context(), appendixB(t), rec)
	if err != nil {
		t.Fatalf("SendRecord: %v", err)
	}
	if len(deliveries) != 4 {
		t.Fatalf("%d deliveries, want 4 (one per distinct URI): %+v", len(deliveries), deliveries)
	}
	for _, d := range deliveries {
		wantAttempts := 2 // the message, failed once
		if d.TransportForTest() == "https" {
			wantAttempts = 1
		}
		if d.Err != nil || d.Attempts != wantAttempts {
			t.Errorf("delivery %+v, want delivered in %d attempts", d, wantAttempts)
		}
	}
	got := m.messages()
	if len(got) != 2 {
		t.Fatalf("%d messages submitted, want one, and its retry", len(got))
	}
	if !slices.Equal(got[0].m.To, wantTo) || !bytes.Equal(got[0].msg, got[1].msg) {
		t.Errorf("submitted To %q, then %q; want %q twice, the same message", got[0].m.To, got[1].m.To, wantTo)
	}
	h, err := mail.ReadMessage(bytes.NewReader(got[0].msg))
	if err != nil {
		t.Fatal(err)
	}
	to, err := h.Header.AddressList("To")
	if err != nil || len(to) != len(wantTo) {
		t.Fatalf("To field %q (%v)", h.Header.Get("To"), err)
	}
	for i, a := range to {
		if a.Address != wantTo[i] {
			t.Errorf("To[%d] %q, want %q", i, a.Address, wantTo[i])
		}
	}
	checkLines(t, got[0].msg)

	// One message per address without the option.
	m = &mta{}
	s = newSender(t, tlsrpt.SenderOptions{Submit: m.submit, Transport: tr})
	if _, err := s.SendRecordForTest(t.Context(), appendixB(t), rec); err != nil {
		t.Fatalf("SendRecord: %v", err)
	}
	var each []string
	for _, sub := range m.messages() {
		each = append(each, sub.m.To...)
		if len(sub.m.To) != 1 {
			t.Errorf("a message to %q, want one address a message", sub.m.To)
		}
	}
	slices.Sort(each)
	if !slices.Equal(each, wantTo) {
		t.Errorf("messages to %q, want one to each of %q", each, wantTo)
	}
}

// With SMTPUTF8, an MTA that can deliver to non-ASCII local parts (RFC 6531)
// gets them, in a message that says it needs SMTPUTF8 and has UTF-8 in its
// To field alone (RFC 6532); the domain is still in A-labels. Without it,
// such addresses are refused as before (TestSendMailtoHostileURI).
func TestSendMailtoSMTPUTF8(t *testing.T) {
	m := &mta{}
	s := newSender(t, tlsrpt.SenderOptions{Submit: m.submit, SMTPUTF8: true, OneMessage: true})
	report := appendixB(t)
	deliveries, err := s.SendRecordForTest(t.Context(), report, record(
		"mailto:%C3%BC@b%C3%BCcher.example", "mailto:plain@company-y.example", "mailto:%FF@company-y.example", "mailto:a%00@company-y.example"))
	if err != nil {
		t.Fatalf("SendRecord: %v", err)
	}
	if deliveries[0].Err != nil || deliveries[1].Err != nil {
		t.Errorf("deliveries %+v, want the first two delivered", deliveries)
	}
	for _, d := range deliveries[2:] {
		if !errors.Is(d.Err, tlsrpt.ErrPermanent) {
			t.Errorf("delivery %+v, want refused: not UTF-8, or a control character", d)
		}
	}
	got := m.messages()
	if len(got) != 1 {
		t.Fatalf("%d messages, want 1", len(got))
	}
	msg := got[0].m
	if !slices.Equal(msg.To, []string{"ü@xn--bcher-kva.example", "plain@company-y.example"}) || !msg.SMTPUTF8 {
		t.Errorf("Message To %q, SMTPUTF8 %v; want the UTF-8 address first, and SMTPUTF8", msg.To, msg.SMTPUTF8)
	}
	checkLines(t, msg.Data)
	h, err := mail.ReadMessage(bytes.NewReader(msg.Data))
	if err != nil {
		t.Fatal(err)
	}
	to, err := h.Header.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Address != "ü@xn--bcher-kva.example" {
		t.Errorf("To field %q (%v)", h.Header.Get("To"), err)
	}
	// 8-bit only in the To field.
	header, _, _ := bytes.Cut(msg.Data, []byte("\r\n\r\n"))
	for i, line := range strings.Split(string(msg.Data), "\r\n") {
		if strings.ContainsFunc(line, func(r rune) bool { return r >= utf8.RuneSelf }) && !strings.HasPrefix(line, "To: ") {
			t.Errorf("line %d is 8-bit: %q", i+1, line)
		}
	}
	if !bytes.Contains(header, []byte("To: ü@xn--bcher-kva.example")) {
		t.Errorf("header without the UTF-8 address:\n%s", header)
	}
	// The package's own reader takes the message.
	if _, _, err := tlsrpt.ReadReport(bytes.NewReader(msg.Data), tlsrpt.ReadOptions{}); err != nil {
		t.Errorf("ReadReport: %v", err)
	}
}

// suppressing is a SenderOptions.Suppress that suppresses the addresses
// given, and records those asked about.
type suppressing struct {
	mu    sync.Mutex
	these []string
	asked []string
}

func (s *suppressing) suppress(ctx context.Context, addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, addr)
	return slices.Contains(s.these, addr)
}

// Addresses the MTA will not mail (Suppress) are skipped: no message goes
// to them, their Delivery says Skipped with a permanent error (no retry),
// and they are counted as skipped, neither delivered nor failed. A report
// whose every rua URI is skipped is not delivered.
func TestSendMailtoSuppress(t *testing.T) {
	for _, one := range []bool{false, true} {
		t.Run(fmt.Sprintf("OneMessage=%v", one), func(t *testing.T) {
			tr := &memTransport{answer: status(http.StatusOK)}
			m := &mta{}
			sup := &suppressing{these: []string{"b@company-y.example", "c@company-y.example"}}
			s := newSender(t, tlsrpt.SenderOptions{Submit: m.submit, Transport: tr, OneMessage: one, Suppress: sup.suppress})
			reg := prometheus.NewPedanticRegistry()
			must(t, s.RegisterMetrics(reg))
			deliveries, err := s.SendRecordForTest(t.Context(), appendixB(t), record(
				"mailto:a@company-y.example", "mailto:B@company-y.example", "https://r.example/", "mailto:%FF@company-y.example"))
			if err != nil {
				t.Fatalf("SendRecord: %v", err)
			}
			if len(deliveries) != 4 {
				t.Fatalf("deliveries %+v", deliveries)
			}
			if d := deliveries[0]; d.Err != nil || d.Skipped || d.Attempts != 1 {
				t.Errorf("a@: %+v, want delivered", d)
			}
			// The address is asked about as the message would have it;
			// B@ is not b@: local parts are case-sensitive (RFC 5321 2.4).
			if d := deliveries[1]; d.Err != nil || d.Skipped {
				t.Errorf("B@: %+v, want delivered", d)
			}
			if d := deliveries[2]; d.Err != nil || d.Skipped || d.Attempts != 1 {
				t.Errorf("https: %+v, want delivered", d)
			}
			if d := deliveries[3]; d.Skipped || !errors.Is(d.Err, tlsrpt.ErrPermanent) {
				t.Errorf("an invalid address: %+v, want failed, not skipped", d)
			}
			sup.these = append(sup.these, "B@company-y.example")
			deliveries, err = s.SendRecordForTest(t.Context(), appendixB(t), record("mailto:B@company-y.example", "mailto:a@company-y.example"))
			if err != nil {
				t.Fatalf("SendRecord: %v", err)
			}
			if d := deliveries[0]; !d.Skipped || d.Attempts != 0 || !errors.Is(d.Err, tlsrpt.ErrPermanent) || !strings.Contains(d.Err.Error(), "suppressed") {
				t.Errorf("B@ suppressed: %+v, want skipped with a permanent error", d)
			}
			var to []string
			for _, sub := range m.messages() {
				to = append(to, sub.m.To...)
			}
			want := []string{"a@company-y.example", "B@company-y.example", "a@company-y.example"}
			slices.Sort(to)
			slices.Sort(want)
			if !slices.Equal(to, want) {
				t.Errorf("mailed to %q, want %q", to, want)
			}

			// Every URI skipped: not delivered.
			deliveries, err = s.SendRecordForTest(t.Context(), appendixB(t), record("mailto:b@company-y.example", "mailto:c@company-y.example"))
			if !errors.Is(err, tlsrpt.ErrNotDelivered) || len(deliveries) != 2 || !deliveries[0].Skipped || !deliveries[1].Skipped {
				t.Errorf("SendRecord to suppressed addresses alone: %+v, %v; want both skipped, ErrNotDelivered", deliveries, err)
			}
			got := counters(t, reg)
			for name, want := range map[string]float64{
				"mtastsgo_tlsrpt_reports_sent_total{transport=mailto}":    3,
				"mtastsgo_tlsrpt_reports_sent_total{transport=https}":     1,
				"mtastsgo_tlsrpt_reports_skipped_total{transport=mailto}": 3,
				"mtastsgo_tlsrpt_reports_failed_total{transport=mailto}":  1, // the invalid address
			} {
				if got[name] != want {
					t.Errorf("%s = %v, want %v", name, got[name], want)
				}
			}
		})
	}
}

// A Reporter counts a report whose every rua URI was skipped as skipped,
// not as failed, and does not retry it.
func TestReporterAllSkipped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec, _ := newRecorder(t, tlsrpt.RecorderOptions{})
		defer rec.Close()
		must(t, rec.Success(sts("a.example", "enforce")))
		time.Sleep(time.Until(closes(time.Now().UTC().Truncate(24 * time.Hour))))
		resolver := mtaststest.NewResolver()
		resolver.SetTXT("_smtp._tls.a.example", "v=TLSRPTv1; rua=mailto:tlsrpt@a.example")
		m := &mta{}
		sup := &suppressing{these: []string{"tlsrpt@a.example"}}
		sender := newSender(t, tlsrpt.SenderOptions{Resolver: resolver, Submit: m.submit, Suppress: sup.suppress})
		box := tlsrpt.NewMemoryOutbox()
		rep, err := tlsrpt.NewReporter(tlsrpt.ReporterOptions{Recorder: rec, Sender: sender, Outbox: box, Info: info,
			MaxDelay: -1, Spread: -1})
		must(t, err)
		reg := prometheus.NewPedanticRegistry()
		must(t, rep.RegisterMetrics(reg))
		ctx, cancel := context.WithCancel(context.Background())
		ended := make(chan error, 1)
		go func() { ended <- rep.Run(ctx) }()
		time.Sleep(time.Hour)
		cancel()
		<-ended
		if len(m.messages()) != 0 {
			t.Errorf("%d messages submitted, want none", len(m.messages()))
		}
		if len(sup.asked) != 1 {
			t.Errorf("Suppress asked %d times, want once (no retry)", len(sup.asked))
		}
		if pending, _ := box.Pending(context.Background()); len(pending) != 0 {
			t.Errorf("pending: %+v, want none", pending)
		}
		got := counters(t, reg)
		for name, want := range map[string]float64{
			"mtastsgo_tlsrpt_reports_done_total{outcome=skipped}":   1,
			"mtastsgo_tlsrpt_reports_done_total{outcome=failed}":    0,
			"mtastsgo_tlsrpt_reports_done_total{outcome=delivered}": 0,
		} {
			if got[name] != want {
				t.Errorf("%s = %v, want %v", name, got[name], want)
			}
		}
	})
}

// With NoHTTPS, https rua URIs are skipped, as an MTA that sends reports by
// DKIM-signed mail alone wants: nothing is posted, and they count as
// skipped, not toward MaxRUA.
func TestSendNoHTTPS(t *testing.T) {
	tr := &memTransport{answer: status(http.StatusOK)}
	m := &mta{}
	s := newSender(t, tlsrpt.SenderOptions{Submit: m.submit, Transport: tr, NoHTTPS: true})
	reg := prometheus.NewPedanticRegistry()
	must(t, s.RegisterMetrics(reg))
	var uris []string
	for i := range tlsrpt.MaxRUA {
		uris = append(uris, fmt.Sprintf("https://r%d.example/", i))
	}
	uris = append(uris, "mailto:tlsrpt@company-y.example")
	deliveries, err := s.SendRecordForTest(t.Context(), appendixB(t), record(uris...))
	if err != nil {
		t.Fatalf("SendRecord: %v", err)
	}
	for i, d := range deliveries {
		switch {
		case d.TransportForTest() == "mailto" && (d.Err != nil || d.Attempts != 1):
			t.Errorf("delivery %d: %+v, want mailed", i, d)
		case d.TransportForTest() == "https" && (!d.Skipped || d.Attempts != 0 || !errors.Is(d.Err, tlsrpt.ErrPermanent)):
			t.Errorf("delivery %d: %+v, want skipped", i, d)
		}
	}
	if n := len(tr.attempts(time.Now())); n != 0 {
		t.Errorf("%d POSTs, want none", n)
	}
	if len(m.messages()) != 1 {
		t.Errorf("%d messages, want 1", len(m.messages()))
	}
	if _, err := s.SendRecordForTest(t.Context(), appendixB(t), record("https://r.example/")); !errors.Is(err, tlsrpt.ErrNotDelivered) {
		t.Errorf("SendRecord to https alone: %v, want ErrNotDelivered", err)
	}
	got := counters(t, reg)
	for name, want := range map[string]float64{
		"mtastsgo_tlsrpt_reports_skipped_total{transport=https}": tlsrpt.MaxRUA + 1,
		"mtastsgo_tlsrpt_reports_failed_total{transport=https}":  0,
		"mtastsgo_tlsrpt_reports_sent_total{transport=mailto}":   1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
}
