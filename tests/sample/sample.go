// Package sample writes realistic MySQL logs of any size from a seed: binlogs whose events
// carry valid CRC32 checksums and end_log_pos chains, and audit logs in the XML and JSON
// formats of MySQL Enterprise Audit and Percona. The tests, the benchmarks and the demo encrypt
// them with the crypto writers.
package sample

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"time"
)

// BinlogMagic opens every plain binlog.
var BinlogMagic = []byte{0xfe, 'b', 'i', 'n'}

const (
	eventHeaderSize  = 19
	queryEvent       = 2
	rotateEvent      = 4
	formatDescEvent  = 15
	xidEvent         = 16
	binlogVersion    = 4
	checksumCRC32    = 1
	sampleServerID   = 1
	sampleServerVers = "8.0.36-mysqllogfs-sample"
)

// postHeaderLengths is MySQL 8.0's table of post-header lengths by event type, as its
// Format_description event announces it.
var postHeaderLengths = []byte{
	0x00, 0x0d, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x04, 0x00, 0x00, 0x00, 0x62, 0x00,
	0x04, 0x1a, 0x08, 0x00, 0x00, 0x00, 0x08, 0x08, 0x08, 0x02, 0x00, 0x00, 0x00, 0x0a, 0x0a, 0x0a,
	0x2a, 0x2a, 0x00, 0x12, 0x34, 0x00, 0x0a, 0x28, 0x00,
}

// BinlogWriter writes a plain MySQL 8 binlog with CRC32 checksums, one event at a time.
type BinlogWriter struct {
	w    *bufio.Writer
	pos  uint32
	when uint32
	err  error
}

// NewBinlogWriter writes the magic and the Format_description event.
func NewBinlogWriter(w io.Writer, start time.Time) *BinlogWriter {
	b := &BinlogWriter{w: bufio.NewWriterSize(w, 256<<10), pos: 4, when: uint32(start.Unix())}
	b.w.Write(BinlogMagic)
	body := binary.LittleEndian.AppendUint16(nil, binlogVersion)
	version := make([]byte, 50)
	copy(version, sampleServerVers)
	body = append(body, version...)
	body = binary.LittleEndian.AppendUint32(body, b.when)
	body = append(body, eventHeaderSize)
	body = append(body, postHeaderLengths...)
	body = append(body, checksumCRC32)
	b.event(formatDescEvent, body)
	return b
}

// event writes one event with its header and checksum.
func (b *BinlogWriter) event(typ byte, body []byte) {
	size := uint32(eventHeaderSize + len(body) + 4)
	ev := make([]byte, 0, size)
	ev = binary.LittleEndian.AppendUint32(ev, b.when)
	ev = append(ev, typ)
	ev = binary.LittleEndian.AppendUint32(ev, sampleServerID)
	ev = binary.LittleEndian.AppendUint32(ev, size)
	ev = binary.LittleEndian.AppendUint32(ev, b.pos+size)
	ev = binary.LittleEndian.AppendUint16(ev, 0)
	ev = append(ev, body...)
	ev = binary.LittleEndian.AppendUint32(ev, crc32.ChecksumIEEE(ev))
	if _, err := b.w.Write(ev); err != nil && b.err == nil {
		b.err = err
	}
	b.pos += size
}

// Query writes a Query event running sql in db.
func (b *BinlogWriter) Query(db, sql string) {
	body := binary.LittleEndian.AppendUint32(nil, 8) // thread ID
	body = binary.LittleEndian.AppendUint32(body, 0) // execution time
	body = append(body, byte(len(db)))
	body = binary.LittleEndian.AppendUint16(body, 0) // error code
	body = binary.LittleEndian.AppendUint16(body, 0) // status variables length
	body = append(body, db...)
	body = append(body, 0)
	body = append(body, sql...)
	b.event(queryEvent, body)
}

// Transaction writes BEGIN, the statements, and the Xid event that commits them.
func (b *BinlogWriter) Transaction(db string, xid uint64, statements ...string) {
	b.Query(db, "BEGIN")
	for _, s := range statements {
		b.Query(db, s)
	}
	b.event(xidEvent, binary.LittleEndian.AppendUint64(nil, xid))
	b.when++
}

// Size is how many bytes the binlog has so far.
func (b *BinlogWriter) Size() int64 { return int64(b.pos) }

