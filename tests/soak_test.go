package tests

import (
	"bytes"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soakTime is how long the soak runs: a minute, or a few seconds with -short.
func soakTime() time.Duration {
	if testing.Short() {
		return 5 * time.Second
	}
	return time.Minute
}

// Thirty-two readers at random offsets and lengths across every kind of file, every byte
// compared with the expected plaintext.
func TestSoak(t *testing.T) {
	d := makeViewDir(t)
	m := mount(t, d.dir, "--keyring", d.keyring)
	var names []string
	for name := range d.view {
		names = append(names, name)
	}
	var reads, bytesRead, mismatches atomic.Int64
	deadline := time.Now().Add(soakTime())
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			buf := make([]byte, 256<<10)
			for time.Now().Before(deadline) {
				name := names[rng.IntN(len(names))]
				want := d.view[name]
				f, err := os.Open(m.path(name))
				if err != nil {
					t.Errorf("open %s: %v", name, err)
					mismatches.Add(1)
					return
				}
				for range 1 + rng.IntN(8) { // several reads per open, as programs do
					off, size := rng.IntN(len(want)), 1+rng.IntN(len(buf))
					n, _ := f.ReadAt(buf[:size], int64(off))
					reads.Add(1)
					bytesRead.Add(int64(n))
					if expected := want[off:min(off+size, len(want))]; !bytes.Equal(buf[:n], expected) {
						mismatches.Add(1)
						t.Errorf("%s at %d: %d bytes differ", name, off, n)
					}
				}
				f.Close()
			}
		}()
	}
	wg.Wait()
	t.Logf("soak: %d readers for %s over %d files: %d reads, %d bytes, %d mismatches",
		32, soakTime(), len(names), reads.Load(), bytesRead.Load(), mismatches.Load())
	if reads.Load() == 0 || mismatches.Load() != 0 {
		t.Fatalf("%d reads, %d mismatches", reads.Load(), mismatches.Load())
	}
}
