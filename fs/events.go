package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/crypto/events"
)

// With --events, NAME.ndjson beside each binlog and audit log holds the log's decoded events:
// exactly what `mysqllogfs events` writes for it. Its size is proven by decoding the log once
// (at the first lookup or open at the latest, in the background after mounting) and
// remembered across mounts; its inode number is the log's in a namespace of its own.

const eventsSuffix = ".ndjson"

// logNames are the names that get a .ndjson: binary and relay logs (a base name and a
// sequence number of six digits or more), and audit logs, whatever their form.
var logNames = regexp.MustCompile(`^[^.].*\.\d{6,}$|^audit.*\.log$`)

func isLogName(shown string) bool { return logNames.MatchString(shown) }

// eventsDevice is the device number a .ndjson's inode number is made from: never a real one.
func eventsDevice(dev uint64) uint64 { return dev ^ 1<<63 }

// eventsStamp is the version of a .ndjson: its log's, under the events device, so that the
// size store keeps the two apart, and with the version of the events' format, so that a size
// remembered by a build that wrote them otherwise is not taken.
func eventsStamp(st *syscall.Stat_t) stamp { return eventsStampOf(stampOf(st)) }

// eventsFormat changes whenever what `events` writes for a log changes.
const eventsFormat = 1

func eventsStampOf(s stamp) stamp {
	s.dev = eventsDevice(s.dev)
	s.ctime ^= eventsFormat << 56
	return s
}

// hasEvents reports whether a source file gets a .ndjson: a log, under one name only. Its
// events name the log, so a hard link under another name would be other events for the same
// inode.
func hasEvents(shown string, st *syscall.Stat_t) bool {
	return st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Nlink == 1 && isLogName(shown)
}

type eventsNode struct{ node }

var (
	_ gofs.NodeGetattrer = (*eventsNode)(nil)
	_ gofs.NodeOpener    = (*eventsNode)(nil)
)

// eventsChild makes the node of the .ndjson of the source file rel.
func (d *dirNode) eventsChild(ctx context.Context, rel string, st *syscall.Stat_t, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Nlink != 1 {
		return nil, syscall.ENOENT // replaced since the listing
	}
	ino := d.view.inodes.translate(eventsDevice(uint64(st.Dev)), st.Ino)
	d.view.paths.Store(ino, rel)
	child := d.NewInode(ctx, &eventsNode{node: node{view: d.view, rel: rel}}, gofs.StableAttr{Mode: syscall.S_IFREG, Ino: ino})
	return child, child.Operations().(*eventsNode).fillAttr(ctx, st, &out.Attr)
}

// path is where the log is now (see fileNode.path).
func (e *eventsNode) path() string {
	if rel, ok := e.view.paths.Load(e.StableAttr().Ino); ok {
		return filepath.Join(e.view.source, rel.(string))
	}
	return filepath.Join(e.view.source, e.rel)
}

func (e *eventsNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if errno := e.view.access(ctx, e.path(), unix.F_OK); errno != 0 {
		return errno
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(e.path(), &st); err != nil {
		return gofs.ToErrno(err)
	}
	return e.fillAttr(ctx, &st, &out.Attr)
}

// fillAttr reports the log's attributes with the size of its events, proven if need be.
func (e *eventsNode) fillAttr(ctx context.Context, st *syscall.Stat_t, out *fuse.Attr) syscall.Errno {
	out.FromStat(st)
	out.Ino = e.StableAttr().Ino
	size, known, _ := e.view.sizes.lookup(e.path()+eventsSuffix, eventsStamp(st), true)
	if !known {
		o := e.view.readers.get(e.path(), st)
		defer e.view.readers.put(o)
		view, err := e.view.eventsOf(ctx, o)
		switch {
		case errors.Is(err, context.Canceled):
			return syscall.EINTR
		case err != nil:
			size = 0 // shown, but its open fails and says why
		default:
			size = view.Size()
		}
	}
	out.Size = uint64(size)
	out.Blocks = (out.Size + 511) / 512
	return 0
}

// eventsOf returns the measured events of an opened log, measuring them the first time.
func (v *view) eventsOf(ctx context.Context, o *opened) (*events.View, error) {
	if o.err != nil {
		return nil, o.err
	}
	o.eventsMu.Lock()
	defer o.eventsMu.Unlock()
	if o.eventsErr != nil {
		return nil, o.eventsErr // this version does not decode: found once, said once
	}
	unproven := !o.reader.SizeExact()
	if o.events == nil {
		size := int64(-1) // unproven: the decode reads to the end, which proves it
		if o.reader.SizeExact() {
			size = o.reader.Size()
		}
		name := o.reader.PlainName
		if older := o.grownFrom.Swap(nil); older != nil { // decoded from its last point on
			o.events = older.Grown(o.reader, size)
		} else {
			o.events = events.NewView(o.reader, size, events.Options{File: name, Unfinished: crypto.MayBeUnfinished(name)})
		}
	}
	err := o.events.Measure(ctx)
	if unproven && (ctx.Err() == nil || o.reader.SizeExact()) {
		// The decode read the plaintext to its end, which proved its size even if the events
		// failed; or it stopped short, and the plaintext is proven as without --events.
		if proofErr := v.prove(ctx, o); proofErr != nil {
			if ctx.Err() == nil {
				v.log.Warn("cannot prove size", "file", o.path, "status", crypto.Status(proofErr), "reason", proofErr.Error())
			}
			return nil, proofErr
		}
	}
	if err == nil && (!o.reader.SizeExact() || o.reader.Size() != o.events.PlainSize()) {
		err = fmt.Errorf("the plaintext ended at byte %d, its size is %d: the log changed while its events were decoded", o.events.PlainSize(), o.reader.Size())
	}
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			v.log.Warn("cannot decode events", "file", o.path, "reason", err.Error())
			o.eventsErr = err
		}
		return nil, err
	}
	// A log written to in the last minute is likely to grow again: its sizes would fill the
	// store, one per version.
	settled := time.Since(time.Unix(0, o.stamp.mtime)) > time.Minute
	v.sizes.record(o.path+eventsSuffix, eventsStampOf(o.stamp), o.events.Size(), true, settled)
	o.eventsIndex.Store(o.events.Index())
	return o.events, nil
}

