// Package inflate decodes deflate streams (RFC 1951) and serves gzip streams (RFC 1952) at
// any offset through a checkpoint index. It knows nothing of files or formats: a stream that
// does not decode is reported with ErrBadData, and what that means is the caller's to say.
package inflate

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// GzipReader serves the decompressed bytes of a gzip stream of one or more members at any
// offset. Decoding resumes from the nearest checkpoint of a zran-style index (a deflate block
// boundary, its bit offset and the 32 KiB window before it), or continues a cursor left idle
// by an earlier read, so sequential reads never restart and random reads decode at most one
// checkpoint spacing. The index grows as reads go further; the windows are plaintext and live
// only in memory.
type GzipReader struct {
	src              io.ReaderAt // the compressed stream
	srcSize          int64
	acceptUnfinished bool // a stream cut short ends where its last whole block does

	scanning  sync.Mutex // one scan to the end at a time: a second waits and finds it done
	mu        sync.Mutex
	returned  sync.Cond    // signalled when a busy cursor becomes idle
	points    []checkpoint // ascending uoff; points[0] is the start of the stream
	spacing   int64        // uncompressed bytes between recorded checkpoints
	idle      []*gzCursor
	busy      map[*gzCursor]span // cursors at work, and on what
	waiting   map[int64]int      // offsets of reads waiting for a busy cursor
	complete  bool               // a cursor has reached the end: size is exact
	truncated bool               // the end reached was a stream cut short (acceptUnfinished)
	size      int64              // exact when complete, else the estimate from the trailer
	// mismatches are the members whose trailer a cursor that decoded them whole found wrong,
	// by the compressed offset of the trailer: a cursor that began inside such a member cannot
	// check it, and must not take it for good.
	mismatches map[int64]error
}

// ErrBadData is wrapped by every error for a stream that does not decode: damaged, cut short,
// or not gzip at all.
var ErrBadData = errors.New("bad gzip data")

