package keysrc

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/mysqllogfs/mysqllogfs/crypto/openssl"
)

// MariaDB's file_key_management key file (docs/formats.md section 4): lines "<id>;<hex key>",
// "#" comments, key 1 required; encrypted when it starts with "Salted__" (AES-256-CBC, key and
// IV from EVP_BytesToKey-SHA1 of the filekey, as `openssl enc -aes-256-cbc -md sha1 -k`).

var mariadbBackend = Backend{
	Flag: "mariadb-keys", Env: "MYSQLLOGFS_MARIADB_KEYS", Option: "mariadb_keys", Repeatable: true,
	Usage: "MariaDB file_key_management key file (plain or encrypted)",
	Secret: &Secret{FileFlag: "mariadb-keys-secret-file", FileEnv: "MYSQLLOGFS_MARIADB_KEYS_SECRET_FILE",
		FileOption: "mariadb_keys_secret_file", Env: "MYSQLLOGFS_MARIADB_KEYS_SECRET",
		Usage: "file holding the filekey of an encrypted MariaDB key file"},
	Open: func(paths []string, with Settings) ([]Source, error) {
		return openEach(paths, func(path string) (Source, error) { return OpenMariaDBKeyFile(path, with.Secret) })
	},
}

// OpenMariaDBKeyFile opens a key file; filekey is asked for only when the file is encrypted.
func OpenMariaDBKeyFile(path string, filekey func() ([]byte, error)) (Source, error) {
	return newWatchedFile(path, "file_key_management key file", func(path string) ([]Key, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("MariaDB key file: %w", err)
		}
		defer clear(data)
		if _, salted := openssl.Salt(data); salted {
			if filekey == nil {
				return nil, fmt.Errorf("MariaDB key file %s is encrypted: give its filekey with --mariadb-keys-secret-file or MYSQLLOGFS_MARIADB_KEYS_SECRET", path)
			}
			secret, err := filekey()
			if err != nil {
				return nil, fmt.Errorf("MariaDB key file %s: filekey: %w", path, err)
			}
			plain, err := DecryptMariaDBKeyFile(data, secret)
			clear(secret)
			if err != nil {
				return nil, fmt.Errorf("MariaDB key file %s: %w", path, err)
			}
			defer clear(plain)
			data = plain
		}
		keys, err := ParseMariaDBKeys(data)
		if err != nil {
			return nil, fmt.Errorf("MariaDB key file %s: %w", path, err)
		}
		return keys, nil
	})
}

// DecryptMariaDBKeyFile opens an encrypted key file with its filekey.
func DecryptMariaDBKeyFile(data, filekey []byte) ([]byte, error) {
	salt, ok := openssl.Salt(data)
	if !ok {
		return nil, errors.New("not a Salted__ file")
	}
	key, iv := openssl.BytesToKey(sha1.New, filekey, salt, 32, 16)
	defer clear(key)
	plain, err := openssl.DecryptCBC(key, iv, data[openssl.HeaderSize:])
	if err != nil {
		return nil, errors.New("cannot decrypt: wrong filekey (or a corrupt file)")
	}
	return plain, nil
}

// ParseMariaDBKeys reads the "<id>;<hex>" lines of a key file.
func ParseMariaDBKeys(data []byte) ([]Key, error) {
	var keys []Key
	seen := map[string]bool{}
	s := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; s.Scan(); line++ {
		text := strings.TrimSpace(s.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		id, value, ok := strings.Cut(text, ";")
		n, err := strconv.ParseUint(id, 10, 32)
		if !ok || err != nil || n == 0 {
			return nil, fmt.Errorf("line %d is not \"<key id>;<hex key>\"", line)
		}
		key, err := hex.DecodeString(strings.TrimSpace(value))
		if err != nil || (len(key) != 16 && len(key) != 24 && len(key) != 32) {
			return nil, fmt.Errorf("line %d: key %d is not 16, 24 or 32 bytes of hex", line, n)
		}
		if seen[id] {
			return nil, fmt.Errorf("line %d: key %d given twice", line, n)
		}
		seen[id] = true
		keys = append(keys, Key{ID: strconv.FormatUint(n, 10), Type: "AES", Value: key})
	}
	if !seen["1"] {
		return nil, errors.New("no key 1, which MariaDB requires (and encrypts binlogs with)")
	}
	return keys, nil
}
