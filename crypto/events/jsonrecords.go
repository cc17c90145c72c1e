package events

import (
	"bytes"
	"encoding/json"
	"io"
	"unicode/utf8"
)

// writeJSONRecords writes each object of a JSON array or of JSON lines, its members as they
// are, made compact. A scanner finds each object's end and drops the white space outside its
// strings in one pass; encoding/json then checks the result, which is what makes it JSON.
func writeJSONRecords(w io.Writer, r io.Reader, opts Options) error {
	return writeJSONRecordsFrom(w, r, 0, opts)
}

// writeJSONRecordsFrom is writeJSONRecords for a stream that starts at plaintext offset from,
// at a record.
func writeJSONRecordsFrom(w io.Writer, r io.Reader, from int64, opts Options) error {
	win := newWindow(r)
	defer win.close()
	win.base = from
	var o object
	var compact []byte
	// Where the records are: before the first byte, in an array (after [ or a record, or after
	// a comma), after its ], or JSON lines. A decode resumed at a record (from > 0) follows a
	// pass that checked all this, and does not know whether it is in an array.
	const (
		atStart = iota
		afterOpen
		afterRecord
		afterComma
		afterClose
		inLines
	)
	state, resumed := atStart, from > 0
	i := 0
	for {
		i = skipJSONSpace(win, i)
		if i >= len(win.buf) {
			if win.err != nil {
				return win.err
			}
			if !resumed && (state == afterOpen || state == afterRecord || state == afterComma) {
				return endOfRecords(io.ErrUnexpectedEOF, opts) // the server writes ] when it closes the log
			}
			return nil
		}
		c := win.buf[i]
		switch {
		case c == '[' && state == atStart:
			state = afterOpen
			i++
			continue
		case c == ',' && (state == afterRecord || resumed):
			state = afterComma
			i++
			continue
		case c == ']' && (state == afterOpen || state == afterRecord || resumed):
			state = afterClose
			i++
			continue
		case c == '{' && (state == atStart || state == inLines || resumed && state != afterClose):
			state = inLines
		case c == '{' && (state == afterOpen || state == afterComma):
			state = afterRecord
		default:
			return badLog("byte %d: %q where an audit record should start", win.base+int64(i), c)
		}
		object := compactor{j: i, out: compact[:0]}
		end, done := object.run(win.buf)
		for !done && win.more() {
			end, done = object.run(win.buf)
		}
		compact = object.out
		at := win.base + int64(i)
		if !done {
			if win.err != nil {
				return win.err
			}
			return endOfRecords(io.ErrUnexpectedEOF, opts)
		}
		if !json.Valid(compact) || !utf8.Valid(compact) {
			return badLog("the audit record at byte %d is not a JSON object in UTF-8", at)
		}
		if opts.observe != nil {
			opts.observe(at, nil, true)
		}
		if !opts.bounded() || recordInRange(&opts, jsonTimestamp(compact)) {
			o.begin()
			o.str(keyFile, opts.File)
			o.int(keyOffset, at)
			if rest := compact[1 : len(compact)-1]; len(rest) > 0 {
				o.buf = append(append(o.buf, ','), rest...)
			}
			if err := o.end(w); err != nil {
				return err
			}
		}
		win.advance(end)
		i = 0
	}
}

// skipJSONSpace returns the index of the next byte at or after i that is not white space,
// reading more as needed; len(win.buf) at the end of the stream.
func skipJSONSpace(win *window, i int) int {
	for {
		for i < len(win.buf) && isSpace(win.buf[i]) {
			i++
		}
		if i < len(win.buf) || !win.more() {
			return i
		}
	}
}

// compactor copies an object without the white space outside its strings, in one pass over
// bytes that may arrive in several reads: it goes on where it stopped, so a record of any
// length costs its length once.
type compactor struct {
	j        int // the next byte of the window to look at
	depth    int
	inString bool
	escaped  bool // the byte before was a backslash in a string
	out      []byte
}

// run goes on through buf and returns the index past the object once it ends.
func (c *compactor) run(buf []byte) (end int, done bool) {
	for c.j < len(buf) {
		if c.inString {
			if c.escaped {
				c.out = append(c.out, buf[c.j])
				c.j++
				c.escaped = false
				continue
			}
			q := bytes.IndexAny(buf[c.j:], "\"\\")
			if q < 0 {
				c.out = append(c.out, buf[c.j:]...)
				c.j = len(buf)
				return 0, false
			}
			c.out = append(c.out, buf[c.j:c.j+q+1]...)
			c.escaped, c.inString = buf[c.j+q] == '\\', buf[c.j+q] == '\\'
			c.j += q + 1
			continue
		}
		ch := buf[c.j]
		c.j++
		switch {
		case isSpace(ch):
			continue
		case ch == '"':
			c.inString = true
		case ch == '{' || ch == '[':
			c.depth++
		case ch == '}' || ch == ']':
			if c.depth--; c.depth == 0 {
				c.out = append(c.out, ch)
				return c.j, true
			}
		}
		c.out = append(c.out, ch)
	}
	return 0, false
}
