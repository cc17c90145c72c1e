package fs

import (
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/mysqllogfs/mysqllogfs/crypto"
)

// entry is one name the view shows in a directory, and the source file behind it.
type entry struct {
	name   string // in the view
	source string // in the source directory
	mode   uint32 // file type bits of the source
	ino    uint64
	events bool // the decoded events of the source (events.go), not its plaintext
}

// listSource reads a source directory and maps its names to the view's. Where several source
// files map to one plaintext name, the file already called that wins, else the one whose
// source name sorts first; the others stay reachable, decrypted, under their source names.
func listSource(dir string, inodes *inoMap, events bool) ([]entry, error) {
	d, err := openDirNoAtime(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	taken := make(map[string]bool, len(names))
	for _, n := range names {
		taken[n] = true // a source file keeps its own name first of all
	}
	entries := make([]entry, 0, len(names))
	for _, n := range names {
		var st syscall.Stat_t
		if err := syscall.Lstat(dir+"/"+n, &st); err != nil {
			continue // removed since the listing
		}
		if kind := st.Mode & syscall.S_IFMT; kind != syscall.S_IFREG && kind != syscall.S_IFDIR && kind != syscall.S_IFLNK {
			continue // FIFOs, sockets and devices have no plaintext: left out, as their lookup is
		}
		shown := n
		if st.Mode&syscall.S_IFMT == syscall.S_IFREG {
			if plain := crypto.PlainName(n); plain != n && !taken[plain] {
				shown = plain
				taken[plain] = true
			}
		}
		entries = append(entries, entry{name: shown, source: n, mode: st.Mode, ino: inodes.translate(uint64(st.Dev), st.Ino)})
		if events && hasEvents(shown, &st) && !taken[shown+eventsSuffix] {
			taken[shown+eventsSuffix] = true
			entries = append(entries, entry{name: shown + eventsSuffix, source: n, mode: st.Mode,
				ino: inodes.translate(eventsDevice(uint64(st.Dev)), st.Ino), events: true})
		}
	}
	return entries, nil
}

// openDirNoAtime opens a directory without updating its access time.
func openDirNoAtime(dir string) (*os.File, error) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOATIME|syscall.O_CLOEXEC, 0)
	if err == syscall.EPERM {
		fd, err = syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// listings remembers each source directory's mapping for as long as the directory is
// unchanged, so that looking up each of a thousand names does not list the directory a
// thousand times. Adding, removing or renaming an entry changes the directory's mtime.
type listings struct {
	events bool // list NAME.ndjson beside each log
	mu     sync.Mutex
	byDir  map[string]listing
}

type listing struct {
	stamp   stamp
	entries []entry
	byName  map[string]int
}

const maxCachedListings = 64

// get returns the current entries of dir, and the index of each view name.
func (l *listings) get(dir string, inodes *inoMap) ([]entry, map[string]int, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return nil, nil, err
	}
	s := stampOf(&st)
	l.mu.Lock()
	cached, ok := l.byDir[dir]
	l.mu.Unlock()
	if ok && cached.stamp == s && !recentlyChanged(&st) {
		return cached.entries, cached.byName, nil
	}
	entries, err := listSource(dir, inodes, l.events)
	if err != nil {
		return nil, nil, err
	}
	byName := make(map[string]int, len(entries))
	for i, e := range entries {
		byName[e.name] = i
	}
	l.mu.Lock()
	if l.byDir == nil || len(l.byDir) >= maxCachedListings {
		l.byDir = map[string]listing{}
	}
	l.byDir[dir] = listing{stamp: s, entries: entries, byName: byName}
	l.mu.Unlock()
	return entries, byName, nil
}

// recentlyChanged is true within the timestamp granularity of a change: a second change in
// the same tick would leave the mtime as it was, so such a listing is not trusted.
func recentlyChanged(st *syscall.Stat_t) bool {
	return time.Since(time.Unix(st.Mtim.Unix())) < 2*time.Second
}
