package events

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The audit log's XML is written by the server in a fixed shape: a record's fields are its
// attributes (OLD) or child elements holding text (NEW). A scanner made for that shape reads
// it at the speed of bytes.Index; anything else inside a record (a comment, CDATA, a nested
// element, an unknown entity) sends that record through encoding/xml, which decides.

var (
	recordOpen  = []byte("<AUDIT_RECORD")
	recordClose = []byte("</AUDIT_RECORD>")
)

// errNeedMore: the record does not end within the bytes read so far.
var errNeedMore = errors.New("need more")

// errOddShape: the record is not in the server's shape; encoding/xml reads it.
var errOddShape = errors.New("odd shape")

// writeXMLRecords writes each AUDIT_RECORD element: its attributes, then its child elements.
func writeXMLRecords(w io.Writer, r io.Reader, opts Options) error {
	return writeXMLRecordsFrom(w, r, 0, opts)
}

// writeXMLRecordsFrom is writeXMLRecords for a stream that starts at plaintext offset from.
// The records read before an error are written.
func writeXMLRecordsFrom(w io.Writer, r io.Reader, from int64, opts Options) error {
	s := newXMLScan(&opts)
	err := s.records(w, r, from)
	if flushErr := s.o.flush(w); err == nil {
		err = flushErr
	}
	return err
}

// records writes the records of r, which starts at plaintext offset from.
func (s *xmlScan) records(w io.Writer, r io.Reader, from int64) error {
	opts := s.opts
	win := newWindow(r)
	defer win.close()
	win.base = from
	closed := false
	for {
		i, err := nextRecord(win, &closed)
		if err != nil {
			return err
		}
		if i < 0 {
			if win.err != nil {
				return win.err
			}
			if !closed && !opts.Unfinished && from == 0 { // a resumed decode follows a checked pass
				return badLog("the log ends without </AUDIT>: cut short or damaged")
			}
			return nil
		}
		for {
			end, err := s.record(win.buf, i, win.base+int64(i))
			if errors.Is(err, errOddShape) {
				end, err = decodeRecord(win, i, &s.o, opts)
			}
			if errors.Is(err, errNeedMore) {
				if win.more() {
					continue
				}
				if win.err != nil {
					return win.err
				}
				return endOfRecords(io.ErrUnexpectedEOF, *opts)
			}
			if err != nil {
				return badLog("the audit record at byte %d: %v", win.base+int64(i), err)
			}
			if opts.observe != nil {
				opts.observe(win.base+int64(i), nil, true)
			}
			if end > 0 { // written, unless outside the time bounds
				if err := s.o.end(w); err != nil {
					return err
				}
			} else {
				end = -end
			}
			win.advance(end)
			break
		}
	}
}

// scanRecord reads the record whose "<AUDIT_RECORD" is at buf[i] into s.o and returns the
// index past its end, negated when the record is outside the time bounds. It notes in
// s.values where each field's value lies, for learning the record's shape.
func (s *xmlScan) scanRecord(buf []byte, i int, at int64) (int, error) {
	o, opts := &s.o, s.opts
	o.begin()
	o.str(keyFile, opts.File)
	o.int(keyOffset, at)
	s.values, s.afterOffset, s.whenValue = s.values[:0], len(o.buf), -1
	when := ""
	j := i + len(recordOpen)
	if j >= len(buf) {
		return 0, errNeedMore
	}
	if !isSpace(buf[j]) && buf[j] != '>' && buf[j] != '/' {
		return 0, errOddShape // <AUDIT_RECORDS...: not ours
	}
	// Attributes (OLD), up to "/>" or ">".
	for {
		j = skipSpace(buf, j)
		if j+1 >= len(buf) {
			return 0, errNeedMore
		}
		if buf[j] == '/' && buf[j+1] == '>' {
			return recordEnd(j+2, when, opts)
		}
		if buf[j] == '>' {
			j++
			break
		}
		name, k, err := scanName(buf, j)
		if err != nil {
			return 0, err
		}
		k = skipSpace(buf, k)
		if k+1 >= len(buf) {
			return 0, errNeedMore
		}
		if buf[k] != '=' {
			return 0, errOddShape
		}
		k = skipSpace(buf, k+1)
		if k >= len(buf) {
			return 0, errNeedMore
		}
		quote := buf[k]
		if quote != '"' && quote != '\'' {
			return 0, errOddShape
		}
		e := bytes.IndexByte(buf[k+1:], quote)
		if e < 0 {
			return 0, errNeedMore
		}
		if bytes.IndexByte(buf[k+1:k+1+e], '<') >= 0 {
			return 0, errOddShape // not XML: encoding/xml says so
		}
		value, err := s.value(name, buf, k+1, k+1+e)
		if err != nil {
			return 0, err
		}
		if string(name) == "TIMESTAMP" && opts.bounded() {
			when = string(value)
		}
		j = k + 1 + e + 1
	}
	// Child elements holding text (NEW), up to "</AUDIT_RECORD>".
	for {
		j = skipSpace(buf, j)
		if j+len(recordClose) > len(buf) {
			return 0, errNeedMore
		}
		if bytes.HasPrefix(buf[j:], recordClose) {
			return recordEnd(j+len(recordClose), when, opts)
		}
		if buf[j] != '<' {
			return 0, errOddShape
		}
		name, k, err := scanName(buf, j+1)
		if err != nil {
			return 0, err
		}
		k = skipSpace(buf, k)
		if k+1 >= len(buf) {
			return 0, errNeedMore
		}
		var value []byte
		switch {
		case buf[k] == '/' && buf[k+1] == '>':
			o.rawKey(name)
			o.text(nil)
			if string(name) == "TIMESTAMP" {
				s.whenValue = -1
			}
			j = k + 2
		case buf[k] == '>':
			e := bytes.IndexByte(buf[k+1:], '<')
			if e < 0 {
				return 0, errNeedMore
			}
			closing := k + 1 + e
			if closing+3+len(name) > len(buf) {
				return 0, errNeedMore
			}
			if buf[closing+1] != '/' || !bytes.Equal(buf[closing+2:closing+2+len(name)], name) || buf[closing+2+len(name)] != '>' {
				return 0, errOddShape // a nested element, a comment or CDATA
			}
			var err error
			if value, err = s.value(name, buf, k+1, closing); err != nil {
				return 0, err
			}
			j = closing + 3 + len(name)
		default:
			return 0, errOddShape
		}
		if string(name) == "TIMESTAMP" && opts.bounded() {
			when = string(value)
		}
	}
}

