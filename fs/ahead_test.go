package fs

import (
	"bytes"
	"context"
	"errors"
	"github.com/mysqllogfs/mysqllogfs/tests"
	"io"
	"sync"
	"testing"
	"time"
)

func TestAheadSequentialAndRandomReads(t *testing.T) {
	data := tests.RandomBytes(5<<20+12345, 1)
	for _, direct := range []bool{false, true} {
		for _, size := range []int{4096, 128 << 10, 1 << 20, 1<<20 + 1, 3 << 20} {
			sequentialAndRandomReads(t, newReadAhead(bytes.NewReader(data), direct), data, size)
		}
	}
}

// sequentialAndRandomReads reads all of data through a in reads of size, then jumps about.
func sequentialAndRandomReads(t *testing.T, a *readAhead, data []byte, size int) {
	t.Helper()
	for off := int64(0); off < int64(len(data))+int64(size); off += int64(size) {
		tests.ReadAtChecked(t, a, data, off, size)
	}
	// Back to the start, a jump, and sequential again from there.
	for _, off := range []int64{0, 3 << 20, 17, 2<<20 + 5, 2<<20 + 5 + int64(size)} {
		tests.ReadAtChecked(t, a, data, off, size)
	}
	a.Close()
	if out := aheadBuffersOut(); out != 0 {
		t.Fatalf("read size %d: %d buffers still out after Close", size, out)
	}
	if freeAheadBuffersHoldPlaintext() {
		t.Fatalf("read size %d: a free buffer still holds plaintext", size)
	}
}

// A direct Ahead reads on the caller's goroutine into buffers lent from the budget, and into
// the caller's own buffer once the budget is spent; a buffer given back is reused, and none
// stays out after Close.
func TestAheadDirectReadsLendBuffers(t *testing.T) {
	data := tests.RandomBytes(12<<20, 3)
	a := newReadAhead(bytes.NewReader(data), true)
	const size = 1 << 20
	var dones []func()
	lent := 0
	for i := range 12 {
		p := make([]byte, size)
		b, done, err := a.Read(context.Background(), p, int64(i)*size)
		if err != nil || !bytes.Equal(b, data[i*size:(i+1)*size]) {
			t.Fatalf("read %d: %d bytes, error %v, or wrong bytes", i, len(b), err)
		}
		if &b[0] != &p[0] {
			lent++
		}
		dones = append(dones, done)
	}
	if lent != aheadBuffers.limit {
		t.Fatalf("%d of 12 reads held at once were lent a buffer, want the budget's %d", lent, aheadBuffers.limit)
	}
	for _, done := range dones {
		done()
	}
	p := make([]byte, size)
	b, done, _ := a.Read(context.Background(), p, 5)
	if &b[0] == &p[0] || !bytes.Equal(b, data[5:5+size]) {
		t.Fatalf("a read after the buffers came back was not lent one, or got wrong bytes")
	}
	done()
	a.Close()
	if out := aheadBuffersOut(); out != 0 {
		t.Fatalf("%d buffers still out after Close", out)
	}
	if freeAheadBuffersHoldPlaintext() {
		t.Fatalf("a free buffer still holds plaintext")
	}
}

// The kernel sends a sequential reader's reads two at a time, and they may arrive in either
// order.
func TestAheadConcurrentReads(t *testing.T) {
	data := tests.RandomBytes(9<<20+777, 2)
	a := newReadAhead(bytes.NewReader(data), false)
	defer a.Close()
	const size = 1 << 20
	for off := int64(0); off < int64(len(data)); off += 2 * size {
		var wg sync.WaitGroup
		for _, o := range []int64{off + size, off} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := make([]byte, size)
				n, _ := a.ReadAt(p, o)
				if o < int64(len(data)) && !bytes.Equal(p[:n], data[o:min(o+size, int64(len(data)))]) {
					t.Errorf("read at %d: wrong content", o)
				}
			}()
		}
		wg.Wait()
	}
}

// failingReader fails every read that reaches bad.
type failingReader struct {
	*bytes.Reader
	bad int64
}

var errDamaged = errors.New("damaged")

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.bad {
		n, _ := f.Reader.ReadAt(p[:max(0, f.bad-off)], off)
		return n, errDamaged
	}
	return f.Reader.ReadAt(p, off)
}

func TestAheadReportsTheReadersError(t *testing.T) {
	data := tests.RandomBytes(6<<20, 3)
	bad := int64(4<<20 + 100)
	a := newReadAhead(failingReader{bytes.NewReader(data), bad}, false)
	defer a.Close()
	p := make([]byte, 1<<20)
	var err error
	var off int64
	for ; err == nil; off += int64(len(p)) {
		var n int
		n, err = a.ReadAt(p, off)
		if !bytes.Equal(p[:n], data[off:off+int64(n)]) {
			t.Fatalf("read at %d: wrong content", off)
		}
	}
	if !errors.Is(err, errDamaged) || off-int64(len(p)) != 4<<20 {
		t.Fatalf("got %v at %d, want the reader's error for the read at %d", err, off-int64(len(p)), 4<<20)
	}
}

