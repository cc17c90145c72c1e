package fs

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
)

func readBy(pid int) context.Context {
	return &fuse.Context{Caller: fuse.Caller{Owner: fuse.Owner{Uid: 0}, Pid: uint32(pid)}, Cancel: make(chan struct{})}
}

// A read whose caller has exited is cancelled, even one that arrives after the exit (readahead
// queued behind a killed program's read); a live caller's read is not.
func TestReadsOfGoneCallersAreCancelled(t *testing.T) {
	var w callerWatch
	live, end := w.watch(readBy(os.Getpid()))
	defer end()
	if live.Err() != nil {
		t.Fatal("a live caller's read was cancelled")
	}
	child := exec.Command("true")
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	gone, end2 := w.watch(readBy(child.Process.Pid))
	defer end2()
	if gone.Err() == nil {
		t.Fatal("the read of a caller that has exited is not cancelled")
	}
}
