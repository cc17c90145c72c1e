package fs

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"

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
	if grown.grownFrom != olderEvents {
		t.Fatal("the grown version does not continue the older one's events")
	}
	grownEvents, err := v.eventsOf(context.Background(), grown)
	var want bytes.Buffer
	events.Write(&want, bytes.NewReader(full.Bytes()), events.Options{File: "binlog.000001", Unfinished: true})
	if err != nil || grownEvents.Size() != int64(want.Len()) {
		t.Fatalf("the grown version's events: %v, %d bytes; events.Write gives %d", err, grownEvents.Size(), want.Len())
	}
}
