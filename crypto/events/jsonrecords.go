package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
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
	win.base = from
	var o object
	var compact []byte
	inArray := false
	i := 0
	for {
		i = skipJSONSpace(win, i)
		if i >= len(win.buf) {
			if win.err != nil {
				return win.err
			}
			if inArray { // the server writes the closing ] when it closes the log
				return endOfRecords(io.ErrUnexpectedEOF, opts)
			}
			return nil
		}
		switch win.buf[i] {
		case '[':
			inArray = true
			i++
			continue
		case ',': // between the records of an array
			i++
			continue
		case ']':
			return nil
		case '{':
		default:
			return badLog("byte %d: %q where an audit record should start", win.base+int64(i), win.buf[i])
		}
		var end int
		var err error
		for {
			compact, end, err = compactObject(compact[:0], win.buf, i)
			if !errors.Is(err, errNeedMore) || !win.more() {
				break
			}
		}
		at := win.base + int64(i)
		if errors.Is(err, errNeedMore) {
			if win.err != nil {
				return win.err
			}
			return endOfRecords(io.ErrUnexpectedEOF, opts)
		}
		if err != nil || !json.Valid(compact) {
			return badLog("the audit record at byte %d is not a JSON object", at)
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

// compactObject appends the object at buf[i] to out without the white space outside its
// strings, and returns the index past it: errNeedMore if it goes on past buf.
func compactObject(out, buf []byte, i int) ([]byte, int, error) {
	depth := 0
	for j := i; j < len(buf); {
		c := buf[j]
		switch {
		case c == '"':
			k := j + 1
			for {
				q := bytes.IndexAny(buf[k:], "\"\\")
				if q < 0 {
					return out, 0, errNeedMore
				}
				if buf[k+q] == '\\' {
					k += q + 2
					if k > len(buf) {
						return out, 0, errNeedMore
					}
					continue
				}
				k += q
				break
			}
			out = append(out, buf[j:k+1]...)
			j = k + 1
			continue
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return append(out, c), j + 1, nil
			}
		case isSpace(c):
			j++
			continue
		}
		out = append(out, c)
		j++
	}
	return out, 0, errNeedMore
}
