package crypto

import (
	"io"
	"sync"
)

// Ahead serves one stream of sequential reads from plaintext prepared in the background:
// while the data of one read travels to the reading program, a worker decrypts (and
// inflates) the stretches that follow on another core. Reads elsewhere go straight to the
// underlying reader. An Ahead belongs to one stream of reads, such as one open file
// description; the kernel may send several of its reads at once.
type Ahead struct {
	r io.ReaderAt

	mu       sync.Mutex
	ready    sync.Cond  // a stretch became ready, or the worker stopped
	end      int64      // where the latest read ends: a read starting here is sequential
	queue    []*stretch // consecutive stretches from the lowest offset; only the last may be unready
	fillFrom int64      // where the worker's next stretch starts
	working  bool       // the worker is running
	ended    bool       // the worker's last stretch reached the end of the file
	closed   bool
}

// stretch is plaintext prepared ahead: buf[:n] holds the bytes at off once ready.
type stretch struct {
	off   int64
	buf   []byte
	n     int
	ready bool
	used  int // bytes copied out; the stretch goes when all were
}

const (
	// aheadSize is the size of a stretch: the largest read the kernel sends a FUSE server.
	aheadSize = 1 << 20
	// aheadDepth is how many stretches one stream prepares: the kernel keeps two reads of
	// a sequential reader in flight, and the worker should not wait for either.
	aheadDepth = 3
)

// NewAhead returns an Ahead reading from r.
func NewAhead(r io.ReaderAt) *Ahead {
	a := &Ahead{r: r}
	a.ready.L = &a.mu
	return a
}

// ReadAt reads len(p) bytes at off: from prepared stretches as far as they hold them, the
// rest from the reader.
func (a *Ahead) ReadAt(p []byte, off int64) (int, error) {
	a.mu.Lock()
	sequential := off == a.end && off > 0 // a first read at 0 may be all a program wants
	if sequential && a.find(off) < 0 && !a.isNext(off) {
		// A sequential reader the worker is not serving: the worker starts here, so that one
		// decoder produces the stream in order, and this read waits for its first stretch.
		a.dropReady()
		a.fillFrom = off
		a.work()
	}
	a.end = off + int64(len(p))
	n := a.copyPrepared(p, off)
	if n > 0 {
		a.work() // the queue has room again
	} else if !sequential {
		a.dropReady() // prepared for a reader that went elsewhere
	}
	a.mu.Unlock()
	if n == len(p) {
		return n, nil
	}
	k, err := a.r.ReadAt(p[n:], off+int64(n))
	return n + k, err
}

// copyPrepared copies into p what the queue holds from off on, waiting for a stretch being
// prepared, and returns how much it copied. Called with mu held.
func (a *Ahead) copyPrepared(p []byte, off int64) int {
	n := 0
	for n < len(p) {
		at := off + int64(n)
		i := a.find(at)
		if i < 0 {
			if a.isNext(at) {
				a.ready.Wait() // the worker makes it next
				continue
			}
			break
		}
		s := a.queue[i]
		if !s.ready {
			a.ready.Wait()
			continue
		}
		if at >= s.off+int64(s.n) {
			break // it ended short: the end of the file, or an error the reader reports itself
		}
		k := copy(p[n:], s.buf[at-s.off:s.n])
		n += k
		if s.used += k; s.used >= s.n {
			a.queue = append(a.queue[:i], a.queue[i+1:]...)
			a.release(s)
		}
	}
	return n
}

// isNext reports whether the worker is about to prepare the stretch holding off.
func (a *Ahead) isNext(off int64) bool {
	return a.working && a.fillFrom <= off && off < a.fillFrom+aheadSize
}

// find returns the index of the stretch whose span holds off, or -1.
func (a *Ahead) find(off int64) int {
	for i, s := range a.queue {
		if s.off <= off && off < s.off+int64(len(s.buf)) {
			return i
		}
	}
	return -1
}

// work starts the worker unless it runs. Called with mu held.
func (a *Ahead) work() {
	if !a.working && !a.closed {
		a.ended = false
		a.working = true
		go a.prepare()
	}
}

// prepare fills stretches past the queue's end until the queue is full, the file ends or no
// buffer is free (other streams use them all: this one is then read directly).
func (a *Ahead) prepare() {
	a.mu.Lock()
	defer a.mu.Unlock()
	defer a.ready.Broadcast()
	defer func() { a.working = false }()
	for !a.closed && len(a.queue) < aheadDepth && !a.ended {
		buf := aheadBuffers.take()
		if buf == nil {
			return
		}
		s := &stretch{off: a.fillFrom, buf: buf}
		a.queue = append(a.queue, s)
		a.fillFrom += aheadSize
		a.mu.Unlock()
		s.n, _ = a.r.ReadAt(buf, s.off) // short at the end; an error comes again to a direct read
		a.mu.Lock()
		s.ready = true
		a.ended = s.n < len(buf) && s.off+aheadSize == a.fillFrom
		a.ready.Broadcast()
	}
}

// dropReady gives back every ready stretch. Called with mu held.
func (a *Ahead) dropReady() {
	kept := a.queue[:0]
	for _, s := range a.queue {
		if s.ready {
			a.release(s)
		} else {
			kept = append(kept, s)
		}
	}
	a.queue = kept
}

func (a *Ahead) release(s *stretch) {
	clear(s.buf[:s.n]) // no plaintext left in a free buffer
	aheadBuffers.give(s.buf)
}

// Close stops the worker and gives back every buffer.
func (a *Ahead) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	for a.working {
		a.ready.Wait()
	}
	a.dropReady()
}

// aheadBuffers bounds the memory of everything prepared ahead, however many files are read.
var aheadBuffers = bufferBudget{limit: 8}

type bufferBudget struct {
	mu    sync.Mutex
	free  [][]byte
	out   int
	limit int
}

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
	return make([]byte, aheadSize)
}

func (b *bufferBudget) give(buf []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.out--
	b.free = append(b.free, buf)
}

var TraceAhead = false