// value appends the field whose value is the XML text buf[from:to], and notes where it lies.
func (s *xmlScan) value(name, buf []byte, from, to int) ([]byte, error) {
	if string(name) == "TIMESTAMP" {
		s.whenValue = len(s.values)
	}
	s.o.rawKey(name)
	out := len(s.o.buf) + 1 // past the opening quote
	value, err := s.o.text(buf[from:to])
	if err != nil {
		return nil, err
	}
	s.values = append(s.values, valueSpan{from, to, out, len(s.o.buf) - 1})
	return value, nil
}

// nextRecord drops what comes before the next record, which may only be white space, the XML
// declaration, <AUDIT> and </AUDIT> (noted in closed), and returns where the record starts in
// win.buf; -1 at the end of the stream.
func nextRecord(win *window, closed *bool) (int, error) {
	for {
		i := 0
		for i < len(win.buf) && isSpace(win.buf[i]) {
			i++
		}
		win.advance(i)
		rest := win.buf
		switch {
		case len(rest) == 0:
		case bytes.HasPrefix(rest, recordOpen):
			if len(rest) == len(recordOpen) {
				break // read more to see what follows the name
			}
			if c := rest[len(recordOpen)]; isSpace(c) || c == '>' || c == '/' {
				return 0, nil
			}
			return 0, badLog("byte %d: an element that is not AUDIT_RECORD", win.base)
		case bytes.HasPrefix(rest, []byte("<?xml")):
			if end := bytes.Index(rest, []byte("?>")); end >= 0 {
				win.advance(end + 2)
				continue
			}
		case bytes.HasPrefix(rest, []byte("<AUDIT>")):
			win.advance(len("<AUDIT>"))
			continue
		case bytes.HasPrefix(rest, []byte("</AUDIT>")):
			*closed = true
			win.advance(len("</AUDIT>"))
			continue
		case len(rest) >= len(recordOpen):
			return 0, badLog("byte %d: %q where an audit record should start", win.base, rest[:min(len(rest), 16)])
		}
		if len(win.buf) > 64<<10 { // nothing the server writes between records is this long
			return 0, badLog("byte %d: %q where an audit record should start", win.base, win.buf[:16])
		}
		if !win.more() {
			if len(win.buf) > 0 && !bytes.HasPrefix(recordOpen, win.buf) && !bytes.HasPrefix([]byte("</AUDIT>"), win.buf) {
				return 0, badLog("byte %d: %q where an audit record should start", win.base, win.buf[:min(len(win.buf), 16)])
			}
			return -1, nil
		}
	}
}

func recordEnd(end int, when string, opts *Options) (int, error) {
	if !recordInRange(opts, when) {
		return -end, nil
	}
	return end, nil
}

