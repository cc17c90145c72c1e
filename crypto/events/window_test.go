package events

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
	"time"
)

// The window shows the stream's bytes in order, at the right offsets, however far a scanner
// runs ahead of what it drops: records shorter than the room kept before a chunk, longer
// than it, and longer than a chunk, read in whole chunks or a few bytes at a time.
func TestWindowShowsTheStream(t *testing.T) {
	stream := make([]byte, 5*windowChunk+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range stream {
		stream[i] = byte(rng.Uint32())
	}
	for name, reader := range map[string]func() io.Reader{
		"whole":  func() io.Reader { return bytes.NewReader(stream) },
		"halves": func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
	} {
		for _, keep := range []int{100, carryRoom - 1, carryRoom + 1, windowChunk + 7, 3 * windowChunk} {
			win := newWindow(reader())
			for win.more() || len(win.buf) > 0 {
				if !bytes.Equal(win.buf, stream[win.base:win.base+int64(len(win.buf))]) {
					win.close()
					t.Fatalf("%s, keeping %d: the window at %d does not hold the stream's bytes", name, keep, win.base)
				}
				if win.eof {
					win.advance(len(win.buf))
				} else if len(win.buf) > keep { // a scanner that needs keep bytes before it can drop any
					win.advance(rng.IntN(len(win.buf) - keep + 1))
				}
			}
			if win.base != int64(len(stream)) || win.err != nil {
				t.Errorf("%s, keeping %d: the window ends at %d of %d, error %v", name, keep, win.base, len(stream), win.err)
			}
			win.close()
		}
	}
}

// A read error reaches the scanner after the bytes read before it, and closing a window whose
// reader is still ahead stops it.
func TestWindowErrorAndClose(t *testing.T) {
	broken := errors.New("broken")
	win := newWindow(io.MultiReader(bytes.NewReader(make([]byte, 1000)), iotest.ErrReader(broken)))
	for win.more() {
	}
	if len(win.buf) != 1000 || !errors.Is(win.err, broken) {
		t.Errorf("%d bytes and error %v; want 1000 bytes and the reader's error", len(win.buf), win.err)
	}
	win.close()
	for _, chunks := range []int{1, 8} { // read by the scanner, then by the goroutine ahead of it
		endless := newWindow(iotest.HalfReader(neverEnding{}))
		for range chunks {
			endless.more()
			endless.advance(len(endless.buf))
		}
		endless.more() // held: the reader ahead waits for memory
		closed := make(chan struct{})
		go func() { endless.close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("after %d chunks, close has not returned in 10 s", chunks)
		}
	}
}

type neverEnding struct{}

func (neverEnding) Read(p []byte) (int, error) { return len(p), nil }

// A record longer than a chunk is read in doubling steps: its scanner looks at it again from
// its start after each step, so steps of a chunk each would make a long record cost the
// square of its length.
func TestWindowDoublesForALongRecord(t *testing.T) {
	record := int64(32 << 20)
	win := newWindow(io.LimitReader(zeros{}, record))
	defer win.close()
	steps := 0
	for win.more() {
		steps++
	}
	if int64(len(win.buf)) != record || win.err != nil {
		t.Fatalf("the window holds %d bytes of %d, error %v", len(win.buf), record, win.err)
	}
	if steps > 16 { // 64 KiB doubling to 1 MiB, then doubling to 32 MiB: 10
		t.Errorf("%d calls of more to see a record of %d MiB whole", steps, record>>20)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// The chunk memory a decode gives back to the pool holds none of its plaintext.
func TestChunkMemoryKeepsNoPlaintext(t *testing.T) {
	secret := []byte("SET PASSWORD='hunter2'")
	log := []byte("<AUDIT>\n")
	for len(log) < 3<<20 {
		log = append(log, fmt.Sprintf("<AUDIT_RECORD NAME=\"Query\" SQLTEXT=\"%s\"/>\n", secret)...)
	}
	if err := Write(io.Discard, bytes.NewReader(log), Options{File: "a", Unfinished: true}); err != nil {
		t.Fatal(err)
	}
	var kept []*[]byte
	for range 4 { // as many as chunkMemory keeps
		kept = append(kept, chunkMemory.Get())
	}
	for i, mem := range kept {
		if bytes.Contains(*mem, []byte("hunter2")) {
			t.Errorf("pooled chunk %d holds the log's plaintext", i)
		}
		chunkMemory.Put(mem)
	}
}
