package events

import (
	"encoding/base64"
	"io"
	"strconv"
	"unicode/utf8"
)

// object builds one JSON object, written as one line. Appending to a buffer, rather than
// encoding maps by reflection, keeps the keys in the order given and costs no allocation per
// value. A batching object keeps whole lines in its buffer, before the one being built, and
// writes them once they fill a batch, or at flush.
type object struct {
	buf     []byte
	empty   bool   // no key yet at the current level
	scratch []byte // for a value that must be rewritten before it is written
	batch   bool
	lines   int // buf[:lines] are whole lines not yet written
}

const lineBatch = 16 << 10 // more costs a read of a view, which waits for its batch, and saves nothing measurable

func (o *object) begin() {
	o.buf = append(o.buf[:o.lines], '{')
	o.empty = true
}

// key starts a member.
func (o *object) key(k string) {
	if !o.empty {
		o.buf = append(o.buf, ',')
	}
	o.empty = false
	o.buf = appendString(o.buf, k)
	o.buf = append(o.buf, ':')
}

// rawKey starts a member whose name needs no escaping (an XML name as scanName reads it).
func (o *object) rawKey(k []byte) {
	if !o.empty {
		o.buf = append(o.buf, ',')
	}
	o.empty = false
	o.buf = append(o.buf, '"')
	o.buf = append(append(o.buf, k...), '"', ':')
}

func (o *object) str(k, v string) {
	o.key(k)
	o.buf = appendString(o.buf, v)
}

func (o *object) int(k string, v int64) {
	o.key(k)
	o.buf = strconv.AppendInt(o.buf, v, 10)
}

func (o *object) uint(k string, v uint64) {
	o.key(k)
	o.buf = strconv.AppendUint(o.buf, v, 10)
}

// open starts a nested object or array under k ('{' or '[').
func (o *object) open(k string, bracket byte) {
	if k != "" {
		o.key(k)
	} else if !o.empty {
		o.buf = append(o.buf, ',')
	}
	o.buf = append(o.buf, bracket)
	o.empty = true
}

func (o *object) close(bracket byte) {
	o.buf = append(o.buf, bracket)
	o.empty = false
}

// end closes the object and writes it as a line, or keeps it in the batch.
func (o *object) end(w io.Writer) error {
	o.buf = append(o.buf, '}', '\n')
	if o.batch && len(o.buf) < lineBatch {
		o.lines = len(o.buf)
		return nil
	}
	o.lines = len(o.buf)
	return o.flush(w)
}

// flush writes the lines kept in the batch.
func (o *object) flush(w io.Writer) error {
	if o.lines == 0 {
		return nil
	}
	_, err := w.Write(o.buf[:o.lines])
	o.buf, o.lines = o.buf[:0], 0
	return err
}

// appendString appends s as a JSON string; s is valid UTF-8 (invalid bytes become U+FFFD).
func appendString[T string | []byte](b []byte, s T) []byte {
	b = append(b, '"')
	return append(appendEscaped(b, s), '"')
}

// appendEscaped appends what goes between a JSON string's quotes for s.
func appendEscaped[T string | []byte](b []byte, s T) []byte {
	start := 0
	for i := plainPrefix(s, 0); i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune([]byte(s[i:]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

const hex = "0123456789abcdef"

// plainPrefix returns the length of s's longest prefix of printable ASCII other than '"',
// '\\' and avoid (0 for none): bytes a JSON string holds as they are. It looks at eight
// bytes at a time, as most values are entirely plain.
func plainPrefix[T string | []byte](s T, avoid byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(x uint64) uint64 { return (x - ones) & ^x & highs }
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if x&highs != 0 || (x-0x2020202020202020)&^x&highs != 0 ||
			hasZero(x^(ones*'"')) != 0 || hasZero(x^(ones*'\\')) != 0 || avoid != 0 && hasZero(x^(ones*uint64(avoid))) != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || avoid != 0 && c == avoid {
			break
		}
	}
	return i
}

// appendBinary appends bytes that are not text as {"base64":"..."}: lossless, and never
// mistaken for a string value.
func appendBinary(b []byte, v []byte) []byte {
	b = append(b, `{"base64":"`...)
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, `"}`...)
}
