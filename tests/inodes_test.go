package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// mountTmpfs mounts a fresh tmpfs at dir for the test.
func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// A second filesystem mounted inside the source numbers its inodes as the first does. Two
// files with the same inode number on different devices are two files in the view: each
// shows its own bytes, under inode numbers of its own that a remount keeps.
func TestInodesOfFilesystemsInsideTheSource(t *testing.T) {
	source := t.TempDir()
	mountTmpfs(t, source)
	os.Mkdir(filepath.Join(source, "inner"), 0o755)
	mountTmpfs(t, filepath.Join(source, "inner"))
	byIno := map[uint64]string{}
	var outer, inner string
	for i := range 8 {
		path := filepath.Join(source, fmt.Sprintf("outer-%d", i))
		os.WriteFile(path, []byte(path+"\n"), 0o644)
		var st syscall.Stat_t
		syscall.Stat(path, &st)
		byIno[st.Ino] = path
	}
	for i := range 8 {
		path := filepath.Join(source, "inner", fmt.Sprintf("inner-%d", i))
		os.WriteFile(path, []byte(path+"\n"), 0o644)
		var st syscall.Stat_t
		syscall.Stat(path, &st)
		if o, ok := byIno[st.Ino]; ok && outer == "" {
			outer, inner = o, path
		}
	}
	if outer == "" {
		t.Fatalf("no two files of the two tmpfs share an inode number: %v", byIno)
	}
	rel := func(p string) string { r, _ := filepath.Rel(source, p); return r }

	inodes := func() (uint64, uint64) {
		m := mount(t, source)
		defer m.unmount()
		var a, b syscall.Stat_t
		for _, c := range []struct {
			path string
			st   *syscall.Stat_t
		}{{outer, &a}, {inner, &b}} {
			got, err := os.ReadFile(m.path(rel(c.path)))
			if err != nil || !bytes.Equal(got, []byte(c.path+"\n")) {
				t.Errorf("%s through the mount: %q, %v", rel(c.path), got, err)
			}
			if err := syscall.Stat(m.path(rel(c.path)), c.st); err != nil {
				t.Fatal(err)
			}
		}
		if a.Ino == b.Ino {
			t.Errorf("%s and %s share inode %d in the view", rel(outer), rel(inner), a.Ino)
		}
		return a.Ino, b.Ino
	}
	a1, b1 := inodes()
	a2, b2 := inodes()
	if a1 != a2 || b1 != b2 {
		t.Errorf("inode numbers changed at the remount: %d %d, then %d %d", a1, b1, a2, b2)
	}
}
