package tests

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

type result struct {
	stdout, stderr []byte
	code           int
}

// mysqllogfs runs the built binary with args and extra environment.
func mysqllogfs(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout.Bytes(), stderr.Bytes(), code}
}

func TestCatFixture(t *testing.T) {
	dir := filepath.Join(Fixtures(t), "mysql-8.0.22-encrypted")
	want, _ := os.ReadFile(filepath.Join(dir, "binlog.decrypted"))
	r := mysqllogfs(t, nil, "cat", "--keyring", filepath.Join(dir, "keyring"), filepath.Join(dir, "binlog.encrypted"))
	if r.code != 0 || !bytes.Equal(r.stdout, want) || len(r.stderr) != 0 {
		t.Fatalf("exit %d, %d bytes, stderr %q", r.code, len(r.stdout), r.stderr)
	}
	// The same through the environment.
	r = mysqllogfs(t, []string{"MYSQLLOGFS_KEYRING=" + filepath.Join(dir, "keyring")}, "cat", filepath.Join(dir, "binlog.encrypted"))
	if r.code != 0 || !bytes.Equal(r.stdout, want) {
		t.Fatalf("from MYSQLLOGFS_KEYRING: exit %d, stderr %q", r.code, r.stderr)
	}
}

// logDir is a directory of logs in every state a user meets, with its keyring.
type logDir struct {
	dir, keyring string
	plain        map[string][]byte // source name -> expected plaintext
	master       []byte
}

func makeLogDir(t *testing.T) logDir {
	t.Helper()
	d := logDir{dir: t.TempDir(), plain: map[string][]byte{}, master: bytes.Repeat([]byte{0x3c}, 32)}
	keys := []keysrc.Key{
		{ID: "MySQLReplicationKey_demo_1", Type: "AES", Value: d.master},
		{ID: "audit_log-20240101T000000-1", Owner: "audit_log", Type: "SECRET", Value: []byte("audit-pw")},
	}
	kr, _ := keysrc.EncodePluginKeyring(keys, "LE64", true)
	d.keyring = filepath.Join(t.TempDir(), "keyring")
	os.WriteFile(d.keyring, kr, 0o600)

	var binlog bytes.Buffer
	sample.Binlog(&binlog, 100<<10, 1, "binlog.000002")
	d.add(t, "binlog.000001", binlog.Bytes(), func(w *bytes.Buffer) {
		bw, _ := crypto.NewBinlogWriter(w, "MySQLReplicationKey_demo_1", d.master)
		bw.Write(binlog.Bytes())
	})
	var audit bytes.Buffer
	sample.AuditLog(&audit, sample.AuditXML, 300<<10, 2, true)
	d.add(t, "audit.20240102T000000.log.gz.20240101T000000-1.enc", audit.Bytes(), func(w *bytes.Buffer) {
		aw, _ := crypto.NewAuditWriter(w, crypto.AuditPassword{Password: []byte("audit-pw")}, true)
		aw.Write(audit.Bytes())
		aw.Close()
	})
	return d
}

func (d logDir) add(t *testing.T, name string, plain []byte, encrypt func(*bytes.Buffer)) {
	var enc bytes.Buffer
	encrypt(&enc)
	if err := os.WriteFile(filepath.Join(d.dir, name), enc.Bytes(), 0o640); err != nil {
		t.Fatal(err)
	}
	d.plain[name] = plain
}

// A failing file writes nothing to stdout and one line naming it to stderr; the others work.
func TestCatFailures(t *testing.T) {
	d := makeLogDir(t)
	bin := filepath.Join(d.dir, "binlog.000001")
	audit := filepath.Join(d.dir, "audit.20240102T000000.log.gz.20240101T000000-1.enc")
	otherKeys := filepath.Join(t.TempDir(), "other")
	os.WriteFile(otherKeys, keysrc.EncodeComponentKeyring([]keysrc.Key{{ID: "MySQLReplicationKey_demo_1", Value: bytes.Repeat([]byte{1}, 32)}}), 0o600)

	r := mysqllogfs(t, nil, "cat", "--keyring", otherKeys, bin, audit)
	if r.code == 0 || len(r.stdout) != 0 {
		t.Fatalf("exit %d with %d bytes on stdout", r.code, len(r.stdout))
	}
	lines := strings.Split(strings.TrimSpace(string(r.stderr)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], bin) || !strings.Contains(lines[0], "wrong key") ||
		!strings.Contains(lines[1], audit) || !strings.Contains(lines[1], "missing key") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}

	r = mysqllogfs(t, nil, "cat", "--keyring", d.keyring, filepath.Join(d.dir, "absent"), bin, audit)
	want := append(append([]byte(nil), d.plain["binlog.000001"]...), d.plain["audit.20240102T000000.log.gz.20240101T000000-1.enc"]...)
	if r.code == 0 || !bytes.Equal(r.stdout, want) || strings.Count(string(r.stderr), "\n") != 1 {
		t.Fatalf("exit %d, %d bytes (want %d), stderr %q", r.code, len(r.stdout), len(want), r.stderr)
	}
}

