package crypto

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/mysqllogfs/mysqllogfs/crypto/source"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// File is a Reader over an open source file. Close waits for the reads in progress, and every
// read after it fails: a closed File never serves bytes, least of all another file's.
type File struct {
	*Reader
	f *os.File

	mu     sync.RWMutex // read-held by each ReadAt; Close takes it to end them
	closed bool
}

// ErrClosed is returned by reads of a closed File.
var ErrClosed = errors.New("reader closed")

// ReadAt reads plaintext at off, or fails with ErrClosed once the file is closed.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return 0, fmt.Errorf("%s: %w", f.f.Name(), ErrClosed)
	}
	return f.Reader.ReadAt(p, off)
}

// ReadAtContext is Reader.ReadAtContext, guarded like ReadAt.
func (f *File) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return 0, fmt.Errorf("%s: %w", f.f.Name(), ErrClosed)
	}
	return f.Reader.ReadAtContext(ctx, p, off)
}

// Measure is Reader.Measure, guarded like ReadAt.
func (f *File) Measure(ctx context.Context) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return fmt.Errorf("%s: %w", f.f.Name(), ErrClosed)
	}
	return f.Reader.Measure(ctx)
}

// Close releases what the reader holds in memory and closes the source file, once the reads
// in progress have ended.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	f.Reader.release()
	return f.f.Close()
}

// OpenFile opens a source file read-only, without updating its access time where the kernel
// allows it, and returns its plaintext reader.
func OpenFile(path string, keys keysrc.Source, opts Options) (*File, error) {
	f, err := source.Open(path)
	if err != nil {
		return nil, err
	}
	return NewFile(f, keys, opts)
}

// NewFile returns the plaintext reader of the open source file f, which it closes on error
// and on Close.
func NewFile(f *os.File, keys keysrc.Source, opts Options) (*File, error) {
	path := f.Name()
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	r, err := Open(f, info.Size(), filepath.Base(path), keys, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &File{Reader: r, f: f}, nil
}
