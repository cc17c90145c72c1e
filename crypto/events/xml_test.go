package events

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// viaEncodingXML is the reference: every record read by encoding/xml alone.
func viaEncodingXML(t *testing.T, doc []byte) string {
	out, err := referenceRecords(doc)
	if err != nil {
		t.Fatalf("encoding/xml: %v", err)
	}
	return out
}

func referenceRecords(doc []byte) (string, error) {
	var out bytes.Buffer
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		at := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			return out.String(), nil
		}
		if err != nil {
			return "", err
		}
		start, ok := tok.(xml.StartElement)
		if !ok || start.Name.Local != "AUDIT_RECORD" {
			continue
		}
		var o object
		o.begin()
		o.str(keyFile, "f")
		o.int(keyOffset, at)
		for _, a := range start.Attr {
			o.str(a.Name.Local, a.Value)
		}
		for {
			tok, err := d.Token()
			if err != nil {
				return "", err
			}
			if _, end := tok.(xml.EndElement); end {
				break
			}
			if field, ok := tok.(xml.StartElement); ok {
				var v string
				if err := d.DecodeElement(&v, &field); err != nil {
					return "", err
				}
				o.str(field.Name.Local, v)
			}
		}
		o.end(&out)
	}
}

// FuzzXMLScanner: the scanner never panics, and where encoding/xml reads a whole document of
// records, the scanner gives the same objects.
func FuzzXMLScanner(f *testing.F) {
	var doc bytes.Buffer
	sample.AuditLog(&doc, sample.AuditXML, 2<<10, 7, true)
	f.Add(doc.Bytes())
	f.Add([]byte(`<AUDIT><AUDIT_RECORD NAME="a&amp;b" X='1'/><AUDIT_RECORD><A>x&#10;y</A><B/></AUDIT_RECORD></AUDIT>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		var got bytes.Buffer
		err := writeXMLRecords(&got, bytes.NewReader(doc), Options{File: "f"})
		want, refErr := referenceRecords(doc)
		if err == nil && refErr == nil && got.String() != want {
			t.Fatalf("the scanner gives\n%s\nencoding/xml gives\n%s", got.String(), want)
		}
	})
}

// The scanner made for the server's XML gives what encoding/xml gives: for the NEW and OLD
// formats, entities and character references, CR LF line ends, empty elements, non-ASCII
// text, odd records that only encoding/xml reads (a comment, CDATA), and whatever the chunks
// the stream arrives in.
func TestXMLScannerAgreesWithEncodingXML(t *testing.T) {
	var newFormat bytes.Buffer
	sample.AuditLog(&newFormat, sample.AuditXML, 600<<10, 5, true)
	crafted := `<?xml version="1.0" encoding="utf-8"?>
<AUDIT>
 <AUDIT_RECORD TIMESTAMP="2024-01-02T00:00:00 UTC" NAME="Query" SQLTEXT="SELECT &apos;a&lt;b&apos; &amp;&amp; &quot;x&quot; &#233;&#x1F600;" STATUS="0"/>
 <AUDIT_RECORD
   NAME='Connect'
   USER="r&#10;oot"/>
 <AUDIT_RECORD>` + "\r\n" + `  <NAME>Query</NAME>` + "\r\n" + `  <SQLTEXT>line1` + "\r\n" + `line2` + "\r" + `line3 Grüße 東京</SQLTEXT>
  <OS_LOGIN/>
  <IP></IP>
 </AUDIT_RECORD>
 <AUDIT_RECORD><NAME>Odd</NAME><!-- a comment --><SQLTEXT><![CDATA[<raw> & text]]></SQLTEXT></AUDIT_RECORD>
 <AUDIT_RECORD><NAME a="1">attr on a field</NAME></AUDIT_RECORD>
</AUDIT>
`
	for name, doc := range map[string][]byte{"NEW": newFormat.Bytes(), "crafted": []byte(crafted)} {
		want := viaEncodingXML(t, doc)
		for _, reader := range []func() io.Reader{
			func() io.Reader { return bytes.NewReader(doc) },
			func() io.Reader { return iotest.OneByteReader(bytes.NewReader(doc)) },
			func() io.Reader { return iotest.HalfReader(bytes.NewReader(doc)) },
		} {
			var got bytes.Buffer
			if err := writeXMLRecords(&got, reader(), Options{File: "f"}); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got.String() != want {
				t.Fatalf("%s: the scanner gives\n%s\nencoding/xml gives\n%s", name, head(got.String()), head(want))
			}
		}
	}
}

func head(s string) string {
	if i := strings.Index(s[min(len(s), 2000):], "\n"); i >= 0 {
		return s[:min(len(s), 2000)+i]
	}
	return s
}

// A record cut short: the complete ones from an active log, an error from a closed one.
func TestXMLScannerCutShort(t *testing.T) {
	var doc bytes.Buffer
	sample.AuditLog(&doc, sample.AuditXML, 50<<10, 6, false)
	cut := doc.Bytes()[:bytes.LastIndex(doc.Bytes(), []byte("<SQLTEXT>"))+4]
	var out bytes.Buffer
	if err := writeXMLRecords(&out, bytes.NewReader(cut), Options{Unfinished: true}); err != nil {
		t.Fatal(err)
	}
	if got, want := bytes.Count(out.Bytes(), []byte("\n")), bytes.Count(cut, []byte("</AUDIT_RECORD>")); got != want {
		t.Fatalf("%d records from the active log, %d are complete", got, want)
	}
	if err := writeXMLRecords(io.Discard, bytes.NewReader(cut), Options{}); err == nil {
		t.Fatal("a closed log cut short gives no error")
	}
}

// Documents on which the scanner once disagreed with encoding/xml (from the review of the
// events command): now it fails, or gives what encoding/xml gives.
func TestXMLScannerNeverDisagrees(t *testing.T) {
	docs := map[string]string{
		"record in a comment":      `<AUDIT><!-- <AUDIT_RECORD NAME="ghost"/> --><AUDIT_RECORD NAME="real"/></AUDIT>`,
		"record in CDATA":          `<AUDIT><X><![CDATA[<AUDIT_RECORD NAME="ghost"/>]]></X></AUDIT>`,
		"AUDIT_RECORDS wrapper":    `<AUDIT><AUDIT_RECORDS><AUDIT_RECORD NAME="a"/></AUDIT_RECORDS></AUDIT>`,
		"prefixed attribute":       `<AUDIT><AUDIT_RECORD x:NAME="a"/></AUDIT>`,
		"prefixed child":           `<AUDIT><AUDIT_RECORD><x:NAME>a</x:NAME></AUDIT_RECORD></AUDIT>`,
		"uppercase &#X":            `<AUDIT><AUDIT_RECORD NAME="&#X41;"/></AUDIT>`,
		"control char ref":         `<AUDIT><AUDIT_RECORD NAME="a&#1;b"/></AUDIT>`,
		"raw control char":         "<AUDIT><AUDIT_RECORD NAME=\"a\x01b\"/></AUDIT>",
		"U+FFFE":                   `<AUDIT><AUDIT_RECORD NAME="&#xFFFE;"/></AUDIT>`,
		"< in attribute":           `<AUDIT><AUDIT_RECORD NAME="a<b"/></AUDIT>`,
		"closed log cut after rec": `<AUDIT><AUDIT_RECORD NAME="a"/>`,
		"garbage between records":  "<AUDIT><AUDIT_RECORD NAME=\"a\"/>\x00\xff garbage <<< <AUDIT_RECORD NAME=\"b\"/></AUDIT>",
	}
	for name, doc := range docs {
		var got bytes.Buffer
		err := writeXMLRecords(&got, strings.NewReader(doc), Options{File: "f"})
		want, refErr := referenceRecords([]byte(doc))
		switch {
		case err != nil:
		case refErr != nil:
			t.Errorf("%s: scanner succeeds with %q; encoding/xml fails: %v", name, got.String(), refErr)
		case got.String() != want:
			t.Errorf("%s: scanner gives %q; encoding/xml gives %q", name, got.String(), want)
		}
	}
}

// A ciphertext block garbled by damage (CBC is unauthenticated) that hits a record's
// "<AUDIT_RECORD" is an error; before, the record vanished without one.
func TestXMLScannerDamagedRecordIsAnError(t *testing.T) {
	var doc bytes.Buffer
	sample.AuditLog(&doc, sample.AuditXML, 20<<10, 3, true)
	b := doc.Bytes()
	n := bytes.Count(b, recordOpen)
	i := bytes.Index(b[bytes.Index(b, recordOpen)+1:], recordOpen) + bytes.Index(b, recordOpen) + 1
	copy(b[i:], "\x8c\x13\x99\xfe\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c") // 16 garbled bytes
	var got bytes.Buffer
	err := writeXMLRecords(&got, bytes.NewReader(b), Options{File: "f"})
	if err == nil {
		t.Errorf("a damaged log: %d of %d records written, no error", bytes.Count(got.Bytes(), []byte("\n")), n)
	}
}

// BenchmarkXMLRecords: the scanner over 64 MiB of the server's XML NEW, in memory.
func BenchmarkXMLRecords(b *testing.B) {
	var doc bytes.Buffer
	sample.AuditLog(&doc, sample.AuditXML, 64<<20, 1, true)
	b.SetBytes(int64(doc.Len()))
	for b.Loop() {
		if err := Write(io.Discard, bytes.NewReader(doc.Bytes()), Options{File: "f"}); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzXMLShapes: a record read by a kept shape gives what scanRecord gives, or an error where
// it does, whatever its values hold and however the bytes around them differ.
func FuzzXMLShapes(f *testing.F) {
	var doc bytes.Buffer
	sample.AuditLog(&doc, sample.AuditXML, 4<<10, 7, true)
	f.Add(doc.Bytes(), false)
	f.Add([]byte(`<AUDIT><AUDIT_RECORD NAME="a" TIMESTAMP="2024-01-02T00:00:01 UTC"/>
<AUDIT_RECORD NAME="a&amp;b" TIMESTAMP="2024-01-02T00:00:02 UTC"/>
<AUDIT_RECORD NAME="x
y" TIMESTAMP="2024-01-03T00:00:00 UTC"/><AUDIT_RECORD NAME='c' TIMESTAMP='2024-01-02T00:00:03 UTC'/>
<AUDIT_RECORD NAME="a<b" TIMESTAMP="2024-01-02T00:00:04 UTC"/></AUDIT>`), true)
	f.Add([]byte("<AUDIT>\n <AUDIT_RECORD>\n  <TIMESTAMP>2024-01-02T00:00:01 UTC</TIMESTAMP>\n  <SQLTEXT>a</SQLTEXT>\n  <IP/>\n </AUDIT_RECORD>\n"+
		" <AUDIT_RECORD>\n  <TIMESTAMP>2024-01-02T00:00:02 UTC</TIMESTAMP>\n  <SQLTEXT>\"b\" &lt; Grüße\r\n\\</SQLTEXT>\n  <IP/>\n </AUDIT_RECORD>\n"+
		" <AUDIT_RECORD>\n  <TIMESTAMP>2024-01-02T00:00:03 UTC</TIMESTAMP>\n  <SQLTEXT>c<!-- x --></SQLTEXT>\n  <IP/>\n </AUDIT_RECORD>\n"+
		" <AUDIT_RECORD>\n  <TIMESTAMP>2024-01-03T00:00:04 UTC</TIMESTAMP>\n  <SQLTEXT>\x01</SQLTEXT>\n  <IP/>\n </AUDIT_RECORD>\n"+
		" <AUDIT_RECORD>\n  <TIMESTAMP></TIMESTAMP>\n  <SQLTEXT>d</SQLTEXT>\n  <IP>1</IP>\n </AUDIT_RECORD>\n</AUDIT>\n"), true)
	f.Fuzz(func(t *testing.T, doc []byte, bounded bool) {
		opts := Options{File: "f", Unfinished: true}
		if bounded {
			opts.Start = time.Date(2024, 1, 2, 0, 0, 2, 0, time.UTC)
			opts.Stop = time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC)
		}
		var byShape, byScan bytes.Buffer
		err := writeXMLRecords(&byShape, bytes.NewReader(doc), opts)
		opts.noShapes = true
		scanErr := writeXMLRecords(&byScan, bytes.NewReader(doc), opts)
		if (err == nil) != (scanErr == nil) || byShape.String() != byScan.String() {
			t.Fatalf("by shape: %v\n%s\nby scanRecord: %v\n%s", err, byShape.String(), scanErr, byScan.String())
		}
	})
}

// FuzzTextPrefix: the eight-bytes-at-a-time scan stops where a byte loop stops.
func FuzzTextPrefix(f *testing.F) {
	f.Add([]byte("SELECT 1 FROM t WHERE a = 'x' /* \"quoted\" */ & <b>"))
	f.Add([]byte("ASCII then Grüße\x7f\x1f"))
	f.Fuzz(func(t *testing.T, s []byte) {
		want := 0
		for want < len(s) && s[want] >= 0x20 && s[want] < 0x80 && !strings.ContainsRune(`<&"\`, rune(s[want])) {
			want++
		}
		if got := textPrefix(s); got != want {
			t.Fatalf("textPrefix(%q) = %d, want %d", s, got, want)
		}
	})
}

