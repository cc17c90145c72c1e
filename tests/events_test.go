package tests

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

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
	// A password with PBKDF2 iterations, as the server writes one in JSON.
	keyDir := t.TempDir()
	pbkdf2 := crypto.AuditPassword{Password: []byte("pbkdf2-pw"), Iterations: 1000}
	os.WriteFile(filepath.Join(keyDir, "audit_log-20240102T000000-1"), []byte(`{"password":"pbkdf2-pw","salt":"AAAA","iterations":1000}`), 0o600)
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
			"audit.20240107T000000.log.gz.20240102T000000-1.enc":  nil,
		}
		for name, data := range names {
			path := filepath.Join(d.dir, name)
			if data == nil {
				password := crypto.AuditPassword{Password: []byte("audit-pw")}
				if strings.Contains(name, "20240102T000000-1") {
					password = pbkdf2
				}
				d.add(t, name, plain.Bytes(), func(w *bytes.Buffer) {
					aw, _ := crypto.NewAuditWriter(w, password, strings.Contains(name, ".gz."))
					aw.Write(plain.Bytes())
					aw.Close()
				})
			} else {
				os.WriteFile(path, data, 0o640)
			}
			objs := eventLines(t, "--keyring", d.keyring, "--key-dir", keyDir, path)
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

// A live MariaDB server with binlog_row_metadata=FULL and log_bin_compress=ON writes rows of
// every common type into its encrypted binlog: `events` gives each value as SELECT returns it,
// by column name, for INSERT, UPDATE and DELETE, from compressed events; and the statement of
// a statement-format query.
func TestEventsOfLiveMariaDB(t *testing.T) {
	srv := startMariaDB(t, "--binlog-row-metadata=FULL", "--log-bin-compress=ON", "--log-bin-compress-min-len=10")
	blob := make([]byte, 256)
	for i := range blob {
		blob[i] = byte(i)
	}
	srv.sql(t, `CREATE DATABASE ev;
		CREATE TABLE ev.t (id INT PRIMARY KEY, big BIGINT, ubig BIGINT UNSIGNED, amount DECIMAL(20,6),
			dbl DOUBLE, vc VARCHAR(100) CHARACTER SET utf8mb4, txt TEXT CHARACTER SET utf8mb4, bl BLOB,
			dt DATETIME(3), d DATE, e ENUM('small','medium','large'), s SET('a','b','c','d'), b BIT(5),
			n INT NULL) ENGINE=InnoDB;
		SET SESSION binlog_format=ROW;
		INSERT INTO ev.t VALUES (1, -9223372036854775808, 18446744073709551615, '12345678901234.123456',
			3.14159, 'Grüße 東京 😀', 'line one\nline "two" \\\\ end\n', UNHEX('`+strings.ToUpper(hexOf(blob))+`'),
			'2024-01-02 03:04:05.678', '2024-02-29', 'large', 'a,c', b'10101', NULL);
		INSERT INTO ev.t (id, vc, amount) VALUES (2, 'second', '-0.000001');
		UPDATE ev.t SET vc = 'changed', n = 7 WHERE id = 2;
		DELETE FROM ev.t WHERE id = 2;
		SET SESSION binlog_format=STATEMENT;
		INSERT INTO ev.t (id, vc) VALUES (3, 'statement-marker');`)
	selected := strings.Split(strings.TrimSpace(string(runOK(t, "mariadb", "--socket="+srv.socket, "-uroot", "--default-character-set=utf8mb4", "-N", "-B", "-e",
		"SELECT id, big, ubig, amount, dbl, HEX(vc), HEX(txt), HEX(bl), dt, d, e, s, b+0 FROM ev.t WHERE id = 1"))), "\t")
	srv.sql(t, "FLUSH BINARY LOGS")

	objs := eventLines(t, "--mariadb-keys", srv.keys, "--mariadb-keys-secret-file", srv.filekey,
		filepath.Join(srv.binlogs, "mariadb-bin.000001"))

	// Through mount --events, the closed binlog's and the one the server is writing now (its
	// first event marked in use): each .ndjson is what events writes for it.
	m := mount(t, srv.binlogs, "--mariadb-keys", srv.keys, "--mariadb-keys-secret-file", srv.filekey, "--events")
	for _, name := range []string{"mariadb-bin.000001", "mariadb-bin.000002"} {
		want := mysqllogfs(t, nil, "events", "--mariadb-keys", srv.keys, "--mariadb-keys-secret-file", srv.filekey, filepath.Join(srv.binlogs, name))
		got, err := os.ReadFile(m.path(name + ".ndjson"))
		if want.code != 0 || err != nil || len(got) == 0 || !bytes.Equal(got, want.stdout) {
			t.Errorf("%s.ndjson: %d bytes (%v); events: %d bytes, exit %d %s", name, len(got), err, len(want.stdout), want.code, want.stderr)
		}
	}
	var inserted, updated, deleted map[string]any
	compressed, statement := false, false
	for _, o := range objs {
		typ, _ := o["type"].(string)
		compressed = compressed || strings.Contains(typ, "compressed")
		if q, _ := o["query"].(string); strings.Contains(q, "statement-marker") && strings.HasPrefix(typ, "Query") {
			statement = true
		}
		if o["table"] != "t" || o["rows"] == nil {
			continue
		}
		row := o["rows"].([]any)[0].(map[string]any)
		switch {
		case strings.HasPrefix(typ, "Write_rows") && row["after"].(map[string]any)["id"] == json.Number("1"):
			inserted = row["after"].(map[string]any)
		case strings.HasPrefix(typ, "Update_rows"):
			updated = row
		case strings.HasPrefix(typ, "Delete_rows"):
			deleted = row["before"].(map[string]any)
		}
	}
	if !compressed || !statement || inserted == nil || updated == nil || deleted == nil {
		t.Fatalf("compressed events %v, the statement %v, insert %v, update %v, delete %v", compressed, statement, inserted != nil, updated != nil, deleted != nil)
	}
	text := func(v any) string {
		switch v := v.(type) {
		case string:
			return v
		case json.Number:
			return v.String()
		case map[string]any: // {"base64": ...}
			b, _ := base64.StdEncoding.DecodeString(v["base64"].(string))
			return string(b)
		}
		return fmt.Sprint(v)
	}
	for i, col := range []string{"id", "big", "ubig", "amount", "dbl", "vc", "txt", "bl", "dt", "d", "e", "s", "b"} {
		got, want := text(inserted[col]), selected[i]
		if strings.HasPrefix(want, "") && (col == "vc" || col == "txt" || col == "bl") {
			got = strings.ToUpper(hexOf([]byte(got)))
		}
		if got != want {
			t.Errorf("column %s: events gives %q, SELECT %q", col, got, want)
		}
	}
	t.Logf("the inserted row: %v", inserted)
	if inserted["n"] != nil {
		t.Errorf("NULL is %v", inserted["n"])
	}
	if _, ok := inserted["bl"].(map[string]any); !ok {
		t.Errorf("the BLOB is not in the binary encoding: %v", inserted["bl"])
	}
	before, after := updated["before"].(map[string]any), updated["after"].(map[string]any)
	if before["vc"] != "second" || after["vc"] != "changed" || after["n"] != json.Number("7") || before["amount"] != "-0.000001" {
		t.Errorf("the update: %v -> %v", before, after)
	}
	if deleted["id"] != json.Number("2") || deleted["vc"] != "changed" {
		t.Errorf("the delete: %v", deleted)
	}

	// The README's one-liner finds every change to one primary key across the encrypted
	// binlogs: the insert, the update and the delete of row 2, in order.
	binlogs, _ := filepath.Glob(filepath.Join(srv.binlogs, "mariadb-bin.0*"))
	all := mysqllogfs(t, nil, append([]string{"events", "--mariadb-keys", srv.keys, "--mariadb-keys-secret-file", srv.filekey}, binlogs...)...)
	jq := exec.Command(requireProgram(t, "jq"), "-c", `select(.table=="t")
      | {time, gtid, type, row: .rows[]?} | select((.row.before // .row.after).id == 2)`)
	jq.Stdin = bytes.NewReader(all.stdout)
	out, err := jq.Output()
	changes := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || len(changes) != 3 || !strings.Contains(changes[0], `"Write_rows`) || !strings.Contains(changes[1], `"Update_rows`) || !strings.Contains(changes[2], `"Delete_rows`) {
		t.Errorf("the README's jq one-liner over %d binlogs (%v):\n%s", len(binlogs), err, out)
	}
}

func hexOf(b []byte) string { return fmt.Sprintf("%x", b) }

// With --events, NAME.ndjson beside each log holds exactly what `events` writes for it: a
// MySQL binlog encrypted and plain (with zstd Transaction_payload events), and a compressed,
// encrypted audit log; read whole, at random, and by jq. Other files get none, nor does any
// file without --events; the inode numbers are the logs' own in a namespace of their own,
// the same after a remount; and a binlog that grows shows its new events at the next open.
func TestEventsThroughTheMount(t *testing.T) {
	d := makeLogDir(t)
	fixture, _ := os.ReadFile(filepath.Join(Fixtures(t), "mysql-8-plain-binlogs", "mysql-bin.000057"))
	os.WriteFile(filepath.Join(d.dir, "mysql-bin.000057"), fixture, 0o640)
	os.WriteFile(filepath.Join(d.dir, "notes.txt"), []byte("not a log\n"), 0o640)
	os.WriteFile(filepath.Join(d.dir, "hard.000001"), fixture, 0o640)
	os.Link(filepath.Join(d.dir, "hard.000001"), filepath.Join(d.dir, "hard.000002"))
	os.WriteFile(filepath.Join(d.dir, "junk.000001"), RandomBytes(10000, 3), 0o640)
	logs := map[string]string{ // view name -> source name
		"binlog.000001":             "binlog.000001",
		"mysql-bin.000057":          "mysql-bin.000057",
		"audit.20240102T000000.log": "audit.20240102T000000.log.gz.20240101T000000-1.enc",
	}
	cache := t.TempDir()
	m := mount(t, d.dir, "--keyring", d.keyring, "--events", "--size-cache", cache)
	names, _ := os.ReadDir(m.dir)
	var listed []string
	for _, n := range names {
		listed = append(listed, n.Name())
	}
	for view := range logs {
		if !slices.Contains(listed, view+".ndjson") {
			t.Errorf("%s.ndjson is not listed: %v", view, listed)
		}
	}
	if slices.Contains(listed, "notes.txt.ndjson") {
		t.Error("a file that is no log has a .ndjson")
	}
	// A log under two names would have two sets of events for one inode: it has none.
	if slices.Contains(listed, "hard.000001.ndjson") || slices.Contains(listed, "hard.000002.ndjson") {
		t.Error("a hard-linked log has a .ndjson")
	}
	// Named like a log but not one: listed, its open fails, and it is decoded and logged once.
	for range 3 {
		runOK(t, "ls", "-l", m.dir)
	}
	if _, err := os.ReadFile(m.path("junk.000001.ndjson")); !errors.Is(err, syscall.EIO) {
		t.Errorf("the events of a file that is no log: %v, want EIO", err)
	}
	if n := strings.Count(m.logs.String(), "cannot decode events"); n != 1 {
		t.Errorf("%d log lines for the file that is no log, want 1:\n%s", n, m.logs)
	}
	inodes := map[string]uint64{}
	for view, src := range logs {
		want := mysqllogfs(t, nil, "events", "--keyring", d.keyring, filepath.Join(d.dir, src))
		path := m.path(view + ".ndjson")
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want.stdout) || len(got) == 0 {
			t.Fatalf("%s.ndjson: %d bytes (%v), events writes %d", view, len(got), err, len(want.stdout))
		}
		var st, logSt syscall.Stat_t
		syscall.Stat(path, &st)
		syscall.Stat(m.path(view), &logSt)
		if st.Size != int64(len(got)) || st.Ino == logSt.Ino {
			t.Errorf("%s.ndjson: size %d for %d bytes, inode %d (the log's %d)", view, st.Size, len(got), st.Ino, logSt.Ino)
		}
		inodes[view] = st.Ino
		f, _ := os.Open(path)
		rng := rand.New(rand.NewPCG(uint64(len(got)), 1))
		for range 50 {
			ReadAtChecked(t, f, got, rng.Int64N(int64(len(got))), 1+rng.IntN(64<<10))
		}
		f.Close()
		jq := exec.Command(requireProgram(t, "jq"), "-c", ".", path)
		if out, err := jq.Output(); err != nil || bytes.Count(out, []byte("\n")) != bytes.Count(got, []byte("\n")) {
			t.Errorf("%s.ndjson: jq: %v", view, err)
		}
	}
	m.unmount()

	plain := mount(t, d.dir, "--keyring", d.keyring)
	if _, err := os.Stat(plain.path("binlog.000001.ndjson")); err == nil {
		t.Error("a .ndjson without --events")
	}
	plain.unmount()

	// A live binlog: half its events first, the rest later.
	var full bytes.Buffer
	sample.RowBinlog(&full, 200<<10, 9, "live.000002")
	cut := EventOffsets(full.Bytes())[len(EventOffsets(full.Bytes()))/2]
	live := filepath.Join(d.dir, "live.000001")
	os.WriteFile(live, full.Bytes()[:cut], 0o640)
	m = mount(t, d.dir, "--keyring", d.keyring, "--events", "--size-cache", cache)
	for view, ino := range inodes {
		var st syscall.Stat_t
		if syscall.Stat(m.path(view+".ndjson"), &st); st.Ino != ino {
			t.Errorf("%s.ndjson: inode %d after a remount, %d before", view, st.Ino, ino)
		}
	}
	before, _ := os.ReadFile(m.path("live.000001.ndjson"))
	f, _ := os.OpenFile(live, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(full.Bytes()[cut:])
	f.Close()
	want := mysqllogfs(t, nil, "events", live).stdout
	waitFor(t, "the grown binlog's events", func() bool {
		got, _ := os.ReadFile(m.path("live.000001.ndjson"))
		return bytes.Equal(got, want)
	})
	if len(before) == 0 || len(before) >= len(want) || !bytes.HasPrefix(want, before) {
		t.Errorf("before it grew: %d bytes, not a prefix of the %d after", len(before), len(want))
	}
}

// rsyslog's imfile, polling the .ndjson of a growing encrypted binlog and of the active audit
// log through the mount, ships every event and record exactly once, the new ones too.
func TestRsyslogShipsEventsOnce(t *testing.T) {
	d := makeLogDir(t)
	var plainBinlog, encBinlog bytes.Buffer
	sample.RowBinlog(&plainBinlog, 100<<10, 11, "binlog.000003")
	bw, _ := crypto.NewBinlogWriter(&encBinlog, "MySQLReplicationKey_demo_1", d.master)
	bw.Write(plainBinlog.Bytes())
	header := encBinlog.Len() - plainBinlog.Len() // the ciphertext follows the plaintext's offsets
	offsets := EventOffsets(plainBinlog.Bytes())
	binlogCut := header + offsets[len(offsets)/2]
	binlogPath := filepath.Join(d.dir, "binlog.000002")
	os.WriteFile(binlogPath, encBinlog.Bytes()[:binlogCut], 0o640)

	var audit bytes.Buffer
	sample.AuditLog(&audit, sample.AuditXML, 60<<10, 12, false)
	auditCut := bytes.Index(audit.Bytes()[len(audit.Bytes())/2:], []byte(" <AUDIT_RECORD>")) + len(audit.Bytes())/2
	auditPath := filepath.Join(d.dir, "audit.log")
	os.WriteFile(auditPath, audit.Bytes()[:auditCut], 0o640)

	m := mount(t, d.dir, "--keyring", d.keyring, "--events")
	shipped, stderr := ship(t, m.path("binlog.000002.ndjson"), m.path("audit.log.ndjson"))
	eventsOf := func(path string) []string {
		out := mysqllogfs(t, nil, "events", "--keyring", d.keyring, path).stdout
		return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	}
	firstPart := append(eventsOf(binlogPath), eventsOf(auditPath)...)
	waitFor(t, "the first events shipped", func() bool { return len(readLines(shipped)) >= len(firstPart) })

	f, _ := os.OpenFile(binlogPath, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(encBinlog.Bytes()[binlogCut:])
	f.Close()
	f, _ = os.OpenFile(auditPath, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(audit.Bytes()[auditCut:])
	f.Close()
	want := append(eventsOf(binlogPath), eventsOf(auditPath)...)
	if len(want) <= len(firstPart) {
		t.Fatal("the logs did not grow")
	}
	var got []string
	for deadline := time.Now().Add(60 * time.Second); len(got) < len(want) && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		got = readLines(shipped)
	}
	time.Sleep(2 * time.Second) // anything shipped twice would come now
	got = readLines(shipped)
	count := map[string]int{}
	for _, line := range got {
		count[line]++
	}
	for _, line := range want {
		if count[line] != 1 {
			t.Fatalf("shipped %d times (%d lines shipped, %d events): %.200s\n%s", count[line], len(got), len(want), line, stderr.String())
		}
	}
	if len(got) != len(want) {
		t.Fatalf("shipped %d lines, want %d", len(got), len(want))
	}
}

// With --events, one decode of a compressed log proves both sizes: its plaintext's and its
// events'. A log whose compressed stream is damaged (its CRC32) fails both its views with EIO
// and a log line naming it and saying why, as it does without --events, small or large (a
// large one is read again from a checkpoint inside the damaged member); the mount and the
// other log go on.
func TestEventsOfADamagedCompressedLog(t *testing.T) {
	d := makeLogDir(t)
	var large bytes.Buffer
	sample.AuditLog(&large, sample.AuditXML, 8<<20, 5, true)
	damaged := map[string][]byte{
		"audit.20240105T000000.log": d.plain["audit.20240102T000000.log.gz.20240101T000000-1.enc"],
		"audit.20240106T000000.log": large.Bytes(),
	}
	for name, plain := range damaged {
		gz := gzipped(t, plain)
		gz[len(gz)-8] ^= 0xff // the trailer's CRC32
		d.add(t, name+".gz.20240101T000000-1.enc", plain, func(w *bytes.Buffer) {
			aw, _ := crypto.NewAuditWriter(w, crypto.AuditPassword{Password: []byte("audit-pw")}, false)
			aw.Write(gz)
			aw.Close()
		})
	}
	m := mount(t, d.dir, "--keyring", d.keyring, "--events", "--no-size-cache")
	runOK(t, "ls", "-l", m.dir)
	for log := range damaged {
		for _, name := range []string{log + ".ndjson", log} {
			if _, err := os.ReadFile(m.path(name)); !errors.Is(err, syscall.EIO) {
				t.Errorf("%s: %v, want EIO", name, err)
			}
			if logs := m.logs.String(); !strings.Contains(logs, "cannot prove size") || !strings.Contains(logs, log) || !strings.Contains(logs, "CRC32") {
				t.Errorf("after reading %s, no log line names the damaged log and the reason:\n%s", name, logs)
			}
		}
	}
	good := "audit.20240102T000000.log"
	plain := d.plain[good+".gz.20240101T000000-1.enc"]
	want := mysqllogfs(t, nil, "events", "--keyring", d.keyring, filepath.Join(d.dir, good+".gz.20240101T000000-1.enc"))
	if got, err := os.ReadFile(m.path(good + ".ndjson")); err != nil || !bytes.Equal(got, want.stdout) {
		t.Errorf("the other log's events: %d bytes, %v; want %d", len(got), err, len(want.stdout))
	}
	if got, err := os.ReadFile(m.path(good)); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("the other log: %d bytes, %v; want %d", len(got), err, len(plain))
	}
	var st syscall.Stat_t
	if syscall.Stat(m.path(good), &st); st.Size != int64(len(plain)) {
		t.Errorf("the other log's size %d, want %d", st.Size, len(plain))
	}
}

// gzipped is data compressed by gzip(1), one member.
func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	cmd := exec.Command("gzip", "-c")
	cmd.Stdin = bytes.NewReader(data)
	gz, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return gz
}
