package tlsrpt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/internal/quoted"
)

// maxErrorBody is how much of a collector's answer to a failed POST is read,
// to quote in the error.
const maxErrorBody = 512

// checkHTTPSURI checks an https rua URI before anything is sent to it: it
// must parse, have the scheme https (RFC 8460 3) and a host. Errors wrap
// ErrPermanent.
func checkHTTPSURI(uri string) error {
	u, err := url.Parse(uri)
	switch {
	case err != nil:
		return fmt.Errorf("%w: https URI %s: %w", ErrPermanent, quoted.String(uri), quoted.Cause(err))
	case u.Scheme != "https":
		return fmt.Errorf("%w: %s is not an https URI", ErrPermanent, quoted.String(uri))
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%w: https URI %s has no host", ErrPermanent, quoted.String(uri))
	}
	return nil
}

// newHTTPClient returns the client of HTTPS deliveries over transport: it
// follows no redirects and keeps no cookies. RFC 8460 5.4 asks for "a
// "successful" response"; a redirect is none, and following it would let
// whoever publishes the rua URI send the report, and the connection, on to
// another host.
func newHTTPClient(transport http.RoundTripper) *http.Client {
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// postReport makes one attempt to deliver p to the https rua URI uri (RFC
// 8460 5.4): a POST of the gzip data with the media type
// application/tlsrpt+gzip, whose answer must be 2xx. It is bounded by ctx,
// whose deadline the Sender sets per attempt; the response headers are
// bounded by the transport (64 KiB with mtasts.NewTransport), and at most maxErrorBody bytes of the body are read.
//
// Answers that a retry will not change, a redirect and 4xx other than 408,
// 425 and 429, and a refused address, give errors wrapping ErrPermanent.
func postReport(ctx context.Context, client *http.Client, uri string, p *payload) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, bytes.NewReader(p.Gzip))
	if err != nil {
		return fmt.Errorf("%w: https URI %s: %w", ErrPermanent, quoted.String(uri), quoted.Cause(err))
	}
	// RFC 8460 5.4: "If compressed, the report SHOULD use the media type
	// "application/tlsrpt+gzip"". The gzip data is the entity itself, not
	// a Content-Encoding of JSON.
	req.Header.Set("Content-Type", mediaTypeGzip)
	req.Header.Set("User-Agent", "mtasts-tlsrpt")
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, mtasts.ErrAddressRefused) {
			// The guard refused the collector's address: it will
			// refuse it again.
			return fmt.Errorf("%w: %w", ErrPermanent, quoted.Cause(err))
		}
		// The client's error repeats the URI whole.
		return quoted.Cause(err)
	}
	defer resp.Body.Close()
	// RFC 8460 5.4: "The receiving system MUST return a "successful"
	// response from its HTTPS server, typically a 200 or 201 HTTP code";
	// any 2xx is taken as one. The body of a success is not read.
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := fmt.Sprintf("POST %s: answered %s", quoted.String(uri), quoted.String(resp.Status))
	if s := strings.TrimSpace(string(body)); s != "" {
		msg += ": " + string(quoted.Append(nil, s, maxErrorBody, '"'))
	}
	switch code := resp.StatusCode; {
	case code >= 300 && code <= 399:
		return fmt.Errorf("%w: %s, a redirect (to %s), which is not followed", ErrPermanent, msg, quoted.String(resp.Header.Get("Location")))
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500:
		// RFC 8460 5.4: "Other codes could indicate a delivery failure
		// and may be retried as per local sender policy."
		return errors.New(msg)
	}
	return fmt.Errorf("%w: %s", ErrPermanent, msg)
}
