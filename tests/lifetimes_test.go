package tests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mysqllogfs/mysqllogfs/crypto"
)

// Many threads share one descriptor of a growing encrypted binlog and read large pieces near
// its end, while the page cache is dropped under them, so that every read goes to the mount
// and reads past the old end move the handle to the grown version. A read must keep what it
// uses until its reply is sent: before, a move closed the old version's source file and views
// under reads still using them, and about one run in three served wrong bytes without an
// error. Every byte read must be the plaintext.
func TestGrowingBinlogConcurrentReads(t *testing.T) {
	rounds, each := 3, 3*time.Second
	if testing.Short() {
		rounds, each = 1, 2*time.Second
	}
	for round := range rounds {
		t.Run(fmt.Sprint(round), func(t *testing.T) { growAndRead(t, uint64(round), each) })
	}
}

func growAndRead(t *testing.T, seed uint64, length time.Duration) {
	d := makeLogDir(t)
	plain := make([]byte, 160<<20)
	fillPlain(plain, seed)
	copy(plain, []byte{0xfe, 'b', 'i', 'n'})
	path := filepath.Join(d.dir, "binlog.000009")
	src, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	enc, err := crypto.NewBinlogWriter(src, "MySQLReplicationKey_demo_1", d.master)
	if err != nil {
		t.Fatal(err)
	}
	written := 64 << 20
	enc.Write(plain[:written])

	m := mount(t, d.dir, "--keyring", d.keyring)
	f, err := os.Open(m.path("binlog.000009"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, wrong, failed atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			buf := make([]byte, 1<<20)
			for {
				select {
				case <-stop:
					return
				default:
				}
				var st unix.Stat_t
				if unix.Fstat(int(f.Fd()), &st) != nil {
					continue
				}
				off := max(0, st.Size-4<<20+rng.Int64N(6<<20)) // up to 2 MiB past the size the kernel has
				n, err := f.ReadAt(buf[:512<<10+rng.IntN(512<<10)], off)
				reads.Add(1)
				if n > 0 && !bytes.Equal(buf[:n], plain[off:off+int64(n)]) {
					wrong.Add(1)
				}
				if err != nil && n == 0 && off < int64(len(plain)) && !errors.Is(err, io.EOF) {
					failed.Add(1)
				}
			}
		}()
	}
	// Other files opened and read meanwhile take the descriptor numbers the mount frees.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for name := range d.plain {
				os.ReadFile(m.path(name))
			}
		}
	}()
	deadline := time.Now().Add(length)
	for i := 0; time.Now().Before(deadline); i++ {
		unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		if i%2 == 0 && written+256<<10 <= len(plain) {
			enc.Write(plain[written : written+256<<10])
			written += 256 << 10
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d reads, grown to %d MiB", reads.Load(), written>>20)
	if wrong.Load() > 0 || failed.Load() > 0 {
		t.Fatalf("%d of %d reads returned wrong bytes, %d failed\n%s", wrong.Load(), reads.Load(), failed.Load(), m.logs)
	}
}

// fillPlain fills b with bytes that differ at every offset, so that bytes from the wrong place
// or the wrong file never pass for the right ones.
func fillPlain(b []byte, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		b[i], b[i+1], b[i+2], b[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		b[i+4], b[i+5], b[i+6], b[i+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
	}
}
