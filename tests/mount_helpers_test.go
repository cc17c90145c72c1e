package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mounted is a running `mysqllogfs mount --foreground`, unmounted when the test ends.
type mounted struct {
	dir  string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{} // closed when cmd has been waited for
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// requireFUSE skips where mounting cannot work, except under CI, where it fails.
func requireFUSE(t *testing.T) {
	t.Helper()
	_, err := os.Stat("/dev/fuse")
	_, errFM := exec.LookPath("fusermount3")
	if err != nil || (os.Geteuid() != 0 && errFM != nil) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("FUSE unavailable: /dev/fuse %v, fusermount3 %v", err, errFM)
		}
		t.Skip("FUSE unavailable here")
	}
}

// requireProgram skips without a program the test drives, except under CI.
func requireProgram(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (.ci/setup installs it)", name)
		}
		t.Skipf("%s is not installed (run .ci/setup)", name)
	}
	return path
}

// mount mounts source with the given flags and waits until the kernel serves it.
func mount(t *testing.T, source string, flags ...string) *mounted {
	t.Helper()
	return mountOn(t, t.TempDir(), source, flags...)
}

// mountOn is mount on a given mountpoint.
func mountOn(t *testing.T, mountpoint, source string, flags ...string) *mounted {
	t.Helper()
	requireFUSE(t)
	m := &mounted{dir: mountpoint, logs: &syncBuffer{}}
	if !slices.ContainsFunc(flags, func(f string) bool { return strings.Contains(f, "size-cache") }) {
		flags = append(flags, "--size-cache", t.TempDir()) // nothing remembered from other tests
	}
	args := append(append([]string{"mount", "--foreground"}, flags...), source, m.dir)
	m.cmd = exec.Command(Binary(t), args...)
	m.cmd.Stderr = m.logs
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.unmount)
	// Ready as the mount itself says: mounted, and its set-up after mounting done.
	for deadline := time.Now().Add(20 * time.Second); !isMountpoint(m.dir) || !strings.Contains(m.logs.String(), "msg=mounted"); {
		if time.Now().After(deadline) {
			t.Fatalf("mount did not come up:\n%s", m.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return m
}

// unmount ends the mount as a user would (SIGTERM), and makes sure nothing is left behind.
func (m *mounted) unmount() {
	if m.cmd.Process != nil && m.cmd.ProcessState == nil {
		m.cmd.Process.Signal(syscall.SIGTERM)
		if !m.waitExit(10 * time.Second) {
			m.cmd.Process.Kill()
			m.waitExit(10 * time.Second)
		}
	}
	if isMountpoint(m.dir) {
		exec.Command("umount", "-l", m.dir).Run()
	}
}

// waitExit waits for the mount process to end. A FUSE server that dies while the kernel waits
// for one of its answers can hang in exit; aborting its connection frees it.
func (m *mounted) waitExit(limit time.Duration) bool {
	if m.done == nil {
		m.done = make(chan struct{})
		go func() { m.cmd.Wait(); close(m.done) }()
	}
	select {
	case <-m.done:
		return true
	case <-time.After(limit):
		abortFUSE(m.dir)
		select {
		case <-m.done:
			return true
		case <-time.After(limit):
			return false
		}
	}
}

// abortFUSE aborts the FUSE connection of the filesystem mounted at dir, through fusectl
// (mounted here if it is not).
func abortFUSE(dir string) {
	if _, _, ok := mountAt("/sys/fs/fuse/connections"); !ok {
		exec.Command("mount", "-t", "fusectl", "fusectl", "/sys/fs/fuse/connections").Run()
	}
	if device, _, ok := mountAt(dir); ok {
		if major, minor, _ := strings.Cut(device, ":"); major == "0" {
			os.WriteFile("/sys/fs/fuse/connections/"+minor+"/abort", []byte("1"), 0)
		}
	}
}

func (m *mounted) path(name string) string { return filepath.Join(m.dir, name) }

// isMountpoint reports whether dir is a FUSE mountpoint now.
func isMountpoint(dir string) bool {
	_, fstype, ok := mountAt(dir)
	return ok && strings.HasPrefix(fstype, "fuse")
}

// mountAt finds the topmost mount at dir in /proc/self/mountinfo: its device (major:minor)
// and filesystem type.
func mountAt(dir string) (device, fstype string, ok bool) {
	info, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(info), "\n") {
		// id parent major:minor root mountpoint options... - fstype source super-options
		before, after, found := strings.Cut(line, " - ")
		if f := strings.Fields(before); found && len(f) > 4 && f[4] == dir {
			device, fstype, ok = f[2], strings.Fields(after)[0], true
		}
	}
	return device, fstype, ok
}

// runOK runs a real program and returns its stdout, failing the test on a non-zero exit.
func runOK(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}
