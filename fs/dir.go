package fs

import (
	"context"
	"path/filepath"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

type dirNode struct{ node }

var (
	_ gofs.NodeLookuper  = (*dirNode)(nil)
	_ gofs.NodeReaddirer = (*dirNode)(nil)
	_ gofs.NodeGetattrer = (*dirNode)(nil)
)

func (d *dirNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	if errno := d.view.access(ctx, d.sourcePath(), unix.R_OK); errno != 0 {
		return nil, errno
	}
	entries, _, err := d.view.listings.get(d.sourcePath(), d.view.inodes)
	if err != nil {
		return nil, gofs.ToErrno(err)
	}
	go d.view.warmSizes(d.sourcePath(), entries) // for the lookups of the listing
	list := make([]fuse.DirEntry, len(entries))
	for i, e := range entries {
		list[i] = fuse.DirEntry{Name: e.name, Mode: e.mode, Ino: e.ino}
	}
	return gofs.NewListDirStream(list), 0
}

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if errno := d.view.access(ctx, d.sourcePath(), unix.X_OK); errno != 0 {
		return nil, errno
	}
	entries, byName, err := d.view.listings.get(d.sourcePath(), d.view.inodes)
	if err != nil {
		return nil, gofs.ToErrno(err)
	}
	i, ok := byName[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	return d.child(ctx, entries[i], out)
}

// child makes or finds the inode of a source entry. Inode numbers come from the source's
// (device and inode), so they are the same after a remount.
func (d *dirNode) child(ctx context.Context, e entry, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	rel := filepath.Join(d.rel, e.source)
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(d.view.source, rel), &st); err != nil {
		return nil, gofs.ToErrno(err)
	}
	if e.events {
		return d.eventsChild(ctx, rel, &st, out)
	}
	var embedder gofs.InodeEmbedder
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		embedder = &dirNode{node: node{view: d.view, rel: rel}}
	case syscall.S_IFREG:
		embedder = &fileNode{node: node{view: d.view, rel: rel}}
	case syscall.S_IFLNK:
		embedder = &linkNode{node: node{view: d.view, rel: rel}}
	default:
		return nil, syscall.ENOENT // sockets, FIFOs and devices have no plaintext
	}
	// go-fuse keeps the node it already has for this inode number, not the one made here, so
	// the path a renamed file is found under now is kept in the view, where both see it.
	ino := d.view.inodes.translate(uint64(st.Dev), st.Ino)
	d.view.paths.Store(ino, rel)
	child := d.NewInode(ctx, embedder, gofs.StableAttr{Mode: st.Mode & syscall.S_IFMT, Ino: ino})
	if f, ok := child.Operations().(*fileNode); ok {
		return child, f.fillAttr(&st, &out.Attr)
	}
	out.Attr.FromStat(&st)
	return child, 0
}

// linkNode passes a symbolic link through.
type linkNode struct{ node }

func (l *linkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if errno := l.view.access(ctx, l.sourcePath(), unix.F_OK); errno != 0 {
		return nil, errno
	}
	buf := make([]byte, 4096)
	n, err := syscall.Readlink(l.sourcePath(), buf)
	if err != nil {
		return nil, gofs.ToErrno(err)
	}
	return buf[:n], 0
}
