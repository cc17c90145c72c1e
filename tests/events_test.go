package tests

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// eventLines runs `mysqllogfs events` and returns its objects, each checked by jq too.
func eventLines(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	r := mysqllogfs(t, nil, append([]string{"events"}, args...)...)
	if r.code != 0 {
		t.Fatalf("events %v: exit %d: %s", args, r.code, r.stderr)
	}
	jq := exec.Command(requireProgram(t, "jq"), "-c", ".")
	jq.Stdin = bytes.NewReader(r.stdout)
	if out, err := jq.Output(); err != nil || bytes.Count(out, []byte("\n")) != bytes.Count(r.stdout, []byte("\n")) {
		t.Fatalf("jq does not read every line: %v", err)
	}
	var objs []map[string]any
	for _, line := range bytes.Split(bytes.TrimSuffix(r.stdout, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var o map[string]any
		d := json.NewDecoder(bytes.NewReader(line))
		d.UseNumber()
		if err := d.Decode(&o); err != nil {
			t.Fatalf("not a JSON object: %s", line)
		}
		objs = append(objs, o)
	}
	return objs
}

// Every event of the real MySQL binlogs, one object each: as many as go-mysql parses, their
// positions chained by end_log_pos, and the events inside a zstd Transaction_payload expanded
// with the payload's position.
func TestEventsOfFixtureBinlogs(t *testing.T) {
	for _, path := range PlainBinlogs(t) {
		objs := eventLines(t, path)
		f, _ := os.Open(path)
		want, err := ParseBinlog(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		top, next := 0, json.Number("4")
		for _, o := range objs {
			if _, inner := o["payload_index"]; inner {
				continue
			}
			top++
			if o["pos"] != next {
				t.Errorf("%s: an event at %v, the one before ended at %v", filepath.Base(path), o["pos"], next)
			}
			next = o["end_log_pos"].(json.Number)
			if o["file"] != filepath.Base(path) {
				t.Errorf("file %v", o["file"])
			}
		}
		if top != want {
			t.Errorf("%s: %d events, go-mysql parses %d", filepath.Base(path), top, want)
		}
	}

	// mysql-bin.000057 (MySQL 8.0, binlog_transaction_compression=ON): "insert into b
	// values(1)" is a Write_rows inside a Transaction_payload.
	objs := eventLines(t, filepath.Join(Fixtures(t), "mysql-8-plain-binlogs", "mysql-bin.000057"))
	found := false
	for i, o := range objs {
		if o["type"] == "Write_rows" && o["table"] == "b" && o["payload_index"] != nil {
			after := o["rows"].([]any)[0].(map[string]any)["after"].(map[string]any)
			found = after["@1"] == json.Number("1") && objs[i-2]["query"] == "insert into b values(1)"
		}
	}
	if !found {
		t.Error("the row inside the Transaction_payload is missing")
	}

	// --start-datetime and --stop-datetime select by the events' times.
	chosen := eventLines(t, "--start-datetime", "2022-11-20 13:53:00", "--stop-datetime", "2022-11-20T13:54:00Z",
		filepath.Join(Fixtures(t), "mysql-8-plain-binlogs", "mysql-bin.000057"))
	if len(chosen) == 0 || len(chosen) >= len(objs) {
		t.Errorf("%d of %d events chosen", len(chosen), len(objs))
	}
	for _, o := range chosen {
		if when := o["time"].(string); when < "2022-11-20T13:53:00Z" || when >= "2022-11-20T13:54:00Z" {
			t.Errorf("an event at %s was chosen", when)
		}
	}
}

// The events of an encrypted binlog are those of its plaintext.
func TestEventsOfEncryptedBinlog(t *testing.T) {
	dir := filepath.Join(Fixtures(t), "mysql-8.0.22-encrypted")
	enc := mysqllogfs(t, nil, "events", "--keyring", filepath.Join(dir, "keyring"), filepath.Join(dir, "binlog.encrypted"))
	plain := mysqllogfs(t, nil, "events", filepath.Join(dir, "binlog.decrypted"))
	if enc.code != 0 || plain.code != 0 || len(enc.stdout) == 0 {
		t.Fatalf("exit %d, %d: %s %s", enc.code, plain.code, enc.stderr, plain.stderr)
	}
	want := strings.ReplaceAll(string(plain.stdout), `"file":"binlog.decrypted"`, `"file":"binlog.encrypted"`)
	if string(enc.stdout) != want {
		t.Error("the events of the encrypted binlog differ from those of its plaintext")
	}
}

// One object per audit record, in every format and kind: the count is the plaintext's count
// of records, and each @offset is where its record starts. An active log cut inside a record
// gives its complete records.
func TestEventsOfAuditLogs(t *testing.T) {
	d := makeLogDir(t)
	for _, format := range []sample.AuditFormat{sample.AuditXML, sample.AuditJSON} {
		var plain bytes.Buffer
		sample.AuditLog(&plain, format, 200<<10, 3, true)
		start := "<AUDIT_RECORD>"
		if format == sample.AuditJSON {
			start = `{ "timestamp"`
		}
		want := bytes.Count(plain.Bytes(), []byte(start))
		names := map[string][]byte{
			"audit.20240103T000000.log":                           plain.Bytes(),
			"audit.20240104T000000.log.gz":                        gzipMembers(t, plain.Bytes()),
			"audit.20240105T000000.log.gz.20240101T000000-1.enc":  nil,
			"audit.20240106T000000.log.enc.20240101T000000-1.enc": nil,
		}
		for name, data := range names {
			path := filepath.Join(d.dir, name)
			if data == nil {
				d.add(t, name, plain.Bytes(), func(w *bytes.Buffer) {
					aw, _ := crypto.NewAuditWriter(w, crypto.AuditPassword{Password: []byte("audit-pw")}, strings.Contains(name, ".gz."))
					aw.Write(plain.Bytes())
					aw.Close()
				})
			} else {
				os.WriteFile(path, data, 0o640)
			}
			objs := eventLines(t, "--keyring", d.keyring, path)
			if len(objs) != want {
				t.Errorf("%s %s: %d records, the plaintext has %d", format, name, len(objs), want)
			}
			for _, o := range objs {
				off, _ := o["@offset"].(json.Number).Int64()
				if !bytes.HasPrefix(plain.Bytes()[off:], []byte(start)) || o["@file"] != crypto.PlainName(name) {
					t.Fatalf("%s %s: a record at %d, file %v", format, name, off, o["@file"])
				}
			}
		}
	}

	// The active log, cut inside its last record: the complete records only.
	var plain bytes.Buffer
	sample.AuditLog(&plain, sample.AuditXML, 50<<10, 4, false)
	cut := plain.Bytes()[:bytes.LastIndex(plain.Bytes(), []byte("<SQLTEXT>"))]
	path := filepath.Join(d.dir, "audit.log")
	os.WriteFile(path, cut, 0o640)
	objs := eventLines(t, path)
	if want := bytes.Count(cut, []byte("</AUDIT_RECORD>")); len(objs) != want {
		t.Errorf("the active log: %d records, %d are complete", len(objs), want)
	}
	if objs[0]["NAME"] != "Query" || objs[0]["SQLTEXT"] == nil {
		t.Errorf("the fields of a record: %v", objs[0])
	}
}