// decodeRecord reads a record of an odd shape with encoding/xml, and returns the index past
// its end.
func decodeRecord(win *window, i int, o *object, opts *Options) (int, error) {
	d := xml.NewDecoder(bytes.NewReader(win.buf[i:]))
	o.begin()
	o.str(keyFile, opts.File)
	o.int(keyOffset, win.base+int64(i))
	when := ""
	depth := 0
	for {
		tok, err := d.Token()
		if cutShort(err) {
			return 0, errNeedMore // the record goes on past what was read
		}
		if err != nil {
			return 0, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 {
				for _, a := range t.Attr {
					o.str(a.Name.Local, a.Value)
					if a.Name.Local == "TIMESTAMP" {
						when = a.Value
					}
				}
				continue
			}
			var value string
			if err := d.DecodeElement(&value, &t); cutShort(err) {
				return 0, errNeedMore
			} else if err != nil {
				return 0, err
			}
			depth--
			o.str(t.Name.Local, value)
			if t.Name.Local == "TIMESTAMP" {
				when = value
			}
		case xml.EndElement:
			if depth--; depth == 0 {
				return recordEnd(i+int(d.InputOffset()), when, opts)
			}
		}
	}
}

// isXMLChar: the characters an XML document may hold (XML 1.0, section 2.2).
func isXMLChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// cutShort reports an error of encoding/xml for input that ends inside a record.
func cutShort(err error) bool {
	var syntax *xml.SyntaxError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &syntax) && strings.HasPrefix(syntax.Msg, "unexpected EOF")
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(buf []byte, j int) int {
	for j < len(buf) && isSpace(buf[j]) {
		j++
	}
	return j
}

// scanName returns the XML name at buf[j] (ASCII letters, digits, '_', '-', '.', ':'), and the
// index past it: errOddShape if there is none, errNeedMore if it runs to the end of buf.
func scanName(buf []byte, j int) ([]byte, int, error) {
	k := j
	for k < len(buf) {
		c := buf[k]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_' || c == ':' || k > j && (c >= '0' && c <= '9' || c == '-' || c == '.') {
			k++
			continue
		}
		break
	}
	switch {
	case k == len(buf):
		return nil, k, errNeedMore
	case k == j, bytes.IndexByte(buf[j:k], ':') >= 0: // a name space prefix: encoding/xml's
		return nil, k, errOddShape
	}
	return buf[j:k], k, nil
}

// text appends the JSON string of what XML text holds, and returns that. Text of printable
// ASCII without '&' is its own value.
func (o *object) text(text []byte) ([]byte, error) {
	if plainPrefix(text, '&') == len(text) {
		o.buf = append(o.buf, '"')
		o.buf = append(append(o.buf, text...), '"')
		return text, nil
	}
	value, err := o.unescape(text)
	if err != nil {
		return nil, err
	}
	o.buf = appendString(o.buf, value)
	return value, nil
}

// unescape turns XML text into its characters: the five entities and character references,
// line ends as XML reads them. Anything else is odd. The result is text itself or o's scratch
// buffer, valid until the next call.
func (o *object) unescape(text []byte) ([]byte, error) {
	for _, c := range text {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return nil, errOddShape // not an XML character
		}
	}
	if bytes.IndexByte(text, '&') < 0 && bytes.IndexByte(text, '\r') < 0 {
		if !utf8.Valid(text) {
			return nil, errOddShape
		}
		return text, nil
	}
	out := o.scratch[:0]
	defer func() { o.scratch = out[:0] }()
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch c {
		case '\r':
			out = append(out, '\n')
			if i+1 < len(text) && text[i+1] == '\n' {
				i++
			}
			continue
		case '&':
		default:
			out = append(out, c)
			continue
		}
		e := bytes.IndexByte(text[i:], ';')
		if e < 0 {
			return nil, errOddShape
		}
		ref := string(text[i+1 : i+e])
		i += e
		switch ref {
		case "lt":
			out = append(out, '<')
		case "gt":
			out = append(out, '>')
		case "amp":
			out = append(out, '&')
		case "quot":
			out = append(out, '"')
		case "apos":
			out = append(out, '\'')
		default:
			var n uint64
			var err error
			switch {
			case len(ref) > 2 && ref[:2] == "#x":
				n, err = strconv.ParseUint(ref[2:], 16, 32)
			case len(ref) > 1 && ref[0] == '#':
				n, err = strconv.ParseUint(ref[1:], 10, 32)
			default:
				return nil, errOddShape
			}
			if err != nil || !isXMLChar(rune(n)) {
				return nil, errOddShape
			}
			out = utf8.AppendRune(out, rune(n))
		}
	}
	if !utf8.Valid(out) {
		return nil, errOddShape
	}
	return out, nil
}