// Streams beyond what the buffer budget serves read directly, and correctly.
func TestAheadManyStreams(t *testing.T) {
	data := tests.RandomBytes(4<<20, 4)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := newReadAhead(bytes.NewReader(data), false)
			defer a.Close()
			size := 64<<10 + i*4096
			for off := int64(0); off < int64(len(data)); off += int64(size) {
				p := make([]byte, size)
				n, _ := a.ReadAt(p, off)
				if !bytes.Equal(p[:n], data[off:min(off+int64(size), int64(len(data)))]) {
					t.Errorf("stream %d: read at %d: wrong content", i, off)
					return
				}
			}
		}()
	}
	wg.Wait()
	if out := aheadBuffersOut(); out != 0 {
		t.Fatalf("%d buffers still out after every stream closed", out)
	}
	if freeAheadBuffersHoldPlaintext() {
		t.Fatal("a free buffer still holds plaintext")
	}
}

// Read lends prepared bytes instead of copying them; they stay intact until given back, even
// when the stream moves on and the stretch they came from retires.
func TestAheadReadLendsPreparedBytes(t *testing.T) {
	data := tests.RandomBytes(7<<20+4321, 6)
	a := newReadAhead(bytes.NewReader(data), false)
	const size = 1 << 20
	type reply struct {
		off  int64
		b    []byte
		done func()
	}
	var held []reply
	lent := 0
	for off := int64(0); off < int64(len(data)); off += size {
		p := make([]byte, size)
		b, done, err := a.Read(context.Background(), p, off)
		if err != nil && err != io.EOF {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(b) > 0 && &b[0] != &p[0] {
			lent++
		}
		held = append(held, reply{off, b, done})
		if len(held) == 3 { // replies in flight while later reads go on
			for _, r := range held {
				if !bytes.Equal(r.b, data[r.off:min(r.off+size, int64(len(data)))]) {
					t.Fatalf("reply at %d changed before it was given back", r.off)
				}
				r.done()
			}
			held = held[:0]
		}
	}
	a.Close()
	for _, r := range held {
		if !bytes.Equal(r.b, data[r.off:min(r.off+size, int64(len(data)))]) {
			t.Fatalf("reply at %d changed by Close", r.off)
		}
		r.done()
	}
	if lent < 5 {
		t.Fatalf("%d of 8 sequential reads were lent prepared bytes, want most", lent)
	}
	if out := aheadBuffersOut(); out != 0 {
		t.Fatalf("%d buffers still out", out)
	}
}

// aheadBuffersOut is how many read-ahead buffers are in use.
func aheadBuffersOut() int {
	aheadBuffers.mu.Lock()
	defer aheadBuffers.mu.Unlock()
	return aheadBuffers.out
}

// freeAheadBuffersHoldPlaintext reports whether a read-ahead buffer back in the shared budget
// still holds a nonzero byte.
func freeAheadBuffersHoldPlaintext() bool {
	aheadBuffers.mu.Lock()
	defer aheadBuffers.mu.Unlock()
	for _, buf := range aheadBuffers.free {
		for _, b := range buf {
			if b != 0 {
				return true
			}
		}
	}
	return false
}

// stallingReader serves bytes below from at once; a read reaching past it ends only when its
// context is done, as a decode through millions of empty gzip members nearly does.
type stallingReader struct {
	data []byte
	from int64
}

func (s stallingReader) ReadAt(p []byte, off int64) (int, error) {
	return s.ReadAtContext(context.Background(), p, off)
}

func (s stallingReader) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off+int64(len(p)) > s.from {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return copy(p, s.data[off:]), nil
}

// A read waiting for the worker ends when its reader is interrupted, and Close stops the
// worker in the middle of its stretch. Before, both waited for the stretch to be done.
func TestAheadStopsWhenNobodyWaits(t *testing.T) {
	a := newReadAhead(stallingReader{tests.RandomBytes(4096, 9), 4096}, false)
	p := make([]byte, 4096)
	if _, err := a.ReadAt(p, 0); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error)
	ctx, interrupt := context.WithCancel(context.Background())
	go func() {
		_, done, err := a.Read(ctx, p, 4096) // sequential: waits for the worker's stretch
		done()
		ended <- err
	}()
	for working := false; !working; time.Sleep(time.Millisecond) {
		a.mu.Lock()
		working = a.working
		a.mu.Unlock()
	}
	time.Sleep(50 * time.Millisecond) // the read is waiting for the stretch by now
	interrupt()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("an interrupted read: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an interrupted read still waits for the worker after 10 s")
	}
	closed := make(chan struct{})
	go func() { a.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waits for the worker's read after 10 s")
	}
}
