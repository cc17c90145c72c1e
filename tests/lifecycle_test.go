package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Without --foreground, mount returns once the filesystem is ready; umount ends the process.
func TestDetachedMountAndUmount(t *testing.T) {
	requireFUSE(t)
	d := makeLogDir(t)
	mnt := t.TempDir()
	r := mysqllogfs(t, nil, "mount", "--keyring", d.keyring, d.dir, mnt)
	t.Cleanup(func() {
		if isMountpoint(mnt) {
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	if r.code != 0 || !isMountpoint(mnt) {
		t.Fatalf("exit %d, mounted %v: %s", r.code, isMountpoint(mnt), r.stderr)
	}
	pid := mountPID(t, mnt)
	if got, err := os.ReadFile(filepath.Join(mnt, "binlog.000001")); err != nil || !bytes.Equal(got, d.plain["binlog.000001"]) {
		t.Fatalf("reading through the detached mount: %v", err)
	}
	runOK(t, "umount", mnt)
	waitFor(t, "the mount process to end", func() bool {
		_, err := os.Stat("/proc/" + pid)
		return err != nil
	})
}

// mountPID finds the process serving a mountpoint from its command line.
func mountPID(t *testing.T, mnt string) string {
	out := runOK(t, "pgrep", "-f", "mysqllogfs.* "+mnt+"$")
	pid := strings.TrimSpace(strings.Split(string(out), "\n")[0])
	if pid == "" {
		t.Fatal("no mount process")
	}
	return pid
}

// mount(8) runs the binary as a mount helper, through mount.fuse3. With type fuse.mysqllogfs
// mount(8) looks the binary up in a fixed PATH (/usr/local/bin among it); the "PROGRAM#SOURCE"
// form used here runs the same helper path without installing into a system directory.
func TestMountHelper(t *testing.T) {
	requireFUSE(t)
	requireProgram(t, "mount.fuse3")
	if os.Geteuid() != 0 {
		t.Skip("mount(8) needs root")
	}
	d := makeLogDir(t)
	mnt := t.TempDir()
	out, err := exec.Command("mount", "-t", "fuse", Binary(t)+"#"+d.dir, mnt, "-o", "ro,nodev,keyring="+d.keyring).CombinedOutput()
	t.Cleanup(func() {
		if isMountpoint(mnt) {
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	if err != nil {
		t.Fatalf("mount -t fuse: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(mnt, "audit.20240102T000000.log"))
	if err != nil || !bytes.Equal(got, d.plain["audit.20240102T000000.log.gz.20240101T000000-1.enc"]) {
		t.Fatalf("reading through the helper mount: %v", err)
	}
	runOK(t, "umount", mnt)
}

// mount refuses with one clear line when it cannot work.
func TestMountRefusals(t *testing.T) {
	requireFUSE(t)
	d := makeLogDir(t)
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o600)
	cases := map[string]struct {
		args []string
		want string
	}{
		"missing mountpoint":   {[]string{"--keyring", d.keyring, d.dir, "/nonexistent/mnt"}, "no such file"},
		"non-empty mountpoint": {[]string{"--keyring", d.keyring, d.dir, full}, "not empty"},
		"unreadable keyring":   {[]string{"--keyring", "/nonexistent/keyring", d.dir, t.TempDir()}, "keyring"},
		"missing source":       {[]string{"--keyring", d.keyring, "/nonexistent/src", t.TempDir()}, "source"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := mysqllogfs(t, nil, append([]string{"mount"}, c.args...)...)
			lines := strings.Split(strings.TrimSpace(string(r.stderr)), "\n")
			if r.code == 0 || len(lines) != 1 || !strings.Contains(strings.ToLower(lines[0]), c.want) {
				t.Fatalf("exit %d, stderr %q, want one line mentioning %q", r.code, r.stderr, c.want)
			}
		})
	}
}

// SIGINT unmounts cleanly, as SIGTERM does in every other test.
func TestSIGINTUnmounts(t *testing.T) {
	d := makeLogDir(t)
	m := mount(t, d.dir, "--keyring", d.keyring)
	m.cmd.Process.Signal(os.Interrupt)
	waitFor(t, "the unmount", func() bool { return !isMountpoint(m.dir) })
}

// SIGTERM while a reader holds a file open: the mount detaches lazily and the process ends
// within seconds, saying so; before, it logged "unmount failed" and served on, and further
// signals did nothing, which under systemd ends in SIGKILL and a dead mountpoint.
func TestSIGTERMWithABusyFile(t *testing.T) {
	d := makeLogDir(t)
	m := mount(t, d.dir, "--keyring", d.keyring)
	held, err := os.Open(m.path("binlog.000001"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	m.cmd.Process.Signal(syscall.SIGTERM)
	ended := false
	for deadline := time.Now().Add(5 * time.Second); !ended && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", m.cmd.Process.Pid))
		ended = err != nil || strings.Contains(string(stat), ") Z ")
	}
	if !ended {
		t.Fatalf("the mount did not end within 5 s of SIGTERM with a file open:\n%s", m.logs)
	}
	if isMountpoint(m.dir) {
		t.Error("the mountpoint is still mounted")
	}
	if !strings.Contains(m.logs.String(), "detaching it lazily") {
		t.Errorf("the log does not say what happened:\n%s", m.logs)
	}
}

// rsyslog's imfile, polling a decrypted audit log through the mount, ships exactly its lines.
func TestRsyslogShipsPlaintextLines(t *testing.T) {
	d := makeLogDir(t)
	m := mount(t, d.dir, "--keyring", d.keyring)
	shipped, stderr := ship(t, m.path("audit.20240102T000000.log"))
	plain := d.plain["audit.20240102T000000.log.gz.20240101T000000-1.enc"]
	want := strings.Split(strings.TrimSuffix(string(plain), "\n"), "\n")
	var got []string
	for deadline := time.Now().Add(30 * time.Second); len(got) < len(want) && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		got = readLines(shipped)
	}
	if len(got) != len(want) {
		t.Fatalf("rsyslog shipped %d lines, want %d\n%s", len(got), len(want), stderr.String())
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d: shipped %q, want %q", i+1, got[i], want[i])
		}
	}
}

// ship starts rsyslog's imfile, polling each of paths every second, and returns the file it
// ships their lines to and its error output. It stops when the test ends.
func ship(t *testing.T, paths ...string) (shipped string, stderr *syncBuffer) {
	rsyslogd := requireProgram(t, "rsyslogd")
	work := t.TempDir()
	shipped = filepath.Join(work, "shipped.log")
	conf := `global(workDirectory="` + work + `" maxMessageSize="64k")
module(load="imfile" mode="polling" PollingInterval="1")
template(name="raw" type="string" string="%msg%\n")
ruleset(name="ship") { action(type="omfile" file="` + shipped + `" template="raw") }
`
	for i, path := range paths {
		conf += fmt.Sprintf("input(type=\"imfile\" File=\"%s\" Tag=\"log%d\" ruleset=\"ship\")\n", path, i)
	}
	os.WriteFile(filepath.Join(work, "rsyslog.conf"), []byte(conf), 0o600)
	cmd := exec.Command(rsyslogd, "-n", "-f", filepath.Join(work, "rsyslog.conf"), "-i", filepath.Join(work, "pid"))
	stderr = &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return shipped, stderr
}

// readLines returns the lines of a file, none if it cannot be read.
func readLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	return lines
}

// The README's first command: demo mounts sample logs, shows them decrypted, and cleans up.
func TestDemo(t *testing.T) {
	requireFUSE(t)
	mnt := t.TempDir()
	r := mysqllogfs(t, nil, "demo", "--exit", mnt)
	out := string(r.stdout)
	for _, want := range []string{"audit.20240102T000000.log", "<AUDIT_RECORD>", `"class": "general"`,
		"Format_description", "INSERT INTO orders", "binlog.000001"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if r.code != 0 || isMountpoint(mnt) {
		t.Fatalf("exit %d, still mounted %v: %s", r.code, isMountpoint(mnt), r.stderr)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(os.TempDir(), "mysqllogfs-demo-*")); len(leftovers) > 0 {
		t.Errorf("demo left %v behind", leftovers)
	}
}

// A mount killed with SIGKILL leaves a dead mountpoint; mounting on it again says exactly
// what to run, and after running it the mount works.
func TestMountAfterSIGKILL(t *testing.T) {
	d := makeLogDir(t)
	m := mount(t, d.dir, "--keyring", d.keyring)
	m.cmd.Process.Kill()
	if !m.waitExit(10 * time.Second) {
		t.Fatal("the killed mount process did not end")
	}
	if _, err := os.Stat(m.path("binlog.000001")); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("after SIGKILL: %v, want 'transport endpoint is not connected'", err)
	}
	r := mysqllogfs(t, nil, "mount", "--keyring", d.keyring, d.dir, m.dir)
	msg := strings.TrimSpace(string(r.stderr))
	if r.code == 0 || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "fusermount3 -u "+m.dir) {
		t.Fatalf("exit %d, stderr %q: want one line naming fusermount3 -u %s", r.code, msg, m.dir)
	}
	runOK(t, "fusermount3", "-u", m.dir) // what the message says to run
	m2 := mount(t, d.dir, "--keyring", d.keyring)
	if got, err := os.ReadFile(m2.path("binlog.000001")); err != nil || !bytes.Equal(got, d.plain["binlog.000001"]) {
		t.Fatalf("mounting again: %v", err)
	}
}