// isIOError reports whether err came from reading the source, not from what its bytes say.
// A read stopped because its reader went away counts as one too.
func isIOError(err error) bool {
	var errno syscall.Errno
	var pathErr *fs.PathError
	return errors.As(err, &errno) || errors.As(err, &pathErr) || errors.Is(err, fs.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// checkpoint is a place decoding can resume: the start of a member (at its gzip header), or
// a deflate block boundary inside one.
type checkpoint struct {
	uoff   int64 // uncompressed offset in the whole stream
	header int64 // compressed offset of the member's gzip header
	// Inside a member only:
	deflateStart int64              // compressed offset of the member's deflate data
	memberUoff   int64              // uncompressed offset where the member starts
	flate        *inflateCheckpoint // relative to deflateStart and memberUoff, with its window
	window       *window            // the charge for flate.window, shared with borrowing indexes
	// The member's CRC32 up to uoff, known once a decode that began at the member's start
	// has passed it: a decode resumed here checks the member's trailer too.
	crc      uint32
	crcKnown bool
}

// window counts the indexes holding a checkpoint's window; the last to let go gives its bytes
// back to the budget.
type window struct{ refs atomic.Int32 }

func (w *window) hold() { w.refs.Add(1) }

func (w *window) drop(size int) {
	if w.refs.Add(-1) == 0 {
		windows.release(int64(size))
	}
}

const (
	gzipMinSpacing    = 1 << 20 // at most one window (32 KiB) per MiB of plaintext
	gzipMaxPoints     = 256     // bounds the index to 8 MiB of windows per file
	gzipIdleCursors   = 2
	gzipReadBuffer    = 64 << 10
	gzipMaxRatio      = 1032 // deflate's best compression ratio bounds a plausible size
	gzipTrailerLength = 8
)

// Options change how NewGzipReader treats a stream.
type Options struct {
	// AcceptUnfinished ends a stream cut short where its last whole block does, instead of
	// failing: a log the server is still writing.
	AcceptUnfinished bool
	// Previous is an index of the same stream before it grew: decoding resumes from its last
	// checkpoint.
	Previous *GzipReader
	// ProvenSize is the stream's decoded size, proven by an earlier full decode; 0 if unknown.
	ProvenSize int64
}

// NewGzipReader indexes a gzip stream. prev, an index of the same stream before it grew (a log
// still being written), lends its checkpoints: decoding resumes from the last of them.
func NewGzipReader(src io.ReaderAt, srcSize int64, opts Options) (g *GzipReader, err error) {
	g, err = newGzipReader(src, srcSize, opts)
	if err != nil && g != nil {
		g.Release() // the windows it borrowed or recorded go back to the budget
	}
	if err != nil {
		return nil, err
	}
	return g, nil
}

func newGzipReader(src io.ReaderAt, srcSize int64, opts Options) (*GzipReader, error) {
	acceptUnfinished, prev, proven := opts.AcceptUnfinished, opts.Previous, opts.ProvenSize
	g := &GzipReader{src: src, srcSize: srcSize, acceptUnfinished: acceptUnfinished, busy: map[*gzCursor]span{}, waiting: map[int64]int{}}
	g.returned.L = &g.mu
	g.points = []checkpoint{{uoff: 0, header: 0}}
	if prev != nil {
		g.points = prev.borrowPoints()
	}
	var magic [2]byte
	if n, _ := src.ReadAt(magic[:], 0); n < 2 || magic != [2]byte{0x1f, 0x8b} {
		if srcSize == 0 && acceptUnfinished {
			g.complete = true
			return g, nil
		}
		return g, fmt.Errorf("%w: not a gzip stream", ErrBadData)
	}
	estimate, ok := g.trailerSize()
	g.size = estimate
	g.spacing = max(gzipMinSpacing, estimate/gzipMaxPoints)
	if prev != nil {
		g.spacing = max(g.spacing, prev.spacing)
	}
	if proven > 0 && !acceptUnfinished {
		g.size, g.complete = proven, true
		return g, nil
	}
	if !ok || acceptUnfinished {
		// No trustworthy trailer: decode once now, which also builds the index.
		if err := g.Measure(context.Background()); err != nil {
			return g, err
		}
	}
	return g, nil
}

// trailerSize estimates the plaintext size from the last member's trailer, which holds its
// size modulo 2^32. It is exact for the usual single-member stream under 4 GiB; the first read
// to the end corrects it otherwise.
func (g *GzipReader) trailerSize() (int64, bool) {
	if g.srcSize < 18+gzipTrailerLength {
		return 0, false
	}
	var isize [4]byte
	if _, err := g.src.ReadAt(isize[:], g.srcSize-4); err != nil {
		return 0, false
	}
	size := int64(binary.LittleEndian.Uint32(isize[:]))
	for size < g.srcSize/2 && g.srcSize > 1<<32/gzipMaxRatio {
		size += 1 << 32 // a wrapped count: the smallest size that is not implausibly small
	}
	return size, size <= g.srcSize*gzipMaxRatio
}

// borrowPoints copies the index for a newer reader of the grown stream, which then holds its
// windows too.
func (g *GzipReader) borrowPoints() []checkpoint {
	g.mu.Lock()
	defer g.mu.Unlock()
	points := append([]checkpoint(nil), g.points...)
	for _, p := range points {
		if p.window != nil {
			p.window.hold()
		}
	}
	return points
}

// Size is exact once a read has reached the end of the stream.
func (g *GzipReader) Size() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.size
}

// Source is the compressed stream the reader decodes.
func (g *GzipReader) Source() io.ReaderAt { return g.src }

// CutShort reports whether the stream ended without its last member's end: a log the server
// is still writing.
func (g *GzipReader) CutShort() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.truncated
}

// SizeExact reports whether Size is known from a complete decode.
func (g *GzipReader) SizeExact() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.complete
}

