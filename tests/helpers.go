// Package tests holds the end-to-end tests (real mounts driven by real programs) and the
// helpers every package's tests share: where the real server fixtures are, the project's
// binary, and a real binlog parser.
package tests

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/mysqllogfs/mysqllogfs/crypto"
)

// Root is the project's top directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// Fixtures returns tests/testdata, the files written by real servers, which ship with the
// repository (their origins and licences are in its README.md). Tests read them in place or copy
// them into a temporary directory; they never write there. Without them a test fails.
func Fixtures(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(Root(), "tests", "testdata")
	if _, err := os.Stat(filepath.Join(dir, "SHA256SUMS")); err != nil {
		t.Fatalf("fixtures missing at %s: %v", dir, err)
	}
	return dir
}

// PlainBinlogs lists the real MySQL 8 plain binlogs among the fixtures.
func PlainBinlogs(t testing.TB) []string {
	paths, _ := filepath.Glob(filepath.Join(Fixtures(t), "mysql-8-plain-binlogs", "*"))
	if len(paths) == 0 {
		t.Fatal("no plain binlog fixtures")
	}
	return paths
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/mysqllogfs once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mysqllogfs-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mysqllogfs")
		args := []string{"build", "-buildvcs=auto", "-o", binPath} // the commit, for --version
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/mysqllogfs")...)
		cmd.Dir = Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// ParseBinlog reads a whole plain binlog with go-mysql's parser, CRC32 checksums verified,
// and checks that every event's end_log_pos is where the next event starts. It returns the
// number of events.
func ParseBinlog(r io.Reader) (int, error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil || !bytes.Equal(magic[:], replication.BinLogFileHeader) {
		return 0, fmt.Errorf("no binlog magic (%v)", err)
	}
	p := replication.NewBinlogParser()
	p.SetVerifyChecksum(true)
	pos, events := uint32(len(magic)), 0
	err := p.ParseReader(r, func(e *replication.BinlogEvent) error {
		pos += e.Header.EventSize
		if e.Header.LogPos != 0 && e.Header.LogPos != pos {
			return fmt.Errorf("event %d (%s) has end_log_pos %d, expected %d", events, e.Header.EventType, e.Header.LogPos, pos)
		}
		events++
		return nil
	})
	return events, err
}

// EventOffsets walks a plain binlog's event lengths and returns where each event starts.
func EventOffsets(b []byte) []int {
	var offs []int
	walk := crypto.NewEventWalker(bytes.NewReader(b[min(4, len(b)):]), 4)
	for {
		e, err := walk.Next()
		if err != nil {
			return offs
		}
		offs = append(offs, int(e.Pos))
	}
}

// RandomBytes returns n bytes from a generator seeded with seed.
func RandomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 0))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// ReadAtChecked reads size bytes at off through a and compares them with want, io.EOF included.
func ReadAtChecked(t testing.TB, a io.ReaderAt, want []byte, off int64, size int) {
	t.Helper()
	p := make([]byte, size)
	n, err := a.ReadAt(p, off)
	want = want[min(off, int64(len(want))):]
	wantN := min(size, len(want))
	if n != wantN || !bytes.Equal(p[:n], want[:n]) {
		t.Fatalf("read of %d at %d: %d bytes, want %d", size, off, n, wantN)
	}
	if wantEOF := wantN < size; wantEOF != (err == io.EOF) || (!wantEOF && err != nil) {
		t.Fatalf("read of %d at %d: error %v", size, off, err)
	}
}