// Close writes a Rotate event to the next file and flushes.
func (b *BinlogWriter) Close(next string) error {
	body := binary.LittleEndian.AppendUint64(nil, 4)
	b.event(rotateEvent, append(body, next...))
	if err := b.w.Flush(); err != nil {
		return err
	}
	return b.err
}

// Binlog writes a binlog of about size bytes (at least one transaction) of INSERT
// transactions drawn from seed, ending with a Rotate to next.
func Binlog(w io.Writer, size int64, seed uint64, next string) error {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := NewBinlogWriter(w, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	for xid := uint64(1); xid == 1 || b.Size() < size-200; xid++ {
		b.Transaction("shop", xid, fmt.Sprintf(
			"INSERT INTO orders (id, customer, amount, note) VALUES (%d, 'customer-%d', %d.%02d, '%s')",
			xid, rng.IntN(100000), rng.IntN(10000), rng.IntN(100), words(rng, 3+rng.IntN(20))))
	}
	return b.Close(next)
}

var vocabulary = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
	"india", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo"}

func words(rng *rand.Rand, n int) string {
	out := make([]byte, 0, n*7)
	for i := range n {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, vocabulary[rng.IntN(len(vocabulary))]...)
	}
	return string(out)
}

const (
	tableMapEvent   = 19
	writeRowsEvent2 = 30
	tableID         = 108

	typeLong     = 3
	typeLongLong = 8
	typeVarchar  = 15
)

// RowsTransaction writes one transaction in row format: BEGIN, a Table_map of shop.orders
// (id INT, customer VARCHAR(64), amount_cents BIGINT, note VARCHAR(255)), a Write_rows event
// with the rows, and the Xid event that commits them.
func (b *BinlogWriter) RowsTransaction(xid uint64, rows []OrderRow) {
	b.Query("shop", "BEGIN")
	tm := binary.LittleEndian.AppendUint32(nil, tableID)
	tm = append(tm, 0, 0, 1, 0) // the table ID's last two bytes; flags
	tm = append(tm, 4)
	tm = append(tm, "shop\x00"...)
	tm = append(tm, 6)
	tm = append(tm, "orders\x00"...)
	tm = append(tm, 4, typeLong, typeVarchar, typeLongLong, typeVarchar)
	tm = append(tm, 4, 64, 0, 255, 0) // metadata: the VARCHARs' lengths
	tm = append(tm, 0b1110)           // all but id may be NULL
	b.event(tableMapEvent, tm)

	wr := binary.LittleEndian.AppendUint32(nil, tableID)
	wr = append(wr, 0, 0, 1, 0) // the table ID's last two bytes; flags: the statement's end
	wr = append(wr, 2, 0)       // no extra data
	wr = append(wr, 4, 0b1111)  // column count, columns present
	for _, r := range rows {
		wr = append(wr, 0) // no NULLs
		wr = binary.LittleEndian.AppendUint32(wr, uint32(r.ID))
		wr = append(append(wr, byte(len(r.Customer))), r.Customer...)
		wr = binary.LittleEndian.AppendUint64(wr, uint64(r.AmountCents))
		wr = append(append(wr, byte(len(r.Note))), r.Note...)
	}
	b.event(writeRowsEvent2, wr)
	b.event(xidEvent, binary.LittleEndian.AppendUint64(nil, xid))
	b.when++
}

// OrderRow is a row of shop.orders; Customer and Note are at most 64 and 255 bytes.
type OrderRow struct {
	ID          int32
	Customer    string
	AmountCents int64
	Note        string
}

// RowBinlog writes a row-format binlog of about size bytes: transactions of 1 to 20 inserted
// orders drawn from seed, ending with a Rotate to next.
func RowBinlog(w io.Writer, size int64, seed uint64, next string) error {
	rng := rand.New(rand.NewPCG(seed, 3))
	b := NewBinlogWriter(w, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	id := int32(0)
	for xid := uint64(1); xid == 1 || b.Size() < size-2000; xid++ {
		rows := make([]OrderRow, 1+rng.IntN(20))
		for i := range rows {
			id++
			rows[i] = OrderRow{id, fmt.Sprintf("customer-%d", rng.IntN(100000)), rng.Int64N(1_000_000), words(rng, 3+rng.IntN(20))}
		}
		b.RowsTransaction(xid, rows)
	}
	return b.Close(next)
}
