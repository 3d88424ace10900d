package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// lookup answers the socketmap request "name key", appending the reply's
// data to dst.
func (m *policyMap) lookup(ctx context.Context, name []byte, key string, dst []byte) (string, []byte) {
	if !m.answers(name) {
		return statusPerm, fmt.Appendf(dst, "unknown socketmap name %s; this server answers %s", quoteInput(name), strings.Join(m.names, ", "))
	}
	domain, ok := policyDomain(key)
	if !ok {
		return statusNotFound, dst
	}
	// Most lookups are answered from memory without waiting: the
	// timeout's timer is made only for a wait.
	lctx := newLazyTimeout(ctx, m.timeout)
	defer lctx.stop()
	res := m.get(lctx, domain)
	status, dst := m.answer(lctx, domain, res, dst)
	if m.logger.Enabled(ctx, slog.LevelDebug) || status == statusTemp || status == statusTimeout {
		level := slog.LevelDebug
		if status != statusOK && status != statusNotFound {
			level = slog.LevelWarn
		}
		attrs := []any{"domain", domain.ASCII, "reply", status}
		if res.Policy != nil {
			attrs = append(attrs, "mode", string(res.Policy.Mode))
		}
		if res.Err != nil {
			attrs = append(attrs, "err", res.Err.Error())
		}
		m.logger.Log(ctx, level, "lookup", attrs...)
	}
	return status, dst
}

// answers reports whether name is one of the socketmap names the map
// answers.
func (m *policyMap) answers(name []byte) bool {
	for _, n := range m.names {
		if string(name) == n {
			return true
		}
	}
	return false
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

// answer turns the cache's result into the reply, appending its data to
// dst.
func (m *policyMap) answer(ctx context.Context, domain mtasts.Domain, res cache.Result, dst []byte) (string, []byte) {
	p := res.Policy
	if p == nil {
		switch {
		case errors.Is(res.Err, cache.ErrClosed):
			// Shutting down: Postfix defers the message and retries,
			// perhaps with another daemon of the fleet.
			return statusTemp, append(dst, "the MTA-STS daemon is shutting down"...)
		case res.Err != nil && ctx.Err() != nil:
			// Our own wait ended while the domain's discovery goes
			// on: deferring lets the next attempt have the outcome,
			// where delivering now might send in clear what the
			// domain's policy would have protected.
			return statusTimeout, fmt.Appendf(dst, "MTA-STS policy discovery of %s still running after %s", domain.ASCII, m.timeout)
		}
		// RFC 8461 5.1: no record, no usable policy, or a failure to
		// fetch one with none cached: deliver as without MTA-STS.
		return statusNotFound, dst
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
			return statusNotFound, dst
		}
	default:
		// RFC 8461 5: mode none, deliver as without MTA-STS.
		return statusNotFound, dst
	}
	return statusOK, appendSecureAnswer(dst, domain, p, m.tlsrpt)
}

// appendSecureAnswer appends the smtp_tls_policy_maps entry that has Postfix
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
func appendSecureAnswer(dst []byte, domain mtasts.Domain, p *mtasts.Policy, tlsrpt bool) []byte {
	start := len(dst)
	dst = append(dst, "secure match="...)
	for i, mx := range p.MX {
		if i > 0 {
			dst = append(dst, ':')
		}
		if mx.Wildcard {
			dst = append(dst, '.')
		}
		dst = append(dst, mx.Domain.ASCII...)
	}
	dst = append(dst, " servername=hostname"...)
	if !tlsrpt {
		return dst
	}
	base := len(dst)
	dst = append(dst, " policy_type=sts policy_domain="...)
	dst = append(dst, domain.ASCII...)
	dst = append(dst, " policy_ttl="...)
	dst = strconv.AppendInt(dst, int64(p.MaxAge()/time.Second), 10)
	for _, mx := range p.MX {
		dst = append(dst, " mx_host_pattern="...)
		if mx.Wildcard {
			dst = append(dst, "*."...)
		}
		dst = append(dst, mx.Domain.ASCII...)
	}
	attrs := len(dst)
	for _, line := range p.ReportLines() {
		if strings.ContainsAny(line, "{}") {
			continue
		}
		dst = append(dst, " { policy_string = "...)
		dst = append(dst, line...)
		dst = append(dst, " }"...)
	}
	// "OK " comes before the data.
	switch room := maxReply - len(statusOK) - 1; {
	case len(dst)-start <= room:
		return dst
	case attrs-start <= room:
		return dst[:attrs]
	}
	return dst[:base]
}
