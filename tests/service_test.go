package tests

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// Running it in production (issue 20): version, systemd, metrics, progress, completion, man.

// --version and `version` name the commit the binary was built from, whether the tree had
// changes, and the Go version.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		r := mysqllogfs(t, nil, args...)
		out := string(r.stdout)
		if r.code != 0 || !strings.Contains(out, runtime.Version()) {
			t.Fatalf("%v: exit %d, %q; want the Go version %s", args, r.code, out, runtime.Version())
		}
		head, err := exec.Command("git", "-C", Root(), "rev-parse", "HEAD").Output()
		if err != nil {
			t.Logf("no git checkout: the commit is not checked (%v)", err)
			continue
		}
		if !strings.Contains(out, "commit "+strings.TrimSpace(string(head))) {
			t.Errorf("%v: %q does not name commit %s", args, out, head)
		}
	}
}

// The unit template in docs/systemd passes systemd-analyze verify, and its own ExecStart, run
// as systemd runs it (its capability bounding set, no new privileges, credentials, runtime
// and cache directories, a notify socket), mounts: a socket listening as systemd's does
// receives READY=1 once the kernel has the filesystem and STOPPING=1 after SIGTERM, and the
// mountpoint is gone after.
func TestSystemdUnit(t *testing.T) {
	requireFUSE(t)
	setpriv := requireProgram(t, "setpriv")
	unit, err := os.ReadFile(filepath.Join(Root(), "docs/systemd/mysqllogfs@.service"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/mysqllogfs", Binary(t))
	analyze := requireProgram(t, "systemd-analyze")
	instance := filepath.Join(t.TempDir(), "mysqllogfs@var-lib-mysql.service")
	os.WriteFile(instance, []byte(text), 0o644)
	if out, err := exec.Command(analyze, "verify", "--man=no", instance).CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	d := makeLogDir(t)
	// Source files of another owner, their access times older than their change: reading
	// them needs CAP_DAC_READ_SEARCH, and leaving the access times alone CAP_FOWNER.
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	for name := range d.plain {
		path := filepath.Join(d.dir, name)
		os.Chmod(path, 0o600)
		os.Chown(path, 65534, 65534)
		os.Chtimes(path, old, time.Time{})
	}
	credentials := t.TempDir()
	os.WriteFile(filepath.Join(credentials, "MySQLReplicationKey_demo_1"), d.master, 0o400)
	os.WriteFile(filepath.Join(credentials, "audit_log-20240101T000000-1"), []byte("audit-pw"), 0o400)
	mnt := t.TempDir()
	expand := strings.NewReplacer("${CREDENTIALS_DIRECTORY}", credentials, "${CACHE_DIRECTORY}", t.TempDir(),
		"${RUNTIME_DIRECTORY}", mnt, "%f", d.dir)
	argv := strings.Fields(expand.Replace(unitSetting(text, "ExecStart")))
	var keep []string
	for _, c := range strings.Fields(unitSetting(text, "CapabilityBoundingSet")) {
		keep = append(keep, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	if unitSetting(text, "NoNewPrivileges") != "yes" || unitSetting(text, "Type") != "notify" {
		t.Fatal("the unit is not Type=notify with NoNewPrivileges=yes")
	}
	args := append([]string{"--no-new-privs", "--bounding-set", "-all," + strings.Join(keep, ","),
		"--inh-caps", "-all", "--"}, argv...)

	socketPath := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socketPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cmd := exec.Command(setpriv, args...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+socketPath)
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &mounted{dir: mnt, cmd: cmd, logs: logs}
	t.Cleanup(m.unmount)

	messages := readNotifications(t, conn, "READY=1")
	if !isMountpoint(mnt) {
		t.Fatalf("READY=1 came before the mount: %q\n%s", messages, logs)
	}
	if !strings.Contains(messages, "STATUS=serving "+d.dir) {
		t.Errorf("no STATUS naming the source in %q", messages)
	}
	if proven := "STATUS=serving " + d.dir + " at " + mnt + "; proof of sizes done"; !strings.Contains(messages, proven) {
		readNotifications(t, conn, proven) // after READY=1, whenever the proof ended
	}
	for name, want := range map[string][]byte{
		"audit.20240102T000000.log": d.plain["audit.20240102T000000.log.gz.20240101T000000-1.enc"],
		"binlog.000001":             d.plain["binlog.000001"],
	} {
		if got, err := os.ReadFile(filepath.Join(mnt, name)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s through the unit's mount: %v\n%s", name, err, logs)
		}
	}
	for name := range d.plain {
		if atime := fileAtime(t, filepath.Join(d.dir, name)); !atime.Equal(old) {
			t.Errorf("reading %s through the unit's mount set its access time to %v", name, atime)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	readNotifications(t, conn, "STOPPING=1")
	if !m.waitExit(10 * time.Second) {
		t.Fatal("the mount did not end after SIGTERM")
	}
	if isMountpoint(mnt) {
		t.Fatal("the mountpoint is still mounted after the process ended")
	}

	// Killed (as after TimeoutStopSec): the unit's ExecStopPost detaches the dead mount.
	killed := exec.Command(setpriv, args...)
	killed.Stderr = logs
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	k := &mounted{dir: mnt, cmd: killed, logs: logs}
	t.Cleanup(k.unmount)
	for deadline := time.Now().Add(20 * time.Second); !isMountpoint(mnt); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the second start did not mount:\n%s", logs)
		}
	}
	killed.Process.Kill()
	k.waitExit(10 * time.Second)
	stopPost := strings.Fields(strings.TrimPrefix(expand.Replace(unitSetting(text, "ExecStopPost")), "-"))
	if out, err := exec.Command(stopPost[0], stopPost[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("ExecStopPost %v: %v\n%s", stopPost, err, out)
	}
	if isMountpoint(mnt) {
		t.Fatal("the killed mount is still on the runtime directory after ExecStopPost")
	}
}

func fileAtime(t *testing.T, path string) time.Time {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return time.Unix(st.Atim.Unix())
}

// unitSetting is the value of a unit file's setting, its continuation lines joined; the first
// when it is given more than once.
func unitSetting(unit, key string) string {
	joined := strings.ReplaceAll(unit, "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// readNotifications reads datagrams until one holds want, and returns all read.
func readNotifications(t *testing.T, conn *net.UnixConn, want string) string {
	t.Helper()
	var all strings.Builder
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v; received %q", want, err, all.String())
		}
		all.Write(buf[:n])
		if strings.Contains("\n"+string(buf[:n])+"\n", "\n"+want+"\n") {
			return all.String()
		}
	}
}

// --metrics serves Prometheus metrics: reads and bytes by kind, a failed read by its reason,
// key lookups by source and result, and the process's own; never a file name, a key ID or
// anything read.
func TestMetrics(t *testing.T) {
	curl := requireProgram(t, "curl")
	d := makeLogDir(t)
	// A file whose key the keyring does not hold.
	d.add(t, "audit.20240105T000000.log.20240104T000000-1.enc", []byte("x"), func(w *bytes.Buffer) {
		w.WriteString("Salted__" + strings.Repeat("\x01", 24))
	})
	m := mount(t, d.dir, "--keyring", d.keyring, "--metrics", "127.0.0.1:0")
	addr := regexp.MustCompile(`msg="serving metrics" address=(\S+)`).FindStringSubmatch(m.logs.String())
	if addr == nil {
		t.Fatalf("no metrics address logged:\n%s", m.logs)
	}
	plain := d.plain["audit.20240102T000000.log.gz.20240101T000000-1.enc"]
	if got, _ := os.ReadFile(m.path("audit.20240102T000000.log")); !bytes.Equal(got, plain) {
		t.Fatal("the audit log read wrong through the mount")
	}
	if _, err := os.ReadFile(m.path("binlog.000001")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(m.path("audit.20240105T000000.log")); err == nil {
		t.Fatal("a file without its key was read")
	}
	body := string(runOK(t, curl, "-sf", addr[1]))
	values := parseMetrics(body)
	if v := values[`mysqllogfs_read_bytes_total{kind="audit-log"}`]; v != float64(len(plain)) {
		t.Errorf("read_bytes_total of audit logs is %v, want %d", v, len(plain))
	}
	for _, name := range []string{
		`mysqllogfs_reads_total{kind="mysql-binlog"}`,
		`mysqllogfs_opens_total{kind="audit-log"}`,
		`mysqllogfs_read_errors_total{kind="audit-log",reason="missing_key"}`,
		`mysqllogfs_key_lookups_total{result="found",source="keyring"}`,
		`mysqllogfs_key_lookups_total{result="not_found",source="keyring"}`,
		`mysqllogfs_size_proofs_total{result="ok"}`,
		`mysqllogfs_open_readers`,
		`mysqllogfs_container_layout_limit_bytes`,
		`process_resident_memory_bytes`,
		`go_goroutines`,
	} {
		if values[name] <= 0 {
			t.Errorf("%s is %v, want more than 0", name, values[name])
		}
	}
	for _, secret := range []string{"audit_log-20240101T000000-1", "MySQLReplicationKey", "audit-pw", "audit.2024", "binlog.0000", d.dir} {
		if strings.Contains(body, secret) {
			t.Errorf("the metrics carry %q", secret)
		}
	}
}

// parseMetrics reads Prometheus' text format into series -> value.
func parseMetrics(body string) map[string]float64 {
	values := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		fmt.Sscan(line[i+1:], &v)
		values[line[:i]] = v
	}
	return values
}

// verify of a multi-GB log shows a bar (bytes, rate, time left) on a terminal, and then its
// result line; through a pipe, only the result line comes out.
func TestProgressBarOnATerminalOnly(t *testing.T) {
	tmux := requireProgram(t, "tmux")
	big := filepath.Join(t.TempDir(), "binlog.000001")
	writeBigBinlog(t, big, 2<<30)
	result := fmt.Sprintf("ok   %s (binlog, ", big)

	session := fmt.Sprintf("mysqllogfs-progress-%d", os.Getpid())
	runOK(t, tmux, "new-session", "-d", "-s", session, "-x", "160", "-y", "10",
		Binary(t)+" verify "+big+"; echo verify-ended; sleep 60")
	defer exec.Command(tmux, "kill-session", "-t", session).Run()
	bar := regexp.MustCompile(`verify +\d+% .*\|.*MB/s`)
	var pane []byte
	for deadline := time.Now().Add(2 * time.Minute); !bar.Match(pane); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) || bytes.Contains(pane, []byte("verify-ended")) {
			t.Fatalf("no progress bar on the terminal:\n%s", pane)
		}
		pane, _ = exec.Command(tmux, "capture-pane", "-p", "-t", session).Output()
	}
	waitForPane(t, tmux, session, "verify-ended")
	pane, _ = exec.Command(tmux, "capture-pane", "-p", "-t", session).Output()
	if !bytes.Contains(pane, []byte(result)) {
		t.Fatalf("no result line after the bar:\n%s", pane)
	}

	out, err := exec.Command("sh", "-c", Binary(t)+" verify "+big+" 2>&1 | cat").Output()
	if err != nil || !strings.HasPrefix(string(out), result) || strings.Count(string(out), "\n") != 1 {
		t.Fatalf("through a pipe: %v\n%q", err, out)
	}
}

// writeBigBinlog writes a plain binlog of about size bytes in few, large Query events, quickly.
func writeBigBinlog(t *testing.T, path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := sample.NewBinlogWriter(f, time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC))
	sql := "INSERT INTO t VALUES ('" + strings.Repeat("x", 32<<20) + "')"
	for b.Size() < size {
		b.Query("shop", sql)
	}
	if err := b.Close("binlog.000002"); err != nil {
		t.Fatal(err)
	}
}

// The completion scripts complete commands and flags as defined; the manual page names every
// command and every flag of mount, and groff reads it without a warning.
func TestCompletionAndManPage(t *testing.T) {
	bin := Binary(t)
	dir := filepath.Dir(bin) // the scripts call mysqllogfs by name
	env := append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	complete := func(shell, script string) string {
		cmd := exec.Command(shell, "-c", script)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", shell, err, out)
		}
		return string(out)
	}
	plain := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(plain, []byte("never-run-on-tab\n"), 0o600)
	bash := complete("bash", `source <(mysqllogfs completion bash)
		COMP_WORDS=(mysqllogfs mo); COMP_CWORD=1; _mysqllogfs; echo "${COMPREPLY[@]}"
		COMP_WORDS=(mysqllogfs mount --key); COMP_CWORD=2; _mysqllogfs; echo "${COMPREPLY[@]}"
		COMP_WORDS=(mysqllogfs cat -- `+plain+` ""); COMP_CWORD=4; _mysqllogfs; echo "${COMPREPLY[@]}"
		COMP_WORDS=(mysqllogfs cat `+plain+` --); COMP_CWORD=3; _mysqllogfs; echo "${COMPREPLY[@]}"`)
	lines := strings.Split(bash, "\n")
	if lines[0] != "mount" || !strings.Contains(lines[1], "--key-dir") || !strings.Contains(lines[1], "--keyring") ||
		lines[2] != "" || !strings.Contains(lines[3], "--keyring") {
		t.Errorf("bash completes %q", bash)
	}
	if strings.Contains(bash, "never-run-on-tab") {
		t.Errorf("completing at or after -- ran the command: %q", bash)
	}
	requireProgram(t, "fish")
	fish := complete("fish", `mysqllogfs completion fish | source; complete -C "mysqllogfs ver"; complete -C "mysqllogfs mount --met"`)
	if !strings.Contains(fish, "verify") || !strings.Contains(fish, "version") || !strings.Contains(fish, "--metrics") {
		t.Errorf("fish completes %q", fish)
	}
	requireProgram(t, "zsh")
	complete("zsh", `autoload -U compinit && compinit -u && source <(mysqllogfs completion zsh) && whence -w _mysqllogfs`)
	// zsh's completion functions stubbed to print what they are given.
	zsh := complete("zsh", `compdef() {}; _files() { echo files }; _describe() { print -l -- ${(P)2} }
		source <(mysqllogfs completion zsh)
		words=(mysqllogfs mo); CURRENT=2; _mysqllogfs
		words=(mysqllogfs cat -- `+plain+` x); CURRENT=5; _mysqllogfs
		words=(mysqllogfs cat `+plain+` --); CURRENT=4; _mysqllogfs`)
	if !strings.Contains(zsh, "\nmount\n") || !strings.Contains(zsh, "\nfiles\n--keyring") {
		t.Errorf("zsh completes %q", zsh)
	}
	if strings.Contains(zsh, "never-run-on-tab") {
		t.Errorf("zsh completing at or after -- ran the command: %q", zsh)
	}

	man := string(runOK(t, bin, "man"))
	help := string(runOK(t, bin, "mount", "--help"))
	for _, flag := range regexp.MustCompile(`--[a-z-]+`).FindAllString(help, -1) {
		if !strings.Contains(man, strings.ReplaceAll(flag, "-", `\-`)) && !strings.Contains(man, flag) {
			t.Errorf("the manual page lacks %s", flag)
		}
	}
	for _, command := range []string{"cat", "inspect", "keys", "verify", "events", "mount", "version", "completion"} {
		if !strings.Contains(man, "\n## "+command) && !strings.Contains(man, ".SH "+command) && !strings.Contains(man, "\n"+command) {
			t.Errorf("the manual page lacks the %s command", command)
		}
	}
	groff := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
	groff.Stdin = strings.NewReader(man)
	if out, err := groff.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff: %v\n%s", err, out)
	}
}
