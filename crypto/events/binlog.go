package events

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/uuid"
)

// Binlogs are decoded by go-mysql's replication parser: row images, table-map metadata,
// MySQL's zstd Transaction_payload and MariaDB's compressed events. This file maps its events
// to objects; values.go maps column values.

// binlogWriter carries what the events of one binlog share: the transaction's GTID and the
// object being built.
type binlogWriter struct {
	w    io.Writer
	opts *Options
	obj  object
	pos  int64  // where the next event starts in the file
	gtid string // of the transaction the events belong to, until it ends
}

func writeBinlog(w io.Writer, r io.Reader, opts Options) error {
	if _, err := io.ReadFull(r, make([]byte, len(binlogMagic))); err != nil {
		return badLog("%v", err)
	}
	return parseBinlog(w, &inUseCleared{r: r}, newParser(), int64(len(binlogMagic)), opts)
}

// The server marks the binlog it is writing with LOG_EVENT_BINLOG_IN_USE_F in the first
// event's header, and computes that event's checksum without it; go-mysql checks the bytes as
// they are. The flag is taken off before go-mysql sees them (events show no flags).
const (
	binlogInUse     = 0x1
	firstEventFlags = 17 // the flags' offset in the first event, after the magic
)

// inUseCleared passes a binlog's events through with the in-use flag of the first one cleared.
type inUseCleared struct {
	r   io.Reader
	off int64 // of the next byte, from the first event's start
}

func (c *inUseCleared) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if at := firstEventFlags - c.off; at >= 0 && at < int64(n) {
		p[at] &^= binlogInUse
	}
	c.off += int64(n)
	return n, err
}

// resumeBinlog writes the events of a binlog from the event at from, where r starts; format is
// the binlog's Format_description event, which the parser needs first.
func resumeBinlog(w io.Writer, r io.Reader, format []byte, from int64, opts Options) error {
	p := newParser()
	format = append([]byte(nil), format...)
	format[firstEventFlags] &^= binlogInUse // as writeBinlog reads it
	if _, err := p.ParseSingleEvent(bytes.NewReader(format), func(*replication.BinlogEvent) error { return nil }); err != nil {
		return badLog("the Format_description event: %v", err)
	}
	return parseBinlog(w, r, p, from, opts)
}

func newParser() *replication.BinlogParser {
	p := replication.NewBinlogParser()
	p.SetVerifyChecksum(true)
	p.SetTimestampStringLocation(time.UTC) // TIMESTAMP values as the server stores them
	p.SetPayloadDecoderConcurrency(1)
	p.SetRowsEventDecodeFunc(decodeRows)
	return p
}

// decodeRows is go-mysql's decoding of a row event, refusing one whose rows take no bytes:
// go-mysql would read such rows from the event's data for ever.
func decodeRows(e *replication.RowsEvent, data []byte) error {
	pos, err := e.DecodeHeader(data)
	if err != nil {
		return err
	}
	present := 0
	for _, b := range e.ColumnBitmap1 {
		present += bits.OnesCount8(b)
	}
	if present == 0 && pos < len(data) {
		return errors.New("a row event whose rows have no columns carries row data")
	}
	return e.DecodeData(pos, data)
}

func parseBinlog(w io.Writer, r io.Reader, p *replication.BinlogParser, from int64, opts Options) (err error) {
	b := &binlogWriter{w: w, opts: &opts, pos: from}
	in := &endWatcher{r: r}
	defer func() {
		if v := recover(); v != nil { // go-mysql does not check every length it reads
			err = badLog("the event at byte %d: %v", b.pos, v)
		}
	}()
	err = p.ParseReader(in, b.event)
	if err != nil && !(opts.Unfinished && in.ended) {
		var bad *replication.EventError
		if errors.As(err, &bad) { // its own message quotes the event's bytes: not for a log line
			return badLog("the %s event at byte %d: %s", typeName(bad.Header.EventType), b.pos, bad.Err)
		}
		return badLog("the event at byte %d: %v", b.pos, err)
	}
	return nil
}

// endWatcher notes that its reader has reached the end: a parse error there is an event cut
// short at the end of a log still being written; anywhere else it is damage.
type endWatcher struct {
	r     io.Reader
	ended bool
}

func (e *endWatcher) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.ended = true
	}
	return n, err
}

