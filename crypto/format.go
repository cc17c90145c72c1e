package crypto

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// A format is one kind of file the view reads: how it is recognised, how its plaintext is
// opened and under which size, and what can be checked of it. Each lives in a file of its own
// and is registered in formats; cat, inspect, verify and the mount all go through it.
type format interface {
	// recognise reports whether a file of this name, whose first bytes are head (HeadSize or
	// fewer), is of this format, and what the name and head tell of it.
	recognise(name string, head []byte) (Info, bool)
	// open returns the plaintext; it may complete o.info with what only the key shows.
	open(o opening) (plaintext, error)
	// check reads the plaintext from its start and checks what the format allows: verify.
	check(plain io.Reader) (events int, err error)
}

// formats are tried in this order; the last recognises every file.
var formats = []format{mysqlBinlog{}, mariadbBinlog{}, auditLog{}, plainBinlog{}, plainFile{}}

// opening is what a format's open is given: the source, its size and first bytes, what
// recognise found, and where keys come from.
type opening struct {
	src  io.ReaderAt
	size int64
	head []byte
	info *Info
	keys keysrc.Source
	opts Options
}

// plaintext is what a format opens: the plaintext at any offset, and its size.
type plaintext interface {
	io.ReaderAt
	Size() int64
}

// A plaintext may also implement these.
type (
	// provable is a plaintext whose size is an estimate until a full decode proves it.
	provable interface {
		SizeExact() bool
		Measure(ctx context.Context) error
	}
	// unfinishable is a plaintext that may end at the last complete block of a log the server
	// is still writing.
	unfinishable interface{ Unfinished() bool }
	// releasable holds memory or mappings to give back when the file is closed.
	releasable interface{ release() }
	// interruptible is a plaintext whose reads can take long for few bytes (a compressed
	// log): they stop when their context is done.
	interruptible interface {
		ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
	}
)

// Options change how Open treats a file.
type Options struct {
	// ProvenSize is the plaintext size of this very version of the file, proven by an earlier
	// full read (Measure); 0 when none is known. It spares a compressed log that proof.
	ProvenSize int64
	// Previous is an earlier reader of the same file before it grew. Its work (a MariaDB
	// binlog's event index, a gzip stream's checkpoints) is continued instead of redone.
	Previous *Reader
}

// Reader is the plaintext of one source file: an io.ReaderAt, safe for concurrent use, with
// the plaintext size.
type Reader struct {
	Info
	format format
	data   plaintext
	mark   sourceMark // what the source was, for a reader of it grown to continue this one
	grown  bool       // it continues Options.Previous: the same file, grown
}

// sourceMark tells cheaply whether a grown file still starts with the bytes a reader read: its
// size then, and a hash of its first and last 4 KiB up to that size. A file rewritten in place
// (cp over it) keeps its inode; continuing an index built from the old bytes would serve
// wrong ones.
type sourceMark struct {
	size int64
	sum  [sha256.Size]byte
}

func markOf(src io.ReaderAt, size int64) sourceMark {
	m := sourceMark{size: size}
	h := sha256.New()
	buf := make([]byte, min(size, 4096))
	for _, off := range []int64{0, size - int64(len(buf))} {
		if _, err := src.ReadAt(buf, off); err != nil && err != io.EOF {
			return sourceMark{size: -1} // unreadable: nothing continues it
		}
		h.Write(buf)
	}
	h.Sum(m.sum[:0])
	return m
}

// Continues reports whether the reader continues Options.Previous: the file is the one that
// reader read, grown. Work built on the older plaintext may be continued too.
func (r *Reader) Continues() bool { return r.grown }

// ReadAt reads plaintext at off. Errors for bad data wrap ErrCorrupt.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) { return r.data.ReadAt(p, off) }

