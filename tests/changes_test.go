package tests

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// While readers stream files through the mount, the source changes under them: a binlog
// grows, files are renamed (rotation), deleted, truncated, and replaced under the same name.
// Every byte a reader gets must be the plaintext of the file it opened, errors must be clean,
// and the mount must stay up.
func TestSourceChangesUnderReaders(t *testing.T) {
	d := makeLogDir(t)
	var mu sync.Mutex
	expected := map[uint64][]byte{} // source inode -> the plaintext that version has or had
	remember := func(path string, plain []byte) {
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		expected[st.Ino] = plain
		mu.Unlock()
	}
	encryptBinlog := func(plain []byte) []byte {
		var b bytes.Buffer
		w, _ := crypto.NewBinlogWriter(&b, "MySQLReplicationKey_demo_1", d.master)
		w.Write(plain)
		return b.Bytes()
	}
	for name, plain := range d.plain {
		remember(filepath.Join(d.dir, name), plain)
	}
	// A binlog that grows during the test: its expected plaintext is all it will hold.
	var growing bytes.Buffer
	sample.Binlog(&growing, 2<<20, 9, "binlog.000004")
	live := filepath.Join(d.dir, "binlog.000003")
	liveFile, _ := os.Create(live)
	defer liveFile.Close()
	liveWriter, _ := crypto.NewBinlogWriter(liveFile, "MySQLReplicationKey_demo_1", d.master)
	liveWriter.Write(growing.Bytes()[:100<<10])
	remember(live, growing.Bytes())

	m := mount(t, d.dir, "--keyring", d.keyring)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	var reads, failures int64
	var countMu sync.Mutex
	for g := range 8 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			buf := make([]byte, 64<<10)
			for {
				select {
				case <-stop:
					return
				default:
				}
				entries, _ := os.ReadDir(m.dir)
				if len(entries) == 0 {
					continue
				}
				f, err := os.Open(m.path(entries[rng.IntN(len(entries))].Name()))
				if err != nil {
					continue // removed or renamed since the listing
				}
				var st syscall.Stat_t
				syscall.Fstat(int(f.Fd()), &st)
				mu.Lock()
				want, known := expected[st.Ino]
				mu.Unlock()
				for off := int64(0); known; off += int64(len(buf)) {
					n, err := f.ReadAt(buf, off)
					if n > 0 && !bytes.Equal(buf[:n], want[off:min(off+int64(n), int64(len(want)))]) {
						t.Errorf("inode %d at %d: %d wrong bytes", st.Ino, off, n)
					}
					countMu.Lock()
					reads++
					if err != nil && err != io.EOF {
						failures++
						if !errors.Is(err, syscall.EIO) && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ESTALE) {
							t.Errorf("inode %d at %d: unclean error %v", st.Ino, off, err)
						}
					}
					countMu.Unlock()
					if err != nil {
						break
					}
				}
				f.Close()
			}
		}()
	}

	// The changes, each given time to be read through.
	step := func() { time.Sleep(700 * time.Millisecond) }
	step()
	liveWriter.Write(growing.Bytes()[100<<10 : 1<<20]) // grows
	step()
	os.Rename(filepath.Join(d.dir, "binlog.000001"), filepath.Join(d.dir, "binlog.000001.rotated")) // rotation
	step()
	os.Remove(filepath.Join(d.dir, "audit.20240102T000000.log.gz.20240101T000000-1.enc")) // deleted
	step()
	os.Truncate(filepath.Join(d.dir, "binlog.000001.rotated"), 30<<10) // truncated
	step()
	var other bytes.Buffer
	sample.Binlog(&other, 200<<10, 77, "binlog.000002")
	replacement := filepath.Join(d.dir, ".replacement")
	os.WriteFile(replacement, encryptBinlog(other.Bytes()), 0o640)
	remember(replacement, other.Bytes())
	os.Rename(replacement, filepath.Join(d.dir, "binlog.000002")) // replaced under the same name
	liveWriter.Write(growing.Bytes()[1<<20:])
	step()
	close(stop)
	readers.Wait()
	t.Logf("%d reads, %d clean errors while the source changed", reads, failures)

	// The mount is up and serves the current files correctly.
	got, err := os.ReadFile(m.path("binlog.000002"))
	if err != nil || !bytes.Equal(got, other.Bytes()) {
		t.Fatalf("replaced file: %v", err)
	}
	waitFor(t, "the grown binlog's full size", func() bool {
		info, err := os.Stat(m.path("binlog.000003"))
		return err == nil && info.Size() == int64(growing.Len())
	})
	if got, err := os.ReadFile(m.path("binlog.000003")); err != nil || !bytes.Equal(got, growing.Bytes()) {
		t.Fatalf("grown file: %v", err)
	}
	if _, err := os.Stat(m.path("audit.20240102T000000.log")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("deleted file still shows: %v", err)
	}
	if reads == 0 {
		t.Fatal("no reads happened")
	}
}
