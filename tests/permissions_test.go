package tests

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// testUser creates a system user for the test and removes it afterwards.
func testUser(t *testing.T, name string) (uid, gid int) {
	t.Helper()
	if _, err := user.Lookup(name); err != nil {
		runOK(t, "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name)
		t.Cleanup(func() { exec.Command("userdel", name).Run() })
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// as runs a command as another user, without its supplementary groups.
func as(uid, gid int, name string, args ...string) *exec.Cmd {
	return exec.Command("setpriv", append([]string{"--reuid", strconv.Itoa(uid), "--regid", strconv.Itoa(gid), "--clear-groups", name}, args...)...)
}

// mountAs mounts as another user, with flags and the source, on mnt, until the test ends, and
// returns the mount's log.
func mountAs(t *testing.T, uid, gid int, mnt string, args ...string) *syncBuffer {
	t.Helper()
	cmd := as(uid, gid, Binary(t), append(append([]string{"mount", "--foreground"}, args...), mnt)...)
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if isMountpoint(mnt) {
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	waitFor(t, "the mount", func() bool { return isMountpoint(mnt) })
	return logs
}

// publicDir is a directory every user can enter, removed when the test ends.
func publicDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "mysqllogfs-perm-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestPermissions(t *testing.T) {
	requireFUSE(t)
	requireProgram(t, "setpriv")
	if os.Geteuid() != 0 {
		t.Skip("creating users needs root")
	}
	readerUID, readerGID := testUser(t, "mlfs-reader")
	mysqlUID, mysqlGID := testUser(t, "mlfs-mysql")
	bin := Binary(t)
	os.Chmod(filepath.Dir(bin), 0o755)

	d := makeLogDir(t)
	source := publicDir(t)
	keyring := filepath.Join(source, "..", filepath.Base(source)+".keyring")
	kr, _ := os.ReadFile(d.keyring)
	os.WriteFile(keyring, kr, 0o644)
	t.Cleanup(func() { os.Remove(keyring) })
	enc, _ := os.ReadFile(filepath.Join(d.dir, "binlog.000001"))
	os.WriteFile(filepath.Join(source, "binlog.000001"), enc, 0o644)
	os.WriteFile(filepath.Join(source, "binlog.000002"), enc, 0o640)
	os.Chown(filepath.Join(source, "binlog.000002"), mysqlUID, mysqlGID)
	plain := d.plain["binlog.000001"]

	t.Run("private mount of an unprivileged user", func(t *testing.T) {
		requireProgram(t, "fusermount3")
		if info, err := os.Stat("/dev/fuse"); err != nil || info.Mode().Perm()&0o006 != 0o006 {
			if os.Getenv("CI") == "true" {
				t.Fatal("/dev/fuse is not open to users (.ci/setup gives it mode 0666)")
			}
			t.Skip("/dev/fuse is not open to users here (run .ci/setup)")
		}
		mnt := publicDir(t)
		os.Chown(mnt, readerUID, readerGID)
		mountAs(t, readerUID, readerGID, mnt, "--keyring", keyring, source)
		out, err := as(readerUID, readerGID, "cat", filepath.Join(mnt, "binlog.000001")).Output()
		if err != nil || !bytes.Equal(out, plain) {
			t.Fatalf("the mounting user reads: %v", err)
		}
		// Everyone else, root included, is kept out without --allow-other.
		if _, err := os.ReadDir(mnt); !errors.Is(err, syscall.EACCES) {
			t.Fatalf("root listing another user's private mount: %v, want EACCES", err)
		}
		if err := as(mysqlUID, mysqlGID, "ls", mnt).Run(); err == nil {
			t.Fatal("another user listed a private mount")
		}
	})

	t.Run("allow-other applies the source's permission bits", func(t *testing.T) {
		m := mountOn(t, publicDir(t), source, "--keyring", keyring, "--allow-other")
		out, err := as(readerUID, readerGID, "cat", m.path("binlog.000001")).Output()
		if err != nil || !bytes.Equal(out, plain) {
			t.Fatalf("a 0644 file for another user: %v", err)
		}
		if err := as(readerUID, readerGID, "cat", m.path("binlog.000002")).Run(); err == nil {
			t.Fatal("a 0640 file owned by mysql was readable by another user")
		}
		out, err = as(mysqlUID, mysqlGID, "cat", m.path("binlog.000002")).Output()
		if err != nil || !bytes.Equal(out, plain) {
			t.Fatalf("its owner reads the 0640 file: %v", err)
		}
	})

	t.Run("allow-other enforces modes of 0000 and ACLs, as a real other user finds", func(t *testing.T) {
		requireProgram(t, "setfacl")
		locked := filepath.Join(source, "binlog.000003")
		os.WriteFile(locked, enc, 0o644)
		os.Chmod(locked, 0)
		closed := filepath.Join(source, "closed")
		os.Mkdir(closed, 0o755)
		os.WriteFile(filepath.Join(closed, "binlog.000004"), enc, 0o644)
		os.Chmod(closed, 0)
		denied := filepath.Join(source, "binlog.000005")
		os.WriteFile(denied, enc, 0o644)
		runOK(t, "setfacl", "-m", "u:mlfs-reader:---", denied)
		t.Cleanup(func() { os.Chmod(closed, 0o755) })

		m := mountOn(t, publicDir(t), source, "--keyring", keyring, "--allow-other")
		for _, c := range []struct{ path, mode string }{{"binlog.000003", "----------"}, {"closed", "d---------"}} {
			if out := string(runOK(t, "stat", "-c", "%A", m.path(c.path))); strings.TrimSpace(out) != c.mode {
				t.Errorf("%s is shown as %s, want the source's %s", c.path, strings.TrimSpace(out), c.mode)
			}
		}
		for _, name := range []string{"binlog.000003", "closed/binlog.000004", "binlog.000002", "binlog.000005"} {
			out, err := as(readerUID, readerGID, "cat", m.path(name)).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "Permission denied") {
				t.Errorf("another user reading %s: %v %q, want Permission denied", name, err, out)
			}
		}
		if out, err := as(readerUID, readerGID, "ls", m.path("closed")).CombinedOutput(); err == nil {
			t.Errorf("another user listed a directory of mode 0000: %s", out)
		}
		if out, err := as(readerUID, readerGID, "getfattr", "-n", "user.mysqllogfs.key_id", m.path("binlog.000005")).CombinedOutput(); err == nil {
			t.Errorf("the user the ACL denies read the file's attributes: %s", out)
		}
		// The ACL denies one user only: another one whom the mode lets in still reads.
		out, err := as(mysqlUID, mysqlGID, "cat", m.path("binlog.000005")).Output()
		if err != nil || !bytes.Equal(out, plain) {
			t.Errorf("a user the ACL does not name, reading a 0644 file: %v", err)
		}
		out, err = as(readerUID, readerGID, "cat", m.path("binlog.000001")).Output()
		if err != nil || !bytes.Equal(out, plain) {
			t.Errorf("an ordinary 0644 file: %v", err)
		}
	})

	t.Run("a file swapped for a symbolic link is not followed", func(t *testing.T) {
		drop := filepath.Join(source, "drop")
		os.Mkdir(drop, 0o755)
		os.Chown(drop, readerUID, readerGID)
		secret := filepath.Join(source, "..", filepath.Base(source)+".secret")
		os.WriteFile(secret, []byte("TOPSECRET"), 0o600)
		t.Cleanup(func() { os.Remove(secret) })
		m := mountOn(t, publicDir(t), source, "--keyring", keyring, "--allow-other")
		x := filepath.Join(drop, "x")
		if err := as(readerUID, readerGID, "sh", "-c", "head -c 20000 /dev/zero > "+x).Run(); err != nil {
			t.Fatal(err)
		}
		as(readerUID, readerGID, "stat", m.path("drop/x")).Run() // the kernel now knows x as a file
		if err := as(readerUID, readerGID, "sh", "-c", "ln -sf "+secret+" "+x+".new && mv -T "+x+".new "+x).Run(); err != nil {
			t.Fatal(err)
		}
		out, _ := as(readerUID, readerGID, "cat", m.path("drop/x")).Output()
		if bytes.Contains(out, []byte("TOPSECRET")) {
			t.Fatal("another user read a root-only file through a symbolic link swapped in for a listed file")
		}
	})
}

// allowOtherForUsers lets users other than root mount with allow_other for the rest of the
// test, as /etc/fuse.conf's user_allow_other does.
func allowOtherForUsers(t *testing.T) {
	const conf = "/etc/fuse.conf"
	old, err := os.ReadFile(conf)
	if bytes.Contains(old, []byte("\nuser_allow_other")) || bytes.HasPrefix(old, []byte("user_allow_other")) {
		return
	}
	if err := os.WriteFile(conf, append(old, []byte("\nuser_allow_other\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err != nil {
			os.Remove(conf)
			return
		}
		os.WriteFile(conf, old, 0o644)
	})
}

// A mount by a user other than root cannot take a caller's identity. It checks the
// directories above the source for the caller (the view starts below them, where neither the
// kernel nor the checks of names see them), and refuses files with ACLs. Before, a source
// inside the mounting user's 0700 directory was readable by everyone through the mount.
func TestPermissionsOfAnUnprivilegedAllowOtherMount(t *testing.T) {
	requireFUSE(t)
	requireProgram(t, "setpriv")
	requireProgram(t, "setfacl")
	if os.Geteuid() != 0 {
		t.Skip("creating users needs root")
	}
	if info, err := os.Stat("/dev/fuse"); err != nil || info.Mode().Perm()&0o006 != 0o006 {
		t.Skip("/dev/fuse is not open to users here (run .ci/setup)")
	}
	allowOtherForUsers(t)
	readerUID, readerGID := testUser(t, "mlfs-reader")
	mysqlUID, mysqlGID := testUser(t, "mlfs-mysql")
	bin := Binary(t)
	os.Chmod(filepath.Dir(bin), 0o755)
	d := makeLogDir(t)
	base := publicDir(t)
	keyring := filepath.Join(base, "keyring")
	kr, _ := os.ReadFile(d.keyring)
	os.WriteFile(keyring, kr, 0o644)
	private := filepath.Join(base, "private")
	logs := filepath.Join(private, "logs")
	os.MkdirAll(logs, 0o755)
	enc, _ := os.ReadFile(filepath.Join(d.dir, "binlog.000001"))
	os.WriteFile(filepath.Join(logs, "binlog.000001"), enc, 0o644)
	os.WriteFile(filepath.Join(logs, "binlog.000005"), enc, 0o644)
	runOK(t, "setfacl", "-m", "u:mlfs-reader:---", filepath.Join(logs, "binlog.000005"))
	for _, p := range []string{private, logs, filepath.Join(logs, "binlog.000001"), filepath.Join(logs, "binlog.000005")} {
		os.Chown(p, mysqlUID, mysqlGID)
	}
	os.Chmod(private, 0o700)
	mnt := publicDir(t)
	os.Chown(mnt, mysqlUID, mysqlGID)
	logBuf := mountAs(t, mysqlUID, mysqlGID, mnt, "--allow-other", "--keyring", keyring, logs)
	plain := d.plain["binlog.000001"]

	readBy := func(uid, gid int, name string) ([]byte, error) {
		return as(uid, gid, "cat", filepath.Join(mnt, name)).Output()
	}
	if out, err := readBy(mysqlUID, mysqlGID, "binlog.000005"); err != nil || !bytes.Equal(out, plain) {
		t.Fatalf("the mounting user reads its own files: %v\n%s", err, logBuf.String())
	}
	if _, err := readBy(readerUID, readerGID, "binlog.000001"); err == nil {
		t.Error("another user read a file of a source inside a 0700 directory it may not enter")
	}
	capless := exec.Command("setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", "cat", filepath.Join(mnt, "binlog.000001"))
	if out, err := capless.Output(); err == nil {
		t.Errorf("root without CAP_DAC_OVERRIDE read %d bytes of a source inside a 0700 directory of another user", len(out))
	}
	os.Chmod(private, 0o711)
	if out, err := readBy(readerUID, readerGID, "binlog.000001"); err != nil || !bytes.Equal(out, plain) {
		t.Errorf("another user, once it may pass through: %v", err)
	}
	if _, err := readBy(readerUID, readerGID, "binlog.000005"); err == nil {
		t.Error("another user read a file whose ACL denies it")
	}
	if !strings.Contains(logBuf.String(), "directory above the source") {
		t.Errorf("the log does not say why:\n%s", logBuf.String())
	}
}

// A root process without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (a service with a bounded
// capability set) is held to the source's permissions like any other user; before, a caller of
// the mount's own user was let through unchecked.
func TestPermissionsOfRootWithoutCapabilities(t *testing.T) {
	requireFUSE(t)
	requireProgram(t, "setpriv")
	requireProgram(t, "setfacl")
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	mysqlUID, mysqlGID := testUser(t, "mlfs-mysql")
	d := makeLogDir(t)
	denied := filepath.Join(d.dir, "binlog.000007")
	enc, _ := os.ReadFile(filepath.Join(d.dir, "binlog.000001"))
	os.WriteFile(denied, enc, 0o644)
	os.Chown(denied, mysqlUID, mysqlGID)
	runOK(t, "setfacl", "-m", "u:root:---", denied)
	capless := func(args ...string) *exec.Cmd {
		return exec.Command("setpriv", append([]string{"--bounding-set", "-dac_override,-dac_read_search", "--"}, args...)...)
	}
	if err := capless("cat", denied).Run(); err == nil {
		t.Skip("setpriv did not take the capabilities away here")
	}
	m := mountOn(t, publicDir(t), d.dir, "--keyring", d.keyring, "--allow-other")
	if out, err := capless("cat", m.path("binlog.000007")).CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Errorf("root without the capabilities read a file whose ACL denies root: %v, %d bytes", err, len(out))
	}
	if out, err := capless("cat", m.path("binlog.000001")).Output(); err != nil || !bytes.Equal(out, d.plain["binlog.000001"]) {
		t.Errorf("root without the capabilities, reading an ordinary file: %v", err)
	}
	if out, err := exec.Command("cat", m.path("binlog.000007")).Output(); err != nil || !bytes.Equal(out, d.plain["binlog.000001"]) {
		t.Errorf("root with its capabilities: %v", err)
	}
}