// ReadAtContext is ReadAt that stops early with ctx's error when ctx is done: the reader went
// away. Only the reads that can take long (decoding a compressed log) check it as they go.
func (r *Reader) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if i, ok := r.data.(interruptible); ok {
		return i.ReadAtContext(ctx, p, off)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return r.data.ReadAt(p, off)
}

// Size is the plaintext size. It is exact except for a compressed log not yet read to its
// end, where it is an estimate from the gzip trailer: nothing may be served under it before
// Measure has proven it (see SizeExact).
func (r *Reader) Size() int64 { return r.data.Size() }

// SizeExact reports whether Size is exact.
func (r *Reader) SizeExact() bool {
	p, ok := r.data.(provable)
	return !ok || p.SizeExact()
}

// Measure decodes a compressed file to its end once, checking every gzip CRC, so that Size is
// exact and later random reads find a full index; it stops with ctx's error when ctx is done.
// It does nothing for other kinds.
func (r *Reader) Measure(ctx context.Context) error {
	if p, ok := r.data.(provable); ok && !p.SizeExact() {
		return p.Measure(ctx)
	}
	return nil
}

// Unfinished reports whether the file is an active log served up to its last complete block:
// the server is still writing it, or it was cut short. (See MayBeUnfinished.)
func (r *Reader) Unfinished() bool {
	u, ok := r.data.(unfinishable)
	return ok && u.Unfinished()
}

// release gives back memory held for random access (a gzip index's windows) and the
// mappings of a binlog's source.
func (r *Reader) release() {
	if rel, ok := r.data.(releasable); ok {
		rel.release()
	}
}

// Identify tells a file's kind from its name and its first HeadSize bytes (fewer for a short
// file). It reads no key.
func Identify(name string, head []byte) Info {
	info, _ := identify(name, head)
	return info
}

func identify(name string, head []byte) (Info, format) {
	for _, f := range formats {
		if info, ok := f.recognise(name, head); ok {
			return info, f
		}
	}
	panic("unreachable: plainFile recognises every file")
}

// SizeNeedsProof reports whether a file of this name may have a plaintext size that only a
// full decode proves: a compressed log. Only such sizes are worth remembering, and a size
// remembered for one is never taken for a file of another kind under another name.
func SizeNeedsProof(name string) bool {
	_, f := identify(name, nil)
	_, ok := f.(auditLog)
	return ok
}

// Open recognises the file and returns its plaintext reader. src holds size bytes; name is
// the file's base name. keys is asked only for encrypted files.
func Open(src io.ReaderAt, size int64, name string, keys keysrc.Source, opts Options) (*Reader, error) {
	head := make([]byte, min(size, HeadSize))
	if n, err := src.ReadAt(head, 0); n < len(head) {
		return nil, fmt.Errorf("reading the file's first bytes: %w", err)
	}
	info, f := identify(name, head)
	r := &Reader{Info: info, format: f, mark: markOf(src, size)}
	if prev := opts.Previous; prev != nil && (prev.mark.size < 0 || prev.mark.size > size || markOf(src, prev.mark.size) != prev.mark) {
		opts.Previous = nil // not the same file grown
	}
	r.grown = opts.Previous != nil
	data, err := f.open(opening{src: src, size: size, head: head, info: &r.Info, keys: keys, opts: opts})
	if err != nil {
		return nil, err
	}
	r.data = data
	return r, nil
}

// previous returns opts.Previous's plaintext when it is of type T, for a reader to continue.
func previous[T plaintext](opts Options) T {
	var zero T
	if opts.Previous == nil {
		return zero
	}
	prev, _ := opts.Previous.data.(T)
	return prev
}

func lookup(keys keysrc.Source, id, owner string) ([]byte, error) {
	if keys == nil {
		return nil, fmt.Errorf("%w: no key %q: no key source given", ErrMissingKey, id)
	}
	k, err := keys.Lookup(id, owner)
	if errors.Is(err, keysrc.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", ErrMissingKey, err)
	}
	if err != nil {
		return nil, err
	}
	return k.Value, nil
}
