// Package policytext turns the text of a policy, as the policy host served
// it, into the lines of a TLS report's "policy-string" (RFC 8460 4.5). The
// root package (Policy.ReportLines) and tlsrpt share it.
package policytext

import "strings"

// ReportLines returns text, a policy as served, as the "policy-string" of a
// TLS report wants it: "the policy that is declared by the receiving site,
// including any errors that may be present" (RFC 8460 4.5). Each line is
// kept as published, without its line ending (LF or CRLF, RFC 8461 3.2);
// blank lines and lines of only spaces and tabs are left out. Nothing is
// parsed: an invalid policy gives its lines too. The result is empty, not
// nil, when text has no lines.
func ReportLines(text string) []string {
	lines := make([]string, 0, strings.Count(text, "\n")+1)
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if strings.TrimLeft(line, " \t") != "" {
			lines = append(lines, line)
		}
	}
	return lines
}
