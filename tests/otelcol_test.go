package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mysqllogfs/mysqllogfs/crypto"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// The OpenTelemetry Collector's filelog receiver, polling a mount that holds a rotated
// (gzip, then Salted__) audit log and the active encrypted one the server is appending to,
// records written in pieces, ships every audit record exactly once: while a record is
// half-written, across a remount under the running collector and across a collector restart
// with a remount (each remount a new device number), and across the server's rotation of the
// active log by rename. The collector is built by .ci/otelcol from tests/otelcol; its
// configuration is the one docs/shippers.md gives.
func TestOpenTelemetryCollectorShipsOnce(t *testing.T) {
	requireFUSE(t)
	bin := otelcolBinary(t)
	d := makeLogDir(t)
	pw := crypto.AuditPassword{Password: []byte("audit-pw")}
	want := map[string]string{} // RECORD_ID -> the record, as the receiver should ship it

	// The rotated log: gzip, then Salted__, as MySQL Enterprise Audit and Percona write it.
	var rotated bytes.Buffer
	sample.AuditLog(&rotated, sample.AuditXML, 60<<10, 41, true)
	rotatedPlain := uniqueIDs(rotated.Bytes(), "rotated-", want)
	d.add(t, "audit.20240102T000000.log.gz.20240101T000000-1.enc", rotatedPlain, func(w *bytes.Buffer) {
		aw, _ := crypto.NewAuditWriter(w, pw, true)
		aw.Write(rotatedPlain)
		aw.Close()
	})

	// The active log, encrypted, still open: its records are written in pieces that end
	// inside a record, so the mount shows half a record at its end.
	var active bytes.Buffer
	sample.AuditLog(&active, sample.AuditXML, 80<<10, 42, false)
	activePlain := uniqueIDs(active.Bytes(), "active-", want)
	starts := recordStarts(activePlain)
	activePath := filepath.Join(d.dir, "audit.log.20240101T000000-1.enc")
	f, err := os.OpenFile(activePath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	aw, _ := crypto.NewAuditWriter(f, pw, false)
	written, shownLen := 0, 0
	writeTo := func(end int) { // the active log's plaintext up to end, as the server would
		aw.Write(activePlain[written:end])
		written, shownLen = end, end/16*16 // the mount shows whole AES blocks
	}
	halfway := func(k int) int { // inside record k, past its RECORD_ID and before its end
		return starts[k] + bytes.Index(activePlain[starts[k]:], []byte("<SQLTEXT>")) + 20
	}
	shown := func() []byte { return activePlain[:shownLen] }
	writeTo(halfway(len(starts) / 5))

	work := t.TempDir()
	storage := filepath.Join(work, "storage")
	os.Mkdir(storage, 0o700)
	out := filepath.Join(work, "shipped.json")
	mnt := mount(t, d.dir, "--keyring", d.keyring)
	config := filepath.Join(work, "otelcol.yaml")
	os.WriteFile(config, []byte(otelcolConfig(mnt.dir, storage, out)), 0o600)

	c := startCollector(t, bin, config)
	// grow writes the active log on to inside record k, and waits for what is complete.
	grow := func(k int) {
		writeTo(halfway(k))
		complete := bytes.Count(shown(), []byte("</AUDIT_RECORD>"))
		waitShipped(t, c, out, fmt.Sprintf("%d active records", complete), func(n map[string]int) bool {
			return shippedWith(n, "active-") >= complete
		})
	}
	barriers := 0
	settle := func() { // then checks, after a whole poll of the receiver, as barrier files show
		for range 2 {
			barriers++
			id := fmt.Sprintf("barrier-%d", barriers)
			rec := "<AUDIT_RECORD>\n  <RECORD_ID>" + id + "</RECORD_ID>\n </AUDIT_RECORD>"
			want[id] = rec
			os.WriteFile(filepath.Join(d.dir, id+".log"), []byte(rec+"\n"), 0o640)
			waitShipped(t, c, out, id, func(n map[string]int) bool { return n[id] > 0 })
		}
		checkShippedOnce(t, c, out, want, shown())
	}
	remount := func() { // unmounts and mounts again on the same mountpoint
		var before, after syscall.Stat_t
		syscall.Stat(mnt.path("audit.log"), &before)
		mnt.unmount()
		// The kernel hands a freed device number to the next mount: a tmpfs takes it, as
		// other mounts on a busy host do, so that the remount gets another.
		if os.Geteuid() == 0 {
			hold := t.TempDir()
			runOK(t, "mount", "-t", "tmpfs", "-o", "size=64k", "hold", hold)
			t.Cleanup(func() { exec.Command("umount", hold).Run() })
		}
		mnt = mountOn(t, mnt.dir, d.dir, "--keyring", d.keyring)
		syscall.Stat(mnt.path("audit.log"), &after)
		if after.Ino != before.Ino || (os.Geteuid() == 0 && after.Dev == before.Dev) {
			t.Fatalf("audit.log: device %d, inode %d before the remount; device %d, inode %d after", before.Dev, before.Ino, after.Dev, after.Ino)
		}
	}

	// The rotated log whole, the active log as it grows.
	rotatedRecords := len(recordStarts(rotatedPlain))
	waitShipped(t, c, out, "the rotated log", func(n map[string]int) bool { return shippedWith(n, "rotated-") >= rotatedRecords })
	grow(2 * len(starts) / 5)
	// The server stalls mid-record for longer than the receiver's default force_flush_period
	// (500ms), which would ship the half record as an entry of its own.
	time.Sleep(1500 * time.Millisecond)
	grow(2*len(starts)/5 + 5)
	settle()

	// A remount under the running collector, which holds the files open: the mount detaches
	// lazily, and the files are gone for more than three polls.
	remount()
	grow(3 * len(starts) / 5)
	grow(3*len(starts)/5 + 5)
	settle()

	// The collector stopped (with half a record unshipped), a remount, the collector started.
	c.stop(t)
	remount()
	c = startCollector(t, bin, config)
	grow(4 * len(starts) / 5)
	grow(len(starts) - 5)

	// The server rotates: it closes the log (the last block and its padding) and renames it.
	// The plaintext under the new name starts as the old one did: the same file to the receiver.
	writeTo(len(activePlain))
	aw.Write([]byte("</AUDIT>\n"))
	aw.Close()
	shownLen = len(activePlain)
	os.Rename(activePath, filepath.Join(d.dir, "audit.20240103T000000.log.20240101T000000-1.enc"))
	waitShipped(t, c, out, "every active record", func(n map[string]int) bool { return shippedWith(n, "active-") >= len(starts) })
	settle()
	c.stop(t)
}

// otelcolConfig is the collector's configuration: the filelog receiver polling the mount's
// audit logs (and the test's barrier files), its offsets kept by file_storage, records
// written as JSON lines by the file exporter.
func otelcolConfig(mnt, storage, out string) string {
	return `extensions:
  file_storage:
    directory: ` + storage + `
receivers:
  filelog:
    include: [` + mnt + `/audit*.log, ` + mnt + `/barrier-*.log]
    start_at: beginning
    poll_interval: 100ms
    force_flush_period: 0
    multiline:
      line_end_pattern: '</AUDIT_RECORD>'
    storage: file_storage
    polls_to_archive: 1000
exporters:
  file:
    path: ` + out + `
    format: json
    append: true
    flush_interval: 100ms
service:
  extensions: [file_storage]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [filelog]
      exporters: [file]
`
}

// otelcolBinary builds the collector through .ci/otelcol, or finds it built. It skips only
// when the Go module proxy cannot be reached (exit status 3), and not even then under CI.
func otelcolBinary(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(Root(), ".ci", "otelcol"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 && os.Getenv("CI") != "true" {
		t.Skipf("the OpenTelemetry Collector cannot be built: the Go module proxy is unreachable\n%s", stderr.String())
	}
	if err != nil {
		t.Fatalf(".ci/otelcol: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// collector is a running otelcol.
type collector struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

func startCollector(t *testing.T, bin, config string) *collector {
	t.Helper()
	c := &collector{cmd: exec.Command(bin, "--config", config), logs: &syncBuffer{}, done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.cmd.Process.Kill(); <-c.done })
	return c
}

// stop shuts the collector down as systemd would (SIGTERM): it saves its offsets and flushes.
func (c *collector) stop(t *testing.T) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the collector did not stop within 20 s of SIGTERM:\n%s", c.logs)
	}
	if !c.cmd.ProcessState.Success() {
		t.Fatalf("the collector: %v\n%s", c.cmd.ProcessState, c.logs)
	}
}

// waitShipped polls the exporter's output until ok holds for the count of each RECORD_ID.
func waitShipped(t *testing.T, c *collector, out, what string, ok func(map[string]int) bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		n, _ := tallyShipped(t, out, nil)
		if ok(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never shipped (%d records so far); the collector:\n%s", what, len(n), c.logs)
		}
	}
}

// checkShippedOnce checks that every record of want was shipped exactly once and whole, and
// nothing else: the active log's records as far as they are complete in shown, the others all.
func checkShippedOnce(t *testing.T, c *collector, out string, want map[string]string, shown []byte) {
	t.Helper()
	due := map[string]bool{}
	for _, m := range recordID.FindAllSubmatch(shown, -1) {
		due[string(m[1])] = true
	}
	if tail := bytes.LastIndex(shown, []byte("<AUDIT_RECORD>")); tail > bytes.LastIndex(shown, []byte("</AUDIT_RECORD>")) {
		if m := recordID.FindSubmatch(shown[tail:]); m != nil {
			delete(due, string(m[1])) // half-written: not yet due
		}
	}
	n, bad := tallyShipped(t, out, want)
	for i, body := range bad {
		if i == 3 {
			break
		}
		t.Errorf("shipped an entry that is not one whole record:\n%.600s", body)
	}
	if len(bad) > 0 {
		t.Fatalf("%d shipped entries are not whole records; the collector:\n%s", len(bad), c.logs)
	}
	missing, twice := 0, 0
	for id := range want {
		switch {
		case n[id] > 1:
			twice++
			t.Errorf("%s shipped %d times", id, n[id])
		case n[id] == 0 && (due[id] || !strings.HasPrefix(id, "active-")):
			missing++
			t.Errorf("%s never shipped", id)
		case n[id] == 1 && strings.HasPrefix(id, "active-") && !due[id]:
			t.Errorf("%s shipped before it was complete", id)
		}
	}
	for id := range n {
		if _, known := want[id]; !known {
			t.Errorf("shipped a record never written: %s", id)
		}
	}
	if t.Failed() {
		t.Fatalf("%d records shipped more than once, %d missing; the collector:\n%s", twice, missing, c.logs)
	}
}

// shippedWith counts the shipped records whose RECORD_ID starts with prefix.
func shippedWith(n map[string]int, prefix string) int {
	total := 0
	for id, k := range n {
		if strings.HasPrefix(id, prefix) {
			total += k
		}
	}
	return total
}

// tallyShipped reads the file exporter's JSON lines and counts the shipped records by their
// RECORD_ID. With want, it also returns every shipped body that is not exactly one of them.
func tallyShipped(t *testing.T, out string, want map[string]string) (map[string]int, []string) {
	data, _ := os.ReadFile(out)
	n := map[string]int{}
	var bad []string
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if !bytes.HasSuffix(line, []byte("\n")) {
			break // the exporter is still writing this line
		}
		var req struct {
			ResourceLogs []struct {
				ScopeLogs []struct {
					LogRecords []struct {
						Body struct {
							StringValue string `json:"stringValue"`
						} `json:"body"`
					} `json:"logRecords"`
				} `json:"scopeLogs"`
			} `json:"resourceLogs"`
		}
		if err := json.Unmarshal(line, &req); err != nil {
			t.Fatalf("the exporter wrote a line that is not JSON: %v\n%.300s", err, line)
		}
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					body := strings.TrimPrefix(lr.Body.StringValue, xmlHead)
					ids := recordID.FindAllStringSubmatch(body, -1)
					if len(ids) == 1 {
						n[ids[0][1]]++
					}
					if want != nil && (len(ids) != 1 || want[ids[0][1]] != body) {
						bad = append(bad, lr.Body.StringValue)
					}
				}
			}
		}
	}
	return n, bad
}

// xmlHead is what the server writes before the first record of a log: the receiver ships it
// at the head of that record.
const xmlHead = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<AUDIT>\n "

var recordID = regexp.MustCompile(`<RECORD_ID>([^<]*)</RECORD_ID>`)

// uniqueIDs prefixes every RECORD_ID of an XML audit log, so that records of different logs
// differ, and adds each record, trimmed as the receiver ships it, to want.
func uniqueIDs(log []byte, prefix string, want map[string]string) []byte {
	log = bytes.ReplaceAll(log, []byte("<RECORD_ID>"), []byte("<RECORD_ID>"+prefix))
	for _, start := range recordStarts(log) {
		end := start + bytes.Index(log[start:], []byte("</AUDIT_RECORD>")) + len("</AUDIT_RECORD>")
		rec := string(log[start:end])
		want[recordID.FindStringSubmatch(rec)[1]] = rec
	}
	return log
}

// recordStarts returns where each record of an XML audit log starts.
func recordStarts(log []byte) []int {
	var starts []int
	for off := 0; ; {
		i := bytes.Index(log[off:], []byte("<AUDIT_RECORD>"))
		if i < 0 {
			return starts
		}
		starts = append(starts, off+i)
		off += i + 1
	}
}
