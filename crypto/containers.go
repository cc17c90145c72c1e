package crypto

import (
	"bytes"
	"crypto/aes"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/mysqllogfs/mysqllogfs/crypto/aesmode"
	"github.com/mysqllogfs/mysqllogfs/crypto/openssl"
)

// An encrypted audit log is one or more OpenSSL "Salted__" containers back to back
// (docs/formats.md section 3), each with its own salt and PKCS#7 padding. A container ends
// where the next "Salted__" starts at a 16-byte boundary after a block that ends in valid
// padding; a chance match inside ciphertext would need both.

// segment is one container, as a scan finds it.
type segment struct {
	start    int64 // file offset of "Salted__"
	ctEnd    int64 // file offset past its last whole cipher block
	plainOff int64 // where its plaintext starts in the file's joined plaintext
	plainLen int64
	salt     [openssl.SaltSize]byte // its key and IV are derived from it when a read needs them
}

func (s *segment) ctStart() int64 { return s.start + openssl.HeaderSize }

// group is a run of consecutive containers that all start within groupSpan bytes of the
// first. The index keeps groups, not containers, so a file of millions of tiny containers
// costs one entry per groupSpan of its bytes; finding a container inside a group scans at most
// groupSpan bytes again. The last container may be of any length: it ends where the next
// group starts.
type group struct {
	start, lastStart       int64 // file offsets of its first and last containers
	plainOff, lastPlainOff int64
	lastSalt               [openssl.SaltSize]byte
}

const groupSpan = 64 << 10

