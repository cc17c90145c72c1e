package crypto

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Binlog events (docs/formats.md section 2): a 19-byte header whose bytes 9-12 hold the
// event's length and 13-16 its end_log_pos, then the body; with checksums on, the last four
// bytes are the CRC32 of the rest.
const (
	eventHeaderSize   = 19
	eventLengthOffset = 9
	eventEndPosOffset = 13
	formatDescription = 15
	checksumCRC32     = 1
)

// Event is one binlog event's header as a walk finds it.
type Event struct {
	Pos    int64  // offset of its first byte in the file
	Type   byte   // the server's event type code
	Length int64  // header and body
	EndPos uint32 // end_log_pos as the event states it (0 in some relay logs)
}

// EventWalker walks the events of a binlog stream one after another. It is the one walk over
// event framing: verify, the MariaDB reader's index, the demo and the tests all use it.
type EventWalker struct {
	r      *bufio.Reader
	pos    int64
	header [eventHeaderSize]byte
	unread int64 // bytes of the current event not yet read or skipped
}

// NewEventWalker walks the events of r, whose first byte is at offset pos of the file (4 for
// a stream that starts after the magic).
func NewEventWalker(r io.Reader, pos int64) *EventWalker {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<20)
	}
	return &EventWalker{r: br, pos: pos}
}

// Next moves to the next event and returns its header. It returns io.EOF at a clean end, and
// io.ErrUnexpectedEOF when the stream ends inside a header; an impossible length wraps
// ErrCorrupt.
func (w *EventWalker) Next() (Event, error) {
	if err := w.Skip(); err != nil {
		return Event{}, err
	}
	if _, err := io.ReadFull(w.r, w.header[:]); err != nil {
		return Event{}, err
	}
	e := Event{
		Pos:    w.pos,
		Type:   w.header[4],
		Length: int64(binary.LittleEndian.Uint32(w.header[eventLengthOffset:])),
		EndPos: binary.LittleEndian.Uint32(w.header[eventEndPosOffset:]),
	}
	if e.Length < eventHeaderSize {
		return e, fmt.Errorf("%w: event (type %d) at offset %d: impossible length %d", ErrCorrupt, e.Type, e.Pos, e.Length)
	}
	w.pos += e.Length
	w.unread = e.Length - eventHeaderSize
	return e, nil
}

// maxHeldEvent bounds what Bytes holds in memory: a hostile length field must not make a
// 123-byte file allocate a gigabyte. Real events this long are walked with CopyTo.
const maxHeldEvent = 16 << 20

// Bytes returns the whole current event, header included. A stream that ends inside it gives
// io.ErrUnexpectedEOF; an event over 16 MiB is refused (see CopyTo).
func (w *EventWalker) Bytes() ([]byte, error) {
	if eventHeaderSize+w.unread > maxHeldEvent {
		return nil, fmt.Errorf("%w: event at offset %d: %d bytes, too long to hold", ErrCorrupt, w.pos-eventHeaderSize-w.unread, eventHeaderSize+w.unread)
	}
	event := make([]byte, eventHeaderSize+w.unread)
	copy(event, w.header[:])
	_, err := io.ReadFull(w.r, event[eventHeaderSize:])
	w.unread = 0
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return event, err
}

// CopyTo writes the current event, header included, to dst, leaving out its last trailer
// bytes, which it returns: the stored checksum, for a caller that hashes the rest.
func (w *EventWalker) CopyTo(dst io.Writer, trailer int) ([]byte, error) {
	if int64(trailer) > w.unread {
		return nil, fmt.Errorf("%w: event at offset %d is too short for its checksum", ErrCorrupt, w.pos-eventHeaderSize-w.unread)
	}
	dst.Write(w.header[:])
	n, err := io.CopyN(dst, w.r, w.unread-int64(trailer))
	w.unread -= n
	tail := make([]byte, trailer)
	if err == nil {
		_, err = io.ReadFull(w.r, tail)
		w.unread = 0
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return tail, err
}

// Skip passes over the rest of the current event.
func (w *EventWalker) Skip() error {
	if w.unread == 0 {
		return nil
	}
	_, err := w.r.Discard(int(w.unread))
	w.unread = 0
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// checkBinlog walks a plain binlog's events, checking the end_log_pos chain and, when the
// Format_description event announces CRC32, every event's checksum. Events stream through
// the checksum: none is held whole, whatever its length field says.
func checkBinlog(r io.Reader) (events int, err error) {
	magic := make([]byte, len(binlogMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != string(binlogMagic) {
		return 0, fmt.Errorf("%w: no binlog magic FE 62 69 6E", ErrCorrupt)
	}
	walk := NewEventWalker(r, int64(len(binlogMagic)))
	crc := false
	for ; ; events++ {
		e, err := walk.Next()
		where := fmt.Sprintf("event %d (type %d) at offset %d", events+1, e.Type, e.Pos)
		switch {
		case err == io.EOF:
			return events, nil
		case errors.Is(err, io.ErrUnexpectedEOF):
			return events, fmt.Errorf("%w: event %d at offset %d: header cut short", ErrCorrupt, events+1, e.Pos)
		case errors.Is(err, ErrCorrupt):
			return events, fmt.Errorf("%w: %s: impossible length %d", ErrCorrupt, where, e.Length)
		case err != nil:
			return events, err
		}
		if e.EndPos != 0 && int64(e.EndPos) != (e.Pos+e.Length)&0xffffffff {
			return events, fmt.Errorf("%w: %s: end_log_pos %d, expected %d", ErrCorrupt, where, e.EndPos, e.Pos+e.Length)
		}
		if e.Type == formatDescription { // small: it says whether checksums follow
			event, err := walk.Bytes()
			if err != nil {
				return events, eventCutShort(err, where)
			}
			crc = e.Length >= eventHeaderSize+5 && event[e.Length-5] == checksumCRC32
			if crc && crc32.ChecksumIEEE(event[:e.Length-4]) != binary.LittleEndian.Uint32(event[e.Length-4:]) {
				return events, fmt.Errorf("%w: %s: CRC32 mismatch", ErrCorrupt, where)
			}
			continue
		}
		if !crc {
			if err := walk.Skip(); err != nil {
				return events, eventCutShort(err, where)
			}
			continue
		}
		sum := crc32.NewIEEE()
		stored, err := walk.CopyTo(sum, 4)
		if err != nil {
			return events, eventCutShort(err, where)
		}
		if sum.Sum32() != binary.LittleEndian.Uint32(stored) {
			return events, fmt.Errorf("%w: %s: CRC32 mismatch", ErrCorrupt, where)
		}
	}
}

func eventCutShort(err error, where string) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s: cut short", ErrCorrupt, where)
	}
	return err
}
