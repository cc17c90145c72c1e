package tests

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
	"golang.org/x/sys/unix"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/crypto/source"
	"github.com/mysqllogfs/mysqllogfs/fs"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// viewDir is a source directory with every kind of file, and what the view must show.
type viewDir struct {
	logDir
	view map[string][]byte // view path -> plaintext
}

func makeViewDir(t *testing.T) viewDir {
	d := viewDir{logDir: makeLogDir(t), view: map[string][]byte{}}
	d.view["binlog.000001"] = d.plain["binlog.000001"]
	d.view["audit.20240102T000000.log"] = d.plain["audit.20240102T000000.log.gz.20240101T000000-1.enc"]

	// Real MySQL 8 binlogs, encrypted into the MySQL format.
	for _, path := range PlainBinlogs(t) {
		plain, _ := os.ReadFile(path)
		name := filepath.Base(path)
		d.add(t, name, plain, func(w *bytes.Buffer) {
			bw, _ := crypto.NewBinlogWriter(w, "MySQLReplicationKey_demo_1", d.master)
			bw.Write(plain)
		})
		d.view[name] = plain
	}
	// Plain files pass through.
	index := []byte("./binlog.000001\n./mysql-bin.000057\n")
	os.WriteFile(filepath.Join(d.dir, "binlog.index"), index, 0o640)
	d.view["binlog.index"] = index
	// An audit log compressed only, and a JSON one encrypted only with a PBKDF2 password.
	var xml, json bytes.Buffer
	sample.AuditLog(&xml, sample.AuditXML, 200<<10, 21, true)
	sample.AuditLog(&json, sample.AuditJSON, 200<<10, 22, true)
	writeGzip(t, filepath.Join(d.dir, "audit.20240104T000000.log.gz"), xml.Bytes())
	d.view["audit.20240104T000000.log"] = xml.Bytes()
	d.add(t, "audit.20240103T000000.log.20240101T000000-1.enc", json.Bytes(), func(w *bytes.Buffer) {
		aw, _ := crypto.NewAuditWriter(w, crypto.AuditPassword{Password: []byte("audit-pw")}, false)
		aw.Write(json.Bytes())
		aw.Close()
	})
	d.view["audit.20240103T000000.log"] = json.Bytes()
	// Two files that map to one name: the one already called so wins, the other keeps its name.
	os.WriteFile(filepath.Join(d.dir, "audit.log"), []byte("an older plain audit log\n"), 0o640)
	d.view["audit.log"] = []byte("an older plain audit log\n")
	d.add(t, "audit.log.20240101T000000-1.enc", xml.Bytes(), func(w *bytes.Buffer) {
		aw, _ := crypto.NewAuditWriter(w, crypto.AuditPassword{Password: []byte("audit-pw")}, false)
		aw.Write(xml.Bytes())
		aw.Close()
	})
	d.view["audit.log.20240101T000000-1.enc"] = xml.Bytes()
	// A subdirectory of relay logs.
	os.Mkdir(filepath.Join(d.dir, "relay"), 0o750)
	d.add(t, "relay/relay-log.000001", d.plain["binlog.000001"], func(w *bytes.Buffer) {
		bw, _ := crypto.NewBinlogWriter(w, "MySQLReplicationKey_demo_1", d.master)
		bw.Write(d.plain["binlog.000001"])
	})
	d.view["relay/relay-log.000001"] = d.plain["binlog.000001"]
	return d
}

func writeGzip(t *testing.T, path string, plain []byte) {
	cmd := exec.Command("gzip", "-c")
	cmd.Stdin = bytes.NewReader(plain)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, out, 0o640)
}