func (e *eventsNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	if errno := e.view.access(ctx, e.path(), unix.R_OK); errno != 0 {
		return nil, 0, errno
	}
	h, errno := e.open(ctx)
	if errno != 0 {
		return nil, 0, errno
	}
	e.view.metrics.open(kindEvents)
	return h, 0, 0
}

// open returns a handle on the events of the log as it is now.
func (e *eventsNode) open(ctx context.Context) (*eventsHandle, syscall.Errno) {
	var st syscall.Stat_t
	if err := syscall.Lstat(e.path(), &st); err != nil {
		return nil, gofs.ToErrno(err)
	}
	o := e.view.readers.get(e.path(), &st)
	view, err := e.view.eventsOf(ctx, o)
	if err != nil {
		e.view.metrics.failed(kindEvents, err)
		e.view.readers.put(o)
		if errors.Is(err, events.ErrBadLog) || errors.Is(err, events.ErrNotALog) {
			return nil, syscall.EIO
		}
		return nil, toErrno(err)
	}
	return &eventsHandle{node: e, opened: o, view: view}, 0
}

// eventsHandle is one open of a .ndjson: the events of the version of the log it opened, or
// of a newer one once a read goes past their end (a log growing). Each read holds the
// version it reads until it is done, as a plaintext handle's reads do.
type eventsHandle struct {
	node   *eventsNode
	mu     sync.Mutex
	opened *opened
	view   *events.View
}

var (
	_ gofs.FileReader   = (*eventsHandle)(nil)
	_ gofs.FileReleaser = (*eventsHandle)(nil)
)

func (h *eventsHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	o, view := h.current(ctx, off+int64(len(dest)))
	defer h.node.view.readers.put(o)
	n, err := view.ReadAtContext(ctx, dest, off)
	switch {
	case err == nil || errors.Is(err, io.EOF):
		h.node.view.metrics.read(kindEvents, n)
		return fuse.ReadResultData(dest[:n]), 0
	case errors.Is(err, context.Canceled):
		h.node.view.metrics.failed(kindEvents, err)
		return nil, syscall.EINTR
	}
	h.node.view.metrics.failed(kindEvents, err)
	h.node.view.log.Warn("read failed", "file", o.path+eventsSuffix, "offset", off, "reason", err.Error())
	return nil, syscall.EIO
}

// current returns the version to read up to end from, holding a reference to it: the
// handle's, or the log's current one when end goes past the handle's events and the log has
// grown since.
func (h *eventsHandle) current(ctx context.Context, end int64) (*opened, *events.View) {
	h.mu.Lock()
	o, view := h.opened, h.view
	h.mu.Unlock()
	var st syscall.Stat_t
	if end > view.Size() && syscall.Lstat(o.path, &st) == nil && st.Ino == o.stamp.ino && stampOf(&st) != o.stamp {
		if next, errno := h.node.open(ctx); errno == 0 {
			h.mu.Lock()
			if h.opened == o {
				h.node.view.readers.put(h.opened)
				h.opened, h.view = next.opened, next.view
			} else {
				h.node.view.readers.put(next.opened) // another read moved the handle first
			}
			h.mu.Unlock()
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.node.view.readers.hold(h.opened)
	return h.opened, h.view
}

func (h *eventsHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.view.Release() // the decode a read left waiting, and its buffers
	h.node.view.readers.put(h.opened)
	return 0
}
