package keysrc_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mysqllogfs/mysqllogfs/keysrc"
	"github.com/mysqllogfs/mysqllogfs/tests"
)

var sampleKeys = []keysrc.Key{
	{ID: "MySQLReplicationKey_u_1", Type: "AES", Value: bytes.Repeat([]byte{0xa1}, 32)},
	{ID: "audit_log-20240101T000000-1", Owner: "audit_log", Type: "SECRET", Value: []byte("pw-one")},
	{ID: "odd", Owner: "someone@localhost", Type: "RSA", Value: []byte{1, 2, 3, 4, 5, 6, 7}},
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func checkKeys(t *testing.T, src keysrc.Source) {
	t.Helper()
	got, err := src.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(sampleKeys) {
		t.Fatalf("%d keys, want %d", len(got), len(sampleKeys))
	}
	for i, k := range sampleKeys {
		if got[i].ID != k.ID || got[i].Owner != k.Owner || got[i].Type != k.Type || !bytes.Equal(got[i].Value, k.Value) {
			t.Fatalf("key %d = %+v, want %+v", i, got[i], k)
		}
	}
	k, err := src.Lookup("audit_log-20240101T000000-1", keysrc.AnyOwner)
	if err != nil || string(k.Value) != "pw-one" {
		t.Fatalf("lookup by ID: %v", err)
	}
	if _, err := src.Lookup("audit_log-20240101T000000-1", ""); !errors.Is(err, keysrc.ErrNotFound) {
		t.Fatalf("lookup with the wrong owner: %v", err)
	}
	if _, err := src.Lookup("absent", keysrc.AnyOwner); !errors.Is(err, keysrc.ErrNotFound) || !strings.Contains(err.Error(), "absent") {
		t.Fatalf("absent key: %v", err)
	}
}

func TestPluginKeyringFixture(t *testing.T) {
	src, err := keysrc.OpenKeyring(filepath.Join(tests.Fixtures(t), "mysql-8.0.22-encrypted", "keyring"), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := src.List()
	if len(keys) != 3 || keys[1].ID != "MySQLReplicationKey_cfe557b7-766c-11eb-afbf-3cfdfed34198_2" || keys[1].Type != "AES" || len(keys[1].Value) != 32 {
		t.Fatalf("keys %+v", keys)
	}
	// The fixture round-trips through the encoder byte for byte.
	again, err := keysrc.EncodePluginKeyring(keys, "LE64", true)
	if err != nil || !bytes.Equal(again, mustRead(t, filepath.Join(tests.Fixtures(t), "mysql-8.0.22-encrypted", "keyring"))) {
		t.Fatalf("re-encoded fixture differs (%v)", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPluginKeyringLayouts(t *testing.T) {
	for _, layout := range []string{"LE64", "LE32", "BE64", "BE32"} {
		for _, v2 := range []bool{true, false} {
			data, err := keysrc.EncodePluginKeyring(sampleKeys, layout, v2)
			if err != nil {
				t.Fatal(err)
			}
			src, err := keysrc.OpenKeyring(write(t, t.TempDir(), "keyring", data), nil)
			if err != nil {
				t.Fatalf("%s v2=%v: %v", layout, v2, err)
			}
			checkKeys(t, src)
		}
	}
}

func TestPluginKeyringDamage(t *testing.T) {
	good, _ := keysrc.EncodePluginKeyring(sampleKeys, "LE64", true)
	v1, _ := keysrc.EncodePluginKeyring(sampleKeys, "LE64", false)
	flipped := append([]byte(nil), good...)
	flipped[60] ^= 1
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"corrupted digest": {flipped, "digest"},
		"truncated record": {append(append([]byte(nil), v1[:len(v1)-20]...), "EOF"...), "truncated"},
		"unknown version":  {append([]byte("Keyring file version:3.0"), good[24:]...), "version"},
		"no EOF":           {v1[:len(v1)-3], "EOF"},
		"header only":      {[]byte("Keyring file version:2.0"), "truncated"},
		"not a keyring":    {[]byte{0x7f, 'E', 'L', 'F', 9, 9, 9}, "migration"},
		"oracle-like blob": {bytes.Repeat([]byte{0x8e, 0x11, 0x02}, 40), "keyring_encrypted_file"},
	} {
		t.Run(name, func(t *testing.T) {
			path := write(t, t.TempDir(), "keyring", c.data)
			_, err := keysrc.OpenKeyring(path, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want an error naming %s and mentioning %q", err, path, c.want)
			}
		})
	}
	empty, err := keysrc.OpenKeyring(write(t, t.TempDir(), "keyring", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := empty.List(); err != nil || len(keys) != 0 {
		t.Fatalf("empty keyring: %v %v", keys, err)
	}
}

// A valid <file>.backup wins, as at server start-up; an invalid one is ignored.
func TestPluginKeyringBackup(t *testing.T) {
	dir := t.TempDir()
	old, _ := keysrc.EncodePluginKeyring(sampleKeys[:1], "LE64", true)
	current, _ := keysrc.EncodePluginKeyring(sampleKeys, "LE64", true)
	path := write(t, dir, "keyring", old)
	write(t, dir, "keyring.backup", current)
	src, err := keysrc.OpenKeyring(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, src)
	write(t, dir, "keyring.backup", current[:50])
	if keys, _ := src.List(); len(keys) != 1 {
		t.Fatalf("with a broken backup: %d keys, want the file's 1", len(keys))
	}
}

// A keyring rewritten on disk (key rotation) is read again.
func TestKeyringReloadsWhenChanged(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "keyring", keysrc.EncodeComponentKeyring(sampleKeys[:1]))
	src, err := keysrc.OpenKeyring(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Lookup("odd", keysrc.AnyOwner); err == nil {
		t.Fatal("found a key not yet written")
	}
	time.Sleep(10 * time.Millisecond)
	write(t, dir, "keyring.new", keysrc.EncodeComponentKeyring(sampleKeys))
	os.Rename(filepath.Join(dir, "keyring.new"), path)
	if _, err := src.Lookup("odd", keysrc.AnyOwner); err != nil {
		t.Fatalf("after rewrite: %v", err)
	}
}

func TestComponentKeyring(t *testing.T) {
	dir := t.TempDir()
	upper := keysrc.EncodeComponentKeyring(sampleKeys)
	src, err := keysrc.OpenKeyring(write(t, dir, "upper", upper), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, src)
	src, err = keysrc.OpenKeyring(write(t, dir, "lower", []byte(strings.ToLower(string(upper)))), nil)
	if err == nil {
		// IDs are lower-cased too by this crude edit; only the values matter here.
		keys, _ := src.List()
		if !bytes.Equal(keys[0].Value, sampleKeys[0].Value) {
			t.Fatal("lower-case hex decoded differently")
		}
	} else {
		t.Fatal(err)
	}
	empty, err := keysrc.OpenKeyring(write(t, dir, "empty", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if keys, _ := empty.List(); len(keys) != 0 {
		t.Fatal("empty component keyring has keys")
	}
	if _, err := keysrc.OpenKeyring(write(t, dir, "bad", []byte(`{"version":"1.0","elements":[{"data_id":"x","data":"zz"}]}`)), nil); err == nil {
		t.Fatal("non-hex data accepted")
	}
}

// Given a data directory, the component's configuration is found and its path followed.
func TestComponentDiscovery(t *testing.T) {
	datadir, keyringDir := t.TempDir(), t.TempDir()
	keyring := write(t, keyringDir, "component_keyring_file", keysrc.EncodeComponentKeyring(sampleKeys))
	write(t, datadir, "component_keyring_file.cnf", []byte(`{"path": "`+keyring+`", "read_only": true}`))
	src, err := keysrc.OpenKeyring(datadir, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, src)
	// A relative path is taken from the configuration file's directory.
	write(t, datadir, "component_keyring_file.cnf", []byte(`{"path": "rel/keys", "read_only": true}`))
	os.Mkdir(filepath.Join(datadir, "rel"), 0o700)
	write(t, filepath.Join(datadir, "rel"), "keys", keysrc.EncodeComponentKeyring(sampleKeys))
	if src, err = keysrc.OpenKeyring(datadir, nil); err != nil {
		t.Fatal(err)
	}
	checkKeys(t, src)
	if _, err := keysrc.OpenKeyring(t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "component_keyring_file.cnf") {
		t.Fatalf("empty data directory: %v", err)
	}
}

func TestPerconaEncryptedKeyring(t *testing.T) {
	data, err := keysrc.EncryptPerconaKeyring(sampleKeys, []byte("keyring-pw"), 1000)
	if err != nil {
		t.Fatal(err)
	}
	path := write(t, t.TempDir(), "percona_keyring", data)
	password := func() ([]byte, error) { return []byte("keyring-pw"), nil }
	src, err := keysrc.OpenKeyring(path, password)
	if err != nil {
		t.Fatal(err)
	}
	checkKeys(t, src)
	if !strings.Contains(src.String(), "32-byte key") {
		t.Fatalf("source %q does not say which derivation worked", src)
	}
	_, err = keysrc.OpenKeyring(path, func() ([]byte, error) { return []byte("wrong"), nil })
	if err == nil || !strings.Contains(err.Error(), "wrong keyring password") || strings.Contains(err.Error(), "keyring-pw") {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := keysrc.OpenKeyring(path, nil); err == nil || !strings.Contains(err.Error(), "--keyring-password-file") {
		t.Fatalf("no password: %v", err)
	}
}

func TestKeyDir(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "audit_log-20240101T000000-1", []byte("pw-one\n"))
	binary := append(bytes.Repeat([]byte{0}, 31), '\n')
	write(t, dir, "MySQLReplicationKey_u_1", binary)
	os.Mkdir(filepath.Join(dir, "..data"), 0o700) // Kubernetes bookkeeping
	src := keysrc.KeyDir(dir)
	if k, err := src.Lookup("audit_log-20240101T000000-1", ""); err != nil || string(k.Value) != "pw-one" {
		t.Fatalf("text value: %q %v", k.Value, err)
	}
	if k, err := src.Lookup("MySQLReplicationKey_u_1", ""); err != nil || !bytes.Equal(k.Value, binary) {
		t.Fatalf("binary value changed: %x %v", k.Value, err)
	}
	for _, id := range []string{"../etc/passwd", "absent", "..data"} {
		if _, err := src.Lookup(id, ""); !errors.Is(err, keysrc.ErrNotFound) {
			t.Fatalf("Lookup(%q): %v", id, err)
		}
	}
	if keys, err := src.List(); err != nil || len(keys) != 2 {
		t.Fatalf("List: %d keys, %v", len(keys), err)
	}
}

func TestKeyCommand(t *testing.T) {
	dir := t.TempDir()
	script := write(t, dir, "fetch", []byte("#!/bin/sh\nfor id; do :; done\ncase \"$id\" in\n  good) echo 'pw-from-vault';;\n"+
		"  slow) sleep 5;;\n  *) echo \"no such secret: $id\" >&2; exit 3;;\nesac\n"))
	os.Chmod(script, 0o755)
	src := keysrc.NewCommand(script+" --flag", 300*time.Millisecond, time.Minute)
	if k, err := src.Lookup("good", ""); err != nil || string(k.Value) != "pw-from-vault" {
		t.Fatalf("good: %q %v", k.Value, err)
	}
	_, err := src.Lookup("absent; touch "+filepath.Join(dir, "pwned"), "")
	if !errors.Is(err, keysrc.ErrNotFound) || !strings.Contains(err.Error(), "status 3") || !strings.Contains(err.Error(), "no such secret") {
		t.Fatalf("absent: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Fatal("the key ID went through the shell")
	}
	start := time.Now()
	if _, err := src.Lookup("slow", ""); err == nil || !strings.Contains(err.Error(), "no answer") || time.Since(start) > 3*time.Second {
		t.Fatalf("slow: %v after %s", err, time.Since(start))
	}
	if strings.Contains(src.String(), "--flag") {
		t.Fatal("String shows the command's arguments")
	}
}

func TestChain(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a", []byte("from-dir"))
	json, _ := keysrc.OpenKeyring(write(t, t.TempDir(), "k", keysrc.EncodeComponentKeyring(sampleKeys)), nil)
	failing := keysrc.NewCommand("exit 1", time.Second, time.Minute)
	chain := keysrc.Chain{failing, json, keysrc.KeyDir(dir)}
	if k, err := chain.Lookup("a", keysrc.AnyOwner); err != nil || string(k.Value) != "from-dir" {
		t.Fatalf("a: %v", err)
	}
	if k, err := chain.Lookup("odd", keysrc.AnyOwner); err != nil || k.Type != "RSA" {
		t.Fatalf("odd: %v", err)
	}
	if _, err := chain.Lookup("none", keysrc.AnyOwner); !errors.Is(err, keysrc.ErrNotFound) {
		t.Fatalf("none: %v", err)
	}
	if keys, err := chain.List(); err != nil || len(keys) != len(sampleKeys)+1 {
		t.Fatalf("List: %d, %v", len(keys), err)
	}
}

// The key command under stress: look-ups of different IDs run at once, a key already fetched
// is answered while other look-ups wait on the command, a key the command did not have is not
// asked for again within the retry interval, and the ID also comes in MYSQLLOGFS_KEY_ID, so
// that an ID starting with "-" need not be parsed from the arguments. Before, the command ran
// under a lock: one at a time, with cache hits waiting behind them.
func TestKeyCommandUnderStress(t *testing.T) {
	dir := t.TempDir()
	script := write(t, dir, "fetch", []byte(`#!/bin/sh
echo "$MYSQLLOGFS_KEY_ID" >> "$0.calls"
case "$MYSQLLOGFS_KEY_ID" in
  known|-dash) echo "key-for-$MYSQLLOGFS_KEY_ID";;
  gate*) touch "$0.$MYSQLLOGFS_KEY_ID"; i=0
         while [ ! -e "$0.open" ] && [ $i -lt 100 ]; do
           [ "$(ls "$0".gate* | wc -l)" -ge 3 ] && touch "$0.open"; sleep 0.05; i=$((i+1)); done
         exit 1;;
  *) exit 1;;
esac
`))
	os.Chmod(script, 0o755)
	src := keysrc.NewCommand(script+" --", 10*time.Second, time.Minute)
	if k, err := src.Lookup("-dash", ""); err != nil || string(k.Value) != "key-for--dash" {
		t.Fatalf("an ID starting with a dash: %q %v", k.Value, err)
	}
	if _, err := src.Lookup("known", ""); err != nil {
		t.Fatal(err)
	}

	// Three look-ups that each wait until all three run at once: they open the gate only if
	// the command runs them in parallel (a lock would make each wait out its 5 s alone).
	var wg sync.WaitGroup
	answered := make(chan error, 1)
	for _, id := range []string{"gate1", "gate2", "gate3"} {
		wg.Add(1)
		go func() { defer wg.Done(); src.Lookup(id, "") }()
	}
	go func() {
		for { // while they run, a cached key is answered at once
			if _, err := os.Stat(script + ".gate1"); err == nil {
				_, err := src.Lookup("known", "")
				answered <- err
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script + ".open"); err == nil {
		t.Log("the cached key was answered only after the gate opened") // allowed, not required
	}
	wg.Wait()
	if _, err := os.Stat(script + ".open"); err != nil {
		t.Fatal("the three look-ups never ran at once")
	}

	for range 3 {
		if _, err := src.Lookup("unknown", ""); !errors.Is(err, keysrc.ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
	}
	calls, _ := os.ReadFile(script + ".calls")
	if n := strings.Count(string(calls), "unknown\n"); n != 1 {
		t.Fatalf("the command was asked %d times for a key it does not have, within the retry interval", n)
	}
	for _, id := range []string{"", "a\x00b"} {
		if _, err := src.Lookup(id, ""); err == nil || !strings.Contains(err.Error(), "invalid key ID") {
			t.Fatalf("Lookup(%q): %v", id, err)
		}
	}
}