// Every file of the view equals its plaintext (checked by cmp), under the right name and size.
func TestMountShowsPlaintext(t *testing.T) {
	d := makeViewDir(t)
	m := mount(t, d.dir, "--keyring", d.keyring)
	var names []string
	filepath.Walk(m.dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(m.dir, path)
			names = append(names, rel)
		}
		return err
	})
	var want []string
	for name := range d.view {
		want = append(want, name)
	}
	sort.Strings(names)
	sort.Strings(want)
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("view lists\n  %v\nwant\n  %v", names, want)
	}
	for name, plain := range d.view {
		expected := filepath.Join(t.TempDir(), "expected")
		os.WriteFile(expected, plain, 0o600)
		if out, err := exec.Command("cmp", expected, m.path(name)).CombinedOutput(); err != nil {
			t.Errorf("cmp %s: %v %s", name, err, out)
		}
		if info, err := os.Stat(m.path(name)); err != nil || info.Size() != int64(len(plain)) {
			t.Errorf("%s: stat size %v (%v), want %d", name, info.Size(), err, len(plain))
		}
	}
	// Mode, owner and times come from the source.
	src, _ := os.Stat(filepath.Join(d.dir, "binlog.000001"))
	view, _ := os.Stat(m.path("binlog.000001"))
	if src.Mode() != view.Mode() || !src.ModTime().Equal(view.ModTime()) {
		t.Errorf("view %v %v, source %v %v", view.Mode(), view.ModTime(), src.Mode(), src.ModTime())
	}
}

// mariadb-binlog and go-mysql read the real MySQL binlogs through the mount.
func TestBinlogReadersThroughMount(t *testing.T) {
	d := makeViewDir(t)
	m := mount(t, d.dir, "--keyring", d.keyring)
	mariadb := requireProgram(t, "mariadb-binlog")
	out := runOK(t, mariadb, m.path("mysql-8.0.13-stm-temporal-round-binlog.000001"))
	if !bytes.Contains(out, []byte("CREATE TABLE")) && !bytes.Contains(out, []byte("INSERT")) {
		t.Fatalf("mariadb-binlog printed no statements:\n%s", out)
	}
	out = runOK(t, mariadb, m.path("binlog.000001"))
	if !bytes.Contains(out, []byte("INSERT INTO orders")) {
		t.Fatalf("mariadb-binlog on the sample binlog:\n%.2000s", out)
	}
	for _, name := range []string{"mysql-8.0.13-stm-temporal-round-binlog.000001", "mdev35643_mysql_80_binlog.000001", "mysql-bin.000057", "binlog.000001"} {
		p := replication.NewBinlogParser()
		p.SetVerifyChecksum(true)
		events := 0
		if err := p.ParseFile(m.path(name), 0, func(*replication.BinlogEvent) error { events++; return nil }); err != nil || events < 3 {
			t.Errorf("go-mysql on %s: %d events, %v", name, events, err)
		}
	}
}

// grep, head, tail, dd and less, as people use them.
func TestProgramsOnTheMount(t *testing.T) {
	d := makeViewDir(t)
	m := mount(t, d.dir, "--keyring", d.keyring)
	audit := m.path("audit.20240102T000000.log")
	plain := d.view["audit.20240102T000000.log"]

	count := strings.TrimSpace(string(runOK(t, "grep", "-c", "<AUDIT_RECORD>", audit)))
	if want := strconv.Itoa(bytes.Count(plain, []byte("<AUDIT_RECORD>"))); count != want {
		t.Errorf("grep -c: %s, want %s", count, want)
	}
	if got := runOK(t, "tail", "-c", "1000", audit); !bytes.Equal(got, plain[len(plain)-1000:]) {
		t.Error("tail -c 1000 differs")
	}
	if got := runOK(t, "head", "-c", "4096", audit); !bytes.Equal(got, plain[:4096]) {
		t.Error("head -c 4096 differs")
	}
	binlog := d.view["binlog.000001"]
	for _, skip := range []int{0, 1, 7, 100, 4095, len(binlog) - 3} {
		got := runOK(t, "dd", "if="+m.path("binlog.000001"), "bs=1", "skip="+strconv.Itoa(skip), "count=300", "status=none")
		if !bytes.Equal(got, binlog[skip:min(skip+300, len(binlog))]) {
			t.Errorf("dd skip=%d differs", skip)
		}
	}
	t.Run("less in tmux", func(t *testing.T) {
		tmux := requireProgram(t, "tmux")
		requireProgram(t, "less")
		session := fmt.Sprintf("mysqllogfs-%d", os.Getpid())
		runOK(t, tmux, "new-session", "-d", "-s", session, "-x", "200", "-y", "50", "less "+audit)
		defer exec.Command(tmux, "kill-session", "-t", session).Run()
		lastSQL := lastLineContaining(plain, "<SQLTEXT>")
		waitForPane(t, tmux, session, "<?xml version")
		runOK(t, tmux, "send-keys", "-t", session, "G")
		waitForPane(t, tmux, session, lastSQL)
		runOK(t, tmux, "send-keys", "-t", session, "q")
	})
}

