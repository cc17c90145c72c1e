package fs

import (
	"context"
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/mysqllogfs/mysqllogfs/crypto"
)

// sizes remembers the plaintext size of each version of the files seen, so that a file's
// attributes cost one open per version, and so that listing a directory can find the sizes
// of its files in parallel before the kernel asks for them one by one. A compressed log's
// size is an estimate from its gzip trailer until a full decode proves it; proven sizes also
// go to the store, which keeps them across mounts.
type sizes struct {
	mu      sync.Mutex
	byPath  map[string]sized // source path -> the latest version's size
	warming map[string]bool  // directories being warmed now
	store   *sizeStore
}

type sized struct {
	stamp stamp
	size  int64
	exact bool
}

// maxSizes bounds the cache; past it, it starts again empty.
const maxSizes = 100_000

// get returns the size known for this version of the file, and whether it is proven. A size
// remembered across mounts is taken only for a compressed log's name (crypto.SizeNeedsProof):
// a hard link of the same inode under a plain name is another file.
func (s *sizes) get(path string, version stamp) (size int64, known, exact bool) {
	return s.lookup(path, version, crypto.SizeNeedsProof(filepath.Base(path)))
}

// lookup returns the size known under key for this version, from the store too if
// remembered.
func (s *sizes) lookup(key string, version stamp, remembered bool) (size int64, known, exact bool) {
	s.mu.Lock()
	e, ok := s.byPath[key]
	s.mu.Unlock()
	if ok && e.stamp == version {
		return e.size, true, e.exact
	}
	if !remembered {
		return 0, false, false
	}
	if size, ok := s.store.get(version); ok {
		s.record(key, version, size, true, false) // exact; already remembered
		return size, true, true
	}
	return 0, false, false
}

// put records this version's size, exact or estimated; proven says a full decode of a
// compressed log proved it, which is remembered across mounts.
func (s *sizes) put(path string, version stamp, size int64, exact, proven bool) {
	s.record(path, version, size, exact || proven, proven && crypto.SizeNeedsProof(filepath.Base(path)))
}

// record keeps a size under key, and in the store if remember.
func (s *sizes) record(key string, version stamp, size int64, exact, remember bool) {
	s.mu.Lock()
	if s.byPath == nil || len(s.byPath) >= maxSizes {
		s.byPath = map[string]sized{}
	}
	s.byPath[key] = sized{version, size, exact}
	s.mu.Unlock()
	if remember {
		s.store.put(version, size)
	}
}

// count is how many sizes are known.
func (s *sizes) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byPath)
}

// proven is the size of this version proven before, by this mount or an earlier one; 0 if none.
func (s *sizes) proven(path string, version stamp) int64 {
	if size, _, exact := s.get(path, version); exact {
		return size
	}
	return 0
}

// plainSize is the size the view shows for a source file in the version st describes.
func (v *view) plainSize(path string, st *syscall.Stat_t) int64 {
	version := stampOf(st)
	if size, known, _ := v.sizes.get(path, version); known {
		return size
	}
	o := v.readers.get(path, st)
	defer v.readers.put(o)
	size := o.size(st.Size)
	if o.err == nil {
		exact := o.reader.SizeExact()
		v.sizes.put(path, version, size, exact, exact && o.reader.Compressed)
	}
	return size
}

// prove makes the reader's size exact before anything is served under it: a compressed log
// whose size came from its gzip trailer (which holds it modulo 4 GiB, and for the last member
// only) is decoded to its end once, which also builds its index for the reads that follow.
// A decode of its events may have read it to its end already: that proved it too.
func (v *view) prove(ctx context.Context, o *opened) error {
	estimate, start := o.reader.Size(), time.Now()
	if !o.reader.SizeExact() {
		if err := o.reader.Measure(ctx); err != nil {
			if ctx.Err() == nil {
				v.metrics.proof(err)
			}
			return err
		}
	}
	v.proven(o, estimate, start)
	return nil
}