// cbcReader serves the joined plaintext of a file's containers. Block i of a container needs
// only cipher blocks i-1 and i, so any offset is read without decrypting what comes before.
type cbcReader struct {
	src        io.ReaderAt
	groups     []group
	ctEnd      int64 // past the last whole cipher block of the last container
	size       int64
	unfinished bool // the last container has no valid final padding block (yet)
	pw         AuditPassword

	mu      sync.Mutex
	ciphers map[[openssl.SaltSize]byte]containerCipher // a few, whatever the containers' count

	walking  sync.Mutex
	walks    [2]*walk // of the groups read last
	nextWalk int      // which of walks to replace
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

// add records the next container of the file, in order.
func (r *cbcReader) add(seg *segment) error {
	if n := len(r.groups); n > 0 && seg.start-r.groups[n-1].start < groupSpan {
		g := &r.groups[n-1]
		g.lastStart, g.lastPlainOff, g.lastSalt = seg.start, seg.plainOff, seg.salt
		return nil
	}
	r.groups = append(r.groups, group{seg.start, seg.start, seg.plainOff, seg.plainOff, seg.salt})
	return nil
}

// newSegment reads the salt of the container at off and derives its key.
func (r *cbcReader) newSegment(src io.ReaderAt, off int64) (*segment, error) {
	var header [openssl.HeaderSize]byte
	if n, err := src.ReadAt(header[:], off); n < len(header) {
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

// cbcScanChunk is how much ciphertext a scan for containers reads at a time.
const cbcScanChunk = 1 << 20

// scanBuffers hold ciphertext only, so they go back to the pool uncleared. Allocating one per
// open, as before, made the first listing of 1,000 audit logs spend a fifth of the mount's CPU
// in large allocations and clearing them (P5).
var scanBuffers = sync.Pool{New: func() any { b := make([]byte, cbcScanChunk+len(openssl.Magic)); return &b }}

// scan walks the containers of src from first on, passing each whose end it finds to found,
// and returns the one that reaches end: only boundaries before end count.
func (r *cbcReader) scan(src io.ReaderAt, first *segment, end int64, found func(*segment) error) (*segment, error) {
	cur := first
	bp := scanBuffers.Get().(*[]byte)
	defer scanBuffers.Put(bp)
	for off := cur.ctStart(); off < end; off += cbcScanChunk {
		buf := (*bp)[:min(int64(len(*bp)), end-off+int64(len(openssl.Magic))-1)]
		n, err := src.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			return nil, readError(err, "reading at byte %d", off)
		}
		chunk := &heldBytes{ReaderAt: src, base: off, bytes: buf[:n]}
		for i := 0; ; {
			j := bytes.Index(buf[i:n], []byte(openssl.Magic))
			if j < 0 || i+j >= cbcScanChunk || off+int64(i+j) >= end {
				break
			}
			at := off + int64(i+j)
			i += j + 1
			if at%aes.BlockSize != 0 || at < cur.ctStart()+aes.BlockSize {
				continue
			}
			pad, err := r.paddingBefore(chunk, cur, at)
			if err != nil {
				continue
			}
			cur.ctEnd, cur.plainLen = at, at-cur.ctStart()-int64(pad)
			if err := found(cur); err != nil {
				return nil, err
			}
			next, err := r.newSegment(chunk, at)
			if err != nil {
				return nil, err
			}
			next.plainOff = cur.plainOff + cur.plainLen
			cur = next
		}
	}
	return cur, nil
}

// paddingBefore decrypts the cipher block that ends at end and returns its padding length.
func (r *cbcReader) paddingBefore(src io.ReaderAt, seg *segment, end int64) (int, error) {
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
	if _, err := src.ReadAt(ct, from); err != nil {
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

// plainEnd and ctEndOf are where group i's last container ends: where the next group starts.
func (r *cbcReader) plainEnd(i int) int64 {
	if i+1 < len(r.groups) {
		return r.groups[i+1].plainOff
	}
	return r.size
}

func (r *cbcReader) ctEndOf(i int) int64 {
	if i+1 < len(r.groups) {
		return r.groups[i+1].start
	}
	return r.ctEnd
}

// container finds the container that holds plaintext offset off, which is below the size,
// and where to read its ciphertext.
func (r *cbcReader) container(off int64) (segment, io.ReaderAt, error) {
	i := sort.Search(len(r.groups), func(i int) bool { return r.plainEnd(i) > off })
	g := &r.groups[i]
	if off >= g.lastPlainOff {
		return segment{start: g.lastStart, ctEnd: r.ctEndOf(i), plainOff: g.lastPlainOff,
			plainLen: r.plainEnd(i) - g.lastPlainOff, salt: g.lastSalt}, r.src, nil
	}
	r.walking.Lock()
	defer r.walking.Unlock()
	w, err := r.walkOf(i)
	if err != nil {
		return segment{}, nil, err
	}
	for {
		if j := sort.Search(len(w.segs), func(j int) bool { return w.segs[j].plainOff+w.segs[j].plainLen > off }); j < len(w.segs) {
			return w.segs[j], w.ciphertext, nil
		}
		if err := r.walkOn(w, off); err != nil {
			return segment{}, nil, err
		}
	}
}

// walk is a scan of group i for its containers, kept so that the next read continues it: a
// sequential read then derives each container's key once, for finding its end and reading it.
type walk struct {
	i          int
	ciphertext *heldBytes // the group up to its last container's header, read once
	segs       []segment  // the containers found so far, in order
}

// walkOf returns the walk of group i, or starts one in place of the oldest.
func (r *cbcReader) walkOf(i int) (*walk, error) {
	for _, w := range r.walks {
		if w != nil && w.i == i {
			return w, nil
		}
	}
	g := &r.groups[i]
	held := &heldBytes{ReaderAt: r.src, base: g.start, bytes: make([]byte, g.lastStart+openssl.HeaderSize-g.start)}
	if _, err := r.src.ReadAt(held.bytes, g.start); err != nil {
		return nil, readError(err, "reading the containers at byte %d", g.start)
	}
	w := &walk{i: i, ciphertext: held}
	r.walks[r.nextWalk] = w
	r.nextWalk = (r.nextWalk + 1) % len(r.walks)
	return w, nil
}

// heldBytes is a stretch of the file held in memory (ciphertext only), so that scanning many
// small containers does not make a system call for each header and padding block.
type heldBytes struct {
	io.ReaderAt // the file, for reads outside the stretch
	base        int64
	bytes       []byte
}

func (h *heldBytes) ReadAt(p []byte, off int64) (int, error) {
	if off < h.base || off+int64(len(p)) > h.base+int64(len(h.bytes)) {
		return h.ReaderAt.ReadAt(p, off)
	}
	return copy(p, h.bytes[off-h.base:]), nil
}

// errFound stops a walk at the container it was looking for.
var errFound = errors.New("found")

// walkOn scans w's group further, until it finds the container that holds off.
func (r *cbcReader) walkOn(w *walk, off int64) error {
	g := &r.groups[w.i]
	from, plainOff := g.start, g.plainOff
	if n := len(w.segs); n > 0 {
		from, plainOff = w.segs[n-1].ctEnd, w.segs[n-1].plainOff+w.segs[n-1].plainLen
	}
	first, err := r.newSegment(w.ciphertext, from)
	if err != nil {
		return err
	}
	first.plainOff = plainOff
	_, err = r.scan(w.ciphertext, first, g.lastStart+1, func(s *segment) error {
		w.segs = append(w.segs, *s)
		if s.plainOff+s.plainLen > off {
			return errFound
		}
		return nil
	})
	switch {
	case errors.Is(err, errFound):
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("%w: the containers at bytes %d to %d are not where they were when the file was opened", ErrCorrupt, g.start, g.lastStart)
}

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
	seg, src, err := r.container(off)
	if err != nil {
		return 0, err
	}
	rel := off - seg.plainOff
	end := min(seg.plainLen, rel+int64(len(p)))
	firstBlock := rel / aes.BlockSize
	lastBlock := (end + aes.BlockSize - 1) / aes.BlockSize
	from := seg.ctStart() + firstBlock*aes.BlockSize
	c, err := r.cipherOf(&seg)
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
	if _, err := src.ReadAt(ct, from); err != nil {
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
