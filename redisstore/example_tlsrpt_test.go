package redisstore_test

import (
	"context"
	"log"
	"os"

	"github.com/mjl-/adns"
	"github.com/redis/go-redis/v9"

	"github.com/mtasts-go/mtasts/redisstore"
	"github.com/mtasts-go/mtasts/tlsrpt"
)

// Every MTA of a fleet runs this, pointed at the same Redis, with its own
// host name as the Owner: the fleet sends each policy domain's daily report
// once (RFC 8460 4.1), and an MTA restarted after a crash resumes its claims
// and leases at once. It is not run as a test: it needs the fleet's Redis.
func ExampleNewOutbox() {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"redis.internal:6379"}})
	defer rdb.Close()
	host, err := os.Hostname()
	if err != nil {
		log.Fatal(err)
	}
	opts := redisstore.Options{Owner: host} // for the store, the outbox and the policy cache

	rec, err := tlsrpt.NewRecorder(tlsrpt.RecorderOptions{
		Store: redisstore.NewReportStore(rdb, opts),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rec.Close()
	sender, err := tlsrpt.NewSender(tlsrpt.SenderOptions{Resolver: &adns.Resolver{}})
	if err != nil {
		log.Fatal(err)
	}
	reporter, err := tlsrpt.NewReporter(tlsrpt.ReporterOptions{
		Recorder: rec,
		Sender:   sender,
		Outbox:   redisstore.NewOutbox(rdb, opts),
		Info:     tlsrpt.ReportInfo{OrganizationName: "Example", ContactInfo: "tlsrpt@example.net"},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	go rec.Run(ctx)
	go reporter.Run(ctx)
	// ... the MTA calls rec.Success and rec.Failure for its sessions.
}
