package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
)

// policyMap answers Postfix's smtp_tls_policy_maps lookups over socketmap
// from the policy cache. The answers and the reasons for them are in
// docs/postfix.md.
type policyMap struct {
	get func(ctx context.Context, domain mtasts.Domain) cache.Result
	// names are the socketmap names it answers, e.g. "postfix" for
	// socketmap:inet:127.0.0.1:8461:postfix.
	names []string
	// strictTesting answers a testing-mode policy as an enforce one.
	strictTesting bool
	// tlsrpt adds the attributes Postfix 3.10 and later read for TLS
	// reporting and for smtp_tls_enforce_sts_mx_patterns.
	tlsrpt bool
	// timeout bounds the wait for a policy not in the cache.
	timeout time.Duration
	logger  *slog.Logger
}

// lookup answers the socketmap request "name key".
func (m *policyMap) lookup(ctx context.Context, name, key string) smReply {
	if !slices.Contains(m.names, name) {
		return smReply{statusPerm, fmt.Sprintf("unknown socketmap name %s; this server answers %s", quoteInput([]byte(name)), strings.Join(m.names, ", "))}
	}
	domain, ok := policyDomain(key)
	if !ok {
		return smReply{statusNotFound, ""}
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	res := m.get(ctx, domain)
	rep := m.answer(ctx, domain, res)
	if m.logger.Enabled(ctx, slog.LevelDebug) || rep.status == statusTemp || rep.status == statusTimeout {
		level := slog.LevelDebug
		if rep.status != statusOK && rep.status != statusNotFound {
			level = slog.LevelWarn
		}
		attrs := []any{"domain", domain.ASCII, "reply", rep.status}
		if res.Policy != nil {
			attrs = append(attrs, "mode", string(res.Policy.Mode))
		}
		if res.Err != nil {
			attrs = append(attrs, "err", res.Err.Error())
		}
		m.logger.Log(ctx, level, "lookup", attrs...)
	}
	return rep
}

// policyDomain returns the domain whose policy applies to a lookup key of
// smtp_tls_policy_maps, and false for keys MTA-STS does not apply to.
//
// Postfix looks up the next-hop destination: a domain, whose MX hosts it
// delivers to, or "[host]" or "[host]:port", a host it connects to without
// an MX lookup; with parent_domain_matches_subdomains it also asks for
// ".parent.example". MTA-STS is a property of the recipient domain and its
// MX hosts (RFC 8461 4), not of a host named by the sender, and a policy
// covers only its own domain (RFC 8461 3.3: the policy host is that of the
// domain itself); so only a plain domain gets an answer.
func policyDomain(key string) (mtasts.Domain, bool) {
	if key == "" || strings.ContainsAny(key, "[]:") || strings.HasPrefix(key, ".") {
		return mtasts.Domain{}, false
	}
	d, err := mtasts.ParseDomain(key)
	if err != nil {
		return mtasts.Domain{}, false
	}
	return d, true
}

// answer turns the cache's result into the reply.
func (m *policyMap) answer(ctx context.Context, domain mtasts.Domain, res cache.Result) smReply {
	p := res.Policy
	if p == nil {
		switch {
		case errors.Is(res.Err, cache.ErrClosed):
			// Shutting down: Postfix defers the message and retries,
			// perhaps with another daemon of the fleet.
			return smReply{statusTemp, "the MTA-STS daemon is shutting down"}
		case ctx.Err() != nil:
			// Our own wait ended while the domain's discovery goes
			// on: deferring lets the next attempt have the outcome,
			// where delivering now might send in clear what the
			// domain's policy would have protected.
			return smReply{statusTimeout, fmt.Sprintf("MTA-STS policy discovery of %s still running after %s", domain.ASCII, m.timeout)}
		}
		// RFC 8461 5.1: no record, no usable policy, or a failure to
		// fetch one with none cached: deliver as without MTA-STS.
		return smReply{statusNotFound, ""}
	}
	switch p.Mode {
	case mtasts.ModeEnforce:
	case mtasts.ModeTesting:
		// RFC 8461 5.2: in testing mode a sender delivers even when the
		// MX host fails validation, reporting the failure; Postfix
		// cannot be told "validate but deliver anyway", so the domain
		// is left to Postfix's default TLS level, unless the operator
		// chose to enforce testing policies.
		if !m.strictTesting {
			return smReply{statusNotFound, ""}
		}
	default:
		// RFC 8461 5: mode none, deliver as without MTA-STS.
		return smReply{statusNotFound, ""}
	}
	return smReply{statusOK, secureAnswer(domain, p, m.tlsrpt)}
}

// secureAnswer returns the smtp_tls_policy_maps entry that has Postfix
// deliver to domain only over TLS with a certificate valid for an MX host
// matching p (RFC 8461 4.1, 4.2):
//
//	secure match=mx1.example.com:.example.net servername=hostname
//
// "secure" verifies the certificate against the trusted CAs and matches its
// names against the match list; "servername=hostname" sends the MX host's
// name as SNI. A wildcard pattern "*.example.net" becomes ".example.net",
// which Postfix matches for any depth of subdomain, where RFC 8461 4.1
// allows exactly one label; with tlsrpt, the exact patterns follow as
// mx_host_pattern attributes, which Postfix 3.10.5 and later match as RFC
// 8461 does when smtp_tls_enforce_sts_mx_patterns is on.
//
// With tlsrpt, the attributes Postfix 3.10 and later read for TLS reports
// (RFC 8460 4.4) follow: policy_type=sts, policy_domain, policy_ttl (the
// policy's max_age in seconds), mx_host_pattern for each pattern, and each
// line of the policy as { policy_string = line }. A line with a brace, which
// only an extension value may hold, is left out: Postfix could not read the
// braced attribute. The reply is kept within maxReply: the policy_string
// attributes are left out when they do not fit, then the others.
func secureAnswer(domain mtasts.Domain, p *mtasts.Policy, tlsrpt bool) string {
	var b strings.Builder
	b.WriteString("secure match=")
	for i, mx := range p.MX {
		if i > 0 {
			b.WriteByte(':')
		}
		if mx.Wildcard {
			b.WriteByte('.')
		}
		b.WriteString(mx.Domain.ASCII)
	}
	b.WriteString(" servername=hostname")
	base := b.String()
	if !tlsrpt {
		return base
	}
	b.WriteString(" policy_type=sts policy_domain=")
	b.WriteString(domain.ASCII)
	b.WriteString(" policy_ttl=")
	b.WriteString(strconv.FormatInt(int64(p.MaxAge()/time.Second), 10))
	for _, h := range p.ReportMXHosts() {
		b.WriteString(" mx_host_pattern=")
		b.WriteString(h)
	}
	attrs := b.String()
	for _, line := range p.ReportLines() {
		if strings.ContainsAny(line, "{}") {
			continue
		}
		b.WriteString(" { policy_string = ")
		b.WriteString(line)
		b.WriteString(" }")
	}
	// "OK " comes before the data.
	switch room := maxReply - len(statusOK) - 1; {
	case b.Len() <= room:
		return b.String()
	case len(attrs) <= room:
		return attrs
	}
	return base
}