// mixedShapes is an XML NEW log whose record n leaves empty the fields of empty(n), a bit
// mask over five of them: each mask is a shape of its own.
func mixedShapes(size int, empty func(n int) int) []byte {
	var b bytes.Buffer
	b.WriteString("<AUDIT>\n")
	for n := 0; b.Len() < size; n++ {
		fmt.Fprintf(&b, " <AUDIT_RECORD>\n  <TIMESTAMP>2024-01-02T00:00:%02d UTC</TIMESTAMP>\n  <RECORD_ID>%d_2024-01-02T00:00:01</RECORD_ID>\n  <NAME>Query</NAME>\n", n%60, n)
		for k, name := range []string{"USER", "OS_LOGIN", "HOST", "IP", "DB"} {
			if empty(n)>>k&1 == 1 {
				fmt.Fprintf(&b, "  <%s/>\n", name)
			} else {
				fmt.Fprintf(&b, "  <%s>v%d</%s>\n", name, n, name)
			}
		}
		b.WriteString("  <SQLTEXT>SELECT * FROM orders WHERE customer = 'c-1'</SQLTEXT>\n </AUDIT_RECORD>\n")
	}
	b.WriteString("</AUDIT>\n")
	return b.Bytes()
}

// shapeMixes: 32 shapes in turn, more than the scanner keeps; the server's one shape with a
// burst of eight others every 300 or 5000 records (a connection storm, say); and the server's
// shape for one record in three, or all but one in eight, the others of 31 shapes.
var shapeMixes = map[string]func(n int) int{
	"inTurn":     func(n int) int { return ^(n * 7) & 31 },
	"burst/300":  func(n int) int { return burst(n, 300) },
	"burst/5000": func(n int) int { return burst(n, 5000) },
	"oneIn3":     func(n int) int { return otherShape(n, n%3 != 0) },
	"sevenIn8":   func(n int) int { return otherShape(n, n%8 == 0) },
}

