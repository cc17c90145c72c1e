package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// cat, inspect, verify and the mount give one verdict on each file, for every kind of file
// in every state: whole, active (still being written), damaged, cut short, key missing. A
// file served is served with the same bytes by cat and by the mount.
func TestCommandsAndMountAgree(t *testing.T) {
	d := makeLogDir(t)
	mariadb := filepath.Join(Fixtures(t), "mariadb-10.11-encrypted")
	copyFile(t, filepath.Join(mariadb, "aes_cbc", "mariadb-bin.000002"), filepath.Join(d.dir, "mariadb-bin.000002"))
	encAudit := func(plain []byte, compress, close bool) []byte {
		var b bytes.Buffer
		w, _ := crypto.NewAuditWriter(&b, crypto.AuditPassword{Password: []byte("audit-pw")}, compress)
		w.Write(plain)
		if close {
			w.Close()
		}
		return b.Bytes()
	}
	var xml, jsonl bytes.Buffer
	sample.AuditLog(&xml, sample.AuditXML, 200<<10, 7, true)
	sample.AuditLog(&jsonl, sample.AuditJSON, 100<<10, 8, false)
	rotated := encAudit(xml.Bytes(), true, true)
	var binlog bytes.Buffer
	bw, _ := crypto.NewBinlogWriter(&binlog, "MySQLReplicationKey_absent_1", d.master)
	bw.Write(sample.BinlogMagic)
	gz := gzipMembers(t, xml.Bytes())
	files := map[string][]byte{
		"audit.20240103T000000.log.gz.20240101T000000-1.enc": rotated[:len(rotated)-5],                  // cut short
		"audit.20240104T000000.log.20240101T000000-1.enc":    encAudit(jsonl.Bytes(), false, false),     // rotated, never closed
		"audit.20240105T000000.log.gz.20240101T000000-9.enc": encAudit(xml.Bytes(), true, true),         // key missing
		"audit.log.20240101T000000-1.enc":                    encAudit(jsonl.Bytes(), false, false),     // active
		"audit_filter.log.gz.20240101T000000-1.enc":          encAudit(xml.Bytes(), true, false),        // active, compressed
		"audit.20240106T000000.log.gz":                       gz,                                        // whole
		"audit.20240107T000000.log.gz":                       gz[:len(gz)/2],                            // cut short
		"binlog.000002":                                      binlog.Bytes(),                            // key missing
		"binlog.000003":                                      append([]byte{0xfd, 'b', 'i', 'n', 1}, 7), // header cut short
	}
	for name, data := range files {
		os.WriteFile(filepath.Join(d.dir, name), data, 0o640)
	}
	want := map[string]string{
		"binlog.000001": "ok", "audit.20240102T000000.log.gz.20240101T000000-1.enc": "ok",
		"mariadb-bin.000002": "ok", "audit.20240106T000000.log.gz": "ok",
		"audit.log.20240101T000000-1.enc": "unfinished", "audit_filter.log.gz.20240101T000000-1.enc": "unfinished",
		"audit.20240103T000000.log.gz.20240101T000000-1.enc": "corrupt", "audit.20240104T000000.log.20240101T000000-1.enc": "corrupt",
		"audit.20240107T000000.log.gz": "corrupt", "binlog.000003": "corrupt",
		"audit.20240105T000000.log.gz.20240101T000000-9.enc": "missing key", "binlog.000002": "missing key",
	}
	keyFlags := []string{"--keyring", d.keyring, "--mariadb-keys", filepath.Join(mariadb, "keys", "keys.txt")}

	var reports []struct{ Path, Status string }
	inspect := mysqllogfs(t, nil, append(append([]string{"inspect", "--json"}, keyFlags...), d.dir)...)
	if err := json.Unmarshal(inspect.stdout, &reports); err != nil {
		t.Fatalf("inspect: %v\n%s", err, inspect.stdout)
	}
	inspected := map[string]string{}
	for _, r := range reports {
		inspected[filepath.Base(r.Path)] = r.Status
	}
	verify := mysqllogfs(t, nil, append(append([]string{"verify"}, keyFlags...), d.dir)...)
	verified := map[string]string{}
	for _, line := range strings.Split(string(verify.stdout), "\n") {
		if rest, ok := strings.CutPrefix(line, "ok   "); ok {
			verified[filepath.Base(strings.Fields(rest)[0])] = "served"
			if strings.Contains(rest, "unfinished") {
				verified[filepath.Base(strings.Fields(rest)[0])] = "served, unfinished"
			}
		} else if rest, ok := strings.CutPrefix(line, "FAIL "); ok {
			path, status, _ := strings.Cut(rest, ": ")
			verified[filepath.Base(path)] = crypto.Status(statusError(status))
		}
	}
	m := mount(t, d.dir, keyFlags...)

	for name, class := range want {
		served := class == "ok" || class == "unfinished"
		if inspected[name] != class {
			t.Errorf("%s: inspect says %q, want %q", name, inspected[name], class)
		}
		wantVerify := map[string]string{"ok": "served", "unfinished": "served, unfinished"}[class]
		if wantVerify == "" {
			wantVerify = class
		}
		if v := verified[name]; v != wantVerify {
			t.Errorf("%s: verify says %q, want %q", name, v, wantVerify)
		}
		cat := mysqllogfs(t, nil, append(append([]string{"cat"}, keyFlags...), filepath.Join(d.dir, name))...)
		if served != (cat.code == 0) || !served && !strings.Contains(string(cat.stderr), class) {
			t.Errorf("%s: cat exit %d (%s), want %s", name, cat.code, bytes.TrimSpace(cat.stderr), class)
		}
		viewed, err := os.ReadFile(m.path(crypto.PlainName(name)))
		var errno syscall.Errno
		errors.As(err, &errno)
		switch {
		case served && (err != nil || !bytes.Equal(viewed, cat.stdout)):
			t.Errorf("%s: the mount gave %d bytes (%v), cat %d, want the same bytes", name, len(viewed), err, len(cat.stdout))
		case class == "missing key" && errno != syscall.EACCES, class == "corrupt" && errno != syscall.EIO:
			t.Errorf("%s: reading through the mount: %v, want %s", name, err, class)
		}
		if served && len(cat.stdout) == 0 {
			t.Errorf("%s: served, but empty", name)
		}
	}
}

// statusError turns a status line back into an error Status can classify.
func statusError(status string) error {
	for _, e := range []error{crypto.ErrMissingKey, crypto.ErrWrongKey, crypto.ErrCorrupt, crypto.ErrUnsupported} {
		if strings.HasPrefix(status, e.Error()) {
			return e
		}
	}
	return errors.New(status)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o640); err != nil {
		t.Fatal(err)
	}
}
