package fs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mysqllogfs/mysqllogfs/crypto/events"
	"github.com/mysqllogfs/mysqllogfs/keysrc"
	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// A log that grows gets the events of its older version to continue from: the new version's
// decode reads only what came after their last point (events.View.Grown).
func TestGrownLogContinuesItsEvents(t *testing.T) {
	dir := t.TempDir()
	var full bytes.Buffer
	sample.RowBinlog(&full, 2<<20, 4, "binlog.000002")
	path := filepath.Join(dir, "binlog.000001")
	if err := os.WriteFile(path, full.Bytes()[:full.Len()/2], 0o640); err != nil {
		t.Fatal(err)
	}
	root, err := NewRoot(dir, Options{Keys: keysrc.KeyDir(t.TempDir()), Log: slog.New(slog.DiscardHandler), Events: true})
	if err != nil {
		t.Fatal(err)
	}
	v := root.(*dirNode).view
	var st syscall.Stat_t
	syscall.Lstat(path, &st)
	older := v.readers.get(path, &st)
	defer v.readers.put(older)
	olderEvents, err := v.eventsOf(context.Background(), older)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(full.Bytes()[full.Len()/2:])
	f.Close()
	syscall.Lstat(path, &st)
	grown := v.readers.get(path, &st)
	defer v.readers.put(grown)
	if grown.grownFrom.Load() != olderEvents {
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
	dir := t.TempDir()
	older := queryBinlog(12000, "a")
	newer := queryBinlog(24000, `"`) // same event offsets; each '"' is 2 bytes in JSON
	path := filepath.Join(dir, "binlog.000001")
	if err := os.WriteFile(path, older[:len(older)*3/4], 0o640); err != nil {
		t.Fatal(err)
	}
	root, err := NewRoot(dir, Options{Keys: keysrc.KeyDir(t.TempDir()), Log: slog.New(slog.DiscardHandler), Events: true})
	if err != nil {
		t.Fatal(err)
	}
	v := root.(*dirNode).view
	var st syscall.Stat_t
	syscall.Lstat(path, &st)
	o1 := v.readers.get(path, &st)
	defer v.readers.put(o1)
	_, err = v.eventsOf(context.Background(), o1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, newer, 0o640); err != nil { // O_TRUNC: same inode
		t.Fatal(err)
	}
	var st2 syscall.Stat_t
	syscall.Lstat(path, &st2)
	if st2.Ino != st.Ino {
		t.Fatal("the rewrite made another inode: the test checks nothing")
	}
	o2 := v.readers.get(path, &st2)
	defer v.readers.put(o2)
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
	dir := t.TempDir()
	var full bytes.Buffer
	sample.RowBinlog(&full, 3<<20, 4, "binlog.000002")
	path := filepath.Join(dir, "binlog.000001")
	third := full.Len() / 3
	if err := os.WriteFile(path, full.Bytes()[:third], 0o640); err != nil {
		t.Fatal(err)
	}
	root, err := NewRoot(dir, Options{Keys: keysrc.KeyDir(t.TempDir()), Log: slog.New(slog.DiscardHandler), Events: true})
	if err != nil {
		t.Fatal(err)
	}
	v := root.(*dirNode).view
	grow := func(to int) *opened {
		f, _ := os.OpenFile(path, os.O_WRONLY, 0)
		st, _ := f.Stat()
		f.WriteAt(full.Bytes()[st.Size():to], st.Size())
		f.Close()
		var sst syscall.Stat_t
		syscall.Lstat(path, &sst)
		return v.readers.get(path, &sst)
	}
	var st syscall.Stat_t
	syscall.Lstat(path, &st)
	o1 := v.readers.get(path, &st)
	defer v.readers.put(o1)
	if _, err := v.eventsOf(context.Background(), o1); err != nil {
		t.Fatal(err)
	}
	o2 := grow(2 * third) // its plaintext only
	defer v.readers.put(o2)
	if o2.grownFrom.Load() == nil {
		t.Fatal("the second version does not continue the first's events")
	}
	o3 := grow(full.Len())
	defer v.readers.put(o3)
	if !o3.reader.Continues() {
		t.Fatal("the third version does not continue the second")
	}
	if o3.grownFrom.Load() == nil {
		t.Error("the third version continues the second, which continues the first's measured events, but gets no grownFrom: its .ndjson decodes the whole log")
	}
}
