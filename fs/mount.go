package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Mount shows source at mountpoint and returns the running server once the kernel has the
// filesystem. Errors say what to do.
func Mount(source, mountpoint string, opts Options, allowOther bool) (*fuse.Server, error) {
	if err := checkMountpoint(mountpoint); err != nil {
		return nil, err
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, errors.New("/dev/fuse is missing: load the fuse module (modprobe fuse) or, in a container, pass the device in (--device /dev/fuse)")
	}
	root, err := NewRoot(source, opts)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", source, err)
	}
	root.(*dirNode).view.allowOther = allowOther
	mountOpts := MountOptions(source, allowOther)
	mountOpts.MountOptions.DirectMount = os.Geteuid() == 0 // root mounts without fusermount3
	server, err := gofs.Mount(mountpoint, root, mountOpts)
	if err != nil {
		// One line: go-fuse's message may carry fusermount's output.
		return nil, fmt.Errorf("mount on %s: %s%s", mountpoint, strings.Join(strings.Fields(err.Error()), " "), mountHint(err))
	}
	if err := SetReadahead(mountpoint, ReadaheadWindow); err != nil {
		opts.logger().Debug("readahead left at the kernel's default", "reason", err.Error())
	}
	v := root.(*dirNode).view
	ctx, stop := context.WithCancel(context.Background())
	go func() { server.Wait(); stop(); v.sizes.store.close() }()
	go v.proveAll(ctx)
	return server, nil
}

// Detach unmounts the filesystem at mountpoint lazily: it leaves the tree at once, and the
// kernel lets go of it when the last file open on it is closed.
func Detach(mountpoint string) error {
	if os.Geteuid() == 0 {
		return syscall.Unmount(mountpoint, syscall.MNT_DETACH)
	}
	out, err := exec.Command("fusermount3", "-u", "-z", mountpoint).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3 -u -z: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// SetReadahead sets the kernel's readahead window for a FUSE mount. The kernel starts FUSE
// mounts at 128 KiB and lets the filesystem only lower that, so sequential reads arrive as
// 128 KiB requests; a window of ReadaheadWindow lets them arrive whole. Only root may change
// it.
//
// The device is looked up in /proc/self/mountinfo, not with stat: a stat of the mountpoint
// would be a request from the filesystem's own process to itself, which leaves the process
// unkillable if it dies while waiting for the answer.
func SetReadahead(mountpoint string, bytes int) error {
	device, err := mountDevice(mountpoint)
	if err != nil {
		return err
	}
	return os.WriteFile("/sys/class/bdi/"+device+"/read_ahead_kb", []byte(fmt.Sprint(bytes/1024)), 0)
}

// mountDevice returns the "major:minor" of the filesystem mounted at mountpoint.
func mountDevice(mountpoint string) (string, error) {
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return "", err
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	device := ""
	for _, line := range strings.Split(string(info), "\n") {
		// id parent major:minor root mountpoint ...; the last match is the topmost mount.
		if f := strings.Fields(line); len(f) > 4 && f[4] == abs {
			device = f[2]
		}
	}
	if device == "" {
		return "", fmt.Errorf("%s is not in /proc/self/mountinfo", abs)
	}
	return device, nil
}

// mountpointError explains a mountpoint that cannot be used; a dead FUSE mount (its process
// was killed) answers ENOTCONN, on stat or only on open.
func mountpointError(mountpoint string, err error) error {
	if errors.Is(err, syscall.ENOTCONN) {
		return fmt.Errorf("mountpoint %s is a dead FUSE mount (its process was killed): run `fusermount3 -u %s` (or `umount -l %s` as root) and mount again", mountpoint, mountpoint, mountpoint)
	}
	return fmt.Errorf("mountpoint: %w", err)
}

func mountHint(err error) string {
	_, noFusermount := exec.LookPath("fusermount3")
	switch {
	case strings.Contains(err.Error(), "fusermount") && noFusermount != nil:
		return " (install fuse3 for fusermount3, or mount as root)"
	case strings.Contains(err.Error(), "fusermount") && unix.Access("/dev/fuse", unix.R_OK|unix.W_OK) != nil:
		return " (this user may not open /dev/fuse: give it mode 0666, as Debian's fuse3 udev rule does, or mount as root)"
	case strings.Contains(err.Error(), "allow_other"):
		return " (--allow-other needs user_allow_other in /etc/fuse.conf, or root)"
	}
	return ""
}

// checkMountpoint refuses a missing or non-empty mountpoint, and names the command that
// clears one left behind by a killed mount.
func checkMountpoint(mountpoint string) error {
	info, err := os.Stat(mountpoint)
	if err != nil {
		return mountpointError(mountpoint, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("mountpoint %s is not a directory", mountpoint)
	}
	d, err := os.Open(mountpoint)
	if err != nil {
		return mountpointError(mountpoint, err)
	}
	defer d.Close()
	if names, _ := d.Readdirnames(1); len(names) > 0 {
		return fmt.Errorf("mountpoint %s is not empty", mountpoint)
	}
	return nil
}
