package events

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strconv"
)

// A server writes its records in a few shapes: the same fields in the same order with the
// same white space between them, only the values differ. Once scanRecord has read a record,
// its shape (the bytes around its values, in the XML and in the object) is kept, and a later
// record of that shape is read by comparing those bytes and copying its values: no name to
// scan, no key to build. A record that differs from every kept shape by a byte goes through
// scanRecord, which decides.

// valueSpan is where scanRecord found a field's value: buf[from:to] in the XML, and
// o.buf[outFrom:outTo] between the quotes of its JSON string.
type valueSpan struct {
	from, to       int
	outFrom, outTo int
}

// shape: in[0] runs from "<AUDIT_RECORD" to the first value, in[k] from value k-1 to value k,
// and the last from the last value to the record's end; out likewise in the object, from past
// the "@offset" number to before its closing brace.
type shape struct {
	in, out [][]byte
	when    int // the value that is the record's TIMESTAMP, or -1
}

const (
	maxShapes     = 4       // tried in turn, the one used last first
	maxShapeBytes = 4 << 10 // a record with more than this around its values is not learned

	// Shapes pay only while records fit them: a record that fits none costs the failed fits
	// and a new shape (a third fitting reads at a third of the speed without shapes; seven in
	// eight, at one and a half times it). When fewer than three quarters of shapeSample
	// records fit, the next restRecords are scanned without trying or learning any; then
	// shapes are tried again. A burst of other records among the server's usual one does not
	// stop them.
	shapeSample = 128
	restRecords = 4096
)

// xmlScan reads records into o, keeping the shapes it has seen.
type xmlScan struct {
	o      object
	opts   *Options
	head   []byte // `{"@file":"...","@offset":`
	shapes []*shape
	tried  int // records of the current sample
	fitted int // of them, those a shape read
	rest   int // records still to scan without shapes

	// Of the last record scanRecord read: its values, where its "@offset" number ends in
	// o.buf, and which value is its TIMESTAMP (-1 for none).
	values      []valueSpan
	afterOffset int
	whenValue   int
}

func newXMLScan(opts *Options) *xmlScan {
	var o object
	o.begin()
	o.str(keyFile, opts.File)
	o.key(keyOffset)
	return &xmlScan{opts: opts, head: o.buf, o: object{batch: opts.observe == nil}}
}

// record reads the record at buf[i] into s.o as scanRecord does, by a kept shape if one fits.
func (s *xmlScan) record(buf []byte, i int, at int64) (int, error) {
	if s.opts.noShapes {
		return s.scanRecord(buf, i, at)
	}
	if s.rest > 0 {
		end, err := s.scanRecord(buf, i, at)
		if err == nil {
			s.rest--
		}
		return end, err
	}
	for k, sh := range s.shapes {
		if end, ok := s.fit(sh, buf, i, at); ok {
			copy(s.shapes[1:k+1], s.shapes[:k])
			s.shapes[0] = sh
			s.count(true)
			return end, nil
		}
	}
	end, err := s.scanRecord(buf, i, at)
	if err == nil { // not a record cut short by the window, which comes again
		s.learn(buf, i, max(end, -end))
		s.count(false)
	}
	return end, err
}

// count notes whether a shape read a record, and rests the shapes after a sample of records
// that few of them fit.
func (s *xmlScan) count(fitted bool) {
	s.tried++
	if fitted {
		s.fitted++
	}
	if s.tried == shapeSample {
		if s.fitted < shapeSample*3/4 {
			s.rest = restRecords
		}
		s.tried, s.fitted = 0, 0
	}
}

