package events

import "io"

// window is the part of a stream a scanner looks at: buf holds the bytes from stream offset
// base on. A scanner that needs more calls more, and drops what it has done with by advance.
type window struct {
	r    io.Reader
	mem  []byte // buf lies in it; what was advanced past is moved out only when room is needed
	buf  []byte
	base int64
	eof  bool
	err  error // a read error other than io.EOF
}

const windowChunk = 256 << 10

func newWindow(r io.Reader) *window {
	mem := make([]byte, windowChunk)
	return &window{r: r, mem: mem, buf: mem[:0]}
}

// more reads at least one more byte into buf; false at the end of the stream or on an error.
func (w *window) more() bool {
	if w.eof || w.err != nil {
		return false
	}
	if len(w.buf) == cap(w.buf) { // no room after buf: move it to the front, or grow
		if len(w.buf) > len(w.mem)/2 {
			w.mem = make([]byte, 2*len(w.mem))
		}
		w.buf = w.mem[:copy(w.mem, w.buf)]
	}
	for {
		n, err := w.r.Read(w.buf[len(w.buf):cap(w.buf)])
		w.buf = w.buf[:len(w.buf)+n]
		switch {
		case err == io.EOF:
			w.eof = true
			return n > 0
		case err != nil:
			w.err = err
			return n > 0
		case n > 0:
			return true
		}
	}
}

// advance drops the first n bytes, and a grown buffer once what is left fits a chunk.
func (w *window) advance(n int) {
	w.base += int64(n)
	w.buf = w.buf[n:]
	if len(w.mem) > windowChunk && len(w.buf) <= windowChunk/2 {
		w.mem = make([]byte, windowChunk)
		w.buf = w.mem[:copy(w.mem, w.buf)]
	}
}
