package events

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/mysqllogfs/mysqllogfs/tests/sample"
)

// Every byte of a View is what Write gives for the whole log, read in order, backwards and at
// random, with points every 4 KiB so that most reads start again from a point: for the real
// MySQL binlogs (one with zstd Transaction_payload events), a row-format binlog, and audit
// logs in XML and JSON.
func TestViewReadsWhatWriteGives(t *testing.T) {
	logs := map[string][]byte{}
	paths, _ := filepath.Glob(filepath.Join("..", "..", "tests", "testdata", "mysql-8-plain-binlogs", "*"))
	for _, p := range paths {
		logs[filepath.Base(p)], _ = os.ReadFile(p)
	}
	var rows, xmlLog, jsonLog bytes.Buffer
	sample.RowBinlog(&rows, 2<<20, 1, "binlog.000002")
	sample.AuditLog(&xmlLog, sample.AuditXML, 1<<20, 2, true)
	sample.AuditLog(&jsonLog, sample.AuditJSON, 1<<20, 3, true)
	logs["rows"], logs["xml"], logs["json"] = rows.Bytes(), xmlLog.Bytes(), jsonLog.Bytes()
	lines := bytes.ReplaceAll(bytes.TrimPrefix(jsonLog.Bytes(), []byte("[\n")), []byte(",\n{"), []byte("\n{"))
	logs["json lines"] = append(bytes.TrimSuffix(bytes.TrimSpace(lines), []byte("]")), '\n')
	if len(logs) < 7 {
		t.Fatalf("only %d logs", len(logs))
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for name, plain := range logs {
		opts := Options{File: name}
		var want bytes.Buffer
		if err := Write(&want, bytes.NewReader(plain), opts); err != nil {
			t.Fatal(err)
		}
		v := NewView(bytes.NewReader(plain), int64(len(plain)), opts)
		v.spacing = 4096
		if _, err := v.ReadAt(make([]byte, 1), 0); err != ErrNotMeasured {
			t.Fatalf("%s: a read before Measure: %v", name, err)
		}
		if err := v.Measure(context.Background()); err != nil {
			t.Fatal(err)
		}
		if v.Size() != int64(want.Len()) {
			t.Fatalf("%s: size %d, Write gives %d bytes", name, v.Size(), want.Len())
		}
		if len(v.points) < 2 && want.Len() > 64<<10 {
			t.Fatalf("%s: %d points", name, len(v.points))
		}
		check := func(off int64, n int) {
			t.Helper()
			buf := make([]byte, n)
			k, err := v.ReadAt(buf, off)
			end := min(int64(want.Len()), off+int64(n))
			if off >= int64(want.Len()) {
				end = off
			}
			if !bytes.Equal(buf[:k], want.Bytes()[off:end]) || (k < n && err != io.EOF) || (k == n && err != nil && err != io.EOF) {
				t.Fatalf("%s: ReadAt(%d, %d): %d bytes, %v", name, n, off, k, err)
			}
		}
		for off := int64(0); off < int64(want.Len()); off += 10000 {
			check(off, 10000)
		}
		for off := int64(want.Len()) - 3000; off > 0; off -= 7919 {
			check(off, 3000)
		}
		for range 200 {
			check(rng.Int64N(int64(want.Len())), 1+rng.IntN(50000))
		}
		v.Release()
	}
}