// event writes one event; the events of a Transaction_payload each as their own. The position
// is counted in the file (a relay log's end_log_pos are its source's).
func (b *binlogWriter) event(e *replication.BinlogEvent) error {
	h := e.Header
	pos := b.pos
	b.pos += int64(h.EventSize)
	if b.opts.observe != nil {
		b.opts.observe(pos, e, b.gtid == "")
	}
	if payload, ok := e.Event.(*replication.TransactionPayloadEvent); ok {
		if err := b.write(e, pos, -1); err != nil {
			return err
		}
		for i, inner := range payload.Events {
			inner.Header.Timestamp = h.Timestamp // the inner headers carry none of their own
			if err := b.write(inner, pos, i); err != nil {
				return err
			}
		}
		return nil
	}
	return b.write(e, pos, -1)
}

// write writes event e at pos; inner >= 0 numbers an event inside the payload event at pos.
func (b *binlogWriter) write(e *replication.BinlogEvent, pos int64, inner int) error {
	h := e.Header
	b.noteGTID(e.Event)
	when := time.Unix(int64(h.Timestamp), 0).UTC()
	if !b.opts.inRange(when) {
		b.endTransaction(e.Event)
		return nil
	}
	o := &b.obj
	o.begin()
	o.str("file", b.opts.File)
	o.int("pos", pos)
	if inner >= 0 {
		o.int("payload_index", int64(inner))
	} else {
		o.uint("end_log_pos", uint64(h.LogPos))
	}
	o.str("time", when.Format(time.RFC3339))
	o.uint("server_id", uint64(h.ServerID))
	o.str("type", typeName(h.EventType))
	if b.gtid != "" {
		o.str("gtid", b.gtid)
	}
	b.body(e.Event)
	b.endTransaction(e.Event)
	return o.end(b.w)
}

// body adds what each kind of event says.
func (b *binlogWriter) body(ev replication.Event) {
	o := &b.obj
	switch e := ev.(type) {
	case *replication.QueryEvent:
		if len(e.Schema) > 0 {
			o.str("schema", string(e.Schema))
		}
		o.key("query")
		o.buf = appendText(o.buf, e.Query)
	case *replication.RowsQueryEvent:
		o.key("query")
		o.buf = appendText(o.buf, e.Query)
	case *replication.MariadbAnnotateRowsEvent:
		o.key("query")
		o.buf = appendText(o.buf, e.Query)
	case *replication.TableMapEvent:
		o.str("schema", string(e.Schema))
		o.str("table", string(e.Table))
	case *replication.RowsEvent:
		o.str("schema", string(e.Table.Schema))
		o.str("table", string(e.Table.Table))
		b.rows(e)
	case *replication.XIDEvent:
		o.uint("xid", e.XID)
	case *replication.RotateEvent:
		o.str("next_file", string(e.NextLogName))
		o.uint("next_pos", e.Position)
	}
}

// noteGTID remembers the GTID a transaction starts with.
func (b *binlogWriter) noteGTID(ev replication.Event) {
	switch e := ev.(type) {
	case *replication.GtidTaggedLogEvent:
		b.gtid = mysqlGTID(&e.GTIDEvent)
	case *replication.GTIDEvent:
		b.gtid = mysqlGTID(e)
	case *replication.MariadbGTIDEvent:
		b.gtid = fmt.Sprintf("%d-%d-%d", e.GTID.DomainID, e.GTID.ServerID, e.GTID.SequenceNumber)
	}
}

// endTransaction forgets the GTID once its transaction has committed.
func (b *binlogWriter) endTransaction(ev replication.Event) {
	switch e := ev.(type) {
	case *replication.XIDEvent:
		b.gtid = ""
	case *replication.QueryEvent:
		if q := bytes.TrimSpace(e.Query); !bytes.EqualFold(q, []byte("BEGIN")) && !bytes.EqualFold(q, []byte("XA START")) {
			// COMMIT, or a DDL statement, which is a transaction of its own
			if !bytes.HasPrefix(bytes.ToUpper(q), []byte("XA ")) || bytes.HasPrefix(bytes.ToUpper(q), []byte("XA COMMIT")) {
				b.gtid = ""
			}
		}
	}
}

// mysqlGTID is uuid:n, or uuid:tag:n for the tagged GTIDs of MySQL 8.4.
func mysqlGTID(e *replication.GTIDEvent) string {
	if len(e.SID) != 16 || e.GNO == 0 {
		return "" // anonymous
	}
	id, _ := uuid.FromBytes(e.SID)
	if tag := e.Tag.String(); tag != "" {
		return fmt.Sprintf("%s:%s:%d", id, tag, e.GNO)
	}
	return fmt.Sprintf("%s:%d", id, e.GNO)
}

