package crypto

import (
	"bytes"
	"crypto/aes"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/mysqllogfs/mysqllogfs/crypto/aesmode"
	"github.com/mysqllogfs/mysqllogfs/crypto/internal/bufpool"
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
// first. The last container may be of any length: it ends where the next group starts. The
// others are placed in the group's layout, 8 bytes each, while the budget that every reader
// shares allows; past it a group keeps no layout, and a read inside it scans the group again
// (at most groupSpan bytes), so the index of any file costs one entry per groupSpan of its bytes.
type group struct {
	start, lastStart       int64 // file offsets of its first and last containers
	plainOff, lastPlainOff int64
	lastSalt               [openssl.SaltSize]byte
	layout                 []placed // its containers but the last; nil when not kept
}

// placed is where a container starts, from its group's start, in ciphertext and plaintext.
type placed struct{ ct, plain uint32 }

const groupSpan = 64 << 10

// layouts bounds the memory of every reader's group layouts together.
var layouts = memoryBudget{limit: 8 << 20}

type memoryBudget struct {
	used  atomic.Int64
	limit int64
}

func (b *memoryBudget) reserve(n int64) bool {
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *memoryBudget) release(n int64) { b.used.Add(-n) }

// LayoutBudget returns the memory the container layouts of every reader hold, and its bound.
func LayoutBudget() (used, limit int64) { return layouts.used.Load(), layouts.limit }

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

	reserved  int64 // bytes of the layouts budget this reader holds
	noLayouts bool  // the budget ran out while opening: the rest of the groups keep none
	walking   sync.Mutex
	walks     [2]walk // layouts found again for groups that keep none, the latest two
	nextWalk  int
}

// walk is a layout found again by scanning a group that keeps none.
type walk struct {
	i      int
	layout []placed
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
		r.place(g) // the container that was its last is not any more
		g.lastStart, g.lastPlainOff, g.lastSalt = seg.start, seg.plainOff, seg.salt
		return nil
	}
	r.groups = append(r.groups, group{start: seg.start, lastStart: seg.start, plainOff: seg.plainOff,
		lastPlainOff: seg.plainOff, lastSalt: seg.salt})
	return nil
}

// place adds g's last container to its layout, while the budget allows.
func (r *cbcReader) place(g *group) {
	if r.noLayouts {
		return
	}
	if len(g.layout) == cap(g.layout) {
		more := max(16, cap(g.layout))
		if !layouts.reserve(int64(more) * 8) {
			r.noLayouts = true
			r.reserved -= int64(cap(g.layout)) * 8
			layouts.release(int64(cap(g.layout)) * 8)
			g.layout = nil
			return
		}
		r.reserved += int64(more) * 8
		g.layout = append(make([]placed, 0, cap(g.layout)+more), g.layout...)
	}
	g.layout = append(g.layout, placed{uint32(g.lastStart - g.start), uint32(g.lastPlainOff - g.plainOff)})
}

