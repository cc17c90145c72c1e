package fs

import (
	"context"
	"io"
	"slices"
	"sync"

	"github.com/mysqllogfs/mysqllogfs/crypto/source"
)

// readAhead serves one stream of reads, such as one open file description; the kernel may send
// several of its reads at once.
//
// For a compressed log, which decodes only in order, it serves sequential reads from
// plaintext prepared in the background: while the data of one read travels to the reading
// program, a worker decrypts and inflates the stretches that follow on another core. Reads
// elsewhere go straight to the underlying reader.
//
// A reader that costs the same at any offset (a binlog's CTR) is read directly, on the
// goroutine that serves the read, into a buffer lent from the same budget: a worker would only
// move the work and the plaintext to the other core, and cost more (docs/performance.md).
type readAhead struct {
	r      interruptible
	direct bool
	stop   context.CancelFunc // ends the worker's read when the stream closes
	ctx    context.Context    // the worker's

	mu       sync.Mutex
	ready    sync.Cond  // a stretch became ready, or the worker stopped
	end      int64      // where the latest read ends: a read starting here is sequential
	queue    []*stretch // consecutive stretches from the lowest offset; only the last may be unready
	spare    [][]byte   // buffers of read-out stretches, for the worker's next ones; not cleared
	fillFrom int64      // where the worker's next stretch starts
	working  bool       // the worker is running
	closed   bool
}

// stretch is plaintext prepared ahead: buf[:n] holds the bytes at off once ready.
type stretch struct {
	off     int64
	buf     []byte
	n       int
	eof     bool // the file ends at off+n
	ready   bool
	used    int  // bytes read out: the stretch retires when all were
	lent    int  // replies still sending from buf
	retired bool // out of the queue: buf goes back once no reply uses it
}

const (
	// aheadSize is the size of a stretch: the largest read the kernel sends a FUSE server.
	aheadSize = 1 << 20
	// aheadDepth is how many stretches one stream prepares: the kernel keeps a sequential
	// reader's current readahead window and the next one in flight, and the worker should
	// not fall behind any of those reads. With a window of two requests (tried; see
	// fs.ReadaheadWindow) that is four reads, and with three stretches about 300 of the
	// 1,024 reads of a 1 GiB compressed log came before the worker was within reach and were
	// decoded a second time. With today's window of one request, four leaves a stretch spare.
	aheadDepth = 4
)

// interruptible reads stop with the context's error once it is done: a compressed log may
// decode for seconds without producing a byte, and nobody may be waiting for them any more.
type interruptible interface {
	ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
}

// uninterruptible adapts a plain io.ReaderAt, whose reads are all short.
type uninterruptible struct{ io.ReaderAt }

func (u uninterruptible) ReadAtContext(_ context.Context, p []byte, off int64) (int, error) {
	return u.ReadAt(p, off)
}

// newReadAhead returns a readAhead reading from r; direct says r costs the same at any offset.
func newReadAhead(r io.ReaderAt, direct bool) *readAhead {
	i, ok := r.(interruptible)
	if !ok {
		i = uninterruptible{r}
	}
	a := &readAhead{r: i, direct: direct}
	a.ctx, a.stop = context.WithCancel(context.Background())
	a.ready.L = &a.mu
	return a
}

// ReadAt reads len(p) bytes at off: from prepared stretches as far as they hold them, the
// rest from the reader.
func (a *readAhead) ReadAt(p []byte, off int64) (int, error) {
	b, done, err := a.Read(context.Background(), p, off)
	defer done()
	if len(b) > 0 && &b[0] != &p[0] {
		copy(p, b)
	}
	return len(b), err
}

// Read serves a read of len(p) bytes at off without copying where it can: the bytes it
// returns are either p's own or prepared ones, valid until done is called. Like ReadAt, it
// returns fewer than len(p) bytes only with an error, io.EOF at the end; ctx's error when ctx
// is done (the reading program was interrupted) before the bytes are there.
func (a *readAhead) Read(ctx context.Context, p []byte, off int64) (b []byte, done func(), err error) {
	if a.direct {
		return a.readLent(ctx, p, off)
	}
	wake := context.AfterFunc(ctx, func() { a.mu.Lock(); a.ready.Broadcast(); a.mu.Unlock() })
	defer wake()
	a.mu.Lock()
	a.follow(off, len(p))
	if s := a.await(ctx, off); s != nil && s.holds(off, len(p)) {
		b = s.buf[off-s.off : min(off+int64(len(p)), s.off+int64(s.n))-s.off]
		s.lent++
		a.use(s, len(b))
		a.work()
		a.mu.Unlock()
		if len(b) < len(p) {
			err = io.EOF
		}
		return b, func() { a.giveBack(s) }, err
	}
	n := a.copyPrepared(ctx, p, off)
	if n > 0 {
		a.work() // the queue has room again
	}
	a.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, func() {}, err
	}
	if n < len(p) {
		var k int
		k, err = a.r.ReadAtContext(ctx, p[n:], off+int64(n))
		n += k
	}
	return p[:n], func() {}, err
}

