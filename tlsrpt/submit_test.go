package tlsrpt_test

import (
	"bytes"
	"net/http"
	"net/mail"
	"slices"
	"testing"

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
