// Package events decodes a log's plaintext into one JSON object per line: each binlog event
// with its rows, each audit record with its fields. It reads the plaintext once, in order,
// holding one event or record at a time. The objects are described in docs/formats.md
// section 6. It knows nothing of keys or FUSE: it is given plaintext.
package events

import (
	"bufio"

	"errors"
	"fmt"
	"github.com/go-mysql-org/go-mysql/replication"
	"io"
	"time"
)

// Options say what to decode and how to label it.
type Options struct {
	File        string    // the log's name, put into every object
	Start, Stop time.Time // only events at or after Start and before Stop; zero for no bound
	// Unfinished: the log may end inside an event or record (a log the server is still
	// writing): the complete ones are written and the rest is not an error.
	Unfinished bool

	// For View: told of each record's plaintext offset, or each binlog event's, before it
	// is written; outside a transaction says no GTID is carried over to the event.
	observe func(at int64, event *replication.BinlogEvent, outsideTransaction bool)
	// For tests: every XML record read by scanRecord, none by a kept shape.
	noShapes bool
}

// ErrNotALog is returned for plaintext that is neither a binlog nor an audit log.
var ErrNotALog = errors.New("neither a binlog nor an audit log")

// ErrBadLog wraps every error for plaintext that does not decode as the log it starts as.
var ErrBadLog = errors.New("log does not decode")

var binlogMagic = []byte{0xfe, 'b', 'i', 'n'}

// Write decodes the plaintext r, a binlog or an audit log told apart by its first bytes, to w.
func Write(w io.Writer, r io.Reader, opts Options) error {
	out := bufio.NewWriterSize(w, 256<<10)
	err := decode(out, r, opts)
	if flushErr := out.Flush(); err == nil {
		err = flushErr
	}
	return err
}

// bounded reports whether a time bound is set.
func (o *Options) bounded() bool { return !o.Start.IsZero() || !o.Stop.IsZero() }

// inRange applies the time bounds.
func (o *Options) inRange(t time.Time) bool {
	return (o.Start.IsZero() || !t.Before(o.Start)) && (o.Stop.IsZero() || t.Before(o.Stop))
}

func badLog(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadLog, fmt.Sprintf(format, args...))
}
