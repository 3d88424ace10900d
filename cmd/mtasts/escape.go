package main

import (
	"encoding/json"
	"io"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Text from the network (policies, records, certificates, server banners,
// error messages quoting them) and the policy file being linted can hold
// what a terminal acts on: ESC sequences that set the title or clear the
// screen, C1 controls, bidirectional overrides that reorder the line. Such
// text is escaped where it is written, by the printer and writeJSON, so that
// no step can forget it.

// mustEscape reports whether r must not reach a terminal raw: C0 controls
// other than tab, DEL, and every rune that is not printable, which takes in
// the C1 controls, format characters such as U+202E and U+200B, line and
// paragraph separators, spaces other than U+0020, private-use and unassigned
// code points.
func mustEscape(r rune) bool {
	if r < utf8.RuneSelf {
		return (r < 0x20 && r != '\t') || r == 0x7f
	}
	return !unicode.IsPrint(r)
}

// escapeText returns s with every rune that mustEscape names, and every
// byte that is not UTF-8, written as a Go-style escape: \n, \r, \xNN for
// bytes, \uNNNN or \UNNNNNNNN for runes. A backslash is left as it is, so
// ordinary text reads unchanged. s is returned as it is when nothing needs
// escaping.
func escapeText(s string) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if (r == utf8.RuneError && size == 1) || mustEscape(r) {
				break
			}
			i += size
			continue
		}
		if mustEscape(rune(c)) {
			break
		}
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			writeHex(&b, `\x`, uint32(s[i]), 2)
		case !mustEscape(r):
			b.WriteString(s[i : i+size])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < utf8.RuneSelf:
			writeHex(&b, `\x`, uint32(r), 2)
		case r <= 0xffff:
			writeHex(&b, `\u`, uint32(r), 4)
		default:
			writeHex(&b, `\U`, uint32(r), 8)
		}
		i += size
	}
	return b.String()
}

// writeHex writes prefix, then v in as many lower-case hex digits as digits
// says.
func writeHex(b *strings.Builder, prefix string, v uint32, digits int) {
	const hex = "0123456789abcdef"
	b.WriteString(prefix)
	for shift := (digits - 1) * 4; shift >= 0; shift -= 4 {
		b.WriteByte(hex[v>>uint(shift)&0xf])
	}
}

// escapeJSON rewrites JSON text from encoding/json so that it holds no rune
// that mustEscape names: encoding/json escapes C0 controls but writes DEL,
// C1 controls and format characters such as U+202E raw. Outside strings
// encoding/json writes only printable ASCII and the newlines and spaces of
// indentation, so every such rune is inside a string, where a \uNNNN escape
// (a surrogate pair above U+FFFF) stands for the same rune: a program
// decoding the output gets the exact text. Bytes that are not UTF-8 become
// \ufffd, as encoding/json itself writes them.
func escapeJSON(data []byte) []byte {
	var out []byte
	last := 0 // data[:last] is in out
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			if c == 0x7f {
				out = append(append(out, data[last:i]...), `\u007f`...)
				last = i + 1
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 || mustEscape(r) {
			out = append(out, data[last:i]...)
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				out = appendJSONEscape(appendJSONEscape(out, r1), r2)
			} else {
				out = appendJSONEscape(out, r)
			}
			last = i + size
		}
		i += size
	}
	if out == nil {
		return data
	}
	return append(out, data[last:]...)
}

func appendJSONEscape(b []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}

// writeJSON writes v to w as indented JSON, escaped by escapeJSON.
func writeJSON(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(escapeJSON(data), '\n'))
	return err
}
