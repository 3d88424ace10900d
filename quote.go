package mtasts

import "github.com/mtasts-go/mtasts/internal/quoted"

// Error messages quote what a domain's owner published: record ids, policy
// keys and values, header values. That text is hostile until checked, so it
// is shown bounded and escaped: a 60 KB value must not become a 60 KB log
// line, and a control sequence must not reach a terminal. Every error message
// of the package is printable US-ASCII. The quoting is package
// internal/quoted's, shared with tlsrpt; the helpers below name it for this
// package.

// maxQuoted is how many bytes of an input quote shows.
const maxQuoted = quoted.Max

// maxCauseText is how many bytes of an underlying error's message a
// reasonError shows. Such messages may carry a server's words too, e.g. the
// names of a certificate that does not match.
const maxCauseText = quoted.MaxCause

// quote returns s for an error message: in double quotes, escaped, at most
// maxQuoted bytes of it shown (see quoted.String).
func quote(s string) string { return quoted.String(s) }

// causeText returns the message of an underlying error, cut at maxCauseText
// bytes and escaped as quote does, without the quotes.
func causeText(err error) string { return quoted.Text(err.Error(), maxCauseText) }

// quoteChar returns the character of s at byte offset i for an error message,
// as Go writes a rune literal and escaped as quote escapes (see quoted.Char).
func quoteChar(s string, i int) string { return quoted.Char(s, i) }

// appendEscaped appends at most limit bytes of s to b, escaped, between
// delim quotes unless delim is 0, and the cut marker when s is longer.
func appendEscaped(b []byte, s string, limit int, delim byte) []byte {
	return quoted.Append(b, s, limit, delim)
}
