package mtaststest_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/mjl-/adns"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// A program that takes a resolver's address, rather than a Resolver value,
// is pointed at a DNSServer. Here an adns.Resolver sends its queries there.
func ExampleDNSServer() {
	server, err := mtaststest.StartDNSServer()
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	server.Set("_mta-sts.example.com", mtaststest.DNSRecords{TXT: [][]string{{"v=STSv1; ", "id=20240101"}}})
	server.Set("example.com", mtaststest.DNSRecords{MX: []*net.MX{{Host: "mail.example.com", Pref: 10}}})

	resolver := &adns.Resolver{
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server.Addr())
		},
	}
	record, _, err := mtasts.LookupRecord(context.Background(), resolver, mtasts.Domain{ASCII: "example.com"})
	fmt.Println(record.ID, err)
	mxs, _, err := resolver.LookupMX(context.Background(), "example.com.")
	fmt.Println(mxs[0].Host, mxs[0].Pref, err)
	fmt.Println(server.Queries("_mta-sts.example.com"))
	// Output:
	// 20240101 <nil>
	// mail.example.com. 10 <nil>
	// 1
}
