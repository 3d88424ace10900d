package mtasts

import (
	"strconv"
	"unicode/utf8"
)

// Error messages quote what a domain's owner published: record ids, policy
// keys and values, header values. That text is hostile until checked, so it
// is shown bounded and escaped: a 60 KB value must not become a 60 KB log
// line, and a control sequence must not reach a terminal. Every error message
// of the package is printable US-ASCII.

// maxQuoted is how many bytes of an input quote shows.
const maxQuoted = 64

// maxCauseText is how many bytes of an underlying error's message a
// reasonError shows. Such messages may carry a server's words too, e.g. the
// names of a certificate that does not match.
const maxCauseText = 512

// quote returns s for an error message: in double quotes, with bytes that are
// not printable US-ASCII escaped as Go escapes them ("\t", "\x1b", "\u00e9",
// "\xc3" for a byte that is not UTF-8). Of a string longer than maxQuoted
// bytes, the first maxQuoted at most are shown, cut at a character boundary,
// followed by "...(N bytes)" giving the length of s.
//
// quote and quoteChar, both built on appendEscaped, are the one way errors
// of this package quote input.
func quote(s string) string {
	return string(appendEscaped(nil, s, maxQuoted, '"'))
}

// causeText returns the message of an underlying error, cut at maxCauseText
// bytes and escaped as quote does, without the quotes.
func causeText(err error) string {
	return string(appendEscaped(nil, err.Error(), maxCauseText, 0))
}

// quoteChar returns the character of s at byte offset i for an error message,
// as Go writes a rune literal and escaped as quote escapes: 'x', '\x1b',
// '\u00e9', or '\xc3' for a byte that does not start a UTF-8 sequence.
func quoteChar(s string, i int) string {
	_, size := utf8.DecodeRuneInString(s[i:])
	return string(appendEscaped(nil, s[i:i+size], maxQuoted, '\''))
}

// appendEscaped appends at most limit bytes of s to b, escaped, between
// delim quotes unless delim is 0, and the cut marker when s is longer.
func appendEscaped(b []byte, s string, limit int, delim byte) []byte {
	shown := s
	if len(s) > limit {
		cut := limit
		// Do not split a character: back up to the start of the UTF-8
		// sequence that crosses the limit, if s[cut] continues one.
		for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
			cut--
		}
		if !utf8.FullRuneInString(s[cut:]) || !utf8.RuneStart(s[cut]) {
			cut = limit // not UTF-8 there: cut at the byte
		}
		shown = s[:cut]
	}
	if delim != 0 {
		b = append(b, delim)
	}
	for i := 0; i < len(shown); {
		c := shown[i]
		if c >= 0x20 && c < 0x7f {
			if delim != 0 && (c == delim || c == '\\') {
				b = append(b, '\\')
			}
			b = append(b, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(shown[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\x`...)
			b = appendHex(b, uint32(c), 2)
		case r == '\t':
			b = append(b, `\t`...)
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r < 0x80:
			b = append(b, `\x`...)
			b = appendHex(b, uint32(r), 2)
		case r <= 0xffff:
			b = append(b, `\u`...)
			b = appendHex(b, uint32(r), 4)
		default:
			b = append(b, `\U`...)
			b = appendHex(b, uint32(r), 8)
		}
		i += size
	}
	if delim != 0 {
		b = append(b, delim)
	}
	if len(shown) < len(s) {
		b = append(b, "...("...)
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, " bytes)"...)
	}
	return b
}

// appendHex appends v as digits lower-case hexadecimal digits.
func appendHex(b []byte, v uint32, digits int) []byte {
	const hex = "0123456789abcdef"
	for shift := 4 * (digits - 1); shift >= 0; shift -= 4 {
		b = append(b, hex[v>>uint(shift)&0xf])
	}
	return b
}