// readLent reads into a buffer of the stream or the budget, which the reply is sent from
// (a huge page: cheaper for the kernel to fill and to pin than the reply buffer of go-fuse),
// or into p when none is free.
func (a *readAhead) readLent(ctx context.Context, p []byte, off int64) ([]byte, func(), error) {
	var buf []byte
	if len(p) <= aheadSize { // always, for requests the kernel sends
		a.mu.Lock()
		buf = a.takeBuffer()
		a.mu.Unlock()
	}
	if buf == nil {
		n, err := a.r.ReadAtContext(ctx, p, off)
		return p[:n], func() {}, err
	}
	s := &stretch{buf: buf, lent: 1, retired: true}
	n, err := a.r.ReadAtContext(ctx, buf[:len(p)], off)
	return buf[:n], func() { a.giveBack(s) }, err
}

// follow notes a read of n bytes at off. A sequential reader the worker is not serving has
// it start there, so that one decoder produces the stream in order and this read waits for
// the first stretch; a read elsewhere makes what was prepared unwanted. Called with mu held.
func (a *readAhead) follow(off int64, n int) {
	sequential := off == a.end && off > 0 // a first read at 0 may be all a program wants
	a.end = off + int64(n)
	switch {
	case a.find(off) >= 0 || a.isComing(off):
	case sequential:
		a.dropReady()
		a.fillFrom = off
		a.work()
	default:
		a.dropReady()
		a.giveBackSpare() // a random reader reads directly
	}
}

// await returns the ready stretch holding off, waiting for one being prepared, or nil; nil
// too once ctx is done. Called with mu held.
func (a *readAhead) await(ctx context.Context, off int64) *stretch {
	for ctx.Err() == nil {
		i := a.find(off)
		switch {
		case i >= 0 && a.queue[i].ready:
			if off < a.queue[i].off+int64(a.queue[i].n) {
				return a.queue[i]
			}
			return nil // it ended short: the end of the file, or an error the reader reports itself
		case i >= 0 || a.isComing(off):
			a.ready.Wait()
		default:
			return nil
		}
	}
	return nil
}

// holds reports whether the stretch has all of a read of n bytes at off, up to the end of the
// file where that comes first.
func (s *stretch) holds(off int64, n int) bool {
	return off+int64(n) <= s.off+int64(s.n) || s.eof
}

// copyPrepared copies into p what the queue holds from off on and returns how much it
// copied. Called with mu held.
func (a *readAhead) copyPrepared(ctx context.Context, p []byte, off int64) int {
	n := 0
	for n < len(p) {
		at := off + int64(n)
		s := a.await(ctx, at)
		if s == nil {
			break
		}
		k := copy(p[n:], s.buf[at-s.off:s.n])
		n += k
		a.use(s, k)
	}
	return n
}

// use counts k bytes of s read out. Called with mu held.
func (a *readAhead) use(s *stretch, k int) {
	if s.used += k; s.used >= s.n {
		a.retire(s)
	}
}

// isComing reports whether the worker will prepare the stretch holding off before the queue
// is full. The kernel sends the reads of its readahead window at once, and they may be
// further ahead than the worker has got; restarting the worker there would make the reads in
// between decode from the nearest checkpoint. Called with mu held.
func (a *readAhead) isComing(off int64) bool {
	room := int64(aheadDepth - len(a.queue))
	return a.working && a.fillFrom <= off && off < a.fillFrom+room*aheadSize
}

// find returns the index of the stretch whose span holds off, or -1.
func (a *readAhead) find(off int64) int {
	for i, s := range a.queue {
		if s.off <= off && off < s.off+int64(len(s.buf)) {
			return i
		}
	}
	return -1
}

// work starts the worker unless it runs. Called with mu held.
func (a *readAhead) work() {
	if !a.working && !a.closed {
		a.working = true
		go a.prepare()
	}
}

