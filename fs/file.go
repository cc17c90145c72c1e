package fs

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/crypto/source"
)

type fileNode struct {
	node
	mu     sync.Mutex
	cached stamp        // the version the kernel's page cache of this file holds
	shown  atomic.Int64 // the size the kernel was last given
	told   atomic.Bool  // whether it was given one (a node outside a mount never is)
}

var (
	_ gofs.NodeGetattrer   = (*fileNode)(nil)
	_ gofs.NodeOpener      = (*fileNode)(nil)
	_ gofs.NodeGetxattrer  = (*fileNode)(nil)
	_ gofs.NodeListxattrer = (*fileNode)(nil)
)

// path is where the file is now: the source path its inode was last looked up under (a
// rename in the source moves it), else where it was first found.
func (f *fileNode) path() string {
	if rel, ok := f.view.paths.Load(f.StableAttr().Ino); ok {
		return filepath.Join(f.view.source, rel.(string))
	}
	return filepath.Join(f.view.source, f.rel)
}

// current returns the reader for the source file as it is now.
func (f *fileNode) current() (*opened, *syscall.Stat_t, syscall.Errno) {
	path := f.path()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return nil, nil, gofs.ToErrno(err)
	}
	return f.view.readers.get(path, &st), &st, 0
}

func (f *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if errno := f.view.access(ctx, f.path(), unix.F_OK); errno != 0 {
		return errno
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(f.path(), &st); err != nil {
		return gofs.ToErrno(err)
	}
	return f.fillAttr(&st, &out.Attr)
}

// fillAttr reports the source's attributes with the plaintext size.
func (f *fileNode) fillAttr(st *syscall.Stat_t, out *fuse.Attr) syscall.Errno {
	out.FromStat(st)
	out.Size = uint64(f.view.plainSize(f.path(), st))
	out.Blocks = (out.Size + 511) / 512
	f.shown.Store(int64(out.Size))
	f.told.Store(true)
	return 0
}

func (f *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	if errno := f.view.access(ctx, f.path(), unix.R_OK); errno != 0 {
		return nil, 0, errno
	}
	o, errno := f.servable(ctx)
	if errno != 0 {
		return nil, 0, errno
	}
	f.view.metrics.open(string(o.kind))
	return &handle{file: f, opened: o, ahead: newReadAhead(o.reader, !o.reader.Compressed)}, f.cacheFlags(o.stamp), 0
}

// servable returns the reader of the file as it is now, with its size proven: no read is
// served under a size that is an estimate. A proof that changes the size the kernel was given
// tells it to ask for the attributes again.
func (f *fileNode) servable(ctx context.Context) (*opened, syscall.Errno) {
	o, _, errno := f.current()
	if errno != 0 {
		return nil, errno
	}
	err := o.err
	if err == nil {
		if err = f.view.prove(ctx, o); err != nil {
			f.view.log.Warn("cannot prove size", "file", o.path, "status", crypto.Status(err), "reason", err.Error())
		} else if f.told.Load() && f.shown.Load() != o.reader.Size() {
			// The kernel was given another size (an estimate, or an older version's, proven
			// since, maybe in the background): it must ask again before it reads to an end.
			f.NotifyContent(-1, 0) // attributes only
		}
	}
	if err != nil {
		f.view.metrics.failed(string(o.kind), err)
		f.view.readers.put(o)
		return nil, toErrno(err)
	}
	return o, 0
}

// cacheFlags lets the kernel keep the plaintext it has cached from an earlier open when the
// source has not changed since, so that reading a log again costs no decryption. An open of
// a changed source drops that cache.
func (f *fileNode) cacheFlags(version stamp) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cached == version {
		return fuse.FOPEN_KEEP_CACHE
	}
	f.cached = version
	return 0
}

// handle is one open of a file. It keeps the reader of the version it opened, and moves to a
// newer one when a read reaches past its end (a live binlog growing).
type handle struct {
	file   *fileNode
	mu     sync.Mutex
	opened *opened
	ahead  *readAhead // sequential reads of opened, prepared in the background
}

var (
	_ gofs.FileReader   = (*handle)(nil)
	_ gofs.FileReleaser = (*handle)(nil)
)

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	o, ahead := h.reader(ctx, off+int64(len(dest)))
	if o.reader.Compressed { // reads that may decode long
		var unwatch func()
		ctx, unwatch = h.file.view.callers.watch(ctx)
		defer unwatch()
	}
	b, done, err := ahead.Read(ctx, dest, off)
	release := func() { done(); h.file.view.readers.put(o) }
	kind := string(o.kind)
	if errors.Is(err, context.Canceled) {
		release()
		h.file.view.metrics.failed(kind, err)
		h.file.view.log.Debug("read interrupted", "file", o.path, "offset", off)
		return nil, syscall.EINTR
	}
	if err != nil && !errors.Is(err, io.EOF) {
		release()
		h.file.view.metrics.failed(kind, err)
		h.file.view.log.Warn("read failed", "file", o.path, "offset", off, "status", crypto.Status(err), "reason", err.Error())
		return nil, toErrno(err)
	}
	h.file.view.metrics.read(kind, len(b))
	return &lentReply{data: b, done: release}, 0
}

