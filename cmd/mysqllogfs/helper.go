package main

import (
	"fmt"
	"strings"
)

// mount(8) runs a FUSE filesystem of type fuse.mysqllogfs (through mount.fuse3) as
// `mysqllogfs SOURCE MOUNTPOINT -o OPTIONS`. helperArgs turns that form into the mount
// command's flags; other argument lists come back unchanged.
func helperArgs(args []string) ([]string, error) {
	if len(args) < 3 || strings.HasPrefix(args[1], "-") || isCommand(args[1]) {
		return args, nil
	}
	var positional, flags []string
	for i := 1; i < len(args); i++ {
		switch {
		case args[i] == "-o" && i+1 < len(args):
			i++
			for _, opt := range strings.Split(args[i], ",") {
				f, err := helperOption(opt)
				if err != nil {
					return nil, err
				}
				flags = append(flags, f...)
			}
		case args[i] == "-f":
			flags = append(flags, "--foreground")
		case strings.HasPrefix(args[i], "-"):
			continue // -n (no mtab), -s, -v from mount(8): nothing to do
		default:
			positional = append(positional, args[i])
		}
	}
	return append(append([]string{args[0], "mount"}, flags...), positional...), nil
}

// helperFlags are the mount options that carry a value, and the flags they become. A key
// command may hold commas, so it is set in /etc/default or the environment
// (MYSQLLOGFS_KEY_COMMAND) instead.
var helperFlags = map[string]string{
	"keyring": "--keyring", "keyring_password_file": "--keyring-password-file",
	"key_dir": "--key-dir", "log_level": "--log-level",
	"mariadb_keys": "--mariadb-keys", "mariadb_keys_secret_file": "--mariadb-keys-secret-file",
	"size_cache": "--size-cache",
}

// genericOptions belong to mount(8) and the kernel, not to mysqllogfs.
var genericOptions = map[string]bool{"rw": true, "ro": true, "dev": true, "nodev": true, "suid": true,
	"nosuid": true, "exec": true, "noexec": true, "auto": true, "noauto": true, "user": true,
	"users": true, "nouser": true, "_netdev": true, "nofail": true, "defaults": true,
	"atime": true, "noatime": true, "relatime": true, "default_permissions": true}

func helperOption(opt string) ([]string, error) {
	name, value, hasValue := strings.Cut(opt, "=")
	name = strings.ReplaceAll(name, "-", "_")
	switch {
	case opt == "" || genericOptions[name] || strings.HasPrefix(name, "x-") || strings.HasPrefix(name, "comment"):
		return nil, nil
	case name == "allow_other":
		return []string{"--allow-other"}, nil
	case name == "foreground":
		return []string{"--foreground"}, nil
	case name == "no_size_cache":
		return []string{"--no-size-cache"}, nil
	case helperFlags[name] != "" && hasValue:
		return []string{helperFlags[name], value}, nil
	}
	return nil, fmt.Errorf("mount option %q is not one of mysqllogfs's: keyring=, keyring_password_file=, key_dir=, mariadb_keys=, mariadb_keys_secret_file=, log_level=, size_cache=, no_size_cache, allow_other", opt)
}

func isCommand(name string) bool {
	switch name {
	case "cat", "inspect", "keys", "verify", "mount", "demo", "help", "h":
		return true
	}
	return false
}
