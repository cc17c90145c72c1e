package fs

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// A read holds its reader until its reply is sent. Here a read has taken its reader when a
// second read, past the end of a binlog that has grown, moves the handle to the new version.
// Before, the move closed the old version's file under the first read, whose views were then
// mapped again through the closed descriptor's number, by now another file's: it returned
// that file's bytes, decrypted into garbage, without an error.
func TestReadHoldsItsReader(t *testing.T) {
	dir, keyDir := t.TempDir(), t.TempDir()
	master := bytes.Repeat([]byte{0x11}, 32)
	os.WriteFile(filepath.Join(keyDir, "MySQLReplicationKey_t_1"), master, 0o600)
	plain := make([]byte, 10<<20)
	for i := range plain {
		plain[i] = byte(rand.Uint32())
	}
	copy(plain, []byte{0xfe, 'b', 'i', 'n'})
	src, err := os.Create(filepath.Join(dir, "binlog.000001"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	enc, _ := crypto.NewBinlogWriter(src, "MySQLReplicationKey_t_1", master)
	enc.Write(plain[:8<<20])
	other := filepath.Join(t.TempDir(), "other")
	os.WriteFile(other, bytes.Repeat([]byte{0x77}, 12<<20), 0o600)

	root, err := NewRoot(dir, Options{Keys: keysrc.KeyDir(keyDir), Log: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}
	v := root.(*dirNode).view
	file := &fileNode{node: node{view: v, rel: "binlog.000001"}}
	fh, _, errno := file.Open(context.Background(), syscall.O_RDONLY)
	if errno != 0 {
		t.Fatal(errno)
	}
	h := fh.(*handle)
	defer h.Release(context.Background())

	inFlight, ahead := h.reader(context.Background(), 1<<20) // the first read has its reader, and is about to read
	enc.Write(plain[8<<20:])
	dest := make([]byte, 1<<20)
	reply, errno := h.Read(context.Background(), dest, 8<<20-512<<10) // moves the handle
	if errno != 0 {
		t.Fatal(errno)
	}
	reply.Done()
	if h.opened == inFlight {
		t.Fatal("the read past the old end did not move the handle to the grown file")
	}
	reuse, err := os.Open(other) // takes the lowest free descriptor number
	if err != nil {
		t.Fatal(err)
	}
	defer reuse.Close()

	got, done, err := ahead.Read(context.Background(), make([]byte, 1<<20), 5<<20)
	defer done()
	if err != nil || !bytes.Equal(got, plain[5<<20:6<<20]) {
		t.Fatalf("the read in flight got %d bytes (right: %v), %v", len(got), bytes.Equal(got, plain[5<<20:6<<20]), err)
	}
	v.readers.put(inFlight)
}
