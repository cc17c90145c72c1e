package crypto

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"github.com/mysqllogfs/mysqllogfs/crypto/aesmode"
	"io"

	"github.com/mysqllogfs/mysqllogfs/crypto/source"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// MySQL 8.0.14+ encrypted binary and relay logs (docs/formats.md section 1): a 512-byte header,
// then the whole plain binlog in AES-256-CTR.
const (
	binlogHeaderSize       = 512
	binlogHeaderVersion    = 1
	binlogPasswordSize     = 32
	binlogMasterKeySize    = 32
	fieldEnd               = 0x00
	fieldKeyID             = 0x01
	fieldEncryptedPassword = 0x02
	fieldPasswordIV        = 0x03
)

// BinlogHeader is the decoded encryption header of a MySQL binlog.
type BinlogHeader struct {
	KeyID             string
	EncryptedPassword [binlogPasswordSize]byte
	PasswordIV        [aes.BlockSize]byte
}

// ParseBinlogHeader decodes the 512-byte header as the server's reader does: fields in any
// order, each once, none running past byte 511, all three required.
func ParseBinlogHeader(h []byte) (BinlogHeader, error) {
	var hdr BinlogHeader
	if len(h) < binlogHeaderSize {
		return hdr, fmt.Errorf("%w: file is %d bytes, shorter than the %d-byte encryption header", ErrCorrupt, len(h), binlogHeaderSize)
	}
	if !bytes.HasPrefix(h, encryptedBinlogMagic) {
		return hdr, fmt.Errorf("%w: no encrypted binlog magic FD 62 69 6E", ErrCorrupt)
	}
	if h[4] != binlogHeaderVersion {
		return hdr, fmt.Errorf("%w: encrypted binlog header version %d (only version 1 exists)", ErrUnsupported, h[4])
	}
	var seen [4]bool
	pos := 5
	for {
		if pos >= binlogHeaderSize {
			return hdr, fmt.Errorf("%w: header fields run past byte %d without an end marker", ErrCorrupt, binlogHeaderSize-1)
		}
		typ := h[pos]
		if typ == fieldEnd {
			break
		}
		if typ > fieldPasswordIV {
			return hdr, fmt.Errorf("%w: unknown header field type 0x%02x at byte %d", ErrCorrupt, typ, pos)
		}
		if seen[typ] {
			return hdr, fmt.Errorf("%w: header field type 0x%02x appears twice", ErrCorrupt, typ)
		}
		seen[typ] = true
		pos++
		var value []byte
		switch typ {
		case fieldKeyID:
			if pos >= binlogHeaderSize {
				return hdr, fmt.Errorf("%w: key ID field runs past byte %d", ErrCorrupt, binlogHeaderSize-1)
			}
			n := int(h[pos])
			pos++
			value = make([]byte, n)
		case fieldEncryptedPassword:
			value = hdr.EncryptedPassword[:]
		case fieldPasswordIV:
			value = hdr.PasswordIV[:]
		}
		if pos+len(value) > binlogHeaderSize {
			return hdr, fmt.Errorf("%w: header field type 0x%02x runs past byte %d", ErrCorrupt, typ, binlogHeaderSize-1)
		}
		copy(value, h[pos:])
		pos += len(value)
		if typ == fieldKeyID {
			hdr.KeyID = string(value)
		}
	}
	for typ, name := range []string{fieldKeyID: "key ID", fieldEncryptedPassword: "encrypted password", fieldPasswordIV: "password IV"} {
		if typ != fieldEnd && !seen[typ] {
			return hdr, fmt.Errorf("%w: header has no %s field", ErrCorrupt, name)
		}
	}
	if err := keysrc.ValidID(hdr.KeyID); err != nil {
		return hdr, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	return hdr, nil
}

// FilePassword recovers the per-file password: AES-256-CBC decryption, without padding, of the
// header's encrypted password under the master key.
func (h BinlogHeader) FilePassword(master []byte) ([]byte, error) {
	master, err := binlogMasterKey(master, h.KeyID)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(master)
	if err != nil {
		return nil, err
	}
	password := make([]byte, binlogPasswordSize)
	cipher.NewCBCDecrypter(block, h.PasswordIV[:]).CryptBlocks(password, h.EncryptedPassword[:])
	return password, nil
}

// binlogMasterKey checks the master key's length. A 64-digit hex value is accepted for the 32
// bytes it spells, for key sources (commands, key directories) that hand out text.
func binlogMasterKey(master []byte, keyID string) ([]byte, error) {
	if len(master) == 2*binlogMasterKeySize {
		if decoded, err := hex.DecodeString(string(master)); err == nil {
			return decoded, nil
		}
	}
	if len(master) != binlogMasterKeySize {
		return nil, fmt.Errorf("%w: key %q is %d bytes; binlog master keys are %d", ErrWrongKey, keyID, len(master), binlogMasterKeySize)
	}
	return master, nil
}

// BinlogFileKey derives the AES-256-CTR key and the 8-byte counter nonce from the file
// password: SHA-512(password) = key || nonce || (unused).
func BinlogFileKey(password []byte) (key []byte, nonce [8]byte) {
	sum := sha512.Sum512(password)
	copy(nonce[:], sum[32:40])
	return sum[:32], nonce
}

// CounterBlock is the CTR counter block for plaintext offset off, rounded down to a block.
func CounterBlock(nonce [8]byte, off int64) [aes.BlockSize]byte {
	var ctr [aes.BlockSize]byte
	copy(ctr[:8], nonce[:])
	binary.BigEndian.PutUint64(ctr[8:], uint64(off/aes.BlockSize))
	return ctr
}

// errShrank reports a source file cut shorter than it was at open.
var errShrank = fmt.Errorf("%w: %w", ErrCorrupt, source.ErrShrank)

// ctrReader serves the plaintext of an encrypted binlog. A read at any offset costs work in
// proportion to its length: the counter is computed from the offset.
type ctrReader struct {
	src   io.ReaderAt
	views *source.Views // nil where src is not a file
	ctr   *aesmode.CTR
	nonce [8]byte
	size  int64
}

func newCTRReader(src io.ReaderAt, srcSize int64, fileKey []byte, nonce [8]byte) (*ctrReader, error) {
	ctr, err := aesmode.NewCTR(fileKey)
	if err != nil {
		return nil, err
	}
	return &ctrReader{src: src, views: source.NewViews(src, srcSize), ctr: ctr, nonce: nonce, size: srcSize - binlogHeaderSize}, nil
}

// release unmaps what the reader has mapped of the source.
func (r *ctrReader) release() { r.views.Close() }

func (r *ctrReader) Size() int64 { return r.size }

func (r *ctrReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), r.size-off)
	ctr, skip := CounterBlock(r.nonce, off), int(off%aes.BlockSize)
	// Large reads decrypt straight from a mapping of the ciphertext; others, and any the
	// mapping cannot serve, read it into p and decrypt it there while it is in this core's cache.
	mapped, err := r.views.Read(off+binlogHeaderSize, int(want), func(ciphertext []byte) {
		r.ctr.XORKeyStream(p[:want], ciphertext, ctr, skip)
	})
	n := int(want)
	switch {
	case mapped && err != nil:
		return 0, errShrank
	case !mapped:
		n, err = r.src.ReadAt(p[:want], off+binlogHeaderSize)
		r.ctr.XORKeyStream(p[:n], p[:n], ctr, skip)
	}
	if err == nil && int64(n) < int64(len(p)) {
		err = io.EOF
	}
	if err == io.EOF && int64(n) < want {
		err = errShrank
	}
	return n, err
}

