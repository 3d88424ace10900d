package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/mtasts-go/mtasts/tlsrpt"
)

// collectPath is where "mtasts serve --collect DIR" takes reports posted
// over HTTPS (RFC 8460 5.4): rua=https://mta-sts.<domain>/tlsrpt.
const collectPath = "/tlsrpt"

// withCollector serves reports posted to collectPath with a tlsrpt.Collector
// that writes each into dir, and everything else with next.
func withCollector(next http.Handler, dir string, logger *log.Logger) http.Handler {
	c := &tlsrpt.Collector{Store: func(_ context.Context, r *tlsrpt.Report) error {
		name, err := writeReportFile(dir, r)
		if err != nil {
			logger.Printf("collecting a report: %s", escapeText(oneLine(err.Error())))
			return err
		}
		logger.Printf("collected report %s from %s into %s", escapeText(shown(r.ReportID)), escapeText(shown(r.OrganizationName)), escapeText(name))
		return nil
	}}
	mux := http.NewServeMux()
	mux.Handle(collectPath, c)
	mux.Handle("/", next)
	return mux
}

// writeReportFile writes r as JSON into dir, in a file named by
// reportFileName, atomically: a temporary file in dir, synced, then renamed,
// and the directory synced. A report sent again, with the same report-id,
// replaces the first. It returns the file's name.
func writeReportFile(dir string, r *tlsrpt.Report) (string, error) {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	name := reportFileName(r)
	f, err := os.CreateTemp(dir, ".tmp-*.json")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	if d, err := os.Open(dir); err == nil {
		// The rename is durable once the directory is synced.
		d.Sync()
		d.Close()
	}
	return name, nil
}

// maxNamePart is how many bytes of the sender's text a file name takes.
const maxNamePart = 64

// reportFileName names a report's file: its first policy's domain, its date
// range and its report-id, e.g.
// "company-y.example_20160401T000000Z-20160401T235959Z_5065427c-23d3.json".
// The domain and report-id are the sender's text: each is cut to
// maxNamePart bytes of letters, digits, ".", "-", "_" and "@", others
// replaced by "_", and when that changed it, followed by "~" and a hash of
// the original, so that distinct reports keep distinct names. No name
// starts with ".", as the temporary files do.
func reportFileName(r *tlsrpt.Report) string {
	domain := "none"
	if len(r.Policies) > 0 {
		domain = r.Policies[0].Policy.PolicyDomain
	}
	const layout = "20060102T150405Z"
	return sanitizeName(domain) + "_" + r.DateRange.Start.UTC().Format(layout) + "-" + r.DateRange.End.UTC().Format(layout) +
		"_" + sanitizeName(r.ReportID) + ".json"
}

func sanitizeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxNamePart; i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '@' || c == '.' && i > 0 {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out != s {
		sum := sha256.Sum256([]byte(s))
		out += "~" + hex.EncodeToString(sum[:6])
	}
	return out
}

// checkCollectDir checks that dir is a directory serve can write into.
func checkCollectDir(dir string) error {
	f, err := os.CreateTemp(dir, ".tmp-check-*")
	if err != nil {
		return fmt.Errorf("--collect %s: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}
