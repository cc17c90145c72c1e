package fs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"weak"

	"github.com/mysqllogfs/mysqllogfs/crypto/events"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// logWithEvents writes data as the log name in a directory of its own, and returns its path
// and a view of the directory with --events.
func logWithEvents(t *testing.T, name string, data []byte) (string, *view) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	root, err := NewRoot(dir, Options{Keys: keysrc.KeyDir(t.TempDir()), Log: slog.New(slog.DiscardHandler), Events: true})
	if err != nil {
		t.Fatal(err)
	}
	return path, root.(*dirNode).view
}

// current is the reader of the log's version now, held until the test ends.
func current(t *testing.T, v *view, path string) *opened {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	o := v.readers.get(path, &st)
	t.Cleanup(func() { v.readers.put(o) })
	return o
}

// measuredEvents are the events of the log's version now, measured.
func measuredEvents(t *testing.T, v *view, path string) *events.View {
	t.Helper()
	e, err := v.eventsOf(context.Background(), current(t, v, path))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A log that grows gets the events of its older version to continue from: the new version's
// decode reads only what came after their last point (events.Index.Grown).
func TestGrownLogContinuesItsEvents(t *testing.T) {
	var full bytes.Buffer
	sample.RowBinlog(&full, 2<<20, 4, "binlog.000002")
	path, v := logWithEvents(t, "binlog.000001", full.Bytes()[:full.Len()/2])
	measuredEvents(t, v, path)
	older := current(t, v, path)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(full.Bytes()[full.Len()/2:])
	f.Close()
	grown := current(t, v, path)
	if index := older.eventsIndex.Load(); index == nil || grown.grownFrom.Load() != index {
		t.Fatal("the grown version does not continue the older one's events")
	}
	grownEvents, err := v.eventsOf(context.Background(), grown)
	var want bytes.Buffer
	events.Write(&want, bytes.NewReader(full.Bytes()), events.Options{File: "binlog.000001", Unfinished: true})
	if err != nil || grownEvents.Size() != int64(want.Len()) {
		t.Fatalf("the grown version's events: %v, %d bytes; events.Write gives %d", err, grownEvents.Size(), want.Len())
	}
}

// queryBinlog is a binlog of n transactions whose statements have the same length whatever
// quote is, so that two such binlogs have their events at the same offsets.
func queryBinlog(n int, quote string) []byte {
	var b bytes.Buffer
	w := sample.NewBinlogWriter(&b, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	filler := strings.Repeat(quote, 200)
	for i := range n {
		w.Transaction("shop", uint64(i+1), fmt.Sprintf("INSERT INTO notes VALUES (%08d, '%s')", i, filler))
	}
	w.Close("binlog.000002")
	return b.Bytes()
}

// A log rewritten in place (cp over it: same inode, not smaller) is not the same log grown:
// its events are decoded afresh, not continued from the older version's points, which would
// give the older version's offsets over the newer one's bytes. (From review.)
func TestRewrittenLogStartsItsEventsAgain(t *testing.T) {
	older := queryBinlog(12000, "a")
	newer := queryBinlog(24000, `"`) // same event offsets; each '"' is 2 bytes in JSON
	path, v := logWithEvents(t, "binlog.000001", older[:len(older)*3/4])
	measuredEvents(t, v, path)
	o1 := current(t, v, path)
	if err := os.WriteFile(path, newer, 0o640); err != nil { // O_TRUNC: same inode
		t.Fatal(err)
	}
	o2 := current(t, v, path)
	if o2.stamp.ino != o1.stamp.ino {
		t.Fatal("the rewrite made another inode: the test checks nothing")
	}
	if o2.grownFrom.Load() != nil {
		t.Error("the rewritten log continues the older one's events")
	}
	e2, err := v.eventsOf(context.Background(), o2)
	var want bytes.Buffer
	events.Write(&want, bytes.NewReader(newer), events.Options{File: "binlog.000001", Unfinished: true})
	if err != nil {
		t.Fatalf("events of the rewritten log: %v", err)
	}
	got, rerr := io.ReadAll(io.NewSectionReader(e2, 0, e2.Size()))
	if e2.Size() != int64(want.Len()) || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("events of the rewritten log: size %d, read %d bytes (%v), equal %v; events.Write gives %d bytes",
			e2.Size(), len(got), rerr, bytes.Equal(got, want.Bytes()), want.Len())
	}
}

// A version of the log opened for its plaintext only (tail -f of the log itself between two
// reads of its .ndjson) has no measured events: it passes on the older version's, so that
// the next version's .ndjson does not decode the whole log again. (From review.)
func TestGrowthThroughAVersionWithoutEvents(t *testing.T) {
	var full bytes.Buffer
	sample.RowBinlog(&full, 3<<20, 4, "binlog.000002")
	third := full.Len() / 3
	path, v := logWithEvents(t, "binlog.000001", full.Bytes()[:third])
	grow := func(to int) *opened {
		f, _ := os.OpenFile(path, os.O_WRONLY, 0)
		st, _ := f.Stat()
		f.WriteAt(full.Bytes()[st.Size():to], st.Size())
		f.Close()
		return current(t, v, path)
	}
	measuredEvents(t, v, path)
	o2 := grow(2 * third) // its plaintext only
	if o2.grownFrom.Load() == nil {
		t.Fatal("the second version does not continue the first's events")
	}
	o3 := grow(full.Len())
	if !o3.reader.Continues() {
		t.Fatal("the third version does not continue the second")
	}
	if o3.grownFrom.Load() == nil {
		t.Error("the third version continues the second, which continues the first's measured events, but gets no grownFrom: its .ndjson decodes the whole log")
	}
}

// A version whose events were measured, then released, is not kept alive (its closed reader,
// with what its format keeps: a MariaDB binlog's event index, its last decrypted event)
// through later versions opened for their plaintext only: they pass on its index, which
// holds nothing of it. (From review.)
func TestReleasedVersionIsNotKeptByItsEvents(t *testing.T) {
	var full bytes.Buffer
	sample.RowBinlog(&full, 4<<20, 4, "binlog.000002")
	quarter := full.Len() / 4
	path, v := logWithEvents(t, "binlog.000001", full.Bytes()[:quarter])
	var st syscall.Stat_t
	syscall.Lstat(path, &st)
	first := v.readers.get(path, &st)
	if _, err := v.eventsOf(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	released := weak.Make(first.reader)
	v.readers.put(first)
	first = nil
	for k := 2; k <= 4; k++ { // plaintext only
		f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		f.Write(full.Bytes()[(k-1)*quarter : min(k*quarter, full.Len())])
		f.Close()
		if o := current(t, v, path); o.grownFrom.Load() == nil {
			t.Fatalf("version %d does not continue the first version's events", k)
		}
	}
	runtime.GC()
	runtime.GC()
	if released.Value() != nil {
		t.Error("the first version's closed reader is still reachable three versions later")
	}
}
