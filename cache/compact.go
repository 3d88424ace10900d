package cache

import (
	"encoding/binary"
	"strings"

	"github.com/mtasts-go/mtasts"
)

// The compact form of a policy is how memory keeps the policy of a domain
// not in use: one string, a single allocation, holding the policy and the
// record id that announced it. A decoded mtasts.Policy takes some 90 bytes,
// 40 more per mx pattern and a string each; a million cached domains, most
// of them idle at any moment, keep a million compact strings instead.
//
// The string holds, in order:
//
//   - a header byte: the mode in bits 0 and 1 (compactModes, or 3 for
//     another mode, whose text follows the id), and bit 2 when the version
//     is not "STSv1", whose text follows the id;
//   - the record id, always second, so that compactID finds it at once;
//   - max_age, as a signed varint;
//   - the number of mx patterns, as a varint, and each pattern: a varint of
//     the A-label length, shifted left by two, with bit 0 for a wildcard and
//     bit 1 when a Unicode form follows (Domain.Unicode is empty when the
//     name has no U-labels), the A-label form, and the Unicode form;
//   - the extensions, key and value each, up to the end.
//
// Every text is a varint length and its bytes. Decoded, the strings of the
// policy are substrings of the compact form: no copies.

// compactModes are the modes that the header byte names; ParsePolicy
// gives no other (RFC 8461 3.2).
var compactModes = [...]mtasts.Mode{mtasts.ModeEnforce, mtasts.ModeTesting, mtasts.ModeNone}

const (
	compactModeOther = 3      // mode bits: the mode's text follows
	compactVersion   = 1 << 2 // a version other than stsVersion follows
	stsVersion       = "STSv1"

	mxWildcard = 1 << 0
	mxUnicode  = 1 << 1
	mxShift    = 2
)

// encodePolicy returns the compact form of p, announced by record id, and
// id as a substring of it.
func encodePolicy(p *mtasts.Policy, id string) (enc, encID string) {
	header := byte(compactModeOther)
	for i, m := range compactModes {
		if p.Mode == m {
			header = byte(i)
		}
	}
	if p.Version != stsVersion {
		header |= compactVersion
	}

	// The size first, so that the string is built in one allocation.
	n := 1 + textSize(id) + varintSize(int64(p.MaxAgeSeconds)) + uvarintSize(uint64(len(p.MX)))
	if header&compactVersion != 0 {
		n += textSize(p.Version)
	}
	if header&3 == compactModeOther {
		n += textSize(string(p.Mode))
	}
	for _, mx := range p.MX {
		n += uvarintSize(uint64(len(mx.Domain.ASCII))<<mxShift) + len(mx.Domain.ASCII)
		if mx.Domain.Unicode != "" {
			n += textSize(mx.Domain.Unicode)
		}
	}
	for _, e := range p.Extensions {
		n += textSize(e.Key) + textSize(e.Value)
	}

	var b strings.Builder
	b.Grow(n)
	var buf [binary.MaxVarintLen64]byte
	writeUvarint := func(v uint64) { b.Write(binary.AppendUvarint(buf[:0], v)) }
	writeText := func(s string) {
		writeUvarint(uint64(len(s)))
		b.WriteString(s)
	}
	b.WriteByte(header)
	writeText(id)
	idEnd := b.Len()
	if header&compactVersion != 0 {
		writeText(p.Version)
	}
	if header&3 == compactModeOther {
		writeText(string(p.Mode))
	}
	b.Write(binary.AppendVarint(buf[:0], int64(p.MaxAgeSeconds)))
	writeUvarint(uint64(len(p.MX)))
	for _, mx := range p.MX {
		v := uint64(len(mx.Domain.ASCII)) << mxShift
		if mx.Wildcard {
			v |= mxWildcard
		}
		if mx.Domain.Unicode != "" {
			v |= mxUnicode
		}
		writeUvarint(v)
		b.WriteString(mx.Domain.ASCII)
		if mx.Domain.Unicode != "" {
			writeText(mx.Domain.Unicode)
		}
	}
	for _, e := range p.Extensions {
		writeText(e.Key)
		writeText(e.Value)
	}
	enc = b.String()
	return enc, enc[idEnd-len(id) : idEnd]
}

