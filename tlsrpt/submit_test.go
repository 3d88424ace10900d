package tlsrpt_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

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
	s := newSender(t, tlsrpt.SenderOptions{Submit: m.submit, Transport: tr, OneMessage: true, Backoff: 1})
	deliveries, err := s.SendRecord(t.Context(), appendixB(t), rec)
	if err != nil {
		t.Fatalf("SendRecord: %v", err)
	}
	if len(deliveries) != 4 {
		t.Fatalf("%d deliveries, want 4 (one per distinct URI): %+v", len(deliveries), deliveries)
	}
	for _, d := range deliveries {
		wantAttempts := 2 // the message, failed once
		if d.Transport == tlsrpt.TransportHTTPS {
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
	if _, err := s.SendRecord(t.Context(), appendixB(t), rec); err != nil {
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
	deliveries, err := s.SendRecord(t.Context(), report, record(
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
	if _, err := tlsrpt.ReadMessage(bytes.NewReader(msg.Data)); err != nil {
		t.Errorf("ReadMessage: %v", err)
	}
}