// prepare fills stretches past the queue's end until the queue is full, the file ends or no
// buffer is free (other streams use them all: this one is then read directly).
func (a *readAhead) prepare() {
	a.mu.Lock()
	defer a.mu.Unlock()
	defer a.ready.Broadcast()
	defer func() { a.working = false }()
	for !a.closed && len(a.queue) < aheadDepth {
		buf := a.takeBuffer()
		if buf == nil {
			return
		}
		s := &stretch{off: a.fillFrom, buf: buf}
		a.queue = append(a.queue, s)
		a.fillFrom += aheadSize
		a.mu.Unlock()
		n, err := a.r.ReadAtContext(a.ctx, buf, s.off) // an error comes again to the direct read past n
		a.mu.Lock()
		s.n, s.eof, s.ready = n, err == io.EOF, true
		if n == 0 {
			a.retire(s)
		}
		a.ready.Broadcast()
		if n < len(buf) {
			return // the end of the file, or an error
		}
	}
}

// dropReady retires every ready stretch. Called with mu held.
func (a *readAhead) dropReady() {
	for _, s := range append([]*stretch(nil), a.queue...) {
		if s.ready {
			a.retire(s)
		}
	}
}

// retire takes s out of the queue; its buffer goes back once no reply sends from it. Called
// with mu held.
func (a *readAhead) retire(s *stretch) {
	if i := slices.Index(a.queue, s); i >= 0 {
		a.queue = slices.Delete(a.queue, i, i+1)
	}
	s.retired = true
	a.freeUnused(s)
}

// giveBack ends a reply's use of s.
func (a *readAhead) giveBack(s *stretch) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s.lent--
	a.freeUnused(s)
}

// freeUnused lets go of the buffer of a retired stretch once no reply uses it: the worker
// reuses it for this stream's next stretch, or it goes back to the shared budget cleared, so
// that a free buffer holds no plaintext. Clearing only there saves clearing every stretch of a
// sequential read. A stream keeps one buffer more than its queue holds: by the time the reply
// of a stretch has been sent, the worker has already refilled the queue, and the buffer comes
// back for the stretch after that. Called with mu held.
func (a *readAhead) freeUnused(s *stretch) {
	if !s.retired || s.lent > 0 {
		return
	}
	if !a.closed && len(a.queue)+len(a.spare) <= aheadDepth {
		a.spare = append(a.spare, s.buf)
		return
	}
	clear(s.buf)
	aheadBuffers.give(s.buf)
}

// takeBuffer returns a spare buffer of this stream, or one from the shared budget, or nil
// when all are out. Called with mu held.
func (a *readAhead) takeBuffer() []byte {
	if n := len(a.spare); n > 0 {
		buf := a.spare[n-1]
		a.spare = a.spare[:n-1]
		return buf
	}
	return aheadBuffers.take()
}

// giveBackSpare clears the stream's spare buffers and returns them to the shared budget.
// Called with mu held.
func (a *readAhead) giveBackSpare() {
	for _, buf := range a.spare {
		clear(buf)
		aheadBuffers.give(buf)
	}
	a.spare = nil
}

// Close stops the worker, within 64 KiB of input however far it was from its stretch's end,
// and gives back every buffer no reply uses.
func (a *readAhead) Close() {
	a.stop()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	for a.working {
		a.ready.Wait()
	}
	a.dropReady()
	a.giveBackSpare()
}

// aheadBuffers bounds the memory of everything prepared ahead, however many files are read.
var aheadBuffers = bufferBudget{limit: 8}

type bufferBudget struct {
	mu    sync.Mutex
	free  [][]byte
	fresh []byte // allocated, not yet handed out
	out   int
	limit int
}

// hugePageSize is the size of a transparent huge page.
const hugePageSize = source.HugePageSize

// take returns a buffer of aheadSize bytes, or nil when all are out.
func (b *bufferBudget) take() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.out == b.limit {
		return nil
	}
	b.out++
	if n := len(b.free); n > 0 {
		buf := b.free[n-1]
		b.free = b.free[:n-1]
		return buf
	}
	if len(b.fresh) == 0 {
		b.fresh = allocateHuge(hugePageSize) // two buffers
	}
	buf := b.fresh[:aheadSize:aheadSize]
	b.fresh = b.fresh[aheadSize:]
	return buf
}

func (b *bufferBudget) give(buf []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.out--
	b.free = append(b.free, buf)
}