func TestInspect(t *testing.T) {
	d := makeLogDir(t)
	// A wrong-key file, a corrupt one and an unfinished one beside the good ones.
	d.add(t, "binlog.000002", nil, func(w *bytes.Buffer) {
		bw, _ := crypto.NewBinlogWriter(w, "MySQLReplicationKey_absent_1", d.master)
		bw.Write(sample.BinlogMagic)
	})
	os.WriteFile(filepath.Join(d.dir, "audit.log.gz.20240101T000000-1.enc"), []byte("this is not an OpenSSL container at all"), 0o640)
	var unfinished bytes.Buffer
	aw, _ := crypto.NewAuditWriter(&unfinished, crypto.AuditPassword{Password: []byte("audit-pw")}, false)
	sample.AuditLog(aw, sample.AuditJSON, 50<<10, 3, false)
	os.WriteFile(filepath.Join(d.dir, "audit.log.20240101T000000-1.enc"), unfinished.Bytes(), 0o640)
	os.WriteFile(filepath.Join(d.dir, "binlog.index"), []byte("./binlog.000001\n"), 0o640)

	r := mysqllogfs(t, nil, "inspect", "--json", "--keyring", d.keyring, d.dir)
	if r.code == 0 {
		t.Fatal("inspect succeeded with failing files")
	}
	var reports []struct {
		Path, Kind, Status, Reason string
		PlainName                  string `json:"plain_name"`
		KeyFound                   *bool  `json:"key_found"`
		Size                       *int64 `json:"plaintext_size"`
	}
	if err := json.Unmarshal(r.stdout, &reports); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	got := map[string]string{}
	for _, rep := range reports {
		got[filepath.Base(rep.Path)] = rep.Status
		if want, ok := d.plain[filepath.Base(rep.Path)]; ok && len(want) > 0 && (rep.Size == nil || *rep.Size != int64(len(want))) {
			t.Errorf("%s: size %v, want %d", rep.Path, rep.Size, len(want))
		}
		if filepath.Base(rep.Path) == "binlog.000002" && (rep.KeyFound == nil || *rep.KeyFound) {
			t.Errorf("binlog.000002: key_found %v", rep.KeyFound)
		}
	}
	want := map[string]string{
		"binlog.000001": "ok", "audit.20240102T000000.log.gz.20240101T000000-1.enc": "ok",
		"binlog.000002": "missing key", "audit.log.gz.20240101T000000-1.enc": "corrupt",
		"audit.log.20240101T000000-1.enc": "unfinished", "binlog.index": "ok",
	}
	for name, status := range want {
		if got[name] != status {
			t.Errorf("%s: status %q, want %q", name, got[name], status)
		}
	}
}

// keys shows IDs, owners, types and lengths, never a value, in any encoding.
func TestKeysNeverShowsValues(t *testing.T) {
	d := makeLogDir(t)
	for _, args := range [][]string{{"keys", "--keyring", d.keyring}, {"keys", "--json", "--keyring", d.keyring}} {
		r := mysqllogfs(t, nil, args...)
		out := string(r.stdout)
		if r.code != 0 || !strings.Contains(out, "MySQLReplicationKey_demo_1") || !strings.Contains(out, "32") || !strings.Contains(out, "audit_log") {
			t.Fatalf("exit %d: %s %s", r.code, out, r.stderr)
		}
		for _, secret := range []string{string(d.master), hex.EncodeToString(d.master), strings.ToUpper(hex.EncodeToString(d.master)), "audit-pw"} {
			if strings.Contains(out, secret) {
				t.Fatalf("keys output holds a secret: %s", out)
			}
		}
	}
}

// inspect says what is wrong and where: a log whose right key decrypts data that is not gzip
// is corrupt, not "wrong key"; a damaged second container is named by its offset; a name with
// a newline is quoted, so that the table keeps one line per file.
func TestInspectNamesTheDamage(t *testing.T) {
	d := makeLogDir(t)
	pw := crypto.AuditPassword{Password: []byte("audit-pw")}
	var notGzip bytes.Buffer
	w, _ := crypto.NewAuditWriter(&notGzip, pw, false)
	w.Write(bytes.Repeat([]byte{0x07}, 5000)) // neither gzip nor text, under the right key
	w.Close()
	os.WriteFile(filepath.Join(d.dir, "audit.20240109T000000.log.gz.20240101T000000-1.enc"), notGzip.Bytes(), 0o640)
	var two bytes.Buffer
	w, _ = crypto.NewAuditWriter(&two, pw, false)
	w.Write([]byte("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<AUDIT>\n</AUDIT>\n"))
	w.Close()
	first := two.Len()
	two.Write([]byte("Salted__1234")) // a second container cut inside its header
	os.WriteFile(filepath.Join(d.dir, "audit.20240110T000000.log.20240101T000000-1.enc"), two.Bytes(), 0o640)
	os.WriteFile(filepath.Join(d.dir, "odd\nname.txt"), []byte("x"), 0o640)

	r := mysqllogfs(t, nil, "inspect", "--keyring", d.keyring, d.dir)
	out := string(r.stdout)
	for _, c := range []struct{ name, want string }{
		{"audit.20240109T000000.log.gz.20240101T000000-1.enc", "corrupt: the password decrypts the file"},
		{"audit.20240110T000000.log.20240101T000000-1.enc", fmt.Sprintf("at byte %d", first)},
	} {
		line := lineContaining(out, c.name)
		if !strings.Contains(line, c.want) {
			t.Errorf("%s: %q, want it to say %q", c.name, line, c.want)
		}
	}
	if !strings.Contains(out, `"`+filepath.Join(d.dir, "odd\\nname.txt")+`"`) {
		t.Errorf("the name with a newline is not quoted:\n%s", out)
	}
	if lines := strings.Count(strings.TrimSpace(out), "\n") + 1; lines != 1+len(mustReadDir(t, d.dir)) {
		t.Errorf("%d lines for %d files:\n%s", lines, len(mustReadDir(t, d.dir)), out)
	}
}

func lineContaining(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func mustReadDir(t *testing.T, dir string) []os.DirEntry {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}
