package fs

import (
	"path/filepath"
	"sync"
	"syscall"
)

// sizes remembers the plaintext size of each version of the files seen, so that a file's
// attributes cost one open per version, and so that listing a directory can find the sizes
// of its files in parallel before the kernel asks for them one by one.
type sizes struct {
	mu      sync.Mutex
	byPath  map[string]sized // source path -> the latest version's size
	warming map[string]bool  // directories being warmed now
}

type sized struct {
	stamp stamp
	size  int64
}

// maxSizes bounds the cache; past it, it starts again empty.
const maxSizes = 100_000

func (s *sizes) get(path string, version stamp) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byPath[path]
	return e.size, ok && e.stamp == version
}

func (s *sizes) put(path string, version stamp, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byPath == nil || len(s.byPath) >= maxSizes {
		s.byPath = map[string]sized{}
	}
	s.byPath[path] = sized{version, size}
}

// plainSize is the size the view shows for a source file in the version st describes.
func (v *view) plainSize(path string, st *syscall.Stat_t) int64 {
	version := stampOf(st)
	if size, ok := v.sizes.get(path, version); ok {
		return size
	}
	o := v.readers.get(path, st)
	defer v.readers.put(o)
	size := o.size(st.Size)
	if o.err == nil {
		v.sizes.put(path, version, size)
	}
	return size
}

// shownSize is the size the kernel was given for this version of the file.
func (v *view) shownSize(o *opened) int64 {
	if size, ok := v.sizes.get(o.path, o.stamp); ok {
		return size
	}
	return o.size(o.stamp.size)
}

// warmParallel is how many files a listing opens at once to find their sizes: the opens wait
// on the disk (a header and a trailer each), not on the CPU.
const warmParallel = 8

// warmSizes finds the sizes of a directory's files in the background, several at a time, for
// the lookups of the listing that follows. The files it opens go through the reader cache as
// any open does.
func (v *view) warmSizes(dir string, entries []entry) {
	v.sizes.mu.Lock()
	if v.sizes.warming == nil {
		v.sizes.warming = map[string]bool{}
	}
	if v.sizes.warming[dir] {
		v.sizes.mu.Unlock()
		return
	}
	v.sizes.warming[dir] = true
	v.sizes.mu.Unlock()

	paths := make(chan string)
	var wg sync.WaitGroup
	for range warmParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for path := range paths {
				var st syscall.Stat_t
				if syscall.Lstat(path, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
					v.plainSize(path, &st)
				}
			}
		}()
	}
	for _, e := range entries {
		if e.mode&syscall.S_IFMT == syscall.S_IFREG {
			paths <- filepath.Join(dir, e.source)
		}
	}
	close(paths)
	wg.Wait()

	v.sizes.mu.Lock()
	delete(v.sizes.warming, dir)
	v.sizes.mu.Unlock()
}
