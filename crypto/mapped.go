package crypto

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
)

// mapMinimum is the smallest read worth a mapping: below it, mmap and munmap cost more than
// the copy pread makes.
const mapMinimum = 64 << 10

var pageSize = int64(os.Getpagesize())

// errShrank reports a source file cut shorter than it was at open.
var errShrank = fmt.Errorf("%w: file shrank while being read", ErrCorrupt)

// withMapped calls use with the bytes [off, off+n) of f read in place from the page cache,
// rather than copied out by pread, so that decryption reads each byte once. The mapping lives
// only for the call: memory shown as the process's does not grow with what it has read. A
// file truncated meanwhile faults instead of reading; that fault comes back as errShrank.
func withMapped(f *os.File, off int64, n int, use func(b []byte)) (err error) {
	start := off &^ (pageSize - 1)
	m, err := syscall.Mmap(int(f.Fd()), start, int(off-start)+n, syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		return err
	}
	defer syscall.Munmap(m)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			var fault interface{ Addr() uintptr }
			if e, ok := r.(error); !ok || !errors.As(e, &fault) {
				panic(r)
			}
			err = errShrank
		}
	}()
	use(m[off-start:])
	return nil
}
