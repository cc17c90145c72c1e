package tests

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
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

// Every command, and a mount at debug level read through completely, with keys from an
// encrypted keyring, a key directory and a key command: no key or password appears in any
// output, log, manifest or attribute, raw or encoded, nor in the mount's argv.
func TestNoSecretLeaks(t *testing.T) {
	d := makeLogDir(t)
	secrets := map[string][]byte{"binlog master key": d.master, "audit password": []byte("audit-pw")}

	// A Percona encrypted keyring holding the master key, its password in a file.
	keyringPassword := []byte("percona-keyring-pw-7781")
	secrets["keyring password"] = keyringPassword
	enc, _ := keysrc.EncryptPerconaKeyring([]keysrc.Key{{ID: "MySQLReplicationKey_demo_1", Type: "AES", Value: d.master}}, keyringPassword, 1000)
	work := t.TempDir()
	percona := filepath.Join(work, "percona-keyring")
	passwordFile := filepath.Join(work, "keyring-password")
	os.WriteFile(percona, enc, 0o600)
	os.WriteFile(passwordFile, keyringPassword, 0o600)
	// A key directory holding the audit password, and a command for a second audit password.
	keyDir := filepath.Join(work, "keys")
	os.Mkdir(keyDir, 0o700)
	os.WriteFile(filepath.Join(keyDir, "audit_log-20240101T000000-1"), []byte("audit-pw\n"), 0o600)
	commandPassword := []byte("from-the-key-command-5521")
	secrets["command password"] = commandPassword
	script := filepath.Join(work, "fetch-key")
	os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = audit_log-20240101T000000-2 ] && echo "+string(commandPassword)+"\n"), 0o700)
	var json bytes.Buffer
	sample.AuditLog(&json, sample.AuditJSON, 100<<10, 5, true)
	d.add(t, "audit.20240103T000000.log.20240101T000000-2.enc", json.Bytes(), func(w *bytes.Buffer) {
		aw, _ := crypto.NewAuditWriter(w, crypto.AuditPassword{Password: commandPassword}, false)
		aw.Write(json.Bytes())
		aw.Close()
	})
	// Failures log too: a wrong key and a missing one.
	d.add(t, "binlog.000097", nil, func(w *bytes.Buffer) {
		bw, _ := crypto.NewBinlogWriter(w, "MySQLReplicationKey_demo_1", bytes.Repeat([]byte{7}, 32))
		bw.Write(d.plain["binlog.000001"])
	})
	d.add(t, "binlog.000096", nil, func(w *bytes.Buffer) {
		bw, _ := crypto.NewBinlogWriter(w, "MySQLReplicationKey_gone_1", d.master)
		bw.Write(d.plain["binlog.000001"])
	})

	env := []string{"MYSQLLOGFS_LOG_LEVEL=debug", "MYSQLLOGFS_KEY_COMMAND=" + script}
	flags := []string{"--keyring", percona, "--keyring-password-file", passwordFile, "--key-dir", keyDir}
	var seen bytes.Buffer
	files, _ := filepath.Glob(filepath.Join(d.dir, "*"))
	manifest := filepath.Join(work, "manifest.json")
	for _, args := range [][]string{
		append(append([]string{"cat"}, flags...), files...),
		append(append([]string{"inspect", "--json"}, flags...), d.dir),
		append([]string{"keys", "--json"}, flags...),
		append(append([]string{"verify", "--manifest", manifest}, flags...), d.dir),
	} {
		r := mysqllogfs(t, env, args...)
		if args[0] != "cat" {
			seen.Write(r.stdout) // cat's stdout is the plaintext itself
		}
		seen.Write(r.stderr)
	}
	m, _ := os.ReadFile(manifest)
	seen.Write(m)

	mnt := mount(t, d.dir, append(flags, "--log-level", "debug")...)
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", mnt.cmd.Process.Pid))
	seen.Write(cmdline)
	out, _ := exec.Command("sh", "-c", "ls -laR "+mnt.dir+"; cat "+mnt.dir+"/* >/dev/null; getfattr -R -d -m - "+mnt.dir).CombinedOutput()
	seen.Write(out)
	mnt.unmount()
	seen.Write([]byte(mnt.logs.String()))

	if !strings.Contains(seen.String(), "opened") || !strings.Contains(seen.String(), "wrong key") {
		t.Fatalf("the debug log is not there to search:\n%.3000s", seen.String())
	}
	for what, secret := range secrets {
		for _, form := range []string{string(secret), hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)),
			base64.StdEncoding.EncodeToString(secret)} {
			if bytes.Contains(seen.Bytes(), []byte(form)) {
				t.Errorf("the %s appears in the output (as %q)", what, form)
			}
		}
	}
}
