package tests

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
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
	args := append(append([]string{"mount", "--foreground"}, flags...), source, m.dir)
	m.cmd = exec.Command(Binary(t), args...)
	m.cmd.Stderr = m.logs
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.unmount)
	for deadline := time.Now().Add(20 * time.Second); !isMountpoint(m.dir); {
		if time.Now().After(deadline) || m.cmd.ProcessState != nil {
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
		done := make(chan struct{})
		go func() { m.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			m.cmd.Process.Kill()
			<-done
		}
	}
	if isMountpoint(m.dir) {
		exec.Command("umount", "-l", m.dir).Run()
	}
}

func (m *mounted) path(name string) string { return filepath.Join(m.dir, name) }

// isMountpoint reports whether dir is a FUSE mountpoint now.
func isMountpoint(dir string) bool {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 2 && fields[1] == dir && strings.HasPrefix(fields[2], "fuse") {
			return true
		}
	}
	return false
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
