package mtasts_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/mtasts-go/mtasts"
	"github.com/mtasts-go/mtasts/mtaststest"
)

// A mail server logs each lookup and fetch at debug level, with the
// attributes of the delivery they are for: it derives a Client per delivery
// with WithLogger.
func ExampleClient() {
	// The server's logger; time and duration are left out here so that
	// the output is the same on each run.
	handler := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "duration" {
				return slog.Attr{}
			}
			return a
		},
	})
	client := &mtasts.Client{Logger: slog.New(handler)}

	// The test kit's DNS. In production: resolver := &adns.Resolver{}.
	resolver := mtaststest.NewResolver()
	resolver.SetTXT("_mta-sts.example.com", "v=STSv1; id=20160831085700Z;")
	for i, name := range []string{"example.com", "example.org"} {
		domain, err := mtasts.ParseDomain(name)
		if err != nil {
			fmt.Println(err)
			return
		}
		// One delivery, with its own attributes.
		delivery := client.WithLogger(client.Logger.With("msgid", fmt.Sprintf("msg%d", i+1)))
		delivery.LookupRecord(context.Background(), resolver, domain)
	}
	// Output:
	// level=DEBUG msg="mtasts: txt record lookup" msgid=msg1 domain=example.com dnssec=false record_id=20160831085700Z
	// level=DEBUG msg="mtasts: txt record lookup" msgid=msg2 domain=example.org dnssec=false result=no-record reason=mta-sts-record-not-found err="mtasts: no mta-sts dns txt record: no txt record at _mta-sts.example.org.: lookup _mta-sts.example.org.: no such host"
}
