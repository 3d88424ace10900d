// Package testkit starts the test kit's servers for this repository's tests,
// each closed when its test ends. Examples, which have no testing.TB, call
// mtaststest's Start functions themselves.
package testkit

import (
	"testing"

	"github.com/mtasts-go/mtasts/mtaststest"
)

// PolicyServer starts a mtaststest.PolicyServer, closed when the test ends.
func PolicyServer(t testing.TB) *mtaststest.PolicyServer {
	t.Helper()
	s, err := mtaststest.StartPolicyServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// DNSServer starts a mtaststest.DNSServer, closed when the test ends.
func DNSServer(t testing.TB) *mtaststest.DNSServer {
	t.Helper()
	s, err := mtaststest.StartDNSServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}
