// Package openssl implements the parts of OpenSSL's `enc` file container that MySQL, Percona and
// MariaDB reuse: the "Salted__" header, EVP_BytesToKey and PBKDF2 key derivation, and PKCS#7
// padding. It knows nothing of MySQL; callers decide which derivation a file uses.
package openssl

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha256"
	"errors"
	"hash"
)

// Magic opens every salted OpenSSL `enc` file: "Salted__" followed by an 8-byte salt.
const Magic = "Salted__"

// HeaderSize is the size of the magic and the salt that follows it.
const HeaderSize = 16

// SaltSize is the size of the salt.
const SaltSize = HeaderSize - len(Magic)

// ErrBadPadding means the last cipher block did not end in valid PKCS#7 padding: the key is
// wrong, or the file is truncated or corrupt.
var ErrBadPadding = errors.New("invalid PKCS#7 padding")

// Salt returns the salt of a salted header, or false when header does not start with one.
func Salt(header []byte) ([]byte, bool) {
	if len(header) < HeaderSize || !bytes.Equal(header[:8], []byte(Magic)) {
		return nil, false
	}
	return header[8:HeaderSize], true
}

// BytesToKey is OpenSSL's EVP_BytesToKey with an iteration count of 1, the derivation
// `openssl enc -md HASH` uses without -pbkdf2: D_i = HASH(D_{i-1} || pass || salt).
func BytesToKey(newHash func() hash.Hash, pass, salt []byte, keyLen, ivLen int) (key, iv []byte) {
	var out, prev []byte
	h := newHash()
	for len(out) < keyLen+ivLen {
		h.Reset()
		h.Write(prev)
		h.Write(pass)
		h.Write(salt)
		prev = h.Sum(nil)
		out = append(out, prev...)
	}
	return out[:keyLen], out[keyLen : keyLen+ivLen]
}

// PBKDF2SHA256 derives key and IV the way `openssl enc -pbkdf2 -iter N -md sha256` does: one
// PBKDF2-HMAC-SHA256 output of keyLen+ivLen bytes, split in two.
func PBKDF2SHA256(pass, salt []byte, iterations, keyLen, ivLen int) (key, iv []byte, err error) {
	out, err := pbkdf2.Key(sha256.New, string(pass), salt, iterations, keyLen+ivLen)
	if err != nil {
		return nil, nil, err
	}
	return out[:keyLen], out[keyLen:], nil
}

// PaddingLen returns the length of the PKCS#7 padding that ends the decrypted block last.
func PaddingLen(last []byte, blockSize int) (int, error) {
	if len(last) == 0 || len(last)%blockSize != 0 {
		return 0, ErrBadPadding
	}
	n := int(last[len(last)-1])
	if n == 0 || n > blockSize {
		return 0, ErrBadPadding
	}
	for _, b := range last[len(last)-n:] {
		if int(b) != n {
			return 0, ErrBadPadding
		}
	}
	return n, nil
}

// DecryptCBC decrypts a whole AES-CBC message and strips its PKCS#7 padding. It is for small
// documents such as key files; large files are decrypted block by block elsewhere.
func DecryptCBC(key, iv, ciphertext []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) == 0 || len(ciphertext)%aes.BlockSize != 0 {
		return nil, ErrBadPadding
	}
	plain := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ciphertext)
	n, err := PaddingLen(plain[len(plain)-aes.BlockSize:], aes.BlockSize)
	if err != nil {
		return nil, err
	}
	return plain[:len(plain)-n], nil
}

// EncryptCBC pads plaintext with PKCS#7 and encrypts it with AES-CBC. The project's tests and
// demo use it to write files the way the servers do.
func EncryptCBC(key, iv, plaintext []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	n := aes.BlockSize - len(plaintext)%aes.BlockSize
	padded := append(append([]byte(nil), plaintext...), bytes.Repeat([]byte{byte(n)}, n)...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(padded, padded)
	return padded, nil
}