// release gives the layouts back to the budget, and the held ciphertext.
func (r *cbcReader) release() {
	r.letGo()
	r.walking.Lock()
	defer r.walking.Unlock()
	layouts.release(r.reserved)
	r.reserved = 0
	for i := range r.groups {
		r.groups[i].layout = nil
	}
	r.walks = [2]walk{}
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
var scanBuffers = bufpool.New(cbcScanChunk+len(openssl.Magic), 2)

// scan walks the containers of src from first on, passing each whose end it finds to found,
// and returns the one that reaches end: only boundaries before end count.
func (r *cbcReader) scan(src io.ReaderAt, first *segment, end int64, found func(*segment) error) (*segment, error) {
	cur := first
	bp := scanBuffers.Get()
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

// container finds the container that holds plaintext offset off, which is below the size.
// The salt of a container inside a group is not kept: groupEnd, where the group's last
// container starts, is then returned too, and readRun reads the salt with the container's
// blocks; groupEnd is 0 for a group's last container, whose salt is known.
func (r *cbcReader) container(off int64) (seg segment, groupEnd int64, err error) {
	i := sort.Search(len(r.groups), func(i int) bool { return r.plainEnd(i) > off })
	g := &r.groups[i]
	if off >= g.lastPlainOff {
		return segment{start: g.lastStart, ctEnd: r.ctEndOf(i), plainOff: g.lastPlainOff,
			plainLen: r.plainEnd(i) - g.lastPlainOff, salt: g.lastSalt}, 0, nil
	}
	layout := g.layout
	if layout == nil {
		if layout, err = r.walk(i); err != nil {
			return segment{}, 0, err
		}
	}
	rel := uint32(off - g.plainOff)
	j := sort.Search(len(layout), func(j int) bool { return layout[j].plain > rel }) - 1
	if j < 0 { // the first container starts at the group's start: never
		return segment{}, 0, fmt.Errorf("%w: no container holds plaintext byte %d", ErrCorrupt, off)
	}
	ctEnd, plainEnd := g.lastStart, g.lastPlainOff
	if j+1 < len(layout) {
		ctEnd, plainEnd = g.start+int64(layout[j+1].ct), g.plainOff+int64(layout[j+1].plain)
	}
	seg = segment{start: g.start + int64(layout[j].ct), ctEnd: ctEnd, plainOff: g.plainOff + int64(layout[j].plain)}
	seg.plainLen = plainEnd - seg.plainOff
	return seg, g.lastStart, nil
}

// walk finds the layout of group i, which keeps none, by scanning it: its ciphertext is read
// once, and each container's key derived to check the padding that ends it.
func (r *cbcReader) walk(i int) ([]placed, error) {
	r.walking.Lock()
	defer r.walking.Unlock()
	for _, w := range r.walks {
		if w.layout != nil && w.i == i {
			return w.layout, nil
		}
	}
	g := &r.groups[i]
	held := &heldBytes{ReaderAt: r.src, base: g.start, bytes: make([]byte, g.lastStart+openssl.HeaderSize-g.start)}
	if _, err := r.src.ReadAt(held.bytes, g.start); err != nil {
		return nil, readError(err, "reading the containers at byte %d", g.start)
	}
	first, err := r.newSegment(held, g.start)
	if err != nil {
		return nil, err
	}
	first.plainOff = g.plainOff
	var layout []placed
	last, err := r.scan(held, first, g.lastStart+1, func(s *segment) error {
		layout = append(layout, placed{uint32(s.start - g.start), uint32(s.plainOff - g.plainOff)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if last.start != g.lastStart || last.plainOff != g.lastPlainOff || len(layout) == 0 {
		return nil, fmt.Errorf("%w: the containers at bytes %d to %d are not where they were when the file was opened", ErrCorrupt, g.start, g.lastStart)
	}
	r.walks[r.nextWalk] = walk{i, layout}
	r.nextWalk = (r.nextWalk + 1) % len(r.walks)
	return layout, nil
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

// cbcMaxRun bounds the ciphertext one step of ReadAt reads, and so its buffer.
const cbcMaxRun = 1 << 20

var cbcBuffers = bufpool.New(cbcMaxRun+2*aes.BlockSize, 4) // read-ahead workers read in parallel

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

// heldGroups keep the ciphertext of the groups of small containers read last, by every
// reader together: a decoder reads a few KiB at a time, and reading the group again for each
// would cost a system call and a copy of up to 64 KiB per container.
var heldGroups struct {
	sync.Mutex
	slots [8]struct {
		r    *cbcReader
		held *heldBytes
	}
	next int
}

// holding returns a stretch of the file in memory that holds seg, from its start to the start
// of its group's last container.
func (r *cbcReader) holding(seg *segment, groupEnd int64) (*heldBytes, error) {
	heldGroups.Lock()
	for _, s := range heldGroups.slots {
		if s.r == r && seg.start >= s.held.base && seg.ctEnd <= s.held.base+int64(len(s.held.bytes)) {
			heldGroups.Unlock()
			return s.held, nil
		}
	}
	heldGroups.Unlock()
	h := &heldBytes{ReaderAt: r.src, base: seg.start, bytes: make([]byte, groupEnd-seg.start)}
	if _, err := r.src.ReadAt(h.bytes, h.base); err != nil {
		return nil, readError(err, "reading the containers at byte %d", h.base)
	}
	heldGroups.Lock()
	heldGroups.slots[heldGroups.next].r, heldGroups.slots[heldGroups.next].held = r, h
	heldGroups.next = (heldGroups.next + 1) % len(heldGroups.slots)
	heldGroups.Unlock()
	return h, nil
}

// letGo drops the reader's held groups.
func (r *cbcReader) letGo() {
	heldGroups.Lock()
	defer heldGroups.Unlock()
	for i := range heldGroups.slots {
		if heldGroups.slots[i].r == r {
			heldGroups.slots[i].r, heldGroups.slots[i].held = nil, nil
		}
	}
}

// readRun fills p from one container, starting at plaintext offset off.
func (r *cbcReader) readRun(p []byte, off int64) (int, error) {
	seg, groupEnd, err := r.container(off)
	if err != nil {
		return 0, err
	}
	saltKnown := groupEnd == 0
	var src io.ReaderAt = r.src
	if !saltKnown {
		if src, err = r.holding(&seg, groupEnd); err != nil {
			return 0, err
		}
	}
	rel := off - seg.plainOff
	end := min(seg.plainLen, rel+int64(len(p)))
	firstBlock := rel / aes.BlockSize
	lastBlock := (end + aes.BlockSize - 1) / aes.BlockSize
	from := seg.ctStart() + firstBlock*aes.BlockSize
	if firstBlock > 0 {
		from -= aes.BlockSize
	}
	if !saltKnown {
		from = seg.start // a container inside a group, under 64 KiB: its header too, in one read
	}
	bp := cbcBuffers.Get()
	defer cbcBuffers.Put(bp)
	ct := (*bp)[:seg.ctStart()+lastBlock*aes.BlockSize-from]
	if _, err := src.ReadAt(ct, from); err != nil {
		return 0, readError(err, "reading cipher blocks at byte %d", from)
	}
	if !saltKnown {
		salt, ok := openssl.Salt(ct)
		if !ok {
			return 0, fmt.Errorf("%w: no Salted__ header at byte %d, where the file had one when opened", ErrCorrupt, seg.start)
		}
		seg.salt = [openssl.SaltSize]byte(salt)
		ct = ct[openssl.HeaderSize+max(0, firstBlock-1)*aes.BlockSize:]
	}
	c, err := r.cipherOf(&seg)
	if err != nil {
		return 0, err
	}
	iv := c.iv
	if firstBlock > 0 {
		iv, ct = [aes.BlockSize]byte(ct), ct[aes.BlockSize:]
	}
	c.cbc.Decrypt(ct, ct, iv)
	n := copy(p, ct[rel%aes.BlockSize:end-firstBlock*aes.BlockSize])
	clear(ct) // pooled buffers keep no plaintext between reads
	return n, nil
}
