package mtasts

import (
	"net/http"
	"strconv"
	"strings"
)

// WellKnownPath is the path at which a policy domain serves its policy, on
// the host mta-sts.<domain> (RFC 8461 3.3).
const WellKnownPath = "/.well-known/mta-sts.txt"

// PolicyHandler returns an http.Handler that serves p, the receiving side of
// RFC 8461 3.3: GET and HEAD of WellKnownPath answer 200 with p.String() as
// the body, media type "text/plain; charset=utf-8" (RFC 8461 3.2) and
// "Cache-Control: no-store", so that no HTTP cache can hand a sender a policy
// older than the one published. Other paths answer 404 Not Found, other
// methods on WellKnownPath 405 Method Not Allowed.
//
// The policy is rendered once, when PolicyHandler is called; later changes to
// p are not served. A nil p gives a handler that answers 404 everywhere, as a
// host without a policy does (RFC 8461 3.3 treats 404 as "no policy").
//
// The handler does not check the Host header: mount it on the server that
// answers for mta-sts.<domain>, which must present a certificate valid for
// that name. It is safe for concurrent use.
func PolicyHandler(p *Policy) http.Handler {
	h := &policyHandler{}
	if p != nil {
		h.body = []byte(p.String())
	}
	return h
}

type policyHandler struct {
	body []byte // nil: no policy
}

func (h *policyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != WellKnownPath || h.body == nil {
		http.NotFound(w, r)
		return
	}
	servePolicy(w, r, h.body)
}

// PolicyHandlerFunc returns an http.Handler that serves, on each request,
// the policy that policy returns for it: one web server for the policy hosts
// mta-sts.<domain> of many domains, choosing each request's policy by its
// Host (PolicyHostDomain gives the domain). It answers as PolicyHandler
// does: GET and HEAD of WellKnownPath 200 with the policy's String() as the
// body, "text/plain; charset=utf-8" and "Cache-Control: no-store"; other
// paths 404 Not Found, without calling policy; when policy returns a nil
// Policy, 404 Not Found for any method (the host has no policy, RFC 8461
// 3.3); otherwise other methods 405 Method Not Allowed.
//
// When policy returns an error, the answer is 500 Internal Server Error
// with a body that does not include the error: the handler does not log,
// so policy should log what went wrong before it returns. The policy is
// rendered on each request, so a policy function that returns a new Policy
// is served at once.
//
// The server must present a certificate valid for every policy host it
// answers for (RFC 8461 3.3). policy is called from many goroutines at
// once, and must be safe for that; the handler itself is safe for
// concurrent use.
func PolicyHandlerFunc(policy func(r *http.Request) (*Policy, error)) http.Handler {
	return policyHandlerFunc(policy)
}

type policyHandlerFunc func(r *http.Request) (*Policy, error)

func (f policyHandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != WellKnownPath {
		http.NotFound(w, r)
		return
	}
	p, err := f(r)
	switch {
	case err != nil:
		// The error may hold what a client must not see.
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return
	case p == nil:
		// RFC 8461 3.3: a 404 is read as "no policy".
		http.NotFound(w, r)
		return
	}
	servePolicy(w, r, []byte(p.String()))
}

// servePolicy answers a request for WellKnownPath with body, a policy
// rendered by Policy.String.
func servePolicy(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	// RFC 8461 3.2: "the media type ... is text/plain".
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	// RFC 8461 3.3 forbids senders to use HTTP caching; keep caches in
	// between from storing the policy too, so a new policy is seen at once.
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}

// policyHostPrefix is the label in front of a domain that names its policy
// host (RFC 8461 3.3).
const policyHostPrefix = "mta-sts."

// PolicyHostDomain returns the policy domain of host, the name of a policy
// host mta-sts.<domain> (RFC 8461 3.3) as an HTTP request gives it in
// Request.Host: in any case, with an optional trailing dot and an optional
// port. For "MTA-STS.Example.com:443" it returns the Domain example.com.
//
// It returns an error wrapping ErrInvalidDomain when host does not start
// with "mta-sts.", when its port is not a number of 1 to 5 digits, or when
// the rest is not a domain name that ParseDomain accepts, e.g. an IP
// address.
func PolicyHostDomain(host string) (Domain, error) {
	name := host
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		port := name[i+1:]
		if port == "" || len(port) > 5 || strings.TrimLeft(port, "0123456789") != "" {
			return Domain{}, &domainError{input: host, what: "invalid port, expected a policy host mta-sts.<domain> with an optional port"}
		}
		name = name[:i]
	}
	if len(name) <= len(policyHostPrefix) || !equalFoldASCII(name[:len(policyHostPrefix)], policyHostPrefix) {
		return Domain{}, &domainError{input: host, what: "not a policy host mta-sts.<domain>"}
	}
	return ParseDomain(name[len(policyHostPrefix):])
}
