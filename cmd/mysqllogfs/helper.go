package main

import (
	"fmt"
	"strings"

	"github.com/mysqllogfs/mysqllogfs/keysrc"
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

// mountOption is one of mysqllogfs's own mount options and the flag it becomes.
type mountOption struct{ name, flag string }

// valueOptions carry a value (name=value): the key sources' from keysrc's table, then the
// mount's own.
var valueOptions = append(keyOptions(),
	mountOption{"log_level", "--log-level"}, mountOption{"size_cache", "--size-cache"}, mountOption{"metrics", "--metrics"})

// switchOptions carry none.
var switchOptions = []mountOption{{"no_size_cache", "--no-size-cache"}, {"allow_other", "--allow-other"}, {"events", "--events"}}

// keyOptions are the options of the key sources and their password files. A source without
// one (the key command, which may hold commas) is set in /etc/default or the environment.
func keyOptions() []mountOption {
	var opts []mountOption
	for _, b := range keysrc.Backends {
		if b.Option != "" {
			opts = append(opts, mountOption{b.Option, "--" + b.Flag})
		}
		if s := b.Secret; s != nil && s.FileOption != "" {
			opts = append(opts, mountOption{s.FileOption, "--" + s.FileFlag})
		}
	}
	return opts
}

// genericOptions belong to mount(8) and the kernel, not to mysqllogfs.
var genericOptions = map[string]bool{"rw": true, "ro": true, "dev": true, "nodev": true, "suid": true,
	"nosuid": true, "exec": true, "noexec": true, "auto": true, "noauto": true, "user": true,
	"users": true, "nouser": true, "_netdev": true, "nofail": true, "defaults": true,
	"atime": true, "noatime": true, "relatime": true, "default_permissions": true}

// helperOption turns one -o option into the mount command's flags: none for mount(8)'s own.
func helperOption(opt string) ([]string, error) {
	given, value, hasValue := strings.Cut(opt, "=")
	name := strings.ReplaceAll(given, "-", "_")
	switch {
	case opt == "" || genericOptions[name] || strings.HasPrefix(given, "x-") || strings.HasPrefix(name, "comment"):
		return nil, nil
	case name == "foreground":
		return []string{"--foreground"}, nil
	}
	for _, o := range switchOptions {
		if o.name == name {
			return []string{o.flag}, nil
		}
	}
	for _, o := range valueOptions {
		if o.name == name && hasValue {
			return []string{o.flag, value}, nil
		}
	}
	return nil, fmt.Errorf("mount option %q is not one of mysqllogfs's: %s", opt, optionNames())
}

// optionNames lists the options mysqllogfs takes, as the mount's error message shows them.
func optionNames() string {
	var names []string
	for _, o := range valueOptions {
		names = append(names, o.name+"=")
	}
	for _, o := range switchOptions {
		names = append(names, o.name)
	}
	return strings.Join(names, ", ")
}

func isCommand(name string) bool {
	if name == "help" || name == "h" {
		return true
	}
	for _, c := range commands() {
		if c.Name == name {
			return true
		}
	}
	return false
}
