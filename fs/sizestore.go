package fs

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// sizeStore remembers proven plaintext sizes of compressed logs across mounts, so that a
// remount lists exact sizes at once and opens without proving them again. An entry is keyed
// by the source file's identity (device, inode, size, mtime, ctime): any write changes it. It
// holds sizes only, never plaintext. A size taken from the store is served as exact, so the
// store is only used in a directory that is the mounting user's own and no one else may
// write, each line carries a checksum, and a line that does not check out is dropped.
type sizeStore struct {
	mu    sync.Mutex
	sizes map[stamp]int64
	file  *os.File // appended to; nil when nothing is remembered across mounts
}

const (
	sizeStoreName  = "sizes-v2"
	maxStoredSizes = 200_000 // past it, nothing more is remembered until a remount compacts
)

// openSizeStore loads the store in dir, creating both; dir "" keeps sizes for this mount only.
func openSizeStore(dir string) (*sizeStore, error) {
	s := &sizeStore{sizes: map[stamp]int64{}}
	if dir == "" {
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := checkPrivate(dir, syscall.S_IFDIR); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, sizeStoreName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := checkPrivate(path, syscall.S_IFREG); err != nil {
		f.Close()
		return nil, err
	}
	lines, whole := s.load(f)
	f.Close()
	if !whole || lines > 2*len(s.sizes)+1000 || len(s.sizes) >= maxStoredSizes {
		if err := s.rewrite(path); err != nil {
			return nil, err
		}
	}
	if s.file, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

// checkPrivate refuses a path that is not of the given type (a symbolic link included), not
// owned by this user, or writable by anyone else: another user could make it lie.
func checkPrivate(path string, kind uint32) error {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return err
	}
	switch {
	case st.Mode&syscall.S_IFMT != kind:
		return fmt.Errorf("%s is not a %s", path, map[uint32]string{syscall.S_IFDIR: "directory", syscall.S_IFREG: "regular file"}[kind])
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%s belongs to user %d, not to this user", path, st.Uid)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("%s may be written by others (mode %04o)", path, st.Mode&0o7777)
	}
	return nil
}

// load reads the entries of f; whole is false when the last line was cut short.
func (s *sizeStore) load(f *os.File) (lines int, whole bool) {
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return lines, err == io.EOF && line == ""
		}
		lines++
		if id, size, ok := parseStoreLine(strings.TrimSuffix(line, "\n")); ok {
			s.sizes[id] = size
		}
	}
}

// storeLine is one entry: the identity, the size, and the CRC32 of what precedes it.
func storeLine(id stamp, size int64) string {
	body := fmt.Sprintf("%d %d %d %d %d %d", id.dev, id.ino, id.size, id.mtime, id.ctime, size)
	return fmt.Sprintf("%s %08x\n", body, crc32.ChecksumIEEE([]byte(body)))
}

func parseStoreLine(line string) (stamp, int64, bool) {
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return stamp{}, 0, false
	}
	body, sum := line[:i], line[i+1:]
	want, err := strconv.ParseUint(sum, 16, 32)
	if err != nil || uint32(want) != crc32.ChecksumIEEE([]byte(body)) {
		return stamp{}, 0, false
	}
	f := strings.Fields(body)
	if len(f) != 6 {
		return stamp{}, 0, false
	}
	var id [2]uint64 // device and inode: unsigned (a .ndjson's device has the top bit set)
	for i := range id {
		if id[i], err = strconv.ParseUint(f[i], 10, 64); err != nil {
			return stamp{}, 0, false
		}
	}
	var n [4]int64
	for i, s := range f[2:] {
		if n[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			return stamp{}, 0, false
		}
	}
	if n[3] < 0 {
		return stamp{}, 0, false
	}
	return stamp{id[0], id[1], n[0], n[1], n[2]}, n[3], true
}

// rewrite replaces the file with one line per entry.
func (s *sizeStore) rewrite(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), sizeStoreName+".*")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(tmp)
	for id, size := range s.sizes {
		w.WriteString(storeLine(id, size))
	}
	err = errors.Join(w.Flush(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

func (s *sizeStore) get(id stamp) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	size, ok := s.sizes[id]
	return size, ok
}

// put remembers a proven size. A failed write loses only the memory of it.
func (s *sizeStore) put(id stamp, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.sizes[id]; ok && old == size || len(s.sizes) >= maxStoredSizes {
		return
	}
	s.sizes[id] = size
	if s.file != nil {
		s.file.WriteString(storeLine(id, size))
	}
}

func (s *sizeStore) close() {
	if s.file != nil {
		s.file.Close()
	}
}