// lentReply sends a read's bytes from where they are, dest or a read-ahead buffer, and gives
// the buffer back when go-fuse calls Done. go-fuse writes a result that has Slices in place
// and calls Done after the write; its other path, Bytes, gets a copy, so a buffer is never
// sent after it went back.
type lentReply struct {
	data []byte
	done func()
}

func (r *lentReply) Size() int { return len(r.data) }

func (r *lentReply) Slices() ([][]byte, fuse.Status) { return [][]byte{r.data}, fuse.OK }

func (r *lentReply) Bytes(buf []byte) ([]byte, fuse.Status) {
	return append(buf[:0], r.data...), fuse.OK
}

func (r *lentReply) Done() {
	if r.done != nil {
		r.done()
		r.done = nil
	}
}

// reader returns the reader to serve a read ending at end, moving to the file's current
// version when the read goes past what this one holds. The caller holds a reference to the
// reader, and so its source file, until it puts it back: a move by a concurrent read closes
// the old version only once every read of it has been sent. The new version is opened (and
// its size proven) outside the handle's lock, so other reads of the handle go on meanwhile.
func (h *handle) reader(ctx context.Context, end int64) (*opened, *readAhead) {
	h.mu.Lock()
	past := end > h.opened.reader.Size()
	h.mu.Unlock()
	var next *opened
	if past {
		next, _ = h.file.servable(ctx)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if next != nil {
		if next.stamp.ino == h.opened.stamp.ino && next != h.opened {
			h.ahead.Close()
			h.file.view.readers.put(h.opened)
			h.opened, h.ahead = next, newReadAhead(next.reader, !next.reader.Compressed)
		} else {
			h.file.view.readers.put(next)
		}
	}
	h.file.view.readers.hold(h.opened)
	return h.opened, h.ahead
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ahead.Close()
	h.file.view.readers.put(h.opened)
	return 0
}

// Extended attributes say what each file is and whether it decrypts.
const xattrPrefix = "user.mysqllogfs."

var xattrNames = []string{"kind", "key_id", "source", "status"}

func (f *fileNode) xattrs() (map[string]string, syscall.Errno) {
	o, _, errno := f.current()
	if errno != 0 {
		return nil, errno
	}
	defer f.view.readers.put(o)
	attrs := map[string]string{"source": o.path, "status": crypto.Describe(o.err)}
	if o.err != nil {
		attrs["kind"] = string(identify(o.path, o.stamp).Kind)
		attrs["key_id"] = identify(o.path, o.stamp).KeyID
	} else {
		attrs["kind"], attrs["key_id"] = string(o.reader.Kind), o.reader.KeyID
	}
	return attrs, 0
}

// identify reads a file's first bytes to say what it is when it cannot be opened whole.
func identify(path string, version stamp) crypto.Info {
	head := make([]byte, crypto.HeadSize)
	if src, err := source.OpenListed(path, version.dev, version.ino); err == nil {
		n, _ := src.ReadAt(head, 0)
		head = head[:n]
		src.Close()
	}
	return crypto.Identify(filepath.Base(path), head)
}

func (f *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if errno := f.view.access(ctx, f.path(), unix.R_OK); errno != 0 {
		return 0, errno
	}
	name, ok := strings.CutPrefix(attr, xattrPrefix)
	if !ok {
		return 0, syscall.ENODATA
	}
	attrs, errno := f.xattrs()
	if errno != 0 {
		return 0, errno
	}
	value, ok := attrs[name]
	if !ok {
		return 0, syscall.ENODATA
	}
	if len(dest) < len(value) {
		return uint32(len(value)), syscall.ERANGE
	}
	return uint32(copy(dest, value)), 0
}

func (f *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	if errno := f.view.access(ctx, f.path(), unix.F_OK); errno != 0 {
		return 0, errno
	}
	var list []byte
	for _, n := range xattrNames {
		list = append(append(list, xattrPrefix+n...), 0)
	}
	if len(dest) < len(list) {
		return uint32(len(list)), syscall.ERANGE
	}
	return uint32(copy(dest, list)), 0
}
