package events

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"io"
	"math"
	"testing"
	"time"
)

// binlog builds a MySQL 8 binlog with CRC32 checksums (valid: a hostile file has them too).
type binlog struct {
	buf bytes.Buffer
	pos uint32
}

var postHeaderLengths = []byte{
	0x00, 0x0d, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x04, 0x00, 0x00, 0x00, 0x62, 0x00,
	0x04, 0x1a, 0x08, 0x00, 0x00, 0x00, 0x08, 0x08, 0x08, 0x02, 0x00, 0x00, 0x00, 0x0a, 0x0a, 0x0a,
	0x2a, 0x2a, 0x00, 0x12, 0x34, 0x00, 0x0a, 0x28, 0x00,
}

func newBinlog() *binlog {
	b := &binlog{pos: 4}
	b.buf.Write(binlogMagic)
	body := binary.LittleEndian.AppendUint16(nil, 4)
	version := make([]byte, 50)
	copy(version, "8.0.36-review")
	body = append(body, version...)
	body = binary.LittleEndian.AppendUint32(body, 1700000000)
	body = append(body, 19)
	body = append(body, postHeaderLengths...)
	body = append(body, 1) // CRC32
	b.event(15, body)
	return b
}

func (b *binlog) event(typ byte, body []byte) {
	size := uint32(19 + len(body) + 4)
	ev := binary.LittleEndian.AppendUint32(nil, 1700000000)
	ev = append(ev, typ)
	ev = binary.LittleEndian.AppendUint32(ev, 1)
	ev = binary.LittleEndian.AppendUint32(ev, size)
	ev = binary.LittleEndian.AppendUint32(ev, b.pos+size)
	ev = binary.LittleEndian.AppendUint16(ev, 0)
	ev = append(ev, body...)
	ev = binary.LittleEndian.AppendUint32(ev, crc32.ChecksumIEEE(ev))
	b.buf.Write(ev)
	b.pos += size
}

func (b *binlog) query(sql string) {
	body := binary.LittleEndian.AppendUint32(nil, 8)
	body = binary.LittleEndian.AppendUint32(body, 0)
	body = append(body, 1)
	body = binary.LittleEndian.AppendUint16(body, 0)
	body = binary.LittleEndian.AppendUint16(body, 0)
	body = append(body, "d\x00"...)
	body = append(body, sql...)
	b.event(2, body)
}

// tableMap of d.t with the columns' types and metadata.
func (b *binlog) tableMap(count byte, types, meta []byte) {
	tm := []byte{108, 0, 0, 0, 0, 0, 1, 0}
	tm = append(tm, 1, 'd', 0, 1, 't', 0)
	tm = append(tm, count)
	tm = append(tm, types...)
	tm = append(tm, byte(len(meta)))
	tm = append(tm, meta...)
	tm = append(tm, 0xff)
	b.event(19, tm)
}

func (b *binlog) rows(typ byte, count byte, bitmaps []byte, data []byte) {
	wr := []byte{108, 0, 0, 0, 0, 0, 0, 0, 2, 0, count}
	wr = append(wr, bitmaps...)
	wr = append(wr, data...)
	b.event(typ, wr)
}

func checkLines(t *testing.T, out []byte) {
	t.Helper()
	for _, line := range bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n")) {
		if !json.Valid(line) {
			t.Errorf("not JSON: %s", line)
		}
	}
}

// A DOUBLE column holding NaN or infinity bits (damage: a server stores neither) still gives
// JSON lines. (The hostile binlogs of these tests come from the review of the events command.)
func TestEventsFloatsJSONHasNoNumberFor(t *testing.T) {
	b := newBinlog()
	b.tableMap(1, []byte{5}, []byte{8}) // DOUBLE
	b.rows(30, 1, []byte{1}, append([]byte{0}, binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.NaN()))...))
	b.rows(30, 1, []byte{1}, append([]byte{0}, binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.Inf(1)))...))
	var out bytes.Buffer
	if err := Write(&out, bytes.NewReader(b.buf.Bytes()), Options{File: "f"}); err != nil {
		t.Fatal(err)
	}
	checkLines(t, out.Bytes())
}

// A Table_map whose metadata runs past the event, in the middle of the file, is damage, not
// the end of a log still being written: before, the rest of the file was dropped silently.
func TestEventsDamageInTheMiddleIsAnError(t *testing.T) {
	b := newBinlog()
	b.query("BEGIN")
	tm := []byte{108, 0, 0, 0, 0, 0, 1, 0, 1, 'd', 0, 1, 't', 0, 1, 5, 0x40, 8, 0xff} // metadata length 64, 1 byte there
	b.event(19, tm)
	for range 100 {
		b.query("INSERT INTO t VALUES (1)")
	}
	var out bytes.Buffer
	err := Write(&out, bytes.NewReader(b.buf.Bytes()), Options{File: "binlog.000001", Unfinished: true})
	if err == nil {
		t.Errorf("no error; %d events written of 103 (damage in the middle of the file, 100 intact events after it)", bytes.Count(out.Bytes(), []byte("\n")))
	}
}

// A Table_map announcing more columns than it has made go-mysql panic: an error now.
func TestEventsShortTableMapIsAnError(t *testing.T) {
	b := newBinlog()
	b.event(19, []byte{108, 0, 0, 0, 0, 0, 1, 0, 1, 'd', 0, 1, 't', 0, 0xfa})
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("panic: %v", r)
		}
	}()
	if err := Write(io.Discard, bytes.NewReader(b.buf.Bytes()), Options{File: "f"}); err == nil {
		t.Error("no error")
	}
}

// A row event of no columns with row data made go-mysql read rows from it for ever, growing
// until memory ran out; so did one whose column bitmap names no column. Both are errors now.
func TestEventsRowsOfNoColumnsAreAnError(t *testing.T) {
	for name, b := range map[string]*binlog{"no columns": newBinlog(), "no column present": newBinlog()} {
		if name == "no columns" {
			b.tableMap(0, nil, nil)
			b.rows(30, 0, nil, []byte{0})
		} else {
			b.tableMap(1, []byte{3}, nil) // INT
			b.rows(30, 1, []byte{0}, []byte{0, 1, 2, 3, 4})
		}
		done := make(chan error, 1)
		go func() { done <- Write(io.Discard, bytes.NewReader(b.buf.Bytes()), Options{File: "f"}) }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: no error", name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Write still running after 10 s", name)
		}
	}
}
