package aesmode

import (
	"crypto/aes"
	"crypto/cipher"
	"sync"
)

// CBC decrypts AES-256-CBC. Every plaintext block needs only its own cipher block and the
// one before it, so where the CPU has vector AES, blocks are decrypted sixteen at a time;
// crypto/cipher's CBC decrypter does one at a time. The rest, and every other CPU, use
// crypto/cipher.
type CBC struct {
	block cipher.Block
	vec   *vectorAES // nil where vector AES is not available

	once sync.Once
	key  []byte     // kept until the vector schedule is made from it
	wide *roundKeys // vec's decryption schedule, made on the first run long enough for it
}

// NewCBC returns the cipher of key. The vector schedule waits for a first run of
// vectorMinBlocks or more: a file of many tiny containers, each with its own key, never
// needs it.
func NewCBC(key []byte) (*CBC, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	c := &CBC{block: block}
	if vec := fastestVectorAES(); vec != nil && len(key) == 32 {
		c.vec, c.key = vec, append([]byte(nil), key...)
	}
	return c, nil
}

// vectorMinBlocks is the shortest run worth making the vector schedule for (1 KiB).
const vectorMinBlocks = 64

// expand makes the vector decryption schedule and forgets the key.
func (c *CBC) expand() {
	if c.wide == nil {
		enc := expandKey256(c.key)
		c.wide = decryptionKeys(enc)
		clear(enc[:])
	}
	clear(c.key)
	c.key = nil
}

// Block is the plain AES cipher of the key, for encrypting.
func (c *CBC) Block() cipher.Block { return c.block }

// Decrypt deciphers src, whole blocks that follow the cipher block (or IV) iv, into dst. dst
// and src may overlap entirely or not at all.
func (c *CBC) Decrypt(dst, src []byte, iv [aes.BlockSize]byte) {
	if blocks := len(src) / aes.BlockSize &^ (wideStep - 1); c.vec != nil && blocks >= vectorMinBlocks {
		c.once.Do(c.expand)
		n := blocks * aes.BlockSize
		next := [aes.BlockSize]byte(src[n-aes.BlockSize : n]) // before dst overwrites it
		c.vec.cbcDecrypt(c.wide, &dst[0], &src[0], blocks, &iv)
		dst, src, iv = dst[n:], src[n:], next
	}
	if len(src) > 0 {
		cipher.NewCBCDecrypter(c.block, iv[:]).CryptBlocks(dst, src)
	}
}