func (g *GzipReader) ReadAt(p []byte, off int64) (int, error) {
	return g.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt that stops with ctx's error when ctx is done, within 64 KiB of
// compressed input however little plaintext that makes.
func (g *GzipReader) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	g.mu.Lock()
	clipped := false // a read past a known end gets what there is, and io.EOF
	if g.complete {
		if off >= g.size {
			g.mu.Unlock()
			return 0, io.EOF
		}
		if rest := g.size - off; int64(len(p)) > rest {
			p, clipped = p[:rest], true
		}
	}
	if g.busyNear(off) {
		// Reads arrive out of order (the kernel has several readahead requests in flight):
		// the lowest waiting offset goes first, so the cursor moves forward only.
		wake := context.AfterFunc(ctx, func() { g.mu.Lock(); g.returned.Broadcast(); g.mu.Unlock() })
		g.waiting[off]++
		for (g.busyNear(off) || g.waitingBefore(off)) && ctx.Err() == nil {
			g.returned.Wait()
		}
		if g.waiting[off]--; g.waiting[off] == 0 {
			delete(g.waiting, off)
		}
		g.returned.Broadcast() // a read waiting behind this one may go now
		wake()
		if err := ctx.Err(); err != nil {
			g.mu.Unlock()
			return 0, err
		}
	}
	c := g.takeCursor(off)
	g.busy[c] = span{off, off + int64(len(p))}
	g.mu.Unlock()

	c.cr.ctx = ctx
	n, err := c.readAt(p, off)
	if c.cr.stopped && c.err == nil {
		// Its decoder kept the context's error for input it has not reached yet: the cursor
		// must not serve another read.
		c.err = context.Canceled
	}
	c.cr.ctx = nil
	g.giveBack(c, err)
	if err == nil && clipped {
		err = io.EOF
	}
	return n, err
}

// span is the stretch of plaintext a busy cursor is working on.
type span struct{ from, to int64 }

// giveBack makes a cursor idle again (unless it failed) and wakes reads waiting for it.
func (g *GzipReader) giveBack(c *gzCursor, err error) {
	var evict parked
	g.mu.Lock()
	delete(g.busy, c)
	atEnd := c.err != nil || g.complete && c.pos >= g.size
	if err == nil && !atEnd { // a cursor at the end serves no later read: a grown stream is a new reader
		g.idle = append(g.idle, c)
		evict = parkedCursors.park(g, c)
		if len(g.idle) > gzipIdleCursors {
			parkedCursors.unpark(g.idle[0])
			g.idle = slices.Delete(g.idle, 0, 1) // clears the slot it frees: no hidden reference
		}
	}
	g.returned.Broadcast()
	g.mu.Unlock()
	evict.drop() // after our lock: another reader's lock is never taken under it
}

// parkedCursors bounds the idle cursors of every reader together: each holds its decoder's
// window, tables and input buffer (about 200 KiB), and a mount keeps hundreds of readers.
// Past limit, a cursor idle for a while is dropped; past hardLimit, the oldest is, however
// recently it was used. Readers that take turns come back to theirs within the while.
var parkedCursors = parking{limit: 32, hardLimit: 64, while: 2 * time.Second}

type parking struct {
	mu               sync.Mutex
	list             []parked // oldest first
	seq              uint64
	limit, hardLimit int
	while            time.Duration
}

type parked struct {
	g     *GzipReader
	c     *gzCursor
	seq   uint64 // the cursor's parking this entry is for
	since time.Time
}

// park notes an idle cursor, and returns one to drop when there are too many. Called with
// g.mu held.
func (p *parking) park(g *GzipReader, c *gzCursor) parked {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	c.parkedSeq = p.seq
	now := time.Now()
	p.list = append(p.list, parked{g, c, p.seq, now})
	oldest := p.list[0]
	if len(p.list) > p.hardLimit || len(p.list) > p.limit && now.Sub(oldest.since) > p.while {
		p.list = slices.Delete(p.list, 0, 1)
		return oldest
	}
	return parked{}
}

