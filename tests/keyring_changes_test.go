package tests

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// keyringKind writes keys in one keyring format; flags are what the mount needs to read it.
type keyringKind struct {
	name  string
	write func(t *testing.T, path string, keys []keysrc.Key)
	flags func(t *testing.T) []string
}

var keyringKinds = []keyringKind{
	{name: "keyring_file", write: func(t *testing.T, path string, keys []keysrc.Key) {
		kr, _ := keysrc.EncodePluginKeyring(keys, "LE64", true)
		replaceFile(t, path, kr)
	}},
	{name: "percona_keyring_encrypted_file", write: func(t *testing.T, path string, keys []keysrc.Key) {
		kr, err := keysrc.EncryptPerconaKeyring(keys, []byte("keyring-pw"), 1000)
		if err != nil {
			t.Fatal(err)
		}
		replaceFile(t, path, kr)
	}, flags: func(t *testing.T) []string {
		pw := filepath.Join(t.TempDir(), "password")
		os.WriteFile(pw, []byte("keyring-pw\n"), 0o600)
		return []string{"--keyring-password-file", pw}
	}},
}

// replaceFile replaces path with data at once, as the server rewrites its keyring.
func replaceFile(t *testing.T, path string, data []byte) {
	if err := os.WriteFile(path+".new", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// The keyring changes under a mount. Removed or overwritten with garbage, the keys already
// read keep working and a key that is nowhere is EACCES (before: ENOENT and EIO). Rewritten
// with more keys, as a server does when it rotates the binlog master key or adds an audit
// password, the new keys are found without a remount. The same for each keyring format.
func TestKeyringChangesWhileMounted(t *testing.T) {
	for _, kind := range keyringKinds {
		t.Run(kind.name, func(t *testing.T) { keyringChangesWhileMounted(t, kind) })
	}
}

func keyringChangesWhileMounted(t *testing.T, kind keyringKind) {
	d := makeLogDir(t)
	first := []keysrc.Key{
		{ID: "MySQLReplicationKey_demo_1", Type: "AES", Value: d.master},
		{ID: "audit_log-20240101T000000-1", Owner: "audit_log", Type: "SECRET", Value: []byte("audit-pw")},
	}
	kind.write(t, d.keyring, first)
	var flags []string
	if kind.flags != nil {
		flags = kind.flags(t)
	}
	var plain bytes.Buffer
	sample.Binlog(&plain, 50<<10, 3, "binlog.000099")
	addBinlog := func(name, keyID string, master []byte) {
		d.add(t, name, plain.Bytes(), func(w *bytes.Buffer) {
			bw, _ := crypto.NewBinlogWriter(w, keyID, master)
			bw.Write(plain.Bytes())
		})
	}
	m := mount(t, d.dir, append([]string{"--keyring", d.keyring}, flags...)...)
	if _, err := os.ReadFile(m.path("binlog.000001")); err != nil {
		t.Fatal(err)
	}
	readable := func(name string) error {
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			var got []byte
			if got, err = os.ReadFile(m.path(name)); err == nil {
				if !bytes.Equal(got, d.plain[name]) {
					return errors.New("wrong bytes")
				}
				return nil
			}
		}
		return err
	}

	os.Remove(d.keyring)
	addBinlog("binlog.000002", "MySQLReplicationKey_demo_1", d.master)
	if err := readable("binlog.000002"); err != nil {
		t.Errorf("a file whose key was read before the keyring was removed: %v", err)
	}
	os.WriteFile(d.keyring, []byte("Keyring file version:2.0 and then garbage"), 0o600)
	addBinlog("binlog.000003", "MySQLReplicationKey_demo_1", d.master)
	if err := readable("binlog.000003"); err != nil {
		t.Errorf("a file whose key was read before the keyring was overwritten with garbage: %v", err)
	}
	addBinlog("binlog.000004", "MySQLReplicationKey_demo_2", bytes.Repeat([]byte{0x42}, 32))
	if _, err := os.ReadFile(m.path("binlog.000004")); !errors.Is(err, syscall.EACCES) {
		t.Errorf("a file whose key is nowhere: %v, want EACCES", err)
	}

	// The server rotates: a second master key and a second audit password join the keyring.
	keys := []keysrc.Key{
		{ID: "MySQLReplicationKey_demo_1", Type: "AES", Value: d.master},
		{ID: "MySQLReplicationKey_demo_2", Type: "AES", Value: bytes.Repeat([]byte{0x42}, 32)},
		{ID: "audit_log-20240101T000000-1", Owner: "audit_log", Type: "SECRET", Value: []byte("audit-pw")},
		{ID: "audit_log-20240201T000000-2", Owner: "audit_log", Type: "SECRET", Value: []byte("audit-pw-2")},
	}
	kind.write(t, d.keyring, keys)
	if err := readable("binlog.000004"); err != nil {
		t.Errorf("a file under the rotated master key: %v", err)
	}
	var audit bytes.Buffer
	sample.AuditLog(&audit, sample.AuditXML, 40<<10, 9, true)
	name := "audit.20240202T000000.log.gz.20240201T000000-2.enc"
	d.add(t, name, audit.Bytes(), func(w *bytes.Buffer) {
		aw, _ := crypto.NewAuditWriter(w, crypto.AuditPassword{Password: []byte("audit-pw-2")}, true)
		aw.Write(audit.Bytes())
		aw.Close()
	})
	d.plain["audit.20240202T000000.log"] = audit.Bytes()
	if err := readable("audit.20240202T000000.log"); err != nil {
		t.Errorf("an audit log under the new password: %v", err)
	}
}

// MariaDB's key file removed, then overwritten with garbage, under a mount of the real
// MariaDB binlogs: the key already read keeps decrypting the other binlogs.
func TestMariaDBKeyFileChangesWhileMounted(t *testing.T) {
	fixtures := filepath.Join(Fixtures(t), "mariadb-10.11-encrypted")
	keys := filepath.Join(t.TempDir(), "keys.txt")
	original, _ := os.ReadFile(filepath.Join(fixtures, "keys", "keys.txt"))
	os.WriteFile(keys, original, 0o600)
	want := map[string][]byte{}
	for _, name := range []string{"mariadb-bin.000001", "mariadb-bin.000002", "mariadb-bin.000003"} {
		r := mysqllogfs(t, nil, "cat", "--mariadb-keys", keys, filepath.Join(fixtures, "aes_cbc", name))
		if r.code != 0 {
			t.Fatalf("cat %s: %s", name, r.stderr)
		}
		want[name] = r.stdout
	}
	m := mount(t, filepath.Join(fixtures, "aes_cbc"), "--mariadb-keys", keys)
	check := func(name, when string) {
		got, err := os.ReadFile(m.path(name))
		if err != nil || !bytes.Equal(got, want[name]) {
			t.Errorf("%s %s: %d bytes, %v", name, when, len(got), err)
		}
	}
	check("mariadb-bin.000001", "with the key file")
	os.Remove(keys)
	check("mariadb-bin.000002", "after the key file was removed")
	os.WriteFile(keys, []byte("1;not hex at all\n"), 0o600)
	check("mariadb-bin.000003", "after the key file was overwritten with garbage")
}
