package mtasts

import (
	"net/http"
	"strconv"
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
