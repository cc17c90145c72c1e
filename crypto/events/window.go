package events

import "io"

// window is the part of a stream a scanner looks at: buf holds the bytes from stream offset
// base on. A scanner that needs more calls more, and drops what it has done with by advance.
//
// A goroutine reads the stream a chunk ahead, into the memory the scanner looks at next: the
// plaintext is decrypted and decompressed on one core while the chunk before is scanned on
// another, and bytes are moved only where a record runs from one chunk into the next.
type window struct {
	mem    []byte // buf lies in it
	pooled bool   // mem is a chunk's, which goes back to the reader
	buf    []byte
	base   int64
	eof    bool
	err    error // a read error other than io.EOF

	full chan chunk  // read ahead, in order
	free chan []byte // chunk memory for the reader to fill
	stop chan struct{}
	done chan struct{}
}

// chunk is what the reader read into mem[carryRoom:carryRoom+n].
type chunk struct {
	mem []byte
	n   int
	err error
}

const (
	windowChunk = 1 << 20  // hand-offs between the goroutines cost more the smaller this is
	firstChunk  = 64 << 10 // chunks start small and double: a decode started for one read of a view reads little ahead
	carryRoom   = 64 << 10 // room before a chunk for the end of a record that began before it
)

func newWindow(r io.Reader) *window {
	w := &window{
		full: make(chan chunk, 1),
		free: make(chan []byte, 2),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	w.free <- nil // two chunks' memory, made when first needed
	w.free <- nil
	go w.readAhead(r)
	return w
}

// readAhead fills the free chunks from r, in turn, until an error or the end of r.
func (w *window) readAhead(r io.Reader) {
	defer close(w.done)
	defer close(w.full)
	for size := firstChunk; ; size = min(2*size, windowChunk) {
		var mem []byte
		select {
		case mem = <-w.free:
		case <-w.stop:
			return
		}
		if len(mem) < carryRoom+size {
			mem = make([]byte, carryRoom+size)
		}
		c := chunk{mem: mem}
		for c.n < size && c.err == nil {
			var k int
			k, c.err = r.Read(mem[carryRoom+c.n : carryRoom+size])
			c.n += k
		}
		select {
		case w.full <- c:
		case <-w.stop:
			return
		}
		if c.err != nil {
			return
		}
	}
}

// close stops the reader; the window is not used after it.
func (w *window) close() {
	close(w.stop)
	<-w.done
}

// more reads at least one more byte into buf; false at the end of the stream or on an error.
func (w *window) more() bool {
	for !w.eof && w.err == nil {
		c, ok := <-w.full
		if !ok {
			w.err = io.ErrClosedPipe // the window was closed: not reached by a scanner
			return false
		}
		if c.n > 0 {
			w.take(c)
		} else {
			w.free <- c.mem
		}
		switch {
		case c.err == io.EOF:
			w.eof = true
			return c.n > 0
		case c.err != nil:
			w.err = c.err
			return c.n > 0
		case c.n > 0:
			return true
		}
	}
	return false
}

// take makes buf what is left of it followed by the chunk's bytes: in the chunk's memory
// when what is left fits before them, else in memory grown to twice what is needed, so that
// a record of any length is copied a bounded number of times per byte.
func (w *window) take(c chunk) {
	data := c.mem[carryRoom : carryRoom+c.n]
	if len(w.buf) <= carryRoom {
		start := carryRoom - len(w.buf)
		copy(c.mem[start:], w.buf)
		w.release()
		w.mem, w.pooled, w.buf = c.mem, true, c.mem[start:carryRoom+c.n]
		return
	}
	if len(w.buf)+len(data) > cap(w.buf) {
		mem := make([]byte, 2*(len(w.buf)+len(data)))
		n := copy(mem, w.buf)
		w.release()
		w.mem, w.buf = mem, mem[:n]
	}
	w.buf = append(w.buf, data...)
	w.free <- c.mem
}

// release gives the chunk memory buf is in back to the reader. No slice of it may be kept.
func (w *window) release() {
	if w.pooled {
		w.free <- w.mem
	}
	w.mem, w.pooled = nil, false
}

// advance drops the first n bytes.
func (w *window) advance(n int) {
	w.base += int64(n)
	w.buf = w.buf[n:]
}
