package events

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"testing/iotest"

	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// referenceJSONRecords is the reference: encoding/json's decoder, record by record.
func referenceJSONRecords(doc []byte) (string, error) {
	var out bytes.Buffer
	d := json.NewDecoder(bytes.NewReader(doc))
	array := bytes.HasPrefix(bytes.TrimLeft(doc, " \t\r\n"), []byte("["))
	if array {
		if _, err := d.Token(); err != nil {
			return "", err
		}
	}
	for d.More() {
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			return "", err
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil || compact.Bytes()[0] != '{' {
			return "", io.ErrUnexpectedEOF
		}
		var o object
		o.begin()
		o.str(keyFile, "f")
		o.int(keyOffset, d.InputOffset()-int64(len(raw)))
		if rest := compact.Bytes()[1 : compact.Len()-1]; len(rest) > 0 {
			o.buf = append(append(o.buf, ','), rest...)
		}
		o.end(&out)
	}
	if array {
		if _, err := d.Token(); err != nil {
			return "", err
		}
	}
	return out.String(), nil
}

// The scanner gives what encoding/json gives, for the JSON array format, for JSON lines
// (Percona), with strings holding escapes, braces and white space, in any chunks.
func TestJSONScannerAgreesWithEncodingJSON(t *testing.T) {
	var array bytes.Buffer
	sample.AuditLog(&array, sample.AuditJSON, 300<<10, 5, true)
	lines := `{"audit_record":{"name":"Query","record":"1_2024-01-01T00:00:00","timestamp":"2024-01-01T00:00:00Z","sqltext":"SELECT '{[\"}]' \\\\ \u00e9 \n"}}
{"audit_record":{"name":"Quit","record":"2_2024-01-01T00:00:00", "nested": [1, 2.5e3, true, null, {"a": "b"}]}}
  {}
`
	for name, doc := range map[string][]byte{"array": array.Bytes(), "lines": []byte(lines)} {
		want, err := referenceJSONRecords(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, reader := range []func() io.Reader{
			func() io.Reader { return bytes.NewReader(doc) },
			func() io.Reader { return iotest.OneByteReader(bytes.NewReader(doc)) },
		} {
			var got bytes.Buffer
			if err := writeJSONRecords(&got, reader(), Options{File: "f"}); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got.String() != want {
				t.Fatalf("%s: the scanner gives\n%s\nencoding/json gives\n%s", name, head(got.String()), head(want))
			}
		}
	}
}

// An array cut short: the complete records of an active log, an error for a closed one.
func TestJSONScannerCutShort(t *testing.T) {
	var doc bytes.Buffer
	sample.AuditLog(&doc, sample.AuditJSON, 50<<10, 6, false)
	cut := doc.Bytes()[:bytes.LastIndex(doc.Bytes(), []byte(`"query"`))]
	var out bytes.Buffer
	if err := writeJSONRecords(&out, bytes.NewReader(cut), Options{Unfinished: true}); err != nil {
		t.Fatal(err)
	}
	if got, want := bytes.Count(out.Bytes(), []byte("\n")), bytes.Count(cut, []byte(`"general_data"`))-1; got != want {
		t.Fatalf("%d records from the active log, %d are complete", got, want)
	}
	if err := writeJSONRecords(io.Discard, bytes.NewReader(cut), Options{}); err == nil {
		t.Fatal("a closed log cut short gives no error")
	}
}

// FuzzJSONScanner: never a panic, and where encoding/json reads the records, the same objects.
func FuzzJSONScanner(f *testing.F) {
	var doc bytes.Buffer
	sample.AuditLog(&doc, sample.AuditJSON, 1<<10, 7, true)
	f.Add(doc.Bytes())
	f.Add([]byte(`{"a":"x\"}"}` + "\n" + `{"b":[1,{"c":null}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		var got bytes.Buffer
		err := writeJSONRecords(&got, bytes.NewReader(doc), Options{File: "f"})
		want, refErr := referenceJSONRecords(doc)
		if err == nil && refErr == nil && got.String() != want {
			t.Fatalf("the scanner gives\n%s\nencoding/json gives\n%s", got.String(), want)
		}
		for _, line := range bytes.Split(bytes.TrimSuffix(got.Bytes(), []byte("\n")), []byte("\n")) {
			if len(line) > 0 && !json.Valid(line) {
				t.Fatalf("an output line is not JSON: %s", line)
			}
		}
	})
}

// What is not a JSON audit log is an error, not records (from the review of the events
// command): invalid UTF-8 in a string, commas where none belong or none where they do, a ]
// among JSON lines, text after the array.
func TestJSONScannerRefusesWhatIsNotALog(t *testing.T) {
	for name, doc := range map[string]string{
		"invalid UTF-8 in a string": "{\"a\":\"\xff\xfe\"}\n",
		"commas between lines":      `{"a":1},,,{"b":2}`,
		"array without commas":      `[{"a":1} {"b":2}]`,
		"two commas":                `[{"a":1},,{"b":2}]`,
		"stray ] in JSON lines":     "{\"a\":1}\n]\n{\"b\":2}\n",
		"text after the array":      `[{"a":1}] {"b":2} garbage`,
	} {
		if err := writeJSONRecords(io.Discard, bytes.NewReader([]byte(doc)), Options{File: "f"}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
