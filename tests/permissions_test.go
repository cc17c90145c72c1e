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
	"time"
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
		cmd := as(readerUID, readerGID, bin, "mount", "--foreground", "--keyring", keyring, source, mnt)
		var logs syncBuffer
		cmd.Stderr = &logs
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
		for deadline := time.Now().Add(10 * time.Second); !isMountpoint(mnt); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no mount:\n%s", logs.String())
			}
		}
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
