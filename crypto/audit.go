package crypto

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mysqllogfs/mysqllogfs/crypto/aesmode"
	"io"
	"regexp"
	"unicode/utf8"

	"github.com/mysqllogfs/mysqllogfs/crypto/inflate"
	"github.com/mysqllogfs/mysqllogfs/crypto/openssl"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// Audit logs (docs/formats.md section 3): records, gzip-compressed when enabled, then in
// OpenSSL's "Salted__" AES-256-CBC container; a file can hold several containers back to back.
// A compressed log that is not encrypted is plain gzip.

// auditName matches the audit log names of docs/formats.md section 3.1: the plaintext name,
// then ".gz" when compressed, then ".<password id>.enc" (8.0.17+) or a bare ".enc" when encrypted.
var auditName = regexp.MustCompile(`^(.+?)(\.gz)?(?:\.(\d{8}T\d{6}-\d+))?(\.enc)$|^(.+\.log)(\.gz)$`)

// auditKeyPrefix is prepended to a password ID to form its keyring ID; before 8.0.17 the
// single password is stored under the bare prefix.
const auditKeyPrefix = "audit_log"

// rotatedName matches the timestamp the server puts into a rotated audit log's name
// ("audit.20190415T151322.log", Percona may add "-N"); the active file has none.
var rotatedName = regexp.MustCompile(`\.\d{8}T\d{6}(-\d+)?\.`)

// MayBeUnfinished reports whether a file may still be being written by the server: any but a
// rotated audit log, whose plaintext name carries a rotation timestamp. A rotated log was
// closed, so a missing final block there means damage. This is the one rule cat, inspect,
// verify, events and the mount all follow.
func MayBeUnfinished(plainName string) bool {
	return !rotatedName.MatchString(plainName)
}

// auditLog is an audit log, encrypted, compressed or both, recognised by its name.
type auditLog struct{}

func (auditLog) recognise(name string, head []byte) (Info, bool) {
	m := auditName.FindStringSubmatch(name)
	switch {
	case m == nil:
		return Info{}, false
	case m[4] == ".enc":
		keyID := auditKeyPrefix
		if m[3] != "" {
			keyID += "-" + m[3]
		}
		info := Info{Kind: KindAuditLog, PlainName: m[1], KeyID: keyID, Encrypted: true, Compressed: m[2] != ""}
		if len(head) > 0 && !bytes.HasPrefix(head, []byte(openssl.Magic)[:min(len(openssl.Magic), len(head))]) {
			info.Kind = KindUnrecognised
		}
		return info, true
	default:
		info := Info{Kind: KindAuditLog, PlainName: m[5], Compressed: true}
		if !bytes.HasPrefix(head, gzipMagic) {
			info.Kind = KindUnrecognised
		}
		return info, true
	}
}

func (auditLog) open(o opening) (plaintext, error) {
	src, size, info, keys, opts := o.src, o.size, o.info, o.keys, o.opts
	switch {
	case info.Kind == KindUnrecognised && info.Encrypted:
		return nil, fmt.Errorf("%w: named like an encrypted audit log, but not an OpenSSL Salted__ container", ErrCorrupt)
	case info.Kind == KindUnrecognised:
		return nil, fmt.Errorf("%w: named like a compressed log, but not gzip", ErrCorrupt)
	}
	unfinished := MayBeUnfinished(info.PlainName)
	compressed, compressedSize := src, size
	if info.Encrypted {
		key, err := lookup(keys, info.KeyID, keysrc.AnyOwner)
		if err != nil {
			return nil, err
		}
		cbc, isGzip, err := openAuditCBC(src, size, ParseAuditPassword(key), unfinished)
		if err != nil {
			return nil, err
		}
		if info.Compressed = isGzip; !isGzip {
			return cbc, nil
		}
		compressed, compressedSize = cbc, cbc.Size()
	}
	var prev *inflate.GzipReader
	if p := previous[*gzipLog](opts); p != nil {
		prev = p.GzipReader
	}
	g, err := inflate.NewGzipReader(compressed, compressedSize, inflate.Options{AcceptUnfinished: unfinished, Previous: prev, ProvenSize: opts.ProvenSize})
	if err != nil {
		if cbc, encrypted := compressed.(*cbcReader); encrypted {
			cbc.release()
		}
		return nil, damage(err)
	}
	return &gzipLog{g}, nil
}

func (auditLog) check(plain io.Reader) (int, error) { return 0, checkAuditLog(plain) }

// gzipLog is a compressed log's plaintext: what the inflater calls bad data is damage to the
// file.
type gzipLog struct{ *inflate.GzipReader }

func (g *gzipLog) ReadAt(p []byte, off int64) (int, error) {
	n, err := g.GzipReader.ReadAt(p, off)
	return n, damage(err)
}

func (g *gzipLog) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	n, err := g.GzipReader.ReadAtContext(ctx, p, off)
	return n, damage(err)
}

func (g *gzipLog) Measure(ctx context.Context) error { return damage(g.GzipReader.Measure(ctx)) }

func (g *gzipLog) release() {
	g.Release()
	if cbc, encrypted := g.Source().(*cbcReader); encrypted {
		cbc.release()
	}
}

// Unfinished: the stream, or the container holding it, ends before its end.
func (g *gzipLog) Unfinished() bool {
	cbc, encrypted := g.Source().(*cbcReader)
	return g.CutShort() || encrypted && cbc.unfinished
}

