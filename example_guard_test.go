package mtasts_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/mtasts-go/mtasts"
)

// A private deployment whose policy hosts live on its own network, behind
// its own CA, allows that network and nothing else: loopback, link-local
// and the other special-purpose addresses stay refused, before a packet is
// sent. Here a policy host on 127.0.0.1 is refused by that transport, and
// reached by one that allows loopback, as tests do.
func ExampleNewTransport() {
	host := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\n")
	}))
	defer host.Close()

	office := netip.MustParsePrefix("10.20.0.0/16")
	tr := mtasts.NewTransport(office.Contains)
	tr.TLSClientConfig.RootCAs = x509.NewCertPool() // add the private CA here
	client := &mtasts.Client{HTTPClient: &http.Client{Transport: tr}}
	// client.FetchPolicy(ctx, domain) fetches through tr.

	_, err := client.HTTPClient.Get(host.URL + mtasts.WellKnownPath)
	var refused *mtasts.AddressRefusedError
	if errors.As(err, &refused) {
		fmt.Println("office transport: refused a", refused.Class, "address")
	}

	tr = mtasts.NewTransport(mtasts.AllowLoopback)
	tr.TLSClientConfig.RootCAs = x509.NewCertPool()
	tr.TLSClientConfig.RootCAs.AddCert(host.Certificate())
	resp, err := (&http.Client{Transport: tr}).Get(host.URL + mtasts.WellKnownPath)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("loopback transport:", resp.Status)
	// Output:
	// office transport: refused a loopback address
	// loopback transport: 200 OK
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