// mysqlBinlog is a MySQL 8.0.14+ encrypted binary or relay log.
type mysqlBinlog struct{}

func (mysqlBinlog) recognise(name string, head []byte) (Info, bool) {
	if !bytes.HasPrefix(head, encryptedBinlogMagic) {
		return Info{}, false
	}
	info := Info{Kind: KindMySQLBinlog, PlainName: name, Encrypted: true}
	if h, err := ParseBinlogHeader(head); err == nil {
		info.KeyID = h.KeyID
	}
	return info, true
}

func (mysqlBinlog) open(o opening) (plaintext, error) {
	return openMySQLBinlog(o.src, o.size, o.head, o.keys)
}

func (mysqlBinlog) check(plain io.Reader) (int, error) {
	return checkBinlog(bufio.NewReaderSize(plain, 1<<20))
}

// openMySQLBinlog checks the header, then the key it names, and returns the plaintext reader.
func openMySQLBinlog(src io.ReaderAt, size int64, head []byte, keys keysrc.Source) (*ctrReader, error) {
	hdr, err := ParseBinlogHeader(head)
	if err != nil {
		return nil, err
	}
	master, err := lookup(keys, hdr.KeyID, "")
	if err != nil {
		return nil, err
	}
	password, err := hdr.FilePassword(master)
	if err != nil {
		return nil, err
	}
	key, nonce := BinlogFileKey(password)
	r, err := newCTRReader(src, size, key, nonce)
	clear(password) // the expanded key schedule in the cipher is all that is kept
	clear(key)
	if err != nil {
		return nil, err
	}
	if r.size == 0 {
		return r, nil // created, nothing written yet
	}
	magic := make([]byte, len(binlogMagic))
	n, err := r.ReadAt(magic, 0)
	if n < len(magic) {
		return nil, fmt.Errorf("%w: plaintext is %d bytes, too short for the binlog magic", ErrCorrupt, n)
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	if !bytes.Equal(magic, binlogMagic) {
		return nil, fmt.Errorf("%w: key %q does not decrypt this binlog (plaintext does not start with FE 62 69 6E)", ErrWrongKey, hdr.KeyID)
	}
	return r, nil
}