// damage says that a stream the inflater could not decode is a damaged file.
func damage(err error) error {
	if errors.Is(err, inflate.ErrBadData) && !errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// AuditPassword is an audit log password as the keyring holds it: a plain string (key and IV
// from EVP_BytesToKey-SHA256) or JSON with "password" and "iterations" (PBKDF2-HMAC-SHA256).
type AuditPassword struct {
	Password   []byte
	Iterations int // 0: EVP_BytesToKey
}

// ParseAuditPassword reads a keyring value. The JSON form's "salt" is ignored on purpose: the
// file header's salt is the one that was used.
func ParseAuditPassword(value []byte) AuditPassword {
	var doc struct {
		Password   *string `json:"password"`
		Iterations int     `json:"iterations"`
	}
	if bytes.HasPrefix(bytes.TrimSpace(value), []byte("{")) &&
		json.Unmarshal(value, &doc) == nil && doc.Password != nil && doc.Iterations > 0 {
		return AuditPassword{Password: []byte(*doc.Password), Iterations: doc.Iterations}
	}
	return AuditPassword{Password: value}
}

// Derive returns the AES-256 key and the IV for a container with this salt.
func (p AuditPassword) Derive(salt []byte) (key, iv []byte, err error) {
	if p.Iterations > 0 {
		return openssl.PBKDF2SHA256(p.Password, salt, p.Iterations, 32, aes.BlockSize)
	}
	key, iv = openssl.BytesToKey(sha256.New, p.Password, salt, 32, aes.BlockSize)
	return key, iv, nil
}

// cipher derives a container's AES-256 cipher and IV from its salt.
func (p AuditPassword) cipher(salt []byte) (*aesmode.CBC, []byte, error) {
	key, iv, err := p.Derive(salt)
	if err != nil {
		return nil, nil, err
	}
	c, err := aesmode.NewCBC(key)
	clear(key) // the cipher keeps its own expanded copies
	return c, iv, err
}

// openAuditCBC opens the containers of an encrypted audit log. compressed comes back true when
// the plaintext is a gzip stream, whatever the name said.
func openAuditCBC(src io.ReaderAt, size int64, pw AuditPassword, acceptUnfinished bool) (r *cbcReader, compressed bool, err error) {
	r = &cbcReader{src: src, pw: pw}
	opened := r
	defer func() {
		if err != nil {
			opened.release() // the layouts the scan reserved
		}
	}()
	first, err := r.newSegment(src, 0)
	if err != nil {
		return nil, false, err
	}
	if size < first.ctStart()+aes.BlockSize {
		if !acceptUnfinished {
			return nil, false, fmt.Errorf("%w: %d bytes, too short for one cipher block after the Salted__ header", ErrCorrupt, size)
		}
		first.ctEnd = first.ctStart()
		r.add(first)
		r.ctEnd, r.unfinished = first.ctEnd, true
		return r, false, nil
	}
	if compressed, err = r.checkAuditStart(first); err != nil {
		if errors.Is(err, ErrWrongKey) && (size-first.ctStart())%aes.BlockSize == 0 {
			if pad, padErr := r.paddingBefore(src, first, size); padErr == nil && pad >= 2 { // 1 in 65,536 by chance
				// The key turns the last block into valid padding: it is right, the data not.
				return nil, false, fmt.Errorf("%w: the password decrypts the file (its last block is valid padding), but the plaintext starts as neither gzip nor XML or JSON text", ErrCorrupt)
			}
		}
		return nil, false, err
	}
	last, err := r.scan(src, first, size, r.add)
	if err != nil {
		return nil, false, err
	}
	last.ctEnd = last.ctStart() + (size-last.ctStart())/aes.BlockSize*aes.BlockSize
	pad, padErr := r.paddingBefore(src, last, last.ctEnd)
	if padErr != nil || last.ctEnd != size {
		if !acceptUnfinished {
			return nil, false, fmt.Errorf("%w: the last cipher block has no valid PKCS#7 padding (the file is truncated or damaged, or the server is still writing it)", ErrCorrupt)
		}
		pad, r.unfinished = 0, true
	}
	last.plainLen = last.ctEnd - last.ctStart() - int64(pad)
	r.add(last)
	r.ctEnd, r.size = last.ctEnd, last.plainOff+last.plainLen
	return r, compressed, nil
}

// checkAuditStart decrypts the first block: a right key gives the start of a gzip stream, or
// of XML or JSON text. Nothing else authenticates the data.
func (r *cbcReader) checkAuditStart(seg *segment) (compressed bool, err error) {
	ct := make([]byte, aes.BlockSize)
	if _, err := r.src.ReadAt(ct, seg.ctStart()); err != nil {
		return false, readError(err, "reading the first cipher block")
	}
	c, err := r.cipherOf(seg)
	if err != nil {
		return false, err
	}
	c.cbc.Decrypt(ct, ct, c.iv)
	switch {
	case bytes.HasPrefix(ct, gzipMagic):
		return true, nil
	case looksLikeLogText(ct):
		return false, nil
	}
	return false, fmt.Errorf("%w: the keyring's password does not decrypt this audit log (the first block is neither gzip nor XML or JSON text)", ErrWrongKey)
}

// looksLikeLogText accepts the start of an XML or JSON audit log, possibly after a byte order
// mark or white space, followed by printable UTF-8 text.
func looksLikeLogText(b []byte) bool {
	t := bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(t) == 0 || bytes.IndexByte([]byte("<[{"), t[0]) < 0 {
		return false
	}
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && len(b) >= utf8.UTFMax || r < 0x20 && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
		b = b[n:]
	}
	return true
}
