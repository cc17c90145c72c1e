package source

import (
	"errors"
	"os"
	"runtime/debug"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// HugePageSize is the size of a transparent huge page on x86-64 and arm64 (4 KiB pages).
const HugePageSize = 2 << 20

// ErrShrank reports a source file cut shorter than it was when its views were made.
var ErrShrank = errors.New("the file shrank while being read")

// Views serve large reads of a source file straight from the page cache, through mappings
// of it, so that decryption reads the ciphertext where it lies instead of pread copying it out
// first. Each view maps viewSize bytes from a 2 MiB boundary of the file at a 2 MiB-aligned
// address: there the kernel maps each 2 MiB folio of the page cache with one page-table entry,
// so a view costs a system call and two faults, less than pread's copy (docs/performance.md).
//
// A view is kept for the reads that follow and replaced when one falls outside it, so the
// file pages the process has mapped, which count as its resident memory, stay within
// viewSlots views per open file. A file cut short while mapped faults on access; the fault
// comes back as ErrShrank.
type Views struct {
	file *os.File // mapped through its own descriptor, never by a number that may be reused
	size int64    // the file's size at open: no read maps past it

	mu       sync.Mutex
	slots    [viewSlots]view
	clock    int  // counts uses, to find the least recently used slot
	disabled bool // mapping failed (a file system that cannot map files): pread only
}

type view struct {
	mem      []byte // viewSize bytes of address space, 2 MiB aligned, reserved for the file's life
	off      int64  // file offset at mem[0]; -1 when nothing is mapped
	users    int    // reads using the view now
	lastUsed int
}

const (
	// viewSize holds any read of up to 2 MiB from the 2 MiB boundary below its start.
	viewSize = 2 * HugePageSize
	// viewSlots: one sequential reader needs one view (it moves the two in turn, the least
	// recently used first); a second stream of the same file, or a random reader beside it,
	// the other.
	viewSlots = 2
	// ViewMinimum is the smallest read worth a view: a small random read would move a view
	// for a few KiB. (Random 4 KiB reads, P2, are served by pread and cost what they did.)
	ViewMinimum = 64 << 10
)

// NewViews returns views of src, whose size is size, or nil when src is not an *os.File.
func NewViews(src any, size int64) *Views {
	f, ok := src.(*os.File)
	if !ok {
		return nil
	}
	m := &Views{file: f, size: size}
	for i := range m.slots {
		m.slots[i].off = -1
	}
	return m
}

// Read calls use with the n bytes at off, mapped, and reports whether it could. When it could
// not (a read too large or too small for a view, every view busy, a file that cannot be
// mapped), the caller reads with pread.
func (m *Views) Read(off int64, n int, use func(b []byte)) (bool, error) {
	if m == nil || n < ViewMinimum || off+int64(n) > m.size {
		return false, nil
	}
	slot := m.take(off, n)
	if slot == nil {
		return false, nil
	}
	defer m.release(slot)
	return true, useMapped(slot.mem[off-slot.off:][:n], use)
}

// useMapped calls use with b, a mapped part of a file, turning a fault into ErrShrank: the
// file was cut short since it was opened.
func useMapped(b []byte, use func(b []byte)) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			var fault interface{ Addr() uintptr }
			if e, ok := r.(error); !ok || !errors.As(e, &fault) {
				panic(r)
			}
			err = ErrShrank
		}
	}()
	use(b)
	return nil
}

// take returns a view holding [off, off+n), moving an idle one there if none does, or nil.
func (m *Views) take(off int64, n int) *view {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clock++
	var idle *view
	for i := range m.slots {
		s := &m.slots[i]
		if s.off >= 0 && s.off <= off && off+int64(n) <= s.off+viewSize {
			s.users++
			s.lastUsed = m.clock
			return s
		}
		if s.users == 0 && (idle == nil || s.lastUsed < idle.lastUsed) {
			idle = s
		}
	}
	start := off &^ (HugePageSize - 1)
	if idle == nil || m.disabled || off+int64(n) > start+viewSize {
		return nil
	}
	if !m.move(idle, start) {
		return nil
	}
	idle.users++
	idle.lastUsed = m.clock
	return idle
}

// move maps the view at file offset start, reserving its address space first if it has
// none. Called with mu held.
func (m *Views) move(s *view, start int64) bool {
	if s.mem == nil {
		if s.mem = reserveAligned(viewSize); s.mem == nil {
			m.disabled = true
			return false
		}
	}
	// MAP_FIXED replaces the view's previous mapping in one step. Mapping past the end of the
	// file is allowed; no read touches those pages. Control holds the descriptor open for the
	// call, and fails once the file is closed.
	var err error
	conn, connErr := m.file.SyscallConn()
	if connErr == nil {
		connErr = conn.Control(func(fd uintptr) {
			_, err = unix.MmapPtr(int(fd), start, unsafe.Pointer(&s.mem[0]), viewSize, unix.PROT_READ, unix.MAP_SHARED|unix.MAP_FIXED)
		})
	}
	if connErr != nil { // closed: the view is as it was
		m.disabled = true
		return false
	}
	if err != nil {
		// The view's range may now be unmapped, where the Go runtime could map something
		// else: it is never mapped over again, nor unmapped.
		s.mem, s.off = nil, -1
		m.disabled = true
		return false
	}
	s.off = start
	return true
}

func (m *Views) release(s *view) {
	m.mu.Lock()
	s.users--
	m.mu.Unlock()
}

// Close unmaps every view, and no view is mapped again. No read may be running.
func (m *Views) Close() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.disabled = true
	for i := range m.slots {
		if s := &m.slots[i]; s.mem != nil {
			unix.MunmapPtr(unsafe.Pointer(&s.mem[0]), uintptr(len(s.mem)))
			s.mem, s.off = nil, -1
		}
	}
}

// reserveAligned reserves n bytes of address space at a 2 MiB boundary, or returns nil.
func reserveAligned(n int) []byte {
	const flags = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_NORESERVE
	m, err := unix.MmapPtr(-1, 0, nil, uintptr(n+HugePageSize), unix.PROT_NONE, flags)
	if err != nil {
		return nil
	}
	head := (HugePageSize - int(uintptr(m)%HugePageSize)) % HugePageSize
	aligned := unsafe.Add(m, head)
	if head > 0 {
		unix.MunmapPtr(m, uintptr(head))
	}
	if tail := HugePageSize - head; tail > 0 {
		unix.MunmapPtr(unsafe.Add(aligned, n), uintptr(tail))
	}
	return unsafe.Slice((*byte)(aligned), n)
}