// unpark forgets a cursor that is no longer idle.
func (p *parking) unpark(c *gzCursor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = slices.DeleteFunc(p.list, func(q parked) bool { return q.c == c })
}

// drop takes the cursor out of its reader's idle ones, unless a read took it meanwhile (and
// maybe parked it again, under an entry of its own).
func (q parked) drop() {
	if q.g == nil {
		return
	}
	q.g.mu.Lock()
	defer q.g.mu.Unlock()
	if i := slices.Index(q.g.idle, q.c); i >= 0 && q.c.parkedSeq == q.seq {
		q.g.idle = slices.Delete(q.g.idle, i, i+1)
	}
}

const (
	// gzipFollowDistance is how far past a busy cursor's work a read waits for it rather
	// than decoding from a checkpoint: the kernel sends readahead for the next window while
	// the current one is still being decoded.
	gzipFollowDistance = 4 << 20
)

// waitingBefore reports whether another read waits for an offset shortly before off. Called
// with mu held.
func (g *GzipReader) waitingBefore(off int64) bool {
	for w := range g.waiting {
		if w < off && off-w <= gzipFollowDistance {
			return true
		}
	}
	return false
}

// busyNear reports whether a busy cursor is working on off or shortly before it. Called with
// mu held.
func (g *GzipReader) busyNear(off int64) bool {
	for _, s := range g.busy {
		if s.from <= off && off <= s.to+gzipFollowDistance {
			return true
		}
	}
	return false
}

// Measure decodes from the furthest checkpoint it can check the CRC32 from (a member's start,
// or one that carries the member's CRC32 up to it) to the end of the stream, unless a scan
// has already reached it.
// It stops with ctx's error when ctx is done.
func (g *GzipReader) Measure(ctx context.Context) error {
	g.scanning.Lock()
	defer g.scanning.Unlock()
	g.mu.Lock()
	if g.complete {
		g.mu.Unlock()
		return nil
	}
	from := len(g.points) - 1
	for g.points[from].flate != nil && !g.points[from].crcKnown {
		from--
	}
	c := g.newCursor(g.points[from])
	g.mu.Unlock()
	c.cr.ctx = ctx // a stream of members that decode to nothing must stop too; the cursor is Measure's own
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := c.skip(4 << 20); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// takeCursor picks the idle cursor or checkpoint closest before off. Called with mu held.
func (g *GzipReader) takeCursor(off int64) *gzCursor {
	best := g.points[0]
	for i := len(g.points) - 1; i >= 0; i-- {
		if g.points[i].uoff <= off {
			best = g.points[i]
			break
		}
	}
	pick := -1
	for i, c := range g.idle {
		if c.pos <= off && c.pos >= best.uoff && (pick < 0 || c.pos > g.idle[pick].pos) {
			pick = i
		}
	}
	if pick >= 0 {
		c := g.idle[pick]
		g.idle = slices.Delete(g.idle, pick, pick+1)
		parkedCursors.unpark(c)
		return c
	}
	return g.newCursor(best)
}

// record adds a checkpoint past the last one, when it is far enough to be worth its window.
func (g *GzipReader) record(cp checkpoint) (needsCRC bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	last := g.points[len(g.points)-1]
	if cp.uoff < last.uoff+g.spacing { // member starts too: a stream of tiny members must not
		// grow the index without bound. A checkpoint here whose CRC32 its decode did not
		// reach may get it from this one.
		i, found := g.pointAt(cp.uoff, cp.deflateStart)
		return found && !g.points[i].crcKnown
	}
	if cp.flate != nil {
		for !windows.reserve(int64(len(cp.flate.window))) {
			if !g.thin() {
				return false // nothing of ours left to give back: go without this checkpoint
			}
		}
		w := *cp.flate
		w.window = append([]byte(nil), w.window...)
		cp.flate, cp.window = &w, &window{}
		cp.window.hold()
	}
	g.points = append(g.points, cp)
	return true
}

// noteCRC gives the checkpoint inside a member at uoff the member's CRC32 up to there.
func (g *GzipReader) noteCRC(uoff, deflateStart int64, crc uint32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if i, found := g.pointAt(uoff, deflateStart); found {
		g.points[i].crc, g.points[i].crcKnown = crc, true
	}
}

// pointAt finds the checkpoint inside the member whose deflate data starts at deflateStart
// at uoff: the end of one member and the start of the next are at the same uoff. Called with
// mu held.
func (g *GzipReader) pointAt(uoff, deflateStart int64) (int, bool) {
	i, found := slices.BinarySearchFunc(g.points, uoff, func(p checkpoint, uoff int64) int { return cmp.Compare(p.uoff, uoff) })
	return i, found && g.points[i].flate != nil && g.points[i].deflateStart == deflateStart
}

// thin drops every other window of this index and doubles its spacing, to stay within the
// shared budget. Called with mu held; false when it had nothing to drop.
func (g *GzipReader) thin() bool {
	kept := g.points[:1]
	dropped := false
	for i, p := range g.points[1:] {
		if p.window != nil && i%2 == 0 {
			p.window.drop(len(p.flate.window))
			dropped = true
			continue
		}
		kept = append(kept, p)
	}
	clear(g.points[len(kept):]) // the dropped windows are plaintext: not kept reachable
	g.points = kept
	g.spacing *= 2
	return dropped
}

// Release gives the index's windows back to the shared budget.
func (g *GzipReader) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.points {
		if p.window != nil {
			p.window.drop(len(p.flate.window))
		}
	}
	for _, c := range g.idle {
		parkedCursors.unpark(c)
	}
	clear(g.points[1:]) // the windows are plaintext: not kept reachable past their budget
	g.points, g.idle = g.points[:1], nil
}

