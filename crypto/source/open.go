// Package source reads the source files: opened without touching their access times, and
// large reads served from views of the page cache. It knows nothing of ciphers or formats.
package source

import (
	"errors"
	"os"
	"syscall"
)

// OpenListed opens, as Open does, the file the view listed at path and nothing else: never
// through a symbolic link put there since (a swap that would have a root mount read any file
// for another user), never blocking on a FIFO, and only the regular file of device dev and
// inode ino.
func OpenListed(path string, dev, ino uint64) (*os.File, error) {
	const flags = os.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK
	f, err := os.OpenFile(path, flags|syscall.O_NOATIME, 0)
	if errors.Is(err, syscall.EPERM) {
		f, err = os.OpenFile(path, flags, 0)
	}
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || uint64(st.Dev) != dev || st.Ino != ino {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOENT} // replaced since listed
	}
	return f, nil
}

// Open opens a file for reading with O_NOATIME, so that reading evidence leaves its access
// time alone. The kernel allows O_NOATIME only to the file's owner (or root); for others it
// falls back to a plain open.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOATIME, 0)
	if errors.Is(err, syscall.EPERM) {
		f, err = os.OpenFile(path, os.O_RDONLY, 0)
	}
	return f, err
}
