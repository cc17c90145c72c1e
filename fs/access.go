package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// With --allow-other the kernel checks the permission bits the view shows (default_permissions),
// but not the source's ACLs: a file whose ACL denies a user would still be read by that user.
// So every open, lookup and listing by another user is also checked against the source itself
// with that user's credentials: on a thread of its own, the mount takes the caller's user,
// group and supplementary groups as its file system identity and asks the kernel, which
// applies permission bits, ACLs and security modules alike, along the whole source path, the
// directories above the source included. A root process without CAP_DAC_OVERRIDE or
// CAP_DAC_READ_SEARCH is checked the same way, without them. A mount that is not root cannot
// take another identity: it checks the permission bits of the directories above the source for
// the caller itself, and refuses other users every file or directory that carries an ACL.

// access reports whether the caller of ctx may access path (the source) as mode asks (R_OK,
// X_OK), or nil when the view is private to the mounting user.
func (v *view) access(ctx context.Context, path string, mode uint32) syscall.Errno {
	if !v.allowOther {
		return 0 // the kernel lets no one else in
	}
	caller, ok := fuse.FromContext(ctx)
	if !ok {
		return syscall.EACCES // whoever it is, it cannot be checked
	}
	euid := os.Geteuid()
	if int(caller.Uid) == euid && euid != 0 {
		return 0
	}
	status, err := statusOf(caller)
	if err != nil {
		v.log.Warn("refused: the caller's process cannot be read in /proc", "file", path, "pid", caller.Pid)
		return syscall.EACCES
	}
	if int(caller.Uid) == euid && status.caps&dacCaps == dacCaps {
		return 0 // root, with the capabilities that pass every permission check
	}
	if euid != 0 {
		if errno := v.ancestorsSearchable(caller, status); errno != 0 {
			return errno
		}
		return v.refuseACLs(path)
	}
	if keepsCapabilities() {
		v.log.Warn("refused to another user: with SECBIT_NO_SETUID_FIXUP set, the mount cannot check access as that user", "file", path)
		return syscall.EACCES
	}
	err = accessAs(caller, status, path, mode)
	if err == nil {
		return 0
	}
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		return syscall.EACCES
	}
	v.log.Warn("cannot check access", "file", path, "uid", caller.Uid, "reason", err.Error())
	return syscall.EACCES
}

// refuseACLs keeps other users out of a source file or directory that carries an ACL, where a
// mount that is not root cannot check it for them.
func (v *view) refuseACLs(path string) syscall.Errno {
	for _, name := range []string{"system.posix_acl_access", "system.posix_acl_default"} {
		if n, err := unix.Lgetxattr(path, name, nil); err == nil && n > 0 {
			v.log.Warn("refused to another user: the source carries an ACL, which only a mount by root can check", "file", path)
			return syscall.EACCES
		}
	}
	return 0
}

// ancestorsSearchable checks, for a mount that cannot take the caller's identity, that the
// caller may pass through every directory above the source: the view starts below them, so
// neither the kernel nor the checks of names in the view see them. A directory with an ACL
// there is refused, as one in the view is.
func (v *view) ancestorsSearchable(caller *fuse.Caller, status callerStatus) syscall.Errno {
	source, err := filepath.EvalSymlinks(v.source) // the directories a path to it really passes
	if err != nil {
		return syscall.EACCES
	}
	for dir := filepath.Dir(source); ; dir = filepath.Dir(dir) {
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			return syscall.EACCES
		}
		if errno := v.refuseACLs(dir); errno != 0 {
			return errno
		}
		if !permits(&st, caller, status, 1) {
			v.log.Warn("refused to another user: it may not pass through a directory above the source", "directory", dir, "uid", caller.Uid)
			return syscall.EACCES
		}
		if dir == "/" {
			return 0
		}
	}
}

// permits applies permission bits as the kernel does: a capability that overrides them, else
// the owner's, the group's or everyone's; bit is 4, 2 or 1 (read, write, search).
func permits(st *unix.Stat_t, caller *fuse.Caller, status callerStatus, bit uint32) bool {
	const override, readSearch = 1 << unix.CAP_DAC_OVERRIDE, 1 << unix.CAP_DAC_READ_SEARCH
	switch {
	case status.caps&override != 0, status.caps&readSearch != 0 && bit != 2:
		return true
	case st.Uid == caller.Uid:
		return st.Mode>>6&bit != 0
	case st.Gid == caller.Gid || slices.Contains(status.groups, st.Gid):
		return st.Mode>>3&bit != 0
	}
	return st.Mode&bit != 0
}

