package mtasts_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/mtasts-go/mtasts"
)

// txtTable is a resolver shaped like *net.Resolver, as a mail server may
// have its own: it answers TXT lookups from a table, and reports other names
// as not existing, with a *net.DNSError as net.Resolver does.
type txtTable map[string][]string

func (t txtTable) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if txts, ok := t[name]; ok {
		return txts, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func ExampleResolverFrom() {
	// In a server, this is its own resolver, or &net.Resolver{}.
	resolver := mtasts.ResolverFrom(txtTable{
		"_mta-sts.example.com.": {"v=STSv1; id=20240101T000000;"},
	})

	for _, name := range []string{"example.com", "example.net"} {
		domain, err := mtasts.ParseDomain(name)
		if err != nil {
			log.Fatal(err)
		}
		record, _, err := mtasts.LookupRecord(context.Background(), resolver, domain)
		switch {
		case errors.Is(err, mtasts.ErrNoRecord):
			fmt.Println(name, "has no MTA-STS record")
		case err != nil:
			fmt.Println(name, "lookup failed:", err)
		default:
			fmt.Println(name, "policy id", record.ID)
		}
	}
	// Output:
	// example.com policy id 20240101T000000
	// example.net has no MTA-STS record
}
