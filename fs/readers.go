package fs

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/crypto/events"
	"github.com/mysqllogfs/mysqllogfs/crypto/source"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// stamp identifies one version of a source file: it changes when the file is replaced,
// grows, shrinks or is written.
type stamp struct {
	dev, ino           uint64
	size, mtime, ctime int64
}

func stampOf(st *syscall.Stat_t) stamp {
	return stamp{uint64(st.Dev), st.Ino, st.Size, st.Mtim.Nano(), st.Ctim.Nano()}
}

// opened is a source file's plaintext reader, shared by every handle on that version of it.
type opened struct {
	path   string
	stamp  stamp
	reader *crypto.File // nil when err is set
	kind   crypto.Kind  // the reader's, or what the name and first bytes say when err is set
	err    error
	when   time.Time // when err was found, so that a missing key is retried later
	refs   int       // handles using it, plus one while it is in the cache

	eventsMu  sync.Mutex
	events    *events.View // its decoded events, once a .ndjson was asked for (events.go)
	eventsErr error        // why they do not decode

	// The index of the events of an older version this one grew from, to be continued; and
	// this version's own once measured, for the next. A version whose events nobody asked for
	// passes its older one's on. An index holds nothing of its version's reader.
	grownFrom   atomic.Pointer[events.Index]
	eventsIndex atomic.Pointer[events.Index]
}

func (o *opened) size(sourceSize int64) int64 {
	if o.reader == nil {
		return sourceSize
	}
	return o.reader.Size()
}

// readers keeps the plaintext readers of recently used files, so that header parsing, key
// look-up and the gzip index are done once per version of a file, not per read.
type readers struct {
	keys   keysrc.Source
	log    *slog.Logger
	proven func(path string, version stamp) int64 // a size proven before, or 0

	mu      sync.Mutex
	byKey   map[string]*opened
	opening map[string]*pendingOpen
	order   []string // least recently used first
}

const (
	maxOpenReaders = 512
	retryFailedIn  = 2 * time.Second // a key added to the keyring is noticed this soon
)

func newReaders(keys keysrc.Source, log *slog.Logger, proven func(string, stamp) int64) *readers {
	return &readers{keys: keys, log: log, proven: proven, byKey: map[string]*opened{}, opening: map[string]*pendingOpen{}}
}

// get returns the reader for this version of the file, opening it if needed. The caller
// holds a reference until it calls put. Callers that want a file another caller is opening
// wait for that open rather than make a second reader of their own.
func (c *readers) get(path string, st *syscall.Stat_t) *opened {
	s := stampOf(st)
	c.mu.Lock()
	for {
		if o, ok := c.byKey[path]; ok && o.stamp == s && (o.err == nil || time.Since(o.when) < retryFailedIn) {
			o.refs++
			c.touch(path)
			c.mu.Unlock()
			return o
		}
		p, busy := c.opening[path]
		if !busy || p.stamp != s {
			break
		}
		c.mu.Unlock()
		<-p.done
		c.mu.Lock()
	}
	var previous *crypto.Reader // the same file before it grew: its index is continued
	var grownFrom *events.Index // and its events'
	if o, ok := c.byKey[path]; ok && o.err == nil && o.stamp.ino == s.ino && o.stamp.size <= s.size {
		previous, grownFrom = o.reader.Reader, o.eventsIndex.Load()
		if grownFrom == nil {
			grownFrom = o.grownFrom.Load()
		}
	}
	p := &pendingOpen{stamp: s, done: make(chan struct{})}
	c.opening[path] = p
	c.mu.Unlock()

	o := c.open(path, s, previous)
	if o.err == nil && o.reader.Continues() { // not a file rewritten in place
		o.grownFrom.Store(grownFrom)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opening[path] == p {
		delete(c.opening, path)
	}
	close(p.done)
	if old, ok := c.byKey[path]; ok {
		c.release(old)
	}
	c.byKey[path] = o
	c.touch(path)
	o.refs += 2
	for len(c.order) > maxOpenReaders {
		evict := c.order[0]
		c.order = c.order[1:]
		c.release(c.byKey[evict])
		delete(c.byKey, evict)
	}
	return o
}

// pendingOpen is an open under way, which callers wanting the same version wait for.
type pendingOpen struct {
	stamp stamp
	done  chan struct{}
}

func (c *readers) open(path string, s stamp, previous *crypto.Reader) *opened {
	o := &opened{path: path, stamp: s}
	var head []byte // what the file is, should it not open: from the descriptor opened, never the path again
	src, err := source.OpenListed(path, s.dev, s.ino)
	if err == nil {
		head = make([]byte, crypto.HeadSize)
		n, _ := src.ReadAt(head, 0)
		head = head[:n]
		o.reader, err = crypto.NewFile(src, c.keys, crypto.Options{Previous: previous, ProvenSize: c.proven(path, s)})
	}
	o.err = err
	if o.err != nil {
		o.when, o.kind = time.Now(), crypto.Identify(filepath.Base(path), head).Kind
		c.log.Warn("cannot decrypt", "file", path, "status", crypto.Status(o.err), "reason", o.err.Error())
		return o
	}
	o.kind = o.reader.Kind
	c.log.Debug("opened", "file", path, "kind", o.reader.Kind, "key_id", o.reader.KeyID, "size", o.reader.Size())
	return o
}

// hold takes another reference to o, which the caller already holds one of.
func (c *readers) hold(o *opened) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o.refs++
}

func (c *readers) put(o *opened) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.release(o)
}

// release drops a reference; the last one closes the source file. Called with mu held.
func (c *readers) release(o *opened) {
	o.refs--
	if o.refs == 0 && o.reader != nil {
		if o.events != nil {
			o.events.Release() // its decode reads from the reader
		}
		o.reader.Close()
	}
}

// count is how many readers are open, in use or cached.
func (c *readers) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey)
}

func (c *readers) touch(path string) {
	for i, p := range c.order {
		if p == path {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
	c.order = append(c.order, path)
}

// errno maps an open or read failure to what the reading program sees: EACCES for a missing
// key, EIO for a wrong key and damaged data.
func toErrno(err error) syscall.Errno {
	var errnoErr syscall.Errno
	switch {
	case errors.Is(err, crypto.ErrMissingKey):
		return syscall.EACCES
	case errors.Is(err, context.Canceled):
		return syscall.EINTR // the reader was interrupted
	case errors.As(err, &errnoErr):
		return errnoErr
	case errors.Is(err, os.ErrNotExist):
		return syscall.ENOENT
	}
	return syscall.EIO
}
