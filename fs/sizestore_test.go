package fs

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Proven sizes survive a reopen; a line torn by a crash, a line whose checksum fails and a
// line of the old format are dropped, never read as a size.
func TestSizeStoreKeepsOnlyWholeLines(t *testing.T) {
	dir := t.TempDir()
	s, err := openSizeStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, b := stamp{1, 2, 3, 4, 5}, stamp{6, 7, 8, 9, 10}
	s.put(a, 357836)
	s.close()
	path := filepath.Join(dir, sizeStoreName)
	good, _ := os.ReadFile(path)
	torn := storeLine(b, 123456)
	flipped := strings.Replace(storeLine(stamp{11, 12, 13, 14, 15}, 99), " 99 ", " 98 ", 1)
	os.WriteFile(path, []byte(string(good)+"1 2 3 4 5 6\n"+flipped+torn[:len(torn)-7]), 0o600)

	s, err = openSizeStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if size, ok := s.get(a); !ok || size != 357836 {
		t.Errorf("the whole line: %d, %v", size, ok)
	}
	for _, id := range []stamp{b, {11, 12, 13, 14, 15}} {
		if size, ok := s.get(id); ok {
			t.Errorf("%v: a damaged line was read as size %d", id, size)
		}
	}
	s.put(b, 42) // appended after the compaction, not glued to a torn line
	s.close()
	s2, _ := openSizeStore(dir)
	defer s2.close()
	if size, ok := s2.get(b); !ok || size != 42 {
		t.Errorf("an entry written after a torn line: %d, %v", size, ok)
	}
}

// A store another user could write is not used: its sizes would be served as exact.
func TestSizeStoreRefusesWhatOthersCanWrite(t *testing.T) {
	open := t.TempDir()
	os.Chmod(open, 0o777)
	if _, err := openSizeStore(open); err == nil {
		t.Error("a directory anyone may write was used")
	}
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, nil, 0o600)
	os.Symlink(victim, filepath.Join(dir, sizeStoreName))
	if _, err := openSizeStore(dir); err == nil {
		t.Error("a store file that is a symbolic link was followed")
	}
	if b, _ := os.ReadFile(victim); len(b) > 0 {
		t.Errorf("the link's target was written: %q", b)
	}
}

// The size of a .ndjson is kept under its log's version with the top bit of the device set:
// it survives a reopen (before, its line did not read back, and every remount decoded every
// log again).
func TestSizeStoreKeepsEventsSizes(t *testing.T) {
	dir := t.TempDir()
	s, err := openSizeStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := syscall.Stat_t{Dev: 2049, Ino: 77, Size: 1000}
	s.put(eventsStamp(&st), 5390)
	s.close()
	s, err = openSizeStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if size, ok := s.get(eventsStamp(&st)); !ok || size != 5390 {
		t.Fatalf("after a reopen: %d, %v", size, ok)
	}
	if _, ok := s.get(stampOf(&st)); ok {
		t.Fatal("the log's own version has the size of its events")
	}
}