// proven records the size of a compressed log's reader that a decode has read to its end,
// unless it is recorded already.
func (v *view) proven(o *opened, estimate int64, start time.Time) {
	size := o.reader.Size()
	if !o.reader.Compressed || v.sizes.proven(o.path, o.stamp) == size {
		return
	}
	v.metrics.proof(nil)
	v.sizes.put(o.path, o.stamp, size, true, true)
	v.log.Debug("size proven", "file", o.path, "size", size, "estimate", estimate, "took", time.Since(start).Round(time.Millisecond))
}

// proveAll proves, one file at a time, the sizes of the compressed logs of the source that
// are not known yet, so that `ls -l` becomes exact without anyone opening them. It stops
// when ctx is done.
func (v *view) proveAll(ctx context.Context) {
	start, proven := time.Now(), 0
	type file struct {
		path string
		size int64
	}
	var files []file
	var done, total int64
	v.eachFile(ctx, func(path string, size int64) {
		if compressed, withEvents := v.provable(path); compressed || withEvents { // a data directory's other files are not kept
			files = append(files, file{path, size})
			total += size
		}
	})
	if v.proving != nil {
		v.proving(0, total, false)
	}
	// Two files at a time, in name order: decoding takes a core each, and the disk reads
	// ahead of the order the files lie in.
	queue := make(chan file)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range proveParallel {
		wg.Go(func() {
			for f := range queue {
				ok := v.proveOne(ctx, f.path)
				mu.Lock()
				if ok {
					proven++
				}
				if done += f.size; v.proving != nil {
					v.proving(done, total, false)
				}
				mu.Unlock()
			}
		})
	}
	for _, f := range files {
		if ctx.Err() != nil {
			break
		}
		queue <- f
	}
	close(queue)
	wg.Wait()
	if ctx.Err() != nil {
		return // unmounted: the pass did not end
	}
	if v.proving != nil {
		v.proving(total, total, true)
	}
	if proven > 0 {
		v.log.Info("sizes proven", "files", proven, "took", time.Since(start).Round(time.Millisecond))
	}
}

// eachFile calls do with each regular file of the source and its size, until ctx is done.
func (v *view) eachFile(ctx context.Context, do func(path string, size int64)) {
	filepath.WalkDir(v.source, func(path string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return filepath.SkipAll
		}
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			do(path, info.Size())
		}
		return nil
	})
}

// provable says which sizes a file may have to prove: a compressed log's (only audit logs
// are), and with --events any log's events.
func (v *view) provable(path string) (compressed, withEvents bool) {
	name := filepath.Base(path)
	return crypto.PlainName(name) != name, v.events && isLogName(crypto.PlainName(name))
}

// proveParallel is how many files the proof after mounting decodes at once.
const proveParallel = 2

// proveOne proves the size of a compressed log, and with --events of a log's events, unless
// they are known; it reports whether it proved any.
func (v *view) proveOne(ctx context.Context, path string) bool {
	compressed, withEvents := v.provable(path)
	if !compressed && !withEvents {
		return false
	}
	var st syscall.Stat_t
	if syscall.Lstat(path, &st) != nil {
		return false
	}
	withEvents = withEvents && hasEvents(crypto.PlainName(filepath.Base(path)), &st)
	if !compressed && !withEvents {
		return false
	}
	_, _, sizeKnown := v.sizes.get(path, stampOf(&st))
	_, eventsKnown, _ := v.sizes.lookup(path+eventsSuffix, eventsStamp(&st), true)
	if (sizeKnown || !compressed) && (eventsKnown || !withEvents) {
		return false
	}
	o := v.readers.get(path, &st)
	defer v.readers.put(o)
	if o.err != nil {
		return false // logged by the open
	}
	decodeEvents := withEvents && !eventsKnown // which proves the plaintext's size too
	if o.reader.SizeExact() {
		v.sizes.put(path, o.stamp, o.reader.Size(), true, o.reader.Compressed)
	} else if !decodeEvents {
		if err := v.prove(ctx, o); err != nil {
			if ctx.Err() == nil {
				v.log.Warn("cannot prove size", "file", path, "status", crypto.Status(err), "reason", err.Error())
			}
			return false
		}
	}
	if decodeEvents {
		if _, err := v.eventsOf(ctx, o); err != nil {
			return false // logged there
		}
	}
	return true
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
