package mtasts_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/mtasts-go/mtasts"
)

// A private deployment whose policy hosts live on its own network, behind
// its own CA, allows that network and nothing else: loopback, link-local
// and the other special-purpose addresses stay refused.
func ExampleNewTransport() {
	office := netip.MustParsePrefix("10.20.0.0/16")
	tr := mtasts.NewTransport(func(addr netip.Addr) bool {
		return office.Contains(addr)
	})
	tr.TLSClientConfig.RootCAs = x509.NewCertPool() // add the private CA here
	mtasts.HTTPClient = &http.Client{Transport: tr}
}

func ExampleAddressClass() {
	for _, s := range []string{"192.0.2.1", "::ffff:127.0.0.1", "169.254.169.254", "fd00::1", "2001:4860:4860::8888"} {
		fmt.Printf("%s %q\n", s, mtasts.AddressClass(netip.MustParseAddr(s)))
	}
	// Output:
	// 192.0.2.1 "documentation"
	// ::ffff:127.0.0.1 "loopback"
	// 169.254.169.254 "link-local"
	// fd00::1 "private"
	// 2001:4860:4860::8888 ""
}

func ExampleDomain_Validate() {
	// A Domain built by hand is checked before it goes into a DNS name or
	// a URL; ParseDomain makes only valid ones.
	d := mtasts.Domain{ASCII: "example.com@127.0.0.1"}
	_, _, err := mtasts.FetchPolicy(context.Background(), d)
	fmt.Println(err)
	fmt.Println(errors.Is(err, mtasts.ErrInvalidDomain))
	// Output:
	// mtasts: invalid domain name "example.com@127.0.0.1": invalid character '@' at byte 11, expected letters, digits, "-" and "."
	// true
}
