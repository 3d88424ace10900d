package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/mtasts-go/mtasts"
)

func recordFlags() (fs *flag.FlagSet, id *string) {
	fs = flag.NewFlagSet("record", flag.ContinueOnError)
	return fs, fs.String("id", "", "")
}

func runRecord(args []string, sio *stdio) (int, error) {
	fs, id := recordFlags()
	args, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage, err
	}
	if len(args) > 1 {
		return exitUsage, usagef("record: at most one domain expected, got %d arguments", len(args))
	}
	if *id == "" {
		*id = newID(time.Now())
	}
	rec := mtasts.Record{Version: "STSv1", ID: *id}
	// Check the id with the parser senders use: RFC 8461 3.1,
	// sts-id = "id=" 1*32(ALPHA / DIGIT).
	if _, _, err := mtasts.ParseRecord(rec.String()); err != nil {
		return exitUsage, usagef("record: --id %q: expected 1 to 32 letters and digits", *id)
	}
	if len(args) == 0 {
		fmt.Fprintln(sio.out, rec.String())
		return exitOK, nil
	}
	domain, err := mtasts.ParseDomain(args[0])
	if err != nil {
		return exitUsage, usagef("record: %s", errText(err))
	}
	fmt.Fprintf(sio.out, "_mta-sts.%s. 3600 IN TXT %q\n", domain.ASCII, rec.String())
	return exitOK, nil
}

// newID returns a policy id for a policy published at t: its UTC time, as in
// the example of RFC 8461 3.1 ("20160831085700Z"). A later policy gets a
// different id, as RFC 8461 3.1 requires when the policy changes, as long as
// they are a second apart.
func newID(t time.Time) string {
	return t.UTC().Format("20060102150405") + "Z"
}
