package tests

import (
	"bytes"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// The keyring changes under a mount. Removed or overwritten with garbage, the keys already
// read keep working and a key that is nowhere is EACCES (before: ENOENT and EIO). Rewritten
// with more keys, as a server does when it rotates the binlog master key or adds an audit
// password, the new keys are found without a remount.
func TestKeyringChangesWhileMounted(t *testing.T) {
	d := makeLogDir(t)
	var plain bytes.Buffer
	sample.Binlog(&plain, 50<<10, 3, "binlog.000099")
	addBinlog := func(name, keyID string, master []byte) {
		d.add(t, name, plain.Bytes(), func(w *bytes.Buffer) {
			bw, _ := crypto.NewBinlogWriter(w, keyID, master)
			bw.Write(plain.Bytes())
		})
	}
	m := mount(t, d.dir, "--keyring", d.keyring)
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
	kr, _ := keysrc.EncodePluginKeyring(keys, "LE64", true)
	os.WriteFile(d.keyring+".new", kr, 0o600)
	os.Rename(d.keyring+".new", d.keyring)
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
