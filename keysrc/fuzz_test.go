package keysrc_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mysqllogfs/mysqllogfs/keysrc"
	"github.com/mysqllogfs/mysqllogfs/tests"
)

func FuzzParsePluginKeyring(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join(tests.Fixtures(f), "mysql-8.0.22-encrypted", "keyring")); err == nil {
		f.Add(b)
	}
	for _, layout := range []string{"LE64", "LE32", "BE64", "BE32"} {
		b, _ := keysrc.EncodePluginKeyring(sampleKeys, layout, layout == "LE64")
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := keysrc.ParsePluginKeyring(b)
		if err == nil {
			for _, k := range keys {
				if len(k.ID)+len(k.Value) > len(b) {
					t.Fatal("decoded more than the file holds")
				}
			}
		}
	})
}

func FuzzParseComponentKeyring(f *testing.F) {
	f.Add(keysrc.EncodeComponentKeyring(sampleKeys))
	f.Add([]byte(`{"version":"1.0","elements":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) { keysrc.ParseComponentKeyring(b) })
}

func FuzzDecryptPerconaKeyring(f *testing.F) {
	b, _ := keysrc.EncryptPerconaKeyring(sampleKeys, []byte("pw"), 1)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 36 {
			b[33], b[34], b[35] = 0, 0, 0 // at most 255 PBKDF2 iterations: fuzz the parser, not the KDF
		}
		keysrc.DecryptPerconaKeyring(b, []byte("pw"))
	})
}
