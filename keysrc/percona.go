package keysrc

import (
	"crypto/aes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/mysqllogfs/mysqllogfs/crypto/openssl"
)

// Percona's component_percona_keyring_encrypted_file (docs/formats.md section 2.3): a version
// byte, a 32-byte salt, a big-endian PBKDF2 iteration count, a 16-byte IV, then the component
// keyring JSON in AES-256-CBC with PKCS#7 padding.
const (
	perconaVersion    = 0x01
	perconaSaltLen    = 32
	perconaHeaderSize = 1 + perconaSaltLen + 4 + aes.BlockSize
	perconaMaxIter    = 10_000_000
)

type perconaHeader struct {
	salt       []byte
	iterations int
	iv         []byte
	ciphertext []byte
}

func parsePerconaHeader(data []byte) (perconaHeader, error) {
	if len(data) < perconaHeaderSize+aes.BlockSize || data[0] != perconaVersion ||
		(len(data)-perconaHeaderSize)%aes.BlockSize != 0 {
		return perconaHeader{}, errors.New("not a Percona encrypted keyring (version 1, salt, iterations, IV, AES-CBC data)")
	}
	iter := binary.BigEndian.Uint32(data[1+perconaSaltLen:])
	if iter == 0 || iter > perconaMaxIter {
		return perconaHeader{}, fmt.Errorf("implausible PBKDF2 iteration count %d", iter)
	}
	return perconaHeader{
		salt:       data[1 : 1+perconaSaltLen],
		iterations: int(iter),
		iv:         data[1+perconaSaltLen+4 : perconaHeaderSize],
		ciphertext: data[perconaHeaderSize:],
	}, nil
}

func looksLikePerconaEncrypted(data []byte) bool {
	_, err := parsePerconaHeader(data)
	return err == nil
}

// The key length of Percona's derivation is unconfirmed (formats.md): the 32-byte key with the
// header's IV is tried first, then a 48-byte derivation whose last 16 bytes are the IV.
const (
	perconaKDF32 = "PBKDF2 32-byte key, IV from the header"
	perconaKDF48 = "PBKDF2 48-byte key and IV"
)

// DecryptPerconaKeyring returns the keys and which derivation opened the file.
func DecryptPerconaKeyring(data, password []byte) ([]Key, string, error) {
	h, err := parsePerconaHeader(data)
	if err != nil {
		return nil, "", err
	}
	key, iv, err := openssl.PBKDF2SHA256(password, h.salt, h.iterations, 32, 16)
	if err != nil {
		return nil, "", err
	}
	attempts := []struct {
		name    string
		key, iv []byte
	}{{perconaKDF32, key, h.iv}, {perconaKDF48, key, iv}}
	defer clear(key)
	for _, a := range attempts {
		plain, err := openssl.DecryptCBC(a.key, a.iv, h.ciphertext)
		if err != nil {
			continue
		}
		keys, err := ParseComponentKeyring(plain)
		clear(plain) // the keyring's JSON, every key in hex
		if err == nil {
			return keys, a.name, nil
		}
	}
	return nil, "", errors.New("cannot decrypt: wrong keyring password (or a corrupt file)")
}

// EncryptPerconaKeyring writes keys as Percona's encrypted component does, with the 32-byte
// derivation. It exists for tests and the demo.
func EncryptPerconaKeyring(keys []Key, password []byte, iterations int) ([]byte, error) {
	header := make([]byte, perconaHeaderSize)
	header[0] = perconaVersion
	rand.Read(header[1 : 1+perconaSaltLen])
	binary.BigEndian.PutUint32(header[1+perconaSaltLen:], uint32(iterations))
	iv := header[1+perconaSaltLen+4:]
	rand.Read(iv)
	key, _, err := openssl.PBKDF2SHA256(password, header[1:1+perconaSaltLen], iterations, 32, 16)
	if err != nil {
		return nil, err
	}
	ct, err := openssl.EncryptCBC(key, iv, EncodeComponentKeyring(keys))
	if err != nil {
		return nil, err
	}
	return append(header, ct...), nil
}

func newPerconaKeyring(path string, password func() ([]byte, error)) (Source, error) {
	name := "percona_keyring_encrypted_file"
	var kdf string
	w, err := newWatchedFile(path, name, func(path string) ([]Key, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		if password == nil {
			return nil, fmt.Errorf("keyring %s is encrypted (Percona): give its password with --keyring-password-file or MYSQLLOGFS_KEYRING_PASSWORD", path)
		}
		pass, err := password()
		if err != nil {
			return nil, fmt.Errorf("keyring %s: password: %w", path, err)
		}
		keys, used, err := DecryptPerconaKeyring(data, pass)
		clear(pass)
		if err != nil {
			return nil, fmt.Errorf("keyring %s: %w", path, err)
		}
		kdf = used
		return keys, nil
	})
	if err != nil {
		return nil, err
	}
	w.format = fmt.Sprintf("%s (%s)", name, kdf)
	return w, nil
}
