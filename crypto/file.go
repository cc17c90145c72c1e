package crypto

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// File is a Reader over an open source file.
type File struct {
	*Reader
	f *os.File
}

// Close releases what the reader holds in memory and closes the source file.
func (f *File) Close() error {
	f.Reader.release()
	return f.f.Close()
}

// OpenFile opens a source file read-only, without updating its access time where the kernel
// allows it, and returns its plaintext reader.
func OpenFile(path string, keys keysrc.Source, opts Options) (*File, error) {
	f, err := OpenSource(path)
	if err != nil {
		return nil, err
	}
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

// OpenSource opens a file for reading with O_NOATIME, so that reading evidence leaves its
// access time alone. The kernel allows O_NOATIME only to the file's owner (or root); for
// others it falls back to a plain open.
func OpenSource(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOATIME, 0)
	if errors.Is(err, syscall.EPERM) {
		f, err = os.OpenFile(path, os.O_RDONLY, 0)
	}
	return f, err
}