// fit reads the record at buf[i] if it has the shape sh.
func (s *xmlScan) fit(sh *shape, buf []byte, i int, at int64) (int, bool) {
	if !hasAt(buf, i, sh.in[0]) {
		return 0, false
	}
	o := &s.o
	o.buf = append(o.buf[:o.lines], s.head...)
	o.buf = strconv.AppendInt(o.buf, at, 10)
	o.buf = append(o.buf, sh.out[0]...)
	o.empty = false
	j := i + len(sh.in[0])
	when := ""
	for k := 1; k < len(sh.in); k++ {
		sep := sh.in[k]
		e := j + textPrefix(buf[j:])
		value := buf[j:e]
		if hasAt(buf, e, sep) { // a value that is its own JSON string
			o.buf = append(o.buf, value...)
		} else {
			var err error
			if e = valueEnd(buf, j, sep); e < 0 || !hasAt(buf, e, sep) {
				return 0, false
			}
			if value, err = o.unescape(buf[j:e]); err != nil {
				return 0, false
			}
			o.buf = appendEscaped(o.buf, value)
		}
		if k-1 == sh.when && s.opts.bounded() {
			when = string(value)
		}
		o.buf = append(o.buf, sh.out[k]...)
		j = e + len(sep)
	}
	if !recordInRange(s.opts, when) {
		return -j, true
	}
	return j, true
}

// valueEnd finds where the value at buf[j] ends as scanRecord would: at the next '<' for an
// element's text, at the closing quote for an attribute's value, which holds no '<'; -1 if
// it does not end in buf, or does not end there.
func valueEnd(buf []byte, j int, sep []byte) int {
	e := bytes.IndexByte(buf[j:], sep[0])
	if e < 0 || sep[0] != '<' && bytes.IndexByte(buf[j:j+e], '<') >= 0 {
		return -1
	}
	return j + e
}

// learn keeps the shape of the record scanRecord just read from buf[i:end].
func (s *xmlScan) learn(buf []byte, i, end int) {
	around := end - i
	for _, v := range s.values {
		around -= v.to - v.from
	}
	if around > maxShapeBytes {
		return
	}
	sh := &shape{when: s.whenValue}
	in, out := i, s.afterOffset
	for _, v := range s.values {
		sh.in = append(sh.in, clone(buf[in:v.from]))
		sh.out = append(sh.out, clone(s.o.buf[out:v.outFrom]))
		in, out = v.to, v.outTo
	}
	sh.in = append(sh.in, clone(buf[in:end]))
	sh.out = append(sh.out, clone(s.o.buf[out:]))
	if len(s.shapes) < maxShapes {
		s.shapes = append(s.shapes, nil)
	}
	copy(s.shapes[1:], s.shapes)
	s.shapes[0] = sh
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

// hasAt reports whether buf holds sep at i, comparing eight bytes at a time: separators are
// short, and a call to compare each would cost more than the comparing.
func hasAt(buf []byte, i int, sep []byte) bool {
	if len(buf)-i < len(sep) || len(sep) < 8 {
		return len(buf)-i >= len(sep) && string(buf[i:i+len(sep)]) == string(sep)
	}
	b := buf[i:]
	last := len(sep) - 8 // the last eight bytes, which may overlap those compared before
	for k := 0; k < last; k += 8 {
		if binary.LittleEndian.Uint64(b[k:]) != binary.LittleEndian.Uint64(sep[k:]) {
			return false
		}
	}
	return binary.LittleEndian.Uint64(b[last:]) == binary.LittleEndian.Uint64(sep[last:])
}

// textPrefix returns the length of s's longest prefix of bytes that are the same in XML text
// and in a JSON string: printable ASCII other than '<', '&', '"' and '\\'. Eight bytes at a
// time: each test marks the lowest byte it finds exactly, which is the one that counts.
func textPrefix(s []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		found := (x - 0x20*ones | x | // below 0x20, or above 0x7f
			zeroBytes(x|0x04*ones^0x26*ones) | // '"' (0x22) or '&' (0x26)
			zeroBytes(x^'<'*ones) | zeroBytes(x^'\\'*ones)) & highs
		if found != 0 {
			return i + bits.TrailingZeros64(found)/8
		}
	}
	for i < len(s) && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '<' && s[i] != '&' && s[i] != '"' && s[i] != '\\' {
		i++
	}
	return i
}

// zeroBytes sets the high bit of x's lowest zero byte, and maybe of bytes above it; the high
// bits of the bytes below it are left clear.
func zeroBytes(x uint64) uint64 {
	const ones = 0x0101010101010101
	return (x - ones) &^ x
}
