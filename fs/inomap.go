package fs

import (
	"hash/fnv"
	"sync"
)

// inoMap gives every source file an inode number of its own that stays the same across
// remounts, as gocryptfs' inomap does. A file on the source's own filesystem keeps its inode
// number. A file on a filesystem mounted inside the source has its device's namespace in the
// top 16 bits: two filesystems' inode numbers collide, and go-fuse would take the second file
// for the first. Inode numbers too large to share their bits get numbers of their own for the
// life of the mount.
type inoMap struct {
	rootDev uint64

	mu     sync.Mutex
	spaces map[uint64]uint64 // device -> namespace (1 to maxNamespace)
	owners map[uint64]uint64 // namespace -> device
	spill  map[[2]uint64]uint64
	next   uint64 // the next spill number
}

const (
	inoBits      = 48
	maxNamespace = 1<<(64-inoBits) - 2 // the last namespace holds the spill
	spillSpace   = maxNamespace + 1
)

func newInoMap(rootDev uint64) *inoMap {
	return &inoMap{rootDev: rootDev, spaces: map[uint64]uint64{}, owners: map[uint64]uint64{}, spill: map[[2]uint64]uint64{}}
}

// translate returns the view's inode number for inode ino of device dev.
func (m *inoMap) translate(dev, ino uint64) uint64 {
	if ino>>inoBits != 0 {
		return m.spilled(dev, ino)
	}
	if dev == m.rootDev {
		return ino
	}
	return m.namespace(dev)<<inoBits | ino
}

// namespace is the device's namespace: one derived from the device number, so that it is the
// same at the next mount, unless another device took it first.
func (m *inoMap) namespace(dev uint64) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ns, ok := m.spaces[dev]; ok {
		return ns
	}
	h := fnv.New64a()
	for i := range 8 {
		h.Write([]byte{byte(dev >> (8 * i))})
	}
	ns := h.Sum64()%maxNamespace + 1
	for m.owners[ns] != 0 {
		ns = ns%maxNamespace + 1
	}
	m.spaces[dev], m.owners[ns] = ns, dev
	return ns
}

func (m *inoMap) spilled(dev, ino uint64) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := [2]uint64{dev, ino}
	if n, ok := m.spill[key]; ok {
		return n
	}
	m.next++
	n := spillSpace<<inoBits | m.next
	m.spill[key] = n
	return n
}
