package fs

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// The kernel sends a page-cache read to the mount as readahead, in the background, and does
// not interrupt it when the program that caused it dies: the read would decode on for nobody,
// for as long as a pathological compressed log takes to give its next bytes. callerWatch
// cancels such reads once the thread that caused them has exited.
type callerWatch struct {
	mu      sync.Mutex
	reads   map[*watchedRead]struct{}
	running bool // the checking goroutine runs while reads are watched
}

type watchedRead struct {
	pid    int
	cancel context.CancelFunc
}

// callerCheckEvery is how often the callers of watched reads are looked for.
const callerCheckEvery = 200 * time.Millisecond

// watch returns a context that is also cancelled when the read's calling thread has exited,
// and the function that ends the watch once the read is done.
func (w *callerWatch) watch(ctx context.Context) (context.Context, func()) {
	caller, ok := fuse.FromContext(ctx)
	if !ok || caller.Pid == 0 { // the kernel's own, or a caller outside the mount's pid namespace
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	if syscall.Kill(int(caller.Pid), 0) == syscall.ESRCH {
		cancel() // gone already: readahead queued behind a read of a program that was killed
		return ctx, func() {}
	}
	r := &watchedRead{pid: int(caller.Pid), cancel: cancel}
	w.mu.Lock()
	if w.reads == nil {
		w.reads = map[*watchedRead]struct{}{}
	}
	w.reads[r] = struct{}{}
	if !w.running {
		w.running = true
		go w.check()
	}
	w.mu.Unlock()
	return ctx, func() {
		w.mu.Lock()
		delete(w.reads, r)
		w.mu.Unlock()
		cancel()
	}
}

// check cancels the watched reads whose callers are gone, until none are watched.
func (w *callerWatch) check() {
	for {
		time.Sleep(callerCheckEvery)
		w.mu.Lock()
		if len(w.reads) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		var gone []*watchedRead
		for r := range w.reads {
			if syscall.Kill(r.pid, 0) == syscall.ESRCH { // a thread ID names the thread
				gone = append(gone, r)
			}
		}
		w.mu.Unlock()
		for _, r := range gone {
			r.cancel()
		}
	}
}