// accessAs asks the kernel whether the caller may access path, on a thread that takes the
// caller's identity for its file system access, and gives up the capabilities to override
// permissions that the caller lacks, and gives both back after.
func accessAs(caller *fuse.Caller, status callerStatus, path string, mode uint32) error {
	groups := status.groups
	drop := dacCaps &^ status.caps
	processGroups() // before this thread's change
	// On a goroutine of its own: should the identity fail to come back, the goroutine ends
	// still locked to its thread, and the runtime ends the thread with it, so that no other
	// request ever runs with the caller's credentials.
	result := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Raw system calls change this thread's credentials only; the runtime's wrappers
		// would change every thread's.
		err := setThreadIdentity(int(caller.Uid), int(caller.Gid), groups)
		restoreCaps := func() error { return nil }
		if err == nil && drop != 0 {
			var restore func() error
			if restore, err = dropThreadCaps(drop); err == nil {
				restoreCaps = restore
			}
		}
		if err == nil {
			err = unix.Faccessat2(unix.AT_FDCWD, path, mode, unix.AT_EACCESS|unix.AT_SYMLINK_NOFOLLOW)
		}
		if restoreCaps() == nil && restoreThreadIdentity() == nil {
			runtime.UnlockOSThread()
		}
		result <- err
	}()
	return <-result
}

func setThreadIdentity(uid, gid int, groups []uint32) error {
	var list *uint32
	if len(groups) > 0 {
		list = &groups[0]
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(unsafe.Pointer(list)), 0); e != 0 {
		return e
	}
	unix.RawSyscall(unix.SYS_SETFSGID, uintptr(gid), 0, 0)
	unix.RawSyscall(unix.SYS_SETFSUID, uintptr(uid), 0, 0)
	// setfsuid and setfsgid answer with the previous value, never an error: ask again.
	if got, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, ^uintptr(0), 0, 0); int(got) != uid {
		return fmt.Errorf("could not take user %d's identity", uid)
	}
	if got, _, _ := unix.RawSyscall(unix.SYS_SETFSGID, ^uintptr(0), 0, 0); int(got) != gid {
		return fmt.Errorf("could not take group %d's identity", gid)
	}
	return nil
}

// restoreThreadIdentity gives the thread back the process's identity and groups.
func restoreThreadIdentity() error {
	return setThreadIdentity(os.Geteuid(), os.Getegid(), processGroups())
}

// processGroups are the mount process's supplementary groups, read before any thread changed.
var processGroups = sync.OnceValue(func() []uint32 {
	groups, _ := unix.Getgroups()
	g := make([]uint32, len(groups))
	for i, x := range groups {
		g[i] = uint32(x)
	}
	return g
})

// dacCaps are the capabilities that override file permissions: CAP_DAC_OVERRIDE and
// CAP_DAC_READ_SEARCH.
const dacCaps = 1<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_DAC_READ_SEARCH

// dropThreadCaps takes caps out of this thread's effective set, and returns what puts them
// back.
func dropThreadCaps(caps uint64) (func() error, error) {
	header := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&header, &data[0]); err != nil {
		return nil, err
	}
	saved := data
	data[0].Effective &^= uint32(caps)
	data[1].Effective &^= uint32(caps >> 32)
	if err := unix.Capset(&header, &data[0]); err != nil {
		return nil, err
	}
	return func() error { return unix.Capset(&header, &saved[0]) }, nil
}

// callerStatus is what /proc tells of a caller: its supplementary groups and its effective
// capabilities.
type callerStatus struct {
	groups []uint32
	caps   uint64
}

// statusOf reads the caller's status from /proc. A caller whose process cannot be read there,
// or whose file system identity there is not the caller's (another pid namespace), is refused:
// without its groups, an ACL entry that denies one of them would be missed.
func statusOf(caller *fuse.Caller) (callerStatus, error) {
	refused := fmt.Errorf("%w: the groups of process %d cannot be read", syscall.EACCES, caller.Pid)
	if caller.Pid == 0 {
		return callerStatus{}, refused
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", caller.Pid))
	if err != nil {
		return callerStatus{}, refused
	}
	var groups []uint32
	var caps uint64
	matched := 0
	for _, line := range strings.Split(string(status), "\n") {
		key, rest, _ := strings.Cut(line, ":")
		fields := strings.Fields(rest)
		switch key {
		case "Uid", "Gid": // real, effective, saved, file system
			want := caller.Uid
			if key == "Gid" {
				want = caller.Gid
			}
			if len(fields) == 4 && fields[3] == strconv.FormatUint(uint64(want), 10) {
				matched++
			}
		case "Groups":
			for _, field := range fields {
				if g, err := strconv.ParseUint(field, 10, 32); err == nil {
					groups = append(groups, uint32(g))
				}
			}
		case "CapEff":
			if len(fields) == 1 {
				caps, _ = strconv.ParseUint(fields[0], 16, 64)
			}
		}
	}
	if matched != 2 {
		return callerStatus{}, refused
	}
	return callerStatus{groups, caps}, nil
}

// keepsCapabilities reports whether SECBIT_NO_SETUID_FIXUP is set: a change of file system
// identity then keeps CAP_DAC_OVERRIDE, and every check would pass.
func keepsCapabilities() bool {
	bits, err := unix.PrctlRetInt(unix.PR_GET_SECUREBITS, 0, 0, 0, 0)
	return err != nil || bits&(1<<2) != 0 // SECBIT_NO_SETUID_FIXUP
}