func lastLineContaining(b []byte, s string) string {
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			return strings.TrimSpace(lines[i])
		}
	}
	return ""
}

func waitForPane(t *testing.T, tmux, session, want string) {
	t.Helper()
	var pane []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		pane, _ = exec.Command(tmux, "capture-pane", "-p", "-t", session).Output()
		if bytes.Contains(pane, []byte(want)) {
			return
		}
	}
	t.Fatalf("screen never showed %q:\n%s", want, pane)
}

// Eight readers at random offsets, every byte checked (the suite runs under -race).
func TestConcurrentRandomReads(t *testing.T) {
	d := makeViewDir(t)
	m := mount(t, d.dir, "--keyring", d.keyring)
	names := []string{"binlog.000001", "audit.20240102T000000.log", "audit.20240103T000000.log", "audit.20240104T000000.log"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for range 200 {
				name := names[rng.IntN(len(names))]
				want := d.view[name]
				f, err := os.Open(m.path(name))
				if err != nil {
					t.Error(err)
					return
				}
				off := rng.IntN(len(want))
				buf := make([]byte, 1+rng.IntN(64<<10))
				n, _ := f.ReadAt(buf, int64(off))
				f.Close()
				if !bytes.Equal(buf[:n], want[off:min(off+len(buf), len(want))]) {
					t.Errorf("%s at %d: %d bytes differ", name, off, n)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// Every change fails with EROFS, and reading everything leaves the source's bytes and access
// times as they were.
func TestReadOnly(t *testing.T) {
	d := makeViewDir(t)
	// Access times older than the modification times: relatime would update them on a read.
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	before := map[string]string{}
	filepath.Walk(d.dir, func(path string, info os.FileInfo, err error) error {
		if err == nil {
			os.Chtimes(path, old, info.ModTime())
		}
		return nil
	})
	filepath.Walk(d.dir, func(path string, info os.FileInfo, err error) error {
		before[path] = fingerprint(t, path)
		return nil
	})
	m := mount(t, d.dir, "--keyring", d.keyring)
	target := m.path("binlog.000001")
	checks := map[string]error{
		"open for writing": openErr(target, os.O_WRONLY),
		"truncate":         os.Truncate(target, 0),
		"create":           os.WriteFile(m.path("new"), []byte("x"), 0o600),
		"rename":           os.Rename(target, m.path("renamed")),
		"unlink":           os.Remove(target),
		"mkdir":            os.Mkdir(m.path("dir"), 0o700),
		"chmod":            os.Chmod(target, 0o777),
		"utimes":           os.Chtimes(target, time.Now(), time.Now()),
		"setxattr":         syscall.Setxattr(target, "user.x", []byte("y"), 0),
		"symlink":          os.Symlink("x", m.path("link")),
	}
	for what, err := range checks {
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: %v, want EROFS", what, err)
		}
	}
	// Read everything, list everything, stat everything.
	runOK(t, "sh", "-c", "ls -laR "+m.dir+" >/dev/null && find "+m.dir+" -type f -exec cat {} + >/dev/null")
	filepath.Walk(d.dir, func(path string, info os.FileInfo, err error) error {
		if got := fingerprint(t, path); got != before[path] {
			t.Errorf("%s changed: %s -> %s", path, before[path], got)
		}
		return nil
	})
}

func openErr(path string, flag int) error {
	f, err := os.OpenFile(path, flag, 0)
	if err == nil {
		f.Close()
	}
	return err
}

// fingerprint is a file's content hash and access time (directories: time only).
func fingerprint(t *testing.T, path string) string {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return "missing"
	}
	sum := ""
	if st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		f, err := source.Open(path) // O_NOATIME: the check must not touch what it checks
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		h := sha256.New()
		io.Copy(h, f)
		sum = fmt.Sprintf("%x", h.Sum(nil))
	}
	return fmt.Sprintf("atime=%d.%09d %s", st.Atim.Sec, st.Atim.Nsec, sum)
}

// Missing and wrong keys: the file is listed, reading fails with EACCES or EIO, a log line
// names it, and the rest of the mount keeps working.
func TestUndecryptableFiles(t *testing.T) {
	d := makeViewDir(t)
	d.add(t, "binlog.000099", nil, func(w *bytes.Buffer) {
		bw, _ := crypto.NewBinlogWriter(w, "MySQLReplicationKey_absent_1", d.master)
		bw.Write(sample.BinlogMagic)
	})
	d.add(t, "binlog.000098", nil, func(w *bytes.Buffer) {
		bw, _ := crypto.NewBinlogWriter(w, "MySQLReplicationKey_demo_1", bytes.Repeat([]byte{9}, 32))
		bw.Write(d.plain["binlog.000001"])
	})
	m := mount(t, d.dir, "--keyring", d.keyring)
	for name, want := range map[string]syscall.Errno{"binlog.000099": syscall.EACCES, "binlog.000098": syscall.EIO} {
		if _, err := os.Stat(m.path(name)); err != nil {
			t.Errorf("%s not listed: %v", name, err)
		}
		if _, err := os.ReadFile(m.path(name)); !errors.Is(err, want) {
			t.Errorf("reading %s: %v, want %v", name, err, want)
		}
		status := make([]byte, 256)
		n, _ := syscall.Getxattr(m.path(name), "user.mysqllogfs.status", status)
		if !strings.Contains(string(status[:n]), map[syscall.Errno]string{syscall.EACCES: "missing key", syscall.EIO: "wrong key"}[want]) {
			t.Errorf("%s status attribute %q", name, status[:n])
		}
	}
	if got, err := os.ReadFile(m.path("binlog.000001")); err != nil || !bytes.Equal(got, d.view["binlog.000001"]) {
		t.Fatalf("a good file after the failures: %v", err)
	}
	logs := m.logs.String()
	for _, want := range []string{"binlog.000099", "missing key", "binlog.000098", "wrong key"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log does not mention %q:\n%s", want, logs)
		}
	}
}