// rows adds the rows of a row event: "after" for an insert, "before" for a delete, both for
// an update.
func (b *binlogWriter) rows(e *replication.RowsEvent) {
	o := &b.obj
	cols := columnsOf(e.Table)
	update, deleted := isUpdate(e.Type()), isDelete(e.Type())
	o.open("rows", '[')
	for i := 0; i < len(e.Rows); i++ {
		o.open("", '{')
		switch {
		case update && i+1 < len(e.Rows):
			b.row("before", cols, e.Rows[i], skipped(e, i))
			i++
			b.row("after", cols, e.Rows[i], skipped(e, i))
		case deleted:
			b.row("before", cols, e.Rows[i], skipped(e, i))
		default:
			b.row("after", cols, e.Rows[i], skipped(e, i))
		}
		o.close('}')
	}
	o.close(']')
}

func skipped(e *replication.RowsEvent, i int) []int {
	if i < len(e.SkippedColumns) {
		return e.SkippedColumns[i]
	}
	return nil
}

// row adds one row image as an object of column name to value; columns the image leaves out
// (binlog_row_image=MINIMAL) are left out.
func (b *binlogWriter) row(k string, cols []column, values []any, skip []int) {
	o := &b.obj
	o.open(k, '{')
	for i, v := range values {
		if contains(skip, i) || i >= len(cols) {
			continue
		}
		o.key(cols[i].name)
		o.buf = cols[i].appendValue(o.buf, v)
	}
	o.close('}')
}

func contains(s []int, x int) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func isUpdate(t replication.EnumRowsEventType) bool {
	return t == replication.EnumRowsEventTypeUpdate
}

func isDelete(t replication.EnumRowsEventType) bool {
	return t == replication.EnumRowsEventTypeDelete
}

// typeName is the server's name for an event type, as SHOW BINLOG EVENTS gives it.
func typeName(t replication.EventType) string {
	if name, ok := typeNames[t]; ok {
		return name
	}
	return fmt.Sprintf("Unknown_%d", byte(t))
}

var typeNames = map[replication.EventType]string{
	replication.START_EVENT_V3: "Start_v3", replication.QUERY_EVENT: "Query",
	replication.STOP_EVENT: "Stop", replication.ROTATE_EVENT: "Rotate",
	replication.INTVAR_EVENT: "Intvar", replication.RAND_EVENT: "RAND",
	replication.USER_VAR_EVENT: "User var", replication.FORMAT_DESCRIPTION_EVENT: "Format_desc",
	replication.XID_EVENT: "Xid", replication.BEGIN_LOAD_QUERY_EVENT: "Begin_load_query",
	replication.EXECUTE_LOAD_QUERY_EVENT: "Execute_load_query", replication.TABLE_MAP_EVENT: "Table_map",
	replication.WRITE_ROWS_EVENTv1: "Write_rows_v1", replication.UPDATE_ROWS_EVENTv1: "Update_rows_v1",
	replication.DELETE_ROWS_EVENTv1: "Delete_rows_v1", replication.WRITE_ROWS_EVENTv2: "Write_rows",
	replication.UPDATE_ROWS_EVENTv2: "Update_rows", replication.DELETE_ROWS_EVENTv2: "Delete_rows",
	replication.INCIDENT_EVENT: "Incident", replication.HEARTBEAT_EVENT: "Heartbeat",
	replication.IGNORABLE_EVENT: "Ignorable", replication.ROWS_QUERY_EVENT: "Rows_query",
	replication.GTID_EVENT: "Gtid", replication.ANONYMOUS_GTID_EVENT: "Anonymous_Gtid",
	replication.PREVIOUS_GTIDS_EVENT: "Previous_gtids", replication.TRANSACTION_CONTEXT_EVENT: "Transaction_context",
	replication.VIEW_CHANGE_EVENT: "View_change", replication.XA_PREPARE_LOG_EVENT: "XA_prepare",
	replication.PARTIAL_UPDATE_ROWS_EVENT: "Update_rows_partial", replication.TRANSACTION_PAYLOAD_EVENT: "Transaction_payload",
	replication.HEARTBEAT_LOG_EVENT_V2: "Heartbeat_v2", replication.GTID_TAGGED_LOG_EVENT: "Gtid_tagged",
	replication.MARIADB_ANNOTATE_ROWS_EVENT: "Annotate_rows", replication.MARIADB_BINLOG_CHECKPOINT_EVENT: "Binlog_checkpoint",
	replication.MARIADB_GTID_EVENT: "Gtid", replication.MARIADB_GTID_LIST_EVENT: "Gtid_list",
	replication.MARIADB_START_ENCRYPTION_EVENT: "Start_encryption", replication.MARIADB_QUERY_COMPRESSED_EVENT: "Query_compressed",
	replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1:  "Write_rows_compressed_v1",
	replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1: "Update_rows_compressed_v1",
	replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1: "Delete_rows_compressed_v1",
}
