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
	"sort"
	"sync"
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

// mayBeUnfinished reports whether a file may still be being written by the server: the active
// audit log, whose plaintext name carries no rotation timestamp. A rotated log was closed, so
// a missing final block there means damage. This is the one rule cat, inspect, verify and the
// mount all follow.
func mayBeUnfinished(plainName string) bool {
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
	unfinished := mayBeUnfinished(info.PlainName)
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

func (g *gzipLog) Measure(ctx context.Context) error { return damage(g.GzipReader.Measure(ctx)) }

func (g *gzipLog) release() { g.Release() }

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

// segment is one "Salted__" container of a file.
type segment struct {
	start    int64 // file offset of "Salted__"
	ctEnd    int64 // file offset past its last whole cipher block
	plainOff int64 // where its plaintext starts in the file's joined plaintext
	plainLen int64
	salt     [openssl.SaltSize]byte // its key and IV are derived from it when a read needs them
}

func (s *segment) ctStart() int64 { return s.start + openssl.HeaderSize }

// cbcReader serves the joined plaintext of a file's containers. Block i of a container needs
// only cipher blocks i-1 and i, so any offset is read without decrypting what comes before.
type cbcReader struct {
	src        io.ReaderAt
	segs       []segment
	size       int64
	unfinished bool // the last container has no valid final padding block (yet)
	pw         AuditPassword

	mu      sync.Mutex
	ciphers map[[openssl.SaltSize]byte]containerCipher // a few, whatever the containers' count
}

// containerCipher is the AES key schedule and IV of one container.
type containerCipher struct {
	cbc *aesmode.CBC
	iv  [aes.BlockSize]byte
}

// maxContainerCiphers bounds the key schedules a reader keeps: a file of 300,000 containers
// must not hold 300,000 of them.
const maxContainerCiphers = 16

// cipherOf derives, or finds, the cipher of a container.
func (r *cbcReader) cipherOf(seg *segment) (containerCipher, error) {
	r.mu.Lock()
	c, ok := r.ciphers[seg.salt]
	r.mu.Unlock()
	if ok {
		return c, nil
	}
	cbc, iv, err := r.pw.cipher(seg.salt[:])
	if err != nil {
		return containerCipher{}, err
	}
	c = containerCipher{cbc, [aes.BlockSize]byte(iv)}
	r.mu.Lock()
	if r.ciphers == nil || len(r.ciphers) >= maxContainerCiphers {
		r.ciphers = map[[openssl.SaltSize]byte]containerCipher{}
	}
	r.ciphers[seg.salt] = c
	r.mu.Unlock()
	return c, nil
}

// cbcScanChunk is how much ciphertext segment discovery reads at a time.
const cbcScanChunk = 1 << 20

// scanBuffers hold ciphertext only, so they go back to the pool uncleared. Allocating one per
// open, as before, made the first listing of 1,000 audit logs spend a fifth of the mount's CPU
// in large allocations and clearing them (P5).
var scanBuffers = sync.Pool{New: func() any { b := make([]byte, cbcScanChunk+len(openssl.Magic)); return &b }}

// openAuditCBC opens the containers of an encrypted audit log. compressed comes back true when
// the plaintext is a gzip stream, whatever the name said.
func openAuditCBC(src io.ReaderAt, size int64, pw AuditPassword, acceptUnfinished bool) (r *cbcReader, compressed bool, err error) {
	r = &cbcReader{src: src, pw: pw}
	first, err := r.newSegment(0)
	if err != nil {
		return nil, false, err
	}
	if size < first.ctStart()+aes.BlockSize {
		if !acceptUnfinished {
			return nil, false, fmt.Errorf("%w: %d bytes, too short for one cipher block after the Salted__ header", ErrCorrupt, size)
		}
		r.segs, r.unfinished = []segment{*first}, true
		return r, false, nil
	}
	if compressed, err = r.checkAuditStart(first); err != nil {
		if errors.Is(err, ErrWrongKey) && (size-first.ctStart())%aes.BlockSize == 0 {
			if pad, padErr := r.paddingBefore(first, size); padErr == nil && pad >= 2 { // 1 in 65,536 by chance
				// The key turns the last block into valid padding: it is right, the data not.
				return nil, false, fmt.Errorf("%w: the password decrypts the file (its last block is valid padding), but the plaintext starts as neither gzip nor XML or JSON text", ErrCorrupt)
			}
		}
		return nil, false, err
	}
	if err := r.findSegments(first, size); err != nil {
		return nil, false, err
	}
	last := &r.segs[len(r.segs)-1]
	pad, padErr := r.paddingBefore(last, last.ctEnd)
	if padErr != nil || last.ctEnd != size {
		if !acceptUnfinished {
			return nil, false, fmt.Errorf("%w: the last cipher block has no valid PKCS#7 padding (the file is truncated or damaged, or the server is still writing it)", ErrCorrupt)
		}
		pad, r.unfinished = 0, true
	}
	last.plainLen = last.ctEnd - last.ctStart() - int64(pad)
	r.size = last.plainOff + last.plainLen
	return r, compressed, nil
}

// newSegment reads the salt of the container at off and derives its key.
func (r *cbcReader) newSegment(off int64) (*segment, error) {
	var header [openssl.HeaderSize]byte
	if n, err := r.src.ReadAt(header[:], off); n < len(header) {
		if isIOError(err) {
			return nil, readError(err, "reading the container header at byte %d", off)
		}
		return nil, fmt.Errorf("%w: the container at byte %d has %d bytes, too few for the Salted__ header", ErrCorrupt, off, n)
	}
	salt, ok := openssl.Salt(header[:])
	if !ok {
		return nil, fmt.Errorf("%w: no OpenSSL Salted__ header at byte %d", ErrCorrupt, off)
	}
	seg := &segment{start: off, salt: [openssl.SaltSize]byte(salt)}
	if _, err := r.cipherOf(seg); err != nil {
		return nil, err
	}
	return seg, nil
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

// findSegments walks the file for further "Salted__" containers. A new one starts at a
// 16-byte boundary where the block before it ends in valid padding; a chance match inside
// ciphertext would need both.
func (r *cbcReader) findSegments(first *segment, size int64) error {
	cur := first
	bp := scanBuffers.Get().(*[]byte)
	defer scanBuffers.Put(bp)
	buf := *bp
	for off := cur.ctStart(); off < size; off += cbcScanChunk {
		n, err := r.src.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			return readError(err, "reading at byte %d", off)
		}
		for i := 0; ; {
			j := bytes.Index(buf[i:n], []byte(openssl.Magic))
			if j < 0 || i+j >= cbcScanChunk {
				break
			}
			at := off + int64(i+j)
			i += j + 1
			if at%aes.BlockSize != 0 || at < cur.ctStart()+aes.BlockSize {
				continue
			}
			pad, err := r.paddingBefore(cur, at)
			if err != nil {
				continue
			}
			cur.ctEnd, cur.plainLen = at, at-cur.ctStart()-int64(pad)
			r.segs = append(r.segs, *cur)
			next, err := r.newSegment(at)
			if err != nil {
				return err
			}
			next.plainOff = cur.plainOff + cur.plainLen
			cur = next
		}
	}
	cur.ctEnd = cur.ctStart() + (size-cur.ctStart())/aes.BlockSize*aes.BlockSize
	r.segs = append(r.segs, *cur)
	return nil
}

// paddingBefore decrypts the cipher block that ends at end and returns its padding length.
func (r *cbcReader) paddingBefore(seg *segment, end int64) (int, error) {
	if end < seg.ctStart()+aes.BlockSize {
		return 0, openssl.ErrBadPadding
	}
	c, err := r.cipherOf(seg)
	if err != nil {
		return 0, err
	}
	iv := c.iv
	from := end - aes.BlockSize
	if from > seg.ctStart() {
		from -= aes.BlockSize
	}
	ct := make([]byte, end-from)
	if _, err := r.src.ReadAt(ct, from); err != nil {
		return 0, err
	}
	if len(ct) > aes.BlockSize {
		iv, ct = [aes.BlockSize]byte(ct), ct[aes.BlockSize:]
	}
	c.cbc.Decrypt(ct, ct, iv)
	return openssl.PaddingLen(ct, aes.BlockSize)
}

func (r *cbcReader) Size() int64 { return r.size }

// Unfinished: the last container has no valid final padding block (yet).
func (r *cbcReader) Unfinished() bool { return r.unfinished }

// cbcMaxRun bounds the ciphertext one step of ReadAt reads, and so its buffer.
const cbcMaxRun = 1 << 20

var cbcBuffers = sync.Pool{New: func() any { b := make([]byte, cbcMaxRun+2*aes.BlockSize); return &b }}

func (r *cbcReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	n := 0
	for n < len(p) && off < r.size {
		k, err := r.readRun(p[n:min(len(p), n+cbcMaxRun)], off)
		n += k
		off += int64(k)
		if err != nil {
			return n, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readRun fills p from one container, starting at plaintext offset off.
func (r *cbcReader) readRun(p []byte, off int64) (int, error) {
	i := sort.Search(len(r.segs), func(i int) bool { return r.segs[i].plainOff+r.segs[i].plainLen > off }) // first segment ending after off
	seg := &r.segs[i]
	rel := off - seg.plainOff
	end := min(seg.plainLen, rel+int64(len(p)))
	firstBlock := rel / aes.BlockSize
	lastBlock := (end + aes.BlockSize - 1) / aes.BlockSize
	from := seg.ctStart() + firstBlock*aes.BlockSize
	c, err := r.cipherOf(seg)
	if err != nil {
		return 0, err
	}
	iv := c.iv
	if firstBlock > 0 {
		from -= aes.BlockSize
	}
	bp := cbcBuffers.Get().(*[]byte)
	defer cbcBuffers.Put(bp)
	ct := (*bp)[:seg.ctStart()+lastBlock*aes.BlockSize-from]
	if _, err := r.src.ReadAt(ct, from); err != nil {
		return 0, readError(err, "reading cipher blocks at byte %d", from)
	}
	if firstBlock > 0 {
		iv, ct = [aes.BlockSize]byte(ct), ct[aes.BlockSize:]
	}
	c.cbc.Decrypt(ct, ct, iv)
	n := copy(p, ct[rel%aes.BlockSize:end-firstBlock*aes.BlockSize])
	clear(ct) // pooled buffers keep no plaintext between reads
	return n, nil
}
