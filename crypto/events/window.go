package events

import (
	"io"

	"github.com/mysqllogfs/mysqllogfs/crypto/internal/bufpool"
)

// window is the part of a stream a scanner looks at: buf holds the bytes from stream offset
// base on. A scanner that needs more calls more, and drops what it has done with by advance.
//
// Once the stream has proven long, a goroutine reads it a chunk ahead, into the memory the
// scanner looks at next: the plaintext is decrypted and decompressed on one core while the
// chunk before is scanned on another, and bytes are moved only where a record runs from one
// chunk into the next. Chunks start small and double, read by the scanner itself at first:
// a short log, or a view's decode started for one read, costs no goroutine and little
// reading ahead.
type window struct {
	mem  *[]byte // buf lies in *mem, a chunk's, or in grown memory when mem is nil
	buf  []byte
	base int64
	eof  bool
	err  error // a read error other than io.EOF

	r    io.Reader
	size int          // of the next chunk
	free chan *[]byte // chunk memory to fill; nil for memory to take from chunkMemory
	full chan chunk   // read ahead, in order; nil until the reading ahead starts
	stop chan struct{}
	done chan struct{}
}

// chunk is what was read into (*mem)[carryRoom:carryRoom+n].
type chunk struct {
	mem *[]byte
	n   int
	err error
}

const (
	windowChunk = 1 << 20  // hand-offs between the goroutines cost more the smaller this is
	firstChunk  = 64 << 10 // chunks start this small, and double
	carryRoom   = 64 << 10 // room before a chunk for the end of a record that began before it
)

// chunkMemory keeps the memory of a few chunks: two mount --events decodes at a time prove
// the sizes of many short logs.
var chunkMemory = bufpool.New(carryRoom+windowChunk, 4)

func newWindow(r io.Reader) *window {
	w := &window{r: r, size: firstChunk, free: make(chan *[]byte, 2)}
	w.free <- nil // two chunks' memory, taken from chunkMemory when first needed
	w.free <- nil
	return w
}

// read fills a chunk of the current size in mem, or in memory from chunkMemory, and doubles
// the size.
func (w *window) read(mem *[]byte) chunk {
	if mem == nil {
		mem = chunkMemory.Get()
	}
	c := chunk{mem: mem}
	for c.n < w.size && c.err == nil {
		var k int
		k, c.err = w.r.Read((*mem)[carryRoom+c.n : carryRoom+w.size])
		c.n += k
	}
	w.size = min(2*w.size, windowChunk)
	return c
}

// readAhead reads chunks in turn until an error, the end of the stream, or close.
func (w *window) readAhead() {
	defer close(w.done)
	defer close(w.full)
	for {
		var mem *[]byte
		select {
		case mem = <-w.free:
		case <-w.stop:
			return
		}
		c := w.read(mem)
		select {
		case w.full <- c:
		case <-w.stop:
			w.free <- c.mem // for close to give back
			return
		}
		if c.err != nil {
			return
		}
	}
}

// next returns the next chunk: read here until the chunks have grown to their full size,
// then by the goroutine that reads ahead.
func (w *window) next() (chunk, bool) {
	if w.full == nil && w.size < windowChunk {
		return w.read(<-w.free), true // one of the two is free: the scanner holds the other
	}
	if w.full == nil {
		w.full, w.stop, w.done = make(chan chunk, 1), make(chan struct{}), make(chan struct{})
		go w.readAhead()
	}
	c, ok := <-w.full
	return c, ok
}

// close stops the reading ahead and gives the chunks' memory back; the window is not used
// after it.
func (w *window) close() {
	if w.full != nil {
		close(w.stop)
		<-w.done
		for c := range w.full {
			w.free <- c.mem
		}
	}
	w.release()
	for range cap(w.free) {
		if mem := <-w.free; mem != nil {
			clear((*mem)[:min(len(*mem), carryRoom+w.size)]) // pooled memory keeps no plaintext; no read went past this
			chunkMemory.Put(mem)
		}
	}
}

// more reads at least one more byte into buf; false at the end of the stream or on an error.
// Once buf is longer than a chunk (a record that long), it doubles it: the scanner looks at
// the record again from its start after each call, which stays linear only so.
func (w *window) more() bool {
	had := len(w.buf)
	want := had + 1
	if had > windowChunk {
		want = 2 * had
	}
	for len(w.buf) < want && !w.eof && w.err == nil {
		c, ok := w.next()
		if !ok {
			w.err = io.ErrClosedPipe // the window was closed: not reached by a scanner
			break
		}
		if c.n > 0 {
			w.take(c)
		} else {
			w.free <- c.mem
		}
		switch {
		case c.err == io.EOF:
			w.eof = true
		case c.err != nil:
			w.err = c.err
		}
	}
	return len(w.buf) > had
}

// take makes buf what is left of it followed by the chunk's bytes: in the chunk's memory
// when what is left fits before them, else in memory grown to twice what is needed, so that
// a record of any length is copied a bounded number of times per byte.
func (w *window) take(c chunk) {
	data := (*c.mem)[carryRoom : carryRoom+c.n]
	if len(w.buf) <= carryRoom {
		start := carryRoom - len(w.buf)
		copy((*c.mem)[start:], w.buf)
		w.release()
		w.mem, w.buf = c.mem, (*c.mem)[start:carryRoom+c.n]
		return
	}
	if len(w.buf)+len(data) > cap(w.buf) {
		grown := make([]byte, 2*(len(w.buf)+len(data)))
		n := copy(grown, w.buf)
		w.release()
		w.buf = grown[:n]
	}
	w.buf = append(w.buf, data...)
	w.free <- c.mem
}

// release gives the chunk memory buf is in back for reading into. No slice of it may be kept.
func (w *window) release() {
	if w.mem != nil {
		w.free <- w.mem
	}
	w.mem = nil
}

// advance drops the first n bytes.
func (w *window) advance(n int) {
	w.base += int64(n)
	w.buf = w.buf[n:]
}
