package fs

import (
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A listed file replaced by a FIFO, or by a symbolic link to one, fails to open at once: the
// view never opens a path it did not list, even to say what kind of file failed.
func TestOpenOfASwappedFileNeverBlocks(t *testing.T) {
	for _, swap := range []string{"fifo", "symlink to a fifo"} {
		dir := t.TempDir()
		path := filepath.Join(dir, "binlog.000001")
		if swap == "fifo" {
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			target := filepath.Join(t.TempDir(), "fifo")
			syscall.Mkfifo(target, 0o600)
			os.Symlink(target, path)
		}
		var st syscall.Stat_t
		syscall.Lstat(path, &st)
		c := newReaders(nil, slog.Default(), func(string, stamp) int64 { return 0 })
		done := make(chan *opened, 1)
		go func() { done <- c.get(path, &st) }()
		select {
		case o := <-done:
			if o.err == nil {
				t.Errorf("%s: opened", swap)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the open has not returned after 5 s", swap)
		}
	}
}
