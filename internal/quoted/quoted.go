// Package quoted shows text that came from outside, such as a domain owner's
// record or policy or a received report, in error messages: bounded and
// escaped. A 20 MB value must not become a 20 MB error or log line, and a
// control sequence must not reach a terminal. What it returns is printable
// US-ASCII.
//
// It is the one way the packages of this module quote such text; the root
// package and tlsrpt both use it.
package quoted

import (
	"strconv"
	"unicode/utf8"
)

// Max is how many bytes of an input String and Char show.
const Max = 64

// MaxCause is how many bytes of an underlying error's message Cause shows.
// Such messages may repeat the input whole (net/mail, net/textproto and
// net/url errors do) or carry a server's words.
const MaxCause = 512

// String returns s for an error message: in double quotes, with bytes that
// are not printable US-ASCII escaped as Go escapes them ("\t", "\x1b",
// "\u00e9", "\xc3" for a byte that is not UTF-8). Of a string longer than
// Max bytes, the first Max at most are shown, cut at a character boundary,
// followed by "...(N bytes)" giving the length of s.
func String(s string) string {
	return string(Append(nil, s, Max, '"'))
}

// Char returns the character of s at byte offset i for an error message, as
// Go writes a rune literal and escaped as String escapes: 'x', '\x1b',
// '\u00e9', or '\xc3' for a byte that does not start a UTF-8 sequence.
func Char(s string, i int) string {
	_, size := utf8.DecodeRuneInString(s[i:])
	return string(Append(nil, s[i:i+size], Max, '\''))
}

// Text returns s cut at limit bytes and escaped as String does, without the
// quotes, followed by "...(N bytes)" when it was cut.
func Text(s string, limit int) string {
	return string(Append(nil, s, limit, 0))
}

// Cause returns err for wrapping with %w, its message escaped as Text does
// and bounded: at most MaxCause bytes of it are shown, or MaxCause/4 when
// they need escaping, so that the text shown is at most MaxCause bytes and
// the cut marker either way (an escape takes up to 4 bytes a byte).
// errors.Is and errors.As see err through it. It returns nil for a nil err.
func Cause(err error) error {
	if err == nil {
		return nil
	}
	return causeError{err}
}

type causeError struct{ err error }

func (e causeError) Error() string {
	msg := e.err.Error()
	limit := MaxCause
	for i := 0; i < min(len(msg), MaxCause); i++ {
		if c := msg[i]; c < 0x20 || c >= 0x7f {
			limit = MaxCause / 4
			break
		}
	}
	return Text(msg, limit)
}
func (e causeError) Unwrap() error { return e.err }

// Append appends at most limit bytes of s to b, escaped, between delim
// quotes unless delim is 0, and the cut marker when s is longer.
func Append(b []byte, s string, limit int, delim byte) []byte {
	shown := Cut(s, limit)
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

// Cut returns s, or when s is longer than limit bytes its first limit bytes
// at most, cut at a character boundary where s is UTF-8 there.
func Cut(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit
	// Do not split a character: back up to the start of the UTF-8
	// sequence that crosses the limit, if s[cut] continues one.
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	if !utf8.FullRuneInString(s[cut:]) || !utf8.RuneStart(s[cut]) {
		cut = limit // not UTF-8 there: cut at the byte
	}
	return s[:cut]
}

// appendHex appends v as digits lower-case hexadecimal digits.
func appendHex(b []byte, v uint32, digits int) []byte {
	const hex = "0123456789abcdef"
	for shift := 4 * (digits - 1); shift >= 0; shift -= 4 {
		b = append(b, hex[v>>uint(shift)&0xf])
	}
	return b
}
