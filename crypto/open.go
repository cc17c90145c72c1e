package crypto

import (
	"errors"
	"fmt"
	"io"

	"github.com/mysqllogfs/mysqllogfs/keysrc"
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
	data sizedReaderAt
}

type sizedReaderAt interface {
	io.ReaderAt
	Size() int64
}

// ReadAt reads plaintext at off. Errors for bad data wrap ErrCorrupt.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) { return r.data.ReadAt(p, off) }

// Unfinished reports whether the file is an active audit log served up to its last complete
// block: the server is still writing it, or it was cut short. (See MayBeUnfinished.)
func (r *Reader) Unfinished() bool {
	switch d := r.data.(type) {
	case *cbcReader:
		return d.unfinished
	case *gzipReader:
		cbc, encrypted := d.src.(*cbcReader)
		return d.cutShort() || encrypted && cbc.unfinished
	}
	return false
}

// Size is the plaintext size. It is exact except for a compressed audit log not yet read to
// its end, where it is an estimate from the gzip trailer: no reader may be served under it
// before Measure has proven it (see SizeExact).
func (r *Reader) Size() int64 { return r.data.Size() }

// SizeExact reports whether Size is exact.
func (r *Reader) SizeExact() bool {
	if g, ok := r.data.(*gzipReader); ok {
		return g.SizeExact()
	}
	return true
}

// Measure decodes a compressed file to its end once, checking every gzip CRC, so that Size is
// exact and later random reads find a full index. It does nothing for other kinds.
func (r *Reader) Measure() error {
	if g, ok := r.data.(*gzipReader); ok && !g.SizeExact() {
		return g.scanToEnd()
	}
	return nil
}

// release gives back memory held for random access (a gzip index's windows) and the
// mappings of a binlog's source.
func (r *Reader) release() {
	if rel, ok := r.data.(interface{ release() }); ok {
		rel.release()
	}
}

// Open recognises the file and returns its plaintext reader. src holds size bytes; name is
// the file's base name. keys is asked only for encrypted files.
func Open(src io.ReaderAt, size int64, name string, keys keysrc.Source, opts Options) (*Reader, error) {
	head := make([]byte, min(size, HeadSize))
	if n, err := src.ReadAt(head, 0); n < len(head) {
		return nil, fmt.Errorf("reading the file's first bytes: %w", err)
	}
	info := Identify(name, head)
	r := &Reader{Info: info}
	switch info.Kind {
	case KindMySQLBinlog:
		data, err := openMySQLBinlog(src, size, head, keys)
		if err != nil {
			return nil, err
		}
		r.data = data
	case KindMariaDBBinlog:
		var prev *mariadbReader
		if opts.Previous != nil {
			prev, _ = opts.Previous.data.(*mariadbReader)
		}
		data, err := openMariaDBBinlog(src, size, head, keys, prev)
		if err != nil {
			return nil, err
		}
		r.data = data
	case KindAuditLog:
		return openAuditLog(r, src, size, keys, opts)
	case KindUnrecognised:
		if info.Encrypted {
			return nil, fmt.Errorf("%w: named like an encrypted audit log, but not an OpenSSL Salted__ container", ErrCorrupt)
		}
		return nil, fmt.Errorf("%w: named like a compressed log, but not gzip", ErrCorrupt)
	default:
		r.data = &plainReader{src: src, size: size}
	}
	return r, nil
}

func openAuditLog(r *Reader, src io.ReaderAt, size int64, keys keysrc.Source, opts Options) (*Reader, error) {
	compressed := src
	compressedSize := size
	// The one rule for every command and the mount: the active log is served up to its last
	// complete block, a rotated one must be whole.
	unfinished := MayBeUnfinished(r.PlainName)
	if r.Encrypted {
		key, err := lookup(keys, r.KeyID, keysrc.AnyOwner)
		if err != nil {
			return nil, err
		}
		cbc, isGzip, err := openAuditCBC(src, size, ParseAuditPassword(key), unfinished)
		if err != nil {
			return nil, err
		}
		if r.Compressed = isGzip; !isGzip {
			r.data = cbc
			return r, nil
		}
		compressed, compressedSize = cbc, cbc.Size()
	}
	var prev *gzipReader
	if opts.Previous != nil {
		prev, _ = opts.Previous.data.(*gzipReader)
	}
	g, err := newGzipReader(compressed, compressedSize, unfinished, prev, opts.ProvenSize)
	if err != nil {
		return nil, err
	}
	r.data = g
	return r, nil
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

// plainReader passes a file through unchanged.
type plainReader struct {
	src  io.ReaderAt
	size int64
}

func (p *plainReader) Size() int64 { return p.size }

func (p *plainReader) ReadAt(b []byte, off int64) (int, error) {
	if off >= p.size {
		return 0, io.EOF
	}
	n, err := p.src.ReadAt(b[:min(int64(len(b)), p.size-off)], off)
	if err == nil && n < len(b) {
		err = io.EOF
	}
	return n, err
}
