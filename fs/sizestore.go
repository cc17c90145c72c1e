package fs

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// sizeStore remembers proven plaintext sizes across mounts, so that a remount lists exact
// sizes at once and opens without proving them again. An entry is keyed by the source file's
// identity (device, inode, size, mtime, ctime): any write changes it. It holds sizes only,
// never plaintext, in a file of its own directory (mode 0600 in 0700).
type sizeStore struct {
	mu    sync.Mutex
	sizes map[stamp]int64
	file  *os.File // appended to; nil when nothing is remembered across mounts
}

const (
	sizeStoreName   = "sizes-v1"
	maxStoredSizes  = 200_000 // past it the store starts again empty
	storeLineFormat = "%d %d %d %d %d %d\n"
)

// openSizeStore loads the store in dir, creating it; dir "" keeps sizes for this mount only.
func openSizeStore(dir string) (*sizeStore, error) {
	s := &sizeStore{sizes: map[stamp]int64{}}
	if dir == "" {
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, sizeStoreName)
	lines := 0
	if f, err := os.Open(path); err == nil {
		scan := bufio.NewScanner(f)
		for scan.Scan() {
			var id stamp
			var size int64
			if _, err := fmt.Sscanf(scan.Text(), "%d %d %d %d %d %d", &id.dev, &id.ino, &id.size, &id.mtime, &id.ctime, &size); err == nil && size >= 0 {
				s.sizes[id] = size
			}
			lines++
		}
		f.Close()
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if len(s.sizes) >= maxStoredSizes || lines > 2*len(s.sizes)+1000 {
		if err := s.rewrite(path); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, err
	}
	s.file = f
	return s, nil
}

// rewrite compacts the file to one line per entry (or none, when it has grown too large).
func (s *sizeStore) rewrite(path string) error {
	if len(s.sizes) >= maxStoredSizes {
		s.sizes = map[stamp]int64{}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), sizeStoreName+".*")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(tmp)
	for id, size := range s.sizes {
		fmt.Fprintf(w, storeLineFormat, id.dev, id.ino, id.size, id.mtime, id.ctime, size)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	tmp.Close()
	return os.Rename(tmp.Name(), path)
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
	if old, ok := s.sizes[id]; ok && old == size {
		return
	}
	if len(s.sizes) >= maxStoredSizes {
		return
	}
	s.sizes[id] = size
	if s.file != nil {
		fmt.Fprintf(s.file, storeLineFormat, id.dev, id.ino, id.size, id.mtime, id.ctime, size)
	}
}

func (s *sizeStore) close() {
	if s.file != nil {
		s.file.Close()
	}
}
