package fs

import (
	"bytes"
	"compress/gzip"
	"context"
	"syscall"
	"testing"

	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// twoMemberLog writes a compressed audit log of two gzip members, whose trailer's size (the
// last member's) is an estimate that is wrong, and returns its path, its plaintext, and a view
// with --events that has listed it (and so shows the estimate).
func twoMemberLog(t *testing.T, size int64, closed bool) (string, []byte, *view) {
	t.Helper()
	var plain bytes.Buffer
	sample.AuditLog(&plain, sample.AuditXML, size, 2, closed)
	p := plain.Bytes()
	var gz bytes.Buffer
	for _, part := range [][]byte{p[:len(p)/2], p[len(p)/2:]} {
		w := gzip.NewWriter(&gz)
		w.Write(part)
		w.Close()
	}
	path, v := logWithEvents(t, "audit.20240106T000000.log.gz", gz.Bytes())
	var st syscall.Stat_t
	syscall.Lstat(path, &st)
	if listed := v.plainSize(path, &st); listed == int64(len(p)) {
		t.Fatalf("listed with the exact size %d: the test needs an estimate", listed)
	}
	return path, p, v
}

// shownSize is the size getattr gives the plaintext of path now.
func shownSize(v *view, path string) int64 {
	var st syscall.Stat_t
	syscall.Lstat(path, &st)
	return v.plainSize(path, &st)
}

// The decode of a log's events reads its plaintext to the end, which proves its size even when
// the events then fail (here the XML lacks </AUDIT>, as a rotated log's never does): `ls -l`
// shows the whole plaintext, not the estimate it listed before.
func TestFailedEventsProveThePlaintextSize(t *testing.T) {
	path, plain, v := twoMemberLog(t, 300<<10, false)
	if v.proveOne(context.Background(), path) {
		t.Error("the proof says it proved the events of a log that does not decode")
	}
	if got := shownSize(v, path); got != int64(len(plain)) {
		t.Errorf("after the proof, getattr shows %d bytes, the plaintext is %d", got, len(plain))
	}
}

// exactCtx is done once the log's reader has read to its end: an events decode interrupted
// late, after it proved the plaintext's size.
type exactCtx struct {
	context.Context
	o *opened
}

func (c exactCtx) Err() error {
	if c.o.reader.SizeExact() {
		return context.Canceled
	}
	return nil
}

func TestInterruptedEventsProveThePlaintextSize(t *testing.T) {
	path, plain, v := twoMemberLog(t, 3<<20, true)
	var st syscall.Stat_t
	syscall.Lstat(path, &st)
	o := v.readers.get(path, &st)
	defer v.readers.put(o)
	if _, err := v.eventsOf(exactCtx{context.Background(), o}, o); err == nil {
		t.Fatal("the interrupted decode did not stop")
	}
	if got := shownSize(v, path); got != int64(len(plain)) {
		t.Errorf("after the interrupted decode, getattr shows %d bytes, the plaintext is %d", got, len(plain))
	}
}
