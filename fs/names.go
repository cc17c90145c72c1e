package fs

import (
	"os"
	"sort"
	"syscall"

	"github.com/mysqllogfs/mysqllogfs/crypto"
)

// entry is one name the view shows in a directory, and the source file behind it.
type entry struct {
	name   string // in the view
	source string // in the source directory
	mode   uint32 // file type bits of the source
	ino    uint64
}

// listSource reads a source directory and maps its names to the view's. Where several source
// files map to one plaintext name, the file already called that wins, else the one whose
// source name sorts first; the others stay reachable, decrypted, under their source names.
func listSource(dir string) ([]entry, error) {
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
		shown := n
		if st.Mode&syscall.S_IFMT == syscall.S_IFREG {
			if plain := crypto.PlainName(n); plain != n && !taken[plain] {
				shown = plain
				taken[plain] = true
			}
		}
		entries = append(entries, entry{name: shown, source: n, mode: st.Mode, ino: st.Ino})
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
