package tlsrpt

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/mtasts-go/mtasts/mtaststest"
)

// A delivery resumed after a restart, with OneMessage, mails one message to
// the addresses that had not taken the report, and marks each of them
// delivered: the URIs a Reporter's outbox keeps.
func TestResumeOneMessage(t *testing.T) {
	report := &outboxReports(1)[0]
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_smtp._tls.d0.example", "v=TLSRPTv1; rua=mailto:a@d0.example,mailto:b@d0.example,mailto:c@d0.example")
	var mu sync.Mutex
	var to [][]string
	var marked []string
	s, err := NewSender(SenderOptions{Resolver: resolver, OneMessage: true, Submit: func(ctx context.Context, msg *Message) error {
		mu.Lock()
		defer mu.Unlock()
		to = append(to, slices.Clone(msg.To))
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err := s.resume(t.Context(), report, []string{"mailto:b@d0.example"}, func(uri string) {
		mu.Lock()
		defer mu.Unlock()
		marked = append(marked, uri)
	})
	if err != nil || len(deliveries) != 3 {
		t.Fatalf("resume: %+v, %v", deliveries, err)
	}
	if len(to) != 1 || !slices.Equal(to[0], []string{"a@d0.example", "c@d0.example"}) {
		t.Errorf("messages to %q, want one to a@ and c@", to)
	}
	slices.Sort(marked)
	if !slices.Equal(marked, []string{"mailto:a@d0.example", "mailto:c@d0.example"}) {
		t.Errorf("marked delivered %q, want a@ and c@", marked)
	}
	if d := deliveries[1]; d.Err != nil || d.Attempts != 0 {
		t.Errorf("the URI done before: %+v, want no attempt", d)
	}
}