// decodePolicy returns the policy whose compact form is enc, as
// encodePolicy made it. Its strings are substrings of enc.
func decodePolicy(enc string) *mtasts.Policy {
	d := compactReader{s: enc}
	header := d.byte()
	d.text() // the record id
	version, mode := stsVersion, mtasts.Mode("")
	if header&compactVersion != 0 {
		version = d.text()
	}
	if m := header & 3; m == compactModeOther {
		mode = mtasts.Mode(d.text())
	} else {
		mode = compactModes[m]
	}
	maxAge := int(d.varint())
	n := d.uvarint()
	p := newPolicy(n)
	p.Version, p.Mode, p.MaxAgeSeconds = version, mode, maxAge
	if n > 0 {
		for i := range p.MX {
			v := d.uvarint()
			mx := &p.MX[i]
			mx.Wildcard = v&mxWildcard != 0
			mx.Domain.ASCII = d.take(int(v >> mxShift))
			if v&mxUnicode != 0 {
				mx.Domain.Unicode = d.text()
			}
		}
	}
	if d.i < len(d.s) {
		n := 0
		for r := d; r.i < len(r.s); n++ {
			r.text()
			r.text()
		}
		p.Extensions = make([]mtasts.Pair, n)
		for i := range p.Extensions {
			p.Extensions[i] = mtasts.Pair{Key: d.text(), Value: d.text()}
		}
	}
	return p
}

// newPolicy returns a zero policy with an MX of n zero patterns, nil for
// none. Most policies have one or two: their patterns share the policy's
// allocation, a block of 128 or 176 bytes where two would take 144 or 176.
func newPolicy(n uint64) *mtasts.Policy {
	switch n {
	case 0:
		return new(mtasts.Policy)
	case 1:
		b := new(struct {
			p  mtasts.Policy
			mx [1]mtasts.STSMX
		})
		b.p.MX = b.mx[:]
		return &b.p
	case 2:
		b := new(struct {
			p  mtasts.Policy
			mx [2]mtasts.STSMX
		})
		b.p.MX = b.mx[:]
		return &b.p
	}
	return &mtasts.Policy{MX: make([]mtasts.STSMX, n)}
}

// compactMode returns the mode of the policy whose compact form is enc,
// without decoding the rest.
func compactMode(enc string) mtasts.Mode {
	d := compactReader{s: enc}
	header := d.byte()
	if header&3 != compactModeOther {
		return compactModes[header&3]
	}
	d.text() // the record id
	if header&compactVersion != 0 {
		d.text()
	}
	return mtasts.Mode(d.text())
}

// compactID returns the record id of the compact form enc, a substring of
// it; "" for no policy.
func compactID(enc string) string {
	if enc == "" {
		return ""
	}
	if n := int(enc[1]); n < 0x80 { // a one-byte length: ids have at most 32
		return enc[2 : 2+n]
	}
	d := compactReader{s: enc, i: 1}
	return d.text()
}

// compactReader reads a compact form that encodePolicy wrote, which is
// trusted: it was never out of memory.
type compactReader struct {
	s string
	i int
}

func (d *compactReader) byte() byte {
	c := d.s[d.i]
	d.i++
	return c
}

func (d *compactReader) uvarint() uint64 {
	var v uint64
	for shift := 0; ; shift += 7 {
		c := d.byte()
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
}

func (d *compactReader) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1) // zigzag, as binary.AppendVarint
}

func (d *compactReader) take(n int) string {
	s := d.s[d.i : d.i+n]
	d.i += n
	return s
}

func (d *compactReader) text() string {
	return d.take(int(d.uvarint()))
}

// textSize is the size of s in the compact form: its length and its bytes.
func textSize(s string) int {
	return uvarintSize(uint64(len(s))) + len(s)
}

func uvarintSize(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

func varintSize(v int64) int {
	return uvarintSize(uint64(v<<1) ^ uint64(v>>63))
}
