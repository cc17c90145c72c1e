package fs

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// allocateHuge returns n bytes, n a multiple of hugePageSize, aligned to it and marked for
// transparent huge pages, so that the kernel backs them with 2 MiB pages where it has them
// free. Read-ahead buffers live there: pread fills a buffer page by page, and the kernel pins
// the pages of every reply it copies, so one large page costs less than 512 small ones. The
// memory is never returned, as the Go heap would not return the buffers either: their count
// is bounded.
func allocateHuge(n int) []byte {
	// Twice the size, to find an aligned stretch in it; the rest is never touched, so it
	// costs address space only.
	m, err := unix.Mmap(-1, 0, 2*n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return make([]byte, n)
	}
	skip := (hugePageSize - int(uintptr(unsafe.Pointer(&m[0]))%hugePageSize)) % hugePageSize
	b := m[skip : skip+n : skip+n]
	unix.Madvise(b, unix.MADV_HUGEPAGE) // without it (THP off), small pages serve as well
	return b
}