// WindowsInUse is how many bytes of index windows the shared budget has handed out.
func WindowsInUse() int64 {
	windows.mu.Lock()
	defer windows.mu.Unlock()
	return windows.used
}

// WindowBytes is how many bytes of window this reader's index holds.
func (g *GzipReader) WindowBytes() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n int64
	for _, p := range g.points {
		if p.window != nil {
			n += int64(len(p.flate.window))
		}
	}
	return n
}

// windows is the budget every gzip index shares for its windows, which are plaintext held in
// memory: it bounds the memory of a mount however many compressed logs are open.
var windows = windowBudget{limit: 8 << 20}

type windowBudget struct {
	mu          sync.Mutex
	used, limit int64
}

func (b *windowBudget) reserve(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

func (b *windowBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

func (g *GzipReader) finish(size int64, truncated bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.complete, g.size, g.truncated = true, size, truncated
}

// gzCursor is one decoding position in the stream.
type gzCursor struct {
	g     *GzipReader
	br    *bufio.Reader
	cr    *countingReader
	fr    io.Reader // the deflate decoder; nil between members
	spare io.Reader // the last member's decoder, whose buffers the next member reuses
	pos   int64     // uncompressed offset of the next byte the decoder yields

	parkedSeq uint64 // its latest parking (parkedCursors), under g.mu

	deflateStart, memberUoff int64
	crc                      uint32
	crcValid                 bool    // decoding began at the member's start, or at a checkpoint whose CRC was known
	crcPending               []int64 // checkpoints this cursor recorded, whose CRC32 it has not reached yet
	err                      error
}

func (g *GzipReader) newCursor(cp checkpoint) *gzCursor {
	c := &gzCursor{g: g, pos: cp.uoff}
	if cp.flate == nil {
		c.reposition(cp.header)
		return c
	}
	c.reposition(cp.deflateStart + cp.flate.bit/8)
	c.deflateStart, c.memberUoff = cp.deflateStart, cp.memberUoff
	c.fr = newDecoder(nil, c.br, cp.flate, c.onBlockEnd)
	c.spare = c.fr
	c.crc, c.crcValid = cp.crc, cp.crcKnown
	return c
}

func (c *gzCursor) reposition(coff int64) {
	var ctx context.Context
	if c.cr != nil {
		ctx = c.cr.ctx
	}
	c.cr = &countingReader{r: io.NewSectionReader(c.g.src, coff, c.g.srcSize-coff), base: coff, ctx: ctx}
	c.br = bufio.NewReaderSize(c.cr, gzipReadBuffer)
}

// compressedPos is the compressed offset of the next unread byte.
func (c *gzCursor) compressedPos() int64 { return c.cr.base + c.cr.n - int64(c.br.Buffered()) }

func (c *gzCursor) onBlockEnd(cp inflateCheckpoint) {
	uoff := c.memberUoff + cp.uoff
	needsCRC := c.g.record(checkpoint{uoff: uoff, deflateStart: c.deflateStart, memberUoff: c.memberUoff, flate: &cp})
	if needsCRC && c.crcValid {
		c.crcPending = append(c.crcPending, uoff) // decoded, not yet read out: its CRC comes when it is
	}
}

// updateCRC adds the n bytes just read into p to the member's CRC32, giving the checkpoints
// among them theirs.
func (c *gzCursor) updateCRC(p []byte) {
	done := 0
	for len(c.crcPending) > 0 && c.crcPending[0] <= c.pos+int64(len(p)) {
		k := int(c.crcPending[0] - c.pos)
		c.crc = crc32.Update(c.crc, crc32.IEEETable, p[done:k])
		c.g.noteCRC(c.crcPending[0], c.deflateStart, c.crc)
		c.crcPending, done = c.crcPending[1:], k
	}
	c.crc = crc32.Update(c.crc, crc32.IEEETable, p[done:])
}

// readAt reads p at off, which is at or after the cursor's position.
func (c *gzCursor) readAt(p []byte, off int64) (int, error) {
	if _, err := c.skip(off - c.pos); err != nil {
		return 0, err
	}
	n := 0
	for n < len(p) {
		k, err := c.read(p[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

var discardBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func (c *gzCursor) skip(n int64) (int64, error) {
	bp := discardBuffers.Get().(*[]byte)
	defer func() { clear(*bp); discardBuffers.Put(bp) }() // no plaintext left in the pool
	var done int64
	for done < n {
		k, err := c.read((*bp)[:min(int64(len(*bp)), n-done)])
		done += int64(k)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// read decodes into p, moving from member to member.
func (c *gzCursor) read(p []byte) (int, error) {
	for c.err == nil {
		if c.fr == nil {
			c.err = c.startMember()
			continue
		}
		n, err := c.fr.Read(p)
		if c.crcValid {
			c.updateCRC(p[:n])
		}
		c.pos += int64(n)
		switch {
		case err == io.EOF:
			c.err = c.endMember()
		case errors.Is(err, io.ErrUnexpectedEOF) && c.g.acceptUnfinished:
			c.g.finish(c.pos, true) // a stream still being written: everything decodable so far
			c.err = io.EOF
		case err != nil && isIOError(err):
			c.err = fmt.Errorf("gzip data at compressed byte %d: %w", c.compressedPos(), err)
		case err != nil:
			c.err = fmt.Errorf("%w: gzip data at compressed byte %d: %v", ErrBadData, c.compressedPos(), err)
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, c.err
}

// startMember reads a gzip member header (RFC 1952), or ends the stream where no data is left.
func (c *gzCursor) startMember() error {
	header := c.compressedPos()
	if header >= c.g.srcSize {
		c.g.finish(c.pos, false)
		return io.EOF
	}
	if err := skipGzipHeader(c.br); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) && c.g.acceptUnfinished {
			c.g.finish(c.pos, true)
			return io.EOF
		}
		if isIOError(err) {
			return fmt.Errorf("gzip member at compressed byte %d: %w", header, err)
		}
		return fmt.Errorf("%w: gzip member at compressed byte %d: %v", ErrBadData, header, err)
	}
	c.g.record(checkpoint{uoff: c.pos, header: header})
	c.deflateStart, c.memberUoff = c.compressedPos(), c.pos
	c.crc, c.crcValid, c.crcPending = 0, true, c.crcPending[:0]
	c.fr = newDecoder(c.spare, c.br, nil, c.onBlockEnd)
	c.spare = c.fr
	return nil
}

// endMember checks the trailer: CRC32 and size modulo 2^32 of the member.
func (c *gzCursor) endMember() error {
	at := c.compressedPos()
	var trailer [gzipTrailerLength]byte
	if _, err := io.ReadFull(c.br, trailer[:]); err != nil {
		if isIOError(err) {
			return fmt.Errorf("gzip trailer at compressed byte %d: %w", c.compressedPos(), err)
		}
		if c.g.acceptUnfinished {
			c.g.finish(c.pos, true)
			return io.EOF
		}
		return fmt.Errorf("%w: gzip member ends without its trailer (truncated)", ErrBadData)
	}
	if !c.crcValid {
		if err := c.g.mismatch(at); err != nil {
			return err
		}
	} else if err := c.checkTrailer(trailer); err != nil {
		c.g.noteMismatch(at, err)
		return err
	}
	c.fr = nil
	return nil
}

// checkTrailer compares a member's trailer with the CRC32 and size of what it decoded to.
func (c *gzCursor) checkTrailer(trailer [gzipTrailerLength]byte) error {
	if binary.LittleEndian.Uint32(trailer[:4]) != c.crc {
		return fmt.Errorf("%w: gzip CRC32 mismatch in the member ending at compressed byte %d", ErrBadData, c.compressedPos())
	}
	if binary.LittleEndian.Uint32(trailer[4:]) != uint32(c.pos-c.memberUoff) {
		return fmt.Errorf("%w: gzip size mismatch in the member ending at compressed byte %d", ErrBadData, c.compressedPos())
	}
	return nil
}

// noteMismatch remembers the member whose trailer is at compressed offset at as damaged.
func (g *GzipReader) noteMismatch(at int64, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mismatches == nil {
		g.mismatches = map[int64]error{}
	}
	g.mismatches[at] = err
}

// mismatch is the error a whole decode found in the member whose trailer is at at, if any.
func (g *GzipReader) mismatch(at int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mismatches[at]
}

const (
	gzipFlagHCRC    = 1 << 1
	gzipFlagExtra   = 1 << 2
	gzipFlagName    = 1 << 3
	gzipFlagComment = 1 << 4
	gzipFlagsKnown  = 0x1f
)

func skipGzipHeader(br *bufio.Reader) error {
	var h [10]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return noEOF(err)
	}
	if h[0] != 0x1f || h[1] != 0x8b {
		return errors.New("no gzip magic")
	}
	if h[2] != 8 {
		return fmt.Errorf("compression method %d (only deflate, 8, exists)", h[2])
	}
	flags := h[3]
	if flags&^gzipFlagsKnown != 0 {
		return fmt.Errorf("reserved header flags 0x%02x", flags)
	}
	if flags&gzipFlagExtra != 0 {
		var n [2]byte
		if _, err := io.ReadFull(br, n[:]); err != nil {
			return noEOF(err)
		}
		if _, err := br.Discard(int(binary.LittleEndian.Uint16(n[:]))); err != nil {
			return noEOF(err)
		}
	}
	for _, f := range []byte{gzipFlagName, gzipFlagComment} {
		if flags&f != 0 {
			if _, err := br.ReadSlice(0); err != nil {
				return noEOF(err)
			}
		}
	}
	if flags&gzipFlagHCRC != 0 {
		if _, err := br.Discard(2); err != nil {
			return noEOF(err)
		}
	}
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

type countingReader struct {
	r    io.Reader
	base int64
	n    int64
	ctx  context.Context // the read being served, checked at each refill; nil for none
	// stopped: a refill failed for ctx, and the decoder above keeps that error.
	stopped bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.ctx != nil {
		if err := c.ctx.Err(); err != nil {
			c.stopped = true
			return 0, err
		}
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
