package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"

	"github.com/mysqllogfs/mysqllogfs/crypto/openssl"
)

// The writers below produce files the way the servers do. The demo, the tests and the
// benchmarks use them to make encrypted logs from known plaintext; nothing on a mount writes.

// NewBinlogWriter returns a writer that encrypts a plain binlog (starting with FE 62 69 6E)
// into MySQL's format under master, the 32-byte keyring value stored under keyID.
func NewBinlogWriter(w io.Writer, keyID string, master []byte) (io.Writer, error) {
	if len(master) != binlogMasterKeySize || len(keyID) > 255 {
		return nil, fmt.Errorf("master key must be %d bytes and the key ID at most 255", binlogMasterKeySize)
	}
	password := make([]byte, binlogPasswordSize)
	iv := make([]byte, aes.BlockSize)
	rand.Read(password)
	rand.Read(iv)
	block, err := aes.NewCipher(master)
	if err != nil {
		return nil, err
	}
	encrypted := make([]byte, binlogPasswordSize)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(encrypted, password)

	header := make([]byte, 0, binlogHeaderSize)
	header = append(header, encryptedBinlogMagic...)
	header = append(header, binlogHeaderVersion, fieldKeyID, byte(len(keyID)))
	header = append(header, keyID...)
	header = append(header, fieldEncryptedPassword)
	header = append(header, encrypted...)
	header = append(header, fieldPasswordIV)
	header = append(header, iv...)
	header = append(header, make([]byte, binlogHeaderSize-len(header))...)
	if _, err := w.Write(header); err != nil {
		return nil, err
	}
	key, nonce := BinlogFileKey(password)
	fileBlock, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	ctr := CounterBlock(nonce, 0)
	return &cipher.StreamWriter{S: cipher.NewCTR(fileBlock, ctr[:]), W: w}, nil
}

// NewAuditWriter returns a writer that gzips (when compress is set) and encrypts audit log
// records into one Salted__ container, as MySQL Enterprise Audit and Percona do. Close ends the
// gzip member and writes the final padded block; a file left unclosed looks like one the
// server is still writing.
func NewAuditWriter(w io.Writer, pw AuditPassword, compress bool) (io.WriteCloser, error) {
	salt := make([]byte, 8)
	rand.Read(salt)
	c, iv, err := pw.cipher(salt)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(append([]byte(openssl.Magic), salt...)); err != nil {
		return nil, err
	}
	enc := &cbcWriter{w: w, mode: cipher.NewCBCEncrypter(c.Block(), iv)}
	if !compress {
		return enc, nil
	}
	return NewGzipWriter(enc)
}

// NewGzipWriter compresses into one gzip member, flushing the writer below on Close.
func NewGzipWriter(w io.WriteCloser) (io.WriteCloser, error) {
	gz, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	return &chainCloser{WriteCloser: gz, next: w}, nil
}

type chainCloser struct {
	io.WriteCloser
	next io.Closer
}

func (c *chainCloser) Close() error {
	if err := c.WriteCloser.Close(); err != nil {
		return err
	}
	return c.next.Close()
}

// cbcWriter encrypts whole blocks as they fill and pads the last on Close.
type cbcWriter struct {
	w       io.Writer
	mode    cipher.BlockMode
	pending []byte
}

func (c *cbcWriter) Write(p []byte) (int, error) {
	c.pending = append(c.pending, p...)
	whole := len(c.pending) / aes.BlockSize * aes.BlockSize
	if whole == 0 {
		return len(p), nil
	}
	out := make([]byte, whole)
	c.mode.CryptBlocks(out, c.pending[:whole])
	c.pending = append(c.pending[:0], c.pending[whole:]...)
	if _, err := c.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *cbcWriter) Close() error {
	n := aes.BlockSize - len(c.pending)
	for range n {
		c.pending = append(c.pending, byte(n))
	}
	c.mode.CryptBlocks(c.pending, c.pending)
	_, err := c.w.Write(c.pending)
	return err
}