func TestExtendedAttributes(t *testing.T) {
	d := makeViewDir(t)
	m := mount(t, d.dir, "--keyring", d.keyring)
	getfattr := requireProgram(t, "getfattr")
	out := string(runOK(t, getfattr, "-d", "-m", "user.mysqllogfs", m.path("audit.20240102T000000.log")))
	for _, want := range []string{
		`user.mysqllogfs.kind="audit-log"`, `user.mysqllogfs.key_id="audit_log-20240101T000000-1"`,
		`user.mysqllogfs.source="` + filepath.Join(d.dir, "audit.20240102T000000.log.gz.20240101T000000-1.enc") + `"`,
		`user.mysqllogfs.status="ok"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("getfattr lacks %s:\n%s", want, out)
		}
	}
}

// Inode numbers come from the source, so a remount shows the same ones.
func TestInodesStableAcrossRemounts(t *testing.T) {
	d := makeViewDir(t)
	inodes := func() map[string]uint64 {
		m := mount(t, d.dir, "--keyring", d.keyring)
		defer m.unmount()
		out := map[string]uint64{}
		for name := range d.view {
			var st syscall.Stat_t
			if err := syscall.Stat(m.path(name), &st); err != nil {
				t.Fatal(err)
			}
			out[name] = st.Ino
		}
		return out
	}
	first, second := inodes(), inodes()
	for name, ino := range first {
		if second[name] != ino {
			t.Errorf("%s: inode %d, then %d", name, ino, second[name])
		}
	}
}

// A binlog the server is still appending to: new bytes show in `tail -f`.
func TestTailFollowsGrowingBinlog(t *testing.T) {
	d := makeLogDir(t)
	var plain bytes.Buffer
	sample.Binlog(&plain, 300<<10, 5, "binlog.000003")
	path := filepath.Join(d.dir, "binlog.000002")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, _ := crypto.NewBinlogWriter(f, "MySQLReplicationKey_demo_1", d.master)
	half := plain.Len() / 2
	w.Write(plain.Bytes()[:half])

	m := mount(t, d.dir, "--keyring", d.keyring)
	tail := exec.Command("tail", "-c", "+1", "-f", m.path("binlog.000002"))
	out := &syncBuffer{}
	tail.Stdout = out
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { tail.Process.Kill(); tail.Wait() }()
	waitFor(t, "the first half", func() bool { return len(out.String()) >= half })
	w.Write(plain.Bytes()[half:])
	waitFor(t, "the appended half", func() bool { return len(out.String()) >= plain.Len() })
	if out.String() != plain.String() {
		t.Fatal("tail -f output differs from the plaintext")
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never arrived", what)
		}
	}
}

// Files created in the source appear, files removed disappear, and the active audit log the
// server is still writing reads up to its last complete block.
func TestSourceChangesShow(t *testing.T) {
	d := makeLogDir(t)
	m := mount(t, d.dir, "--keyring", d.keyring)
	active := filepath.Join(d.dir, "audit.log.gz.20240101T000000-1.enc")
	f, err := os.Create(active)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	aw, _ := crypto.NewAuditWriter(f, crypto.AuditPassword{Password: []byte("audit-pw")}, true)
	var plain bytes.Buffer
	sample.AuditLog(io.MultiWriter(aw, &plain), sample.AuditXML, 2<<20, 31, false) // not closed: still being written

	listed := func(name string) bool {
		entries, _ := os.ReadDir(m.dir)
		for _, e := range entries {
			if e.Name() == name {
				return true
			}
		}
		return false
	}
	waitFor(t, "audit.log to appear", func() bool { return listed("audit.log") })
	got, err := os.ReadFile(m.path("audit.log"))
	if err != nil || len(got) < 1<<20 || !bytes.HasPrefix(plain.Bytes(), got) {
		t.Fatalf("the active log: %d bytes (%v), not a prefix of the %d written", len(got), err, plain.Len())
	}
	os.Remove(active)
	waitFor(t, "audit.log to disappear", func() bool { return !listed("audit.log") })
	if _, err := os.ReadFile(m.path("binlog.000001")); err != nil {
		t.Fatalf("after the removal: %v", err)
	}
}

// Large files read start to end by several programs at once, more streams than the
// read-ahead budget serves: every byte arrives right, whether it came from a prepared buffer
// or a direct read.
func TestConcurrentSequentialReaders(t *testing.T) {
	d := makeLogDir(t)
	var binlog, audit bytes.Buffer
	sample.Binlog(&binlog, 24<<20, 7, "binlog.000004")
	d.add(t, "binlog.000003", binlog.Bytes(), func(w *bytes.Buffer) {
		bw, _ := crypto.NewBinlogWriter(w, "MySQLReplicationKey_demo_1", d.master)
		bw.Write(binlog.Bytes())
	})
	sample.AuditLog(&audit, sample.AuditJSON, 24<<20, 8, true)
	d.add(t, "audit.20240105T000000.log.gz.20240101T000000-1.enc", audit.Bytes(), func(w *bytes.Buffer) {
		aw, _ := crypto.NewAuditWriter(w, crypto.AuditPassword{Password: []byte("audit-pw")}, true)
		aw.Write(audit.Bytes())
		aw.Close()
	})
	m := mount(t, d.dir, "--keyring", d.keyring)
	want := map[string]string{}
	for name, plain := range map[string][]byte{"binlog.000003": binlog.Bytes(), "audit.20240105T000000.log": audit.Bytes()} {
		want[name] = filepath.Join(t.TempDir(), name)
		os.WriteFile(want[name], plain, 0o600)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		name := []string{"binlog.000003", "audit.20240105T000000.log"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := exec.Command("cmp", want[name], m.path(name)).CombinedOutput(); err != nil {
				t.Errorf("reader %d: cmp %s: %v %s", i, name, err, out)
			}
		}()
	}
	wg.Wait()
	// And once more from one reader, in the small reads of a pipe.
	out, err := exec.Command("sh", "-c", "cat "+m.path("audit.20240105T000000.log")+" | cmp - "+want["audit.20240105T000000.log"]).CombinedOutput()
	if err != nil {
		t.Errorf("cat | cmp: %v %s", err, out)
	}
}

// residentBytes is how much of a file the kernel's page cache holds, as fincore sees it. Its
// own open of the file is part of what is tested.
func residentBytes(t *testing.T, path string) int64 {
	t.Helper()
	out, err := exec.Command("fincore", "--bytes", "--noheadings", "--output", "RES", path).CombinedOutput()
	if err != nil {
		t.Fatalf("fincore %s: %v %s", path, err, out)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("fincore %s: %q", path, out)
	}
	return n
}

// A log read once stays in the kernel's page cache for the next open, as long as its source
// is unchanged; once the source changes, the next open starts from an empty cache and reads
// the new plaintext.
func TestPageCacheKeptUntilSourceChanges(t *testing.T) {
	d := makeLogDir(t)
	m := mount(t, d.dir, "--keyring", d.keyring)
	name, source := "audit.20240102T000000.log", filepath.Join(d.dir, "audit.20240102T000000.log.gz.20240101T000000-1.enc")
	plain := d.plain[filepath.Base(source)]
	if out, err := exec.Command("cat", m.path(name)).Output(); err != nil || !bytes.Equal(out, plain) {
		t.Fatalf("cat: %v", err)
	}
	if res := residentBytes(t, m.path(name)); res < int64(len(plain))/2 {
		t.Fatalf("after a full read and a second open, %d of %d bytes are cached", res, len(plain))
	}

	var changed bytes.Buffer
	sample.AuditLog(&changed, sample.AuditXML, 200<<10, 99, true)
	var enc bytes.Buffer
	aw, _ := crypto.NewAuditWriter(&enc, crypto.AuditPassword{Password: []byte("audit-pw")}, true)
	aw.Write(changed.Bytes())
	aw.Close()
	if err := os.WriteFile(source, enc.Bytes(), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(source, time.Now(), time.Now().Add(time.Minute)) // a new mtime even on a coarse clock
	time.Sleep(fs.CacheTimeout + 100*time.Millisecond)          // the kernel trusts the old size until then
	if res := residentBytes(t, m.path(name)); res != 0 {
		t.Fatalf("after the source changed, %d bytes of the old plaintext are still cached", res)
	}
	if out, err := exec.Command("cat", m.path(name)).Output(); err != nil || !bytes.Equal(out, changed.Bytes()) {
		t.Fatalf("cat after the change: %v, new content %v", err, bytes.Equal(out, changed.Bytes()))
	}
}

// gzipMembers compresses each part as its own gzip member, with the gzip program, and
// concatenates them: a valid gzip stream whose trailer holds the last member's size only.
func gzipMembers(t *testing.T, parts ...[]byte) []byte {
	var all []byte
	for _, p := range parts {
		cmd := exec.Command("gzip", "-c")
		cmd.Stdin = bytes.NewReader(p)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, out...)
	}
	return all
}

// A compressed log of several members is longer than its gzip trailer says. Programs reading
// it through the mount still get all of it, and the size is exact once read: whether the
// trailer's size is reached early (a small last member), or only after the read-ahead has
// decoded the whole stream (a large one).
func TestSeveralGzipMembersReadToTheEnd(t *testing.T) {
	d := makeLogDir(t)
	var small, large bytes.Buffer
	sample.AuditLog(&large, sample.AuditXML, 3<<20, 31, true)
	sample.AuditLog(&small, sample.AuditXML, 200<<10, 32, true)
	want := map[string][]byte{}
	for i, parts := range [][]*bytes.Buffer{{&large, &small}, {&small, &large}} {
		plain := append(append([]byte(nil), parts[0].Bytes()...), parts[1].Bytes()...)
		plain = append(plain, fmt.Sprintf("<!-- marker of the end of log %d -->\n", i)...)
		members := gzipMembers(t, parts[0].Bytes(), plain[len(parts[0].Bytes()):])
		plainName := fmt.Sprintf("audit.2024010%dT000000.log", 6+2*i)
		os.WriteFile(filepath.Join(d.dir, plainName+".gz"), members, 0o640)
		want[plainName] = plain
		encName := fmt.Sprintf("audit.2024010%dT000000.log", 7+2*i)
		d.add(t, encName+".gz.20240101T000000-1.enc", plain, func(w *bytes.Buffer) {
			aw, _ := crypto.NewAuditWriter(w, crypto.AuditPassword{Password: []byte("audit-pw")}, false)
			aw.Write(members)
			aw.Close()
		})
		want[encName] = plain
	}
	m := mount(t, d.dir, "--keyring", d.keyring)
	for name, plain := range want {
		expected := filepath.Join(t.TempDir(), "want")
		os.WriteFile(expected, plain, 0o600)
		if out, err := exec.Command("cmp", expected, m.path(name)).CombinedOutput(); err != nil {
			t.Errorf("cmp %s: %v %s", name, err, out)
		}
		if out, err := exec.Command("grep", "-c", "marker of the end", m.path(name)).Output(); err != nil || strings.TrimSpace(string(out)) != "1" {
			t.Errorf("grep %s: %q %v", name, out, err)
		}
		if info, err := os.Stat(m.path(name)); err != nil || info.Size() != int64(len(plain)) {
			t.Errorf("%s: size after reading %d, want %d (%v)", name, info.Size(), len(plain), err)
		}
	}
}

// `ls -l` of a directory of many compressed logs shows every plaintext size (found several
// at a time while the listing runs), and a rewritten log's new size.
func TestListingShowsEverySize(t *testing.T) {
	d := makeLogDir(t)
	want := map[string]int{}
	write := func(i int, seed uint64, size int64) {
		var plain bytes.Buffer
		sample.AuditLog(&plain, sample.AuditXML, size, seed, true)
		name := fmt.Sprintf("audit.2024%04dT000000.log", 200+i)
		d.add(t, name+".gz.20240101T000000-1.enc", plain.Bytes(), func(w *bytes.Buffer) {
			aw, _ := crypto.NewAuditWriter(w, crypto.AuditPassword{Password: []byte("audit-pw")}, true)
			aw.Write(plain.Bytes())
			aw.Close()
		})
		want[name] = plain.Len()
	}
	for i := range 40 {
		write(i, uint64(i), int64(20<<10+i*1000))
	}
	m := mount(t, d.dir, "--keyring", d.keyring)
	check := func() {
		t.Helper()
		out, err := exec.Command("ls", "-l", m.dir).Output()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) == 9 {
				got[f[8]] = f[4]
			}
		}
		for name, size := range want {
			if got[name] != strconv.Itoa(size) {
				t.Errorf("ls -l: %s is %q bytes, want %d", name, got[name], size)
			}
		}
	}
	check()
	write(7, 1000, 90<<10)
	time.Sleep(fs.CacheTimeout + 100*time.Millisecond)
	check()
}

// FIFOs, sockets and device nodes have no plaintext: they are left out of the listing, and
// the listing and the lookups agree (before: `ls -l` printed p????????? and an error).
func TestSpecialFilesLeftOut(t *testing.T) {
	d := makeLogDir(t)
	if err := syscall.Mkfifo(filepath.Join(d.dir, "a.fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mknod(filepath.Join(d.dir, "a.null"), syscall.S_IFCHR|0o644, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	m := mount(t, d.dir, "--keyring", d.keyring)
	cmd := exec.Command("ls", "-l", m.dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 || strings.Contains(string(out), "?") || strings.Contains(string(out), "a.fifo") {
		t.Fatalf("ls -l: %v\n%s%s", err, out, stderr.String())
	}
	if _, err := os.Lstat(m.path("a.fifo")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lookup of a FIFO: %v, want ENOENT as the listing says", err)
	}
}
