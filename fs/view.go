// Package fs is the read-only FUSE view of a MySQL log directory: every source file under its
// plaintext name, with reads served from crypto readers. It knows names, attributes and
// errnos, and nothing of ciphers.
package fs

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// Options configure a view.
type Options struct {
	Keys keysrc.Source
	Log  *slog.Logger
	// SizeCache is the directory where proven plaintext sizes are remembered across mounts;
	// "" remembers them for this mount only.
	SizeCache string
	// Events shows, beside each binlog and audit log, NAME.ndjson: its decoded events.
	Events bool
	// Metrics, if set, counts reads, failures, opens and proofs of sizes.
	Metrics *Metrics
	// Proving, if set, is told how the proof of sizes after mounting goes: bytes of the logs
	// looked at, of all of them; finished once the pass has looked at every one (a file that
	// could not be proven is logged).
	Proving func(done, total int64, finished bool)
}

func (o Options) logger() *slog.Logger {
	if o.Log == nil {
		return slog.Default()
	}
	return o.Log
}

// view is what every node of one mount shares.
type view struct {
	source     string
	readers    *readers
	sizes      sizes
	listings   listings
	inodes     *inoMap
	allowOther bool     // other users may enter: access checks their credentials (access.go)
	paths      sync.Map // view inode number -> source path relative to source, as last looked up
	callers    callerWatch
	events     bool // NAME.ndjson beside each log (events.go)
	log        *slog.Logger
	metrics    *Metrics
	proving    func(done, total int64, finished bool)
}

// CacheTimeout is how long the kernel trusts names and attributes: a live binlog's new size
// shows within it.
const CacheTimeout = time.Second

// NewRoot returns the root node of a view of the source directory.
func NewRoot(source string, opts Options) (gofs.InodeEmbedder, error) {
	abs, err := filepath.Abs(source)
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(abs, &st); err != nil {
		return nil, err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return nil, syscall.ENOTDIR
	}
	log := opts.logger()
	store, err := openSizeStore(opts.SizeCache)
	if err != nil {
		log.Warn("proven sizes are remembered for this mount only", "size_cache", opts.SizeCache, "reason", err.Error())
		store, _ = openSizeStore("")
	}
	v := &view{source: abs, log: log, inodes: newInoMap(uint64(st.Dev)), events: opts.Events,
		metrics: opts.Metrics, proving: opts.Proving}
	v.listings.events = opts.Events
	v.sizes.store = store
	v.readers = newReaders(opts.Keys, log, v.sizes.proven)
	opts.Metrics.watch(v)
	return &dirNode{node: node{view: v, rel: "."}}, nil
}

// MaxRequest is the largest read the kernel sends: large requests amortise the round trip.
const MaxRequest = 1 << 20

// ReadaheadWindow is how far ahead of a sequential reader the kernel asks: one request. Two
// were faster for binlogs but took sixteen readers of compressed logs past the mount's memory
// bound (docs/performance.md).
const ReadaheadWindow = MaxRequest

// MountOptions are the go-fuse options a view is mounted with.
func MountOptions(source string, allowOther bool) *gofs.Options {
	timeout := CacheTimeout
	opts := &gofs.Options{
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		// Show the source's mode as it is: go-fuse would turn permission bits of 0000 into
		// 0644 or 0755, and let every user of an --allow-other mount in.
		NullPermissions: true,
		MountOptions: fuse.MountOptions{
			FsName:       source,
			Name:         "mysqllogfs",
			Options:      []string{"ro"},
			AllowOther:   allowOther,
			MaxReadAhead: MaxRequest,
			MaxWrite:     MaxRequest,
			// Replies are plaintext in memory, never a file descriptor to splice from.
			DisableSplice: true,
		},
	}
	if allowOther {
		// The kernel checks the source's permission bits, which the view reports unchanged.
		opts.MountOptions.Options = append(opts.MountOptions.Options, "default_permissions")
	}
	return opts
}

// node is what files and directories share: where the source is, and refusing every change.
type node struct {
	gofs.Inode
	view *view
	rel  string // source path relative to the source root
}

func (n *node) sourcePath() string { return filepath.Join(n.view.source, n.rel) }

func (n *node) lstat() (*syscall.Stat_t, syscall.Errno) {
	var st syscall.Stat_t
	if err := syscall.Lstat(n.sourcePath(), &st); err != nil {
		return nil, gofs.ToErrno(err)
	}
	return &st, 0
}

// Getattr reports the source's attributes; files override it with their plaintext size.
func (n *node) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if errno := n.view.access(ctx, n.sourcePath(), unix.F_OK); errno != 0 {
		return errno
	}
	st, errno := n.lstat()
	if errno != 0 {
		return errno
	}
	out.FromStat(st)
	return 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var s syscall.Statfs_t
	if err := syscall.Statfs(n.view.source, &s); err != nil {
		return gofs.ToErrno(err)
	}
	out.FromStatfsT(&s)
	return 0
}

// Read-only in every way.
func (n *node) Setattr(context.Context, gofs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}
func (n *node) Setxattr(context.Context, string, []byte, uint32) syscall.Errno { return syscall.EROFS }
func (n *node) Removexattr(context.Context, string) syscall.Errno              { return syscall.EROFS }
func (n *node) Mkdir(context.Context, string, uint32, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (n *node) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (n *node) Create(context.Context, string, uint32, uint32, *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}
func (n *node) Symlink(context.Context, string, string, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (n *node) Link(context.Context, gofs.InodeEmbedder, string, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (n *node) Unlink(context.Context, string) syscall.Errno { return syscall.EROFS }
func (n *node) Rmdir(context.Context, string) syscall.Errno  { return syscall.EROFS }
func (n *node) Rename(context.Context, string, gofs.InodeEmbedder, string, uint32) syscall.Errno {
	return syscall.EROFS
}

var (
	_ gofs.NodeSetattrer = (*node)(nil)
	_ gofs.NodeCreater   = (*node)(nil)
	_ gofs.NodeRenamer   = (*node)(nil)
	_ gofs.NodeStatfser  = (*node)(nil)
)