// otherShape is one of 31 shapes other than the server's (no field empty) if other.
func otherShape(n int, other bool) int {
	if !other {
		return 0
	}
	return 1 + (n*2654435761>>7)%31
}

func burst(n, every int) int {
	if n%every < 8 {
		return (n%every + 1) & 31
	}
	return 0
}

// Logs of mixed shapes read as scanRecord reads them: shapes tried, given up for a while,
// and tried again.
func TestXMLMixedShapes(t *testing.T) {
	for name, empty := range shapeMixes {
		doc := mixedShapes(2<<20, empty)
		var byShape, byScan bytes.Buffer
		err := writeXMLRecords(&byShape, bytes.NewReader(doc), Options{File: "f"})
		scanErr := writeXMLRecords(&byScan, bytes.NewReader(doc), Options{File: "f", noShapes: true})
		if err != nil || scanErr != nil || byShape.String() != byScan.String() {
			t.Fatalf("%s: by shape: %v, %d bytes; by scanRecord: %v, %d bytes", name, err, byShape.Len(), scanErr, byScan.Len())
		}
	}
}

// BenchmarkXMLMixedShapes: the mixes with shapes and without, to show that trying shapes
// that do not fit costs little and that a burst of others does not stop them.
func BenchmarkXMLMixedShapes(b *testing.B) {
	for _, name := range []string{"inTurn", "burst/300", "burst/5000", "oneIn3", "sevenIn8"} {
		doc := mixedShapes(64<<20, shapeMixes[name])
		for _, noShapes := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/noShapes=%v", name, noShapes), func(b *testing.B) {
				b.SetBytes(int64(len(doc)))
				for b.Loop() {
					if err := writeXMLRecords(io.Discard, bytes.NewReader(doc), Options{File: "f", noShapes: noShapes}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
