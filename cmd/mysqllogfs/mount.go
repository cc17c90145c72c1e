package main

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"log/syslog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/mysqllogfs/mysqllogfs/fs"
)

// mountMemoryLimit is the soft memory limit of a mount process.
const mountMemoryLimit = 48 << 20

// notifyFDEnv names the file descriptor a detached mount reports readiness on.
const notifyFDEnv = "MYSQLLOGFS_NOTIFY_FD"

func mountCommand() *cli.Command {
	return &cli.Command{
		Name:      "mount",
		Usage:     "show a MySQL log directory decrypted, read-only, at MOUNTPOINT",
		ArgsUsage: "SOURCE MOUNTPOINT",
		Flags: append(keyFlags(),
			&cli.BoolFlag{Name: "foreground", Aliases: []string{"f"}, Usage: "stay attached (for systemd and containers)"},
			&cli.BoolFlag{Name: "allow-other", Usage: "let other users in, the kernel checking the source's permission bits"},
			&cli.StringFlag{Name: "log-level", EnvVars: []string{"MYSQLLOGFS_LOG_LEVEL"}, Value: "info", Usage: "debug, info, warn or error"},
			&cli.StringFlag{Name: "size-cache", EnvVars: []string{"MYSQLLOGFS_SIZE_CACHE"}, Value: defaultSizeCache(),
				Usage: "directory where proven plaintext sizes of compressed logs are remembered across mounts (sizes only, never plaintext)"},
			&cli.BoolFlag{Name: "no-size-cache", Usage: "remember proven sizes for this mount only"},
			&cli.BoolFlag{Name: "events", Usage: "show beside each binlog and audit log NAME.ndjson: its events as `mysqllogfs events` writes them"},
			&cli.StringFlag{Name: "metrics", EnvVars: []string{"MYSQLLOGFS_METRICS"},
				Usage: "serve Prometheus metrics at http://`ADDR`/metrics (e.g. 127.0.0.1:9469); off by default"},
		),
		Action: runMount,
	}
}

func runMount(c *cli.Context) error {
	if c.NArg() != 2 {
		return errors.New("mount: give SOURCE and MOUNTPOINT")
	}
	source, mountpoint := c.Args().Get(0), c.Args().Get(1)
	level, err := parseLevel(c.String("log-level"))
	if err != nil {
		return err
	}
	if !c.Bool("foreground") {
		if _, err := keySource(c); err != nil {
			return err
		}
		return detach()
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// Collect garbage harder as the heap nears this, rather than doubling it first: the
		// mount's live data is bounded (readers, index windows, request buffers).
		debug.SetMemoryLimit(mountMemoryLimit)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// The request goroutines spend most of their time in system calls on /dev/fuse while a
		// read-ahead worker decodes flat out: with two Ps per core the kernel shares the cores,
		// instead of a returning goroutine waiting for the worker's P (docs/performance.md).
		runtime.GOMAXPROCS(2 * runtime.GOMAXPROCS(0))
	}
	log := newLogger(level, os.Getenv(notifyFDEnv) != "")
	slog.SetDefault(log) // for the key sources' own warnings
	var metrics *fs.Metrics
	if addr := c.String("metrics"); addr != "" {
		metrics = fs.NewMetrics()
		if err := serveMetrics(addr, metrics, log); err != nil {
			notifyParent(err)
			return err
		}
	}
	keys, err := countedKeySource(c, metrics)
	if err != nil {
		notifyParent(err)
		return err
	}
	// Before mounting: a signal that comes as soon as the mount is visible must unmount it.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	sizeCache := c.String("size-cache")
	if c.Bool("no-size-cache") {
		sizeCache = ""
	}
	status := &serviceStatus{log: log, serving: fmt.Sprintf("serving %s at %s", source, mountpoint),
		showBar: os.Getenv(notifyFDEnv) == ""} // a detached mount has no terminal
	server, err := fs.Mount(source, mountpoint, fs.Options{Keys: keys, Log: log, SizeCache: sizeCache, Events: c.Bool("events"),
		Metrics: metrics, Proving: status.proving}, c.Bool("allow-other"))
	if err != nil {
		notifyParent(err)
		return err
	}
	log.Info("mounted", "source", source, "mountpoint", mountpoint)
	notifyParent(nil)
	status.ready()
	go func() {
		sig := <-signals
		status.stopping()
		log.Info("unmounting", "signal", sig.String())
		if err := server.Unmount(); err != nil {
			// A reader still holds a file: detach the mount from the tree now, so that no new
			// reader finds it, and end; the holder's next read fails instead of the service
			// manager killing a mount that would not stop.
			log.Warn("mount busy: detaching it lazily and exiting", "reason", err.Error())
			if err := fs.Detach(mountpoint); err != nil {
				log.Error("lazy unmount failed", "reason", err.Error())
				os.Exit(1)
			}
			log.Info("unmounted", "mountpoint", mountpoint, "lazily", true)
			os.Exit(0)
		}
	}()
	server.Wait()
	log.Info("unmounted", "mountpoint", mountpoint)
	return nil
}

// defaultSizeCache is $XDG_CACHE_HOME/mysqllogfs, or ~/.cache/mysqllogfs.
func defaultSizeCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "mysqllogfs")
}

// detach runs this same command again in the foreground, in a new session, and returns once
// it reports the filesystem mounted or says why it could not be.
func detach() error {
	ready, notify, err := os.Pipe()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := append([]string{os.Args[1], "--foreground"}, os.Args[2:]...)
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), notifyFDEnv+"=3")
	cmd.ExtraFiles = []*os.File{notify}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	notify.Close()
	line, _ := bufio.NewReader(ready).ReadString('\n')
	switch {
	case line == "ok\n":
		return nil
	case line == "":
		return errors.New("mount: the background process ended without mounting")
	}
	cmd.Wait()
	return errors.New(strings.TrimSpace(line))
}

// notifyParent tells a waiting detach whether the mount is up.
func notifyParent(err error) {
	if os.Getenv(notifyFDEnv) != "3" {
		return
	}
	f := os.NewFile(3, "notify")
	if err != nil {
		fmt.Fprintf(f, "%s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	} else {
		fmt.Fprintln(f, "ok")
		// A detached process has nobody reading its terminal.
		if null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
			unix.Dup2(int(null.Fd()), 0)
			unix.Dup2(int(null.Fd()), 1)
			unix.Dup2(int(null.Fd()), 2)
		}
	}
	f.Close()
}

func parseLevel(s string) (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: use debug, info, warn or error", s)
	}
	return level, nil
}

// newLogger logs to stderr, or to syslog when detached (falling back to stderr if there is
// no syslog).
func newLogger(level slog.Level, detached bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if detached {
		if w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "mysqllogfs"); err == nil {
			return slog.New(slog.NewTextHandler(w, opts))
		}
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
