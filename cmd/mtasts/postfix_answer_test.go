package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/internal/testkit"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// answerLab is a resolver and a policy host with a set of domains, and a
// cache reading from them.
type answerLab struct {
	resolver *mtaststest.Resolver
	policies *mtaststest.PolicyServer
	cache    *cache.Cache
}

func newAnswerLab(t testing.TB) *answerLab {
	t.Helper()
	lab := &answerLab{resolver: mtaststest.NewResolver(), policies: testkit.PolicyServer(t)}
	client := &mtasts.Client{HTTPClient: lab.policies.Client()}
	c, err := cache.New(cache.Options{Resolver: lab.resolver, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	lab.cache = c
	return lab
}

// publish publishes a record and policy for domain.
func (lab *answerLab) publish(domain, mode string, mx ...string) {
	lab.resolver.SetTXT("_mta-sts."+domain, "v=STSv1; id=1")
	text := "version: STSv1\nmode: " + mode + "\n"
	for _, m := range mx {
		text += "mx: " + m + "\n"
	}
	lab.policies.SetPolicy(domain, text+"max_age: 86400\n")
}

func (lab *answerLab) policyMap() *policyMap {
	return &policyMap{get: lab.cache.Get, names: []string{"postfix"}, timeout: 10 * time.Second, logger: quietLogger()}
}

func TestPolicyMapAnswers(t *testing.T) {
	lab := newAnswerLab(t)
	lab.publish("good.example", "enforce", "mx1.good.example", "*.mx.good.example")
	lab.publish("testing.example", "testing", "mx.testing.example")
	lab.publish("none.example", "none")
	lab.resolver.SetTXT("_mta-sts.broken.example", "v=STSv1; id=1") // no policy host
	lab.resolver.ServFail("_mta-sts.servfail.example")
	lab.publish("xn--bcher-kva.example", "enforce", "mx.xn--bcher-kva.example")
	m := lab.policyMap()

	tests := []struct {
		name, key, want string
		strict          bool
	}{
		// RFC 8461 4.1: exact and wildcard patterns; Postfix's
		// ".domain" stands for "*.domain".
		{"postfix", "good.example", "OK secure match=mx1.good.example:.mx.good.example servername=hostname", false},
		{"postfix", "GOOD.example", "OK secure match=mx1.good.example:.mx.good.example servername=hostname", false},
		{"postfix", "bücher.example", "OK secure match=mx.xn--bcher-kva.example servername=hostname", false},
		// RFC 8461 5.2: testing mode delivers; strict testing enforces.
		{"postfix", "testing.example", "NOTFOUND ", false},
		{"postfix", "testing.example", "OK secure match=mx.testing.example servername=hostname", true},
		// RFC 8461 5.1: mode none, no record, a failed fetch, a DNS
		// failure, with nothing cached: deliver as without MTA-STS.
		{"postfix", "none.example", "NOTFOUND ", false},
		{"postfix", "nosts.example", "NOTFOUND ", false},
		{"postfix", "broken.example", "NOTFOUND ", false},
		{"postfix", "servfail.example", "NOTFOUND ", false},
		// Keys that are no recipient domain.
		{"postfix", "[mx1.good.example]:25", "NOTFOUND ", false},
		{"postfix", "[mx1.good.example]", "NOTFOUND ", false},
		{"postfix", ".good.example", "NOTFOUND ", false},
		{"postfix", "good.example:587", "NOTFOUND ", false},
		{"postfix", "", "NOTFOUND ", false},
		{"postfix", "bad_label!.example", "NOTFOUND ", false},
		{"postfix", strings.Repeat("a", 300), "NOTFOUND ", false},
		{"other", "good.example", `PERM unknown socketmap name "other"; this server answers postfix`, false},
	}
	for _, tt := range tests {
		m.strictTesting = tt.strict
		rep := lookupReply(m, tt.name, tt.key)
		if got := rep.status + " " + rep.text; got != tt.want {
			t.Errorf("%s %q (strict %v): got %q, want %q", tt.name, tt.key, tt.strict, got, tt.want)
		}
	}
	// Keys that are no domain cost no DNS lookup.
	if n := lab.resolver.Lookups("_mta-sts.good.example"); n != 1 {
		t.Errorf("%d lookups of _mta-sts.good.example, want 1", n)
	}
}

// With tlsrpt, the answer carries the attributes Postfix 3.10 reads for TLS
// reports and exact mx pattern matching.
func TestPolicyMapTLSRPTAttributes(t *testing.T) {
	lab := newAnswerLab(t)
	lab.resolver.SetTXT("_mta-sts.good.example", "v=STSv1; id=1")
	lab.policies.SetPolicy("good.example", "version: STSv1\r\nmode: enforce\r\nmx: mx1.good.example\r\nmx: *.mx.good.example\r\nmax_age: 604800\r\next: {odd}\r\n")
	m := lab.policyMap()
	m.tlsrpt = true
	rep := lookupReply(m, "postfix", "good.example")
	want := "secure match=mx1.good.example:.mx.good.example servername=hostname" +
		" policy_type=sts policy_domain=good.example policy_ttl=604800" +
		" mx_host_pattern=mx1.good.example mx_host_pattern=*.mx.good.example" +
		" { policy_string = version: STSv1 } { policy_string = mode: enforce }" +
		" { policy_string = mx: mx1.good.example } { policy_string = mx: *.mx.good.example }" +
		" { policy_string = max_age: 604800 }"
	if rep.status != statusOK || rep.text != want {
		t.Errorf("got %s %q\nwant OK %q", rep.status, rep.text, want)
	}
}

// An answer never exceeds the socketmap reply limit: with thousands of mx
// patterns, the policy_string attributes go first.
func TestSecureAnswerFitsReplyLimit(t *testing.T) {
	var text strings.Builder
	text.WriteString("version: STSv1\nmode: enforce\nmax_age: 86400\n")
	for i := range 1500 {
		fmt.Fprintf(&text, "mx: mx%d.example.com\n", i)
	}
	p, err := mtasts.ParsePolicy(text.String())
	if err != nil {
		t.Fatal(err)
	}
	d, _ := mtasts.ParseDomain("example.com")
	got := string(appendSecureAnswer(nil, d, p, true))
	if len(got)+len("OK ") > maxReply {
		t.Fatalf("answer of %d bytes over the limit", len(got))
	}
	if strings.Contains(got, "policy_string") || !strings.Contains(got, "mx_host_pattern=mx1499.example.com") {
		t.Errorf("expected the answer without policy_string and with every mx_host_pattern, got %.200s...", got)
	}
}

// A policy still being discovered when the wait ends is TIMEOUT, so that
// Postfix defers; a closed cache is TEMP.
func TestPolicyMapTimeoutAndClosed(t *testing.T) {
	lab := newAnswerLab(t)
	lab.publish("slow.example", "enforce", "mx.slow.example")
	release := lab.resolver.Hold("_mta-sts.slow.example")
	defer release()
	m := lab.policyMap()
	m.timeout = time.Millisecond
	rep := lookupReply(m, "postfix", "slow.example")
	if rep.status != statusTimeout || !strings.Contains(rep.text, "still running") {
		t.Errorf("got %s %q, want TIMEOUT", rep.status, rep.text)
	}
	lab.cache.Close()
	m.timeout = 10 * time.Second
	rep = lookupReply(m, "postfix", "other.example")
	if rep.status != statusTemp {
		t.Errorf("after Close: got %s %q, want TEMP", rep.status, rep.text)
	}
}

// lookupReply asks m as the server does, and returns its reply.
func lookupReply(m *policyMap, name, key string) smReply {
	status, data := m.lookup(context.Background(), []byte(name), key, nil)
	return smReply{status, string(data)}
}

// benchmarkSocketmap measures requests for key over one TCP loopback
// connection, each sent after the previous reply, as one Postfix process
// asks.
func benchmarkSocketmap(b *testing.B, handler smHandler, key, want string) {
	s := newSMServer(handler, quietLogger())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.serve(ln)
	defer s.drain(context.Background())
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	req := appendNetstring(nil, "postfix "+key)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(req); err != nil {
			b.Fatal(err)
		}
		if buf, err = readNetstring(r, buf[:0], maxReply); err != nil {
			b.Fatal(err)
		}
	}
	if string(buf) != want {
		b.Fatalf("got %q, want %q", buf, want)
	}
}

// The protocol's own cost: a server that answers every request with the
// same reply.
func BenchmarkSocketmapEcho(b *testing.B) {
	const answer = "secure match=mx1.good.example servername=hostname"
	benchmarkSocketmap(b, func(_ context.Context, _ []byte, _ string, dst []byte) (string, []byte) {
		return statusOK, append(dst, answer...)
	}, "good.example", "OK "+answer)
}

// A cached enforce policy, and a cached domain without one, answered from
// the cache.
func BenchmarkSocketmapCached(b *testing.B) {
	lab := newAnswerLab(b)
	lab.publish("good.example", "enforce", "mx1.good.example")
	m := lab.policyMap()
	lookupReply(m, "postfix", "good.example")
	lookupReply(m, "postfix", "nosts.example")
	b.Run("policy", func(b *testing.B) {
		benchmarkSocketmap(b, m.lookup, "good.example", "OK secure match=mx1.good.example servername=hostname")
	})
	b.Run("none", func(b *testing.B) {
		benchmarkSocketmap(b, m.lookup, "nosts.example", "NOTFOUND ")
	})
}

// policyDomain never panics, and a domain it returns is valid and has no
// characters of Postfix's other key forms.
func FuzzPolicyDomain(f *testing.F) {
	for _, s := range []string{"example.com", "[mx.example.com]:25", ".example.com", "bücher.example", "a..b", "xn--", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		d, ok := policyDomain(key)
		if !ok {
			return
		}
		if err := d.Validate(); err != nil || strings.ContainsAny(d.ASCII, "[]: ") {
			t.Fatalf("key %q gave domain %q: %v", key, d.ASCII, err)
		}
	})
}
