package mtasts_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/cache"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// TestFetchPolicyHTTPStatus: the HTTP status of a failed fetch is reachable
// from its error with mtasts.HTTPStatus, also through a cache's Result; an
// error without a response has none.
func TestFetchPolicyHTTPStatus(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	cert := ca.issue(t, now.Add(-time.Hour), now.Add(time.Hour), "mta-sts.example.com")
	tests := []struct {
		name        string
		status      int
		contentType string
		want        error // nil for success
	}{
		{"200", 200, "text/plain", nil},
		{"200 html", 200, "text/html", mtasts.ErrPolicySyntax},
		{"301", 301, "text/plain", mtasts.ErrPolicyFetch},
		{"404", 404, "text/plain", mtasts.ErrNoPolicy},
		{"500", 500, "text/plain", mtasts.ErrPolicyFetch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			startPolicyServer(t, ca.pool, cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.Header().Set("Location", "/elsewhere")
				w.WriteHeader(tt.status)
				w.Write([]byte(goodPolicy))
			}))
			_, _, err := mtasts.FetchPolicy(context.Background(), mustDomain(t, "example.com"))
			if !errors.Is(err, tt.want) || tt.want == nil && err != nil {
				t.Fatalf("FetchPolicy: %v, want %v", err, tt.want)
			}
			wantStatus := tt.status
			if err == nil {
				wantStatus = 0 // no error, no status in it: it was 200
			}
			if got := mtasts.HTTPStatus(err); got != wantStatus {
				t.Errorf("HTTPStatus(%v) = %d, want %d", err, got, wantStatus)
			}
			if err != nil && mtasts.TLSReportFailureReason(err) == "" {
				t.Errorf("error %v lost its failure reason", err)
			}

			// Through a cache, whose Result keeps the error.
			resolver := mtaststest.NewResolver()
			resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=1")
			c, err := cache.New(cache.Options{Resolver: resolver})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r := c.Get(context.Background(), mustDomain(t, "example.com"))
			if got := mtasts.HTTPStatus(r.Err); got != wantStatus {
				t.Errorf("HTTPStatus of the cache's Result.Err %v = %d, want %d", r.Err, got, wantStatus)
			}
		})
	}

	// Nothing listening: no response, no status.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	useServer(t, ca.pool, addr)
	_, _, err = mtasts.FetchPolicy(context.Background(), mustDomain(t, "example.com"))
	if !errors.Is(err, mtasts.ErrPolicyFetch) || mtasts.HTTPStatus(err) != 0 {
		t.Errorf("connection refused: %v, HTTPStatus %d; want ErrPolicyFetch and 0", err, mtasts.HTTPStatus(err))
	}
}
