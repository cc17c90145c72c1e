package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysqllogfs/mysqllogfs/crypto"
)

// emptyMember is the smallest gzip member: a header, an empty final stored-free block, and a
// trailer of CRC 0 and size 0.
var emptyMember = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}

// A compressed log of 200,000 empty gzip members, then one with text: cat and the mount give
// exactly the text, and the mount stays within its memory bound. Before, each member cost a
// new 160 KiB inflater, and cat of such a 4 MB file took 21 s.
func TestManyEmptyGzipMembers(t *testing.T) {
	d := makeLogDir(t)
	text := []byte("<AUDIT_RECORD NAME=\"Query\" RECORD_ID=\"1_2024-01-01T00:00:00\"/>\n")
	gz := append(bytes.Repeat(emptyMember, 200_000), gzipMembers(t, text)...)
	name := "audit.20240111T000000.log"
	os.WriteFile(filepath.Join(d.dir, name+".gz"), gz, 0o640)

	r := mysqllogfs(t, nil, "cat", filepath.Join(d.dir, name+".gz"))
	if r.code != 0 || !bytes.Equal(r.stdout, text) {
		t.Fatalf("cat: exit %d, %q %s", r.code, r.stdout, r.stderr)
	}
	m := mount(t, d.dir, "--keyring", d.keyring)
	got, err := os.ReadFile(m.path(name))
	if err != nil || !bytes.Equal(got, text) {
		t.Fatalf("through the mount: %q, %v", got, err)
	}
	if out, err := exec.Command("grep", "-c", "RECORD_ID", m.path(name)).Output(); err != nil || string(out) != "1\n" {
		t.Fatalf("grep: %q %v", out, err)
	}
	checkMemoryBound(t, m)
}

// checkMemoryBound fails when the mount's peak RSS passed its 64 MiB bound. A race-enabled
// build keeps shadow memory of its own, several times the program's: there it says so.
func checkMemoryBound(t *testing.T, m *mounted) {
	if raceEnabled {
		t.Log("the race detector's memory hides the mount's own: its bound is checked without -race")
		return
	}
	rss := peakRSSKiB(t, m.cmd.Process.Pid)
	if rss > 64<<10 {
		t.Fatalf("the mount's peak RSS is %d KiB, over its 64 MiB bound", rss)
	}
	t.Logf("peak RSS of the mount: %d KiB", rss)
}

// peakRSSKiB is a process's high-water mark of resident memory.
func peakRSSKiB(t *testing.T, pid int) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var kib int64
	for _, line := range bytes.Split(status, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("VmHWM:")) {
			fmt.Sscan(string(bytes.TrimPrefix(line, []byte("VmHWM:"))), &kib)
		}
	}
	return kib
}

// An encrypted audit log of 300,000 Salted__ containers (30,000 under -race), each holding a
// gzip member of two bytes: cat and the mount give every byte, and the mount keeps within its
// memory bound. Before, each container kept its own key schedule, and 300,000 of them took the
// mount from 10 MB to 557 MB; then a list of every container took it to 73 MB.
func TestManyContainers(t *testing.T) {
	d := makeLogDir(t)
	member := gzipMembers(t, []byte("x\n"))
	var file bytes.Buffer
	pw := crypto.AuditPassword{Password: []byte("audit-pw")}
	count := 300_000
	if raceEnabled {
		count = 30_000
	}
	for range count {
		w, _ := crypto.NewAuditWriter(&file, pw, false)
		w.Write(member)
		w.Close()
	}
	name := "audit.20240112T000000.log"
	os.WriteFile(filepath.Join(d.dir, name+".gz.20240101T000000-1.enc"), file.Bytes(), 0o640)
	want := bytes.Repeat([]byte("x\n"), count)

	r := mysqllogfs(t, nil, "cat", "--keyring", d.keyring, filepath.Join(d.dir, name+".gz.20240101T000000-1.enc"))
	if r.code != 0 || !bytes.Equal(r.stdout, want) {
		t.Fatalf("cat: exit %d, %d bytes %s", r.code, len(r.stdout), r.stderr)
	}
	m := mount(t, d.dir, "--keyring", d.keyring)
	runOK(t, "ls", "-l", m.dir) // a listing and a lookup at once open the file: once, not twice
	got, err := os.ReadFile(m.path(name))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("through the mount: %d bytes, %v", len(got), err)
	}
	checkMemoryBound(t, m)
}

// A reader killed while the mount decodes a long stretch that gives no bytes (millions of
// empty gzip members before the first record): the work stops within a fraction of a second.
// The kernel does not interrupt the readahead reads the dead program caused; the mount
// notices the caller is gone. Before, it decoded on for as long as the stretch took.
func TestKilledReaderStopsItsWork(t *testing.T) {
	members := 2_000_000
	if raceEnabled {
		members = 150_000
	}
	d := makeLogDir(t)
	text := []byte("<AUDIT_RECORD NAME=\"Query\"/>\n")
	name := "audit.20240113T000000.log"
	os.WriteFile(filepath.Join(d.dir, name+".gz"), append(bytes.Repeat(emptyMember, members), gzipMembers(t, text)...), 0o640)
	m := mount(t, d.dir, "--keyring", d.keyring, "--no-size-cache", "--log-level", "debug")
	pid := m.cmd.Process.Pid
	waitIdle := func(what string) {
		for deadline := time.Now().Add(5 * time.Minute); cpuTicksIn(t, pid, 500*time.Millisecond) > 5; {
			if time.Now().After(deadline) {
				t.Fatalf("the mount is still busy 5 minutes after %s", what)
			}
		}
	}
	waitIdle("mounting") // the background pass proves the size, decoding the file once

	cat := exec.Command("cat", m.path(name))
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	if busy := cpuTicksIn(t, pid, 300*time.Millisecond); busy < 10 {
		t.Fatalf("the mount used %d ticks of CPU while cat read: the read is not decoding", busy)
	}
	cat.Process.Kill()
	cat.Wait()
	time.Sleep(time.Second)
	busy := cpuTicksIn(t, pid, 2*time.Second)
	if busy > 30 {
		t.Fatalf("the mount used %d ticks of CPU in the 2 s after its reader was killed, from 1 s on", busy)
	}
	t.Logf("the mount used %d ticks of CPU in the 2 s after its reader was killed, from 1 s on", busy)
	if !strings.Contains(m.logs.String(), "read interrupted") {
		t.Errorf("the log does not say a read was interrupted:\n%s", m.logs)
	}
	got, err := os.ReadFile(m.path(name)) // and the file still reads
	if err != nil || !bytes.Equal(got, text) {
		t.Fatalf("read after: %q, %v", got, err)
	}
}

// cpuTicksIn is the CPU time, in clock ticks, process pid uses within the next d.
func cpuTicksIn(t *testing.T, pid int, d time.Duration) int64 {
	ticks := func() int64 {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		var user, system int64
		fmt.Sscan(fields[11], &user) // utime and stime, fields 14 and 15 of proc(5)
		fmt.Sscan(fields[12], &system)
		return user + system
	}
	before := ticks()
	time.Sleep(d)
	return ticks() - before
}
