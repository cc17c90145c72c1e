package events

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"
)

// View is a log's decoded events as a file: at any offset, the bytes Write gives for the whole
// plaintext. Measure decodes it once, which gives the size and an index of points where
// decoding can start again: an audit record, or a binlog transaction's first event. A read
// decodes from the nearest point before it, or goes on from where the last read ended.
type View struct {
	src  io.ReaderAt // the plaintext
	size int64
	opts Options

	mu       sync.Mutex
	binlog   bool
	format   []byte  // the binlog's Format_description event in effect where the pass is
	points   []point // ascending; points[0] is the start
	spacing  int64   // output bytes between recorded points
	measured bool
	outSize  int64

	// Decodes running from points, kept where their last read ended. Reads that arrive
	// together (the kernel reads ahead) queue on the decode that is about to reach them
	// rather than each starting one of its own.
	cursors []*cursor
	waiting []readSpan // the reads queued
	turn    *sync.Cond // signalled when a cursor or the queue changes
}

// point is where decoding can start again: out in the events, in in the plaintext; a binlog's
// with the Format_description event in effect there (a relay log may hold several).
type point struct {
	out, in int64
	format  []byte
}

const (
	viewSpacing   = 1 << 20 // at most one point per MiB of events...
	viewMaxPoints = 4096    // ...and this many at most: the index stays within 64 KiB
)

// NewView returns the view of the plaintext src of the given size, or of whatever size src
// turns out to have at Measure for size -1: src then reads to its end, and PlainSize tells it.
func NewView(src io.ReaderAt, size int64, opts Options) *View {
	v := &View{src: src, size: size, opts: opts, spacing: viewSpacing}
	v.turn = sync.NewCond(&v.mu)
	return v
}

// Index is where a measured view's decodes can start again, without its plaintext: what the
// view of the same log grown continues from. It holds nothing of the older version's reader.
type Index struct {
	opts    Options
	points  []point
	spacing int64
	binlog  bool
}

// Index returns the view's index; nil before a Measure has succeeded.
func (v *View) Index() *Index {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.measured {
		return nil
	}
	return &Index{v.opts, slices.Clone(v.points), v.spacing, v.binlog}
}

// Grown returns the view of src, the same log grown to size (or -1, as for NewView), whose
// Measure decodes only from the index's last point on: a log still being written changes
// only past its end, so its events before a point do not change either. A log that cannot be
// unfinished is not expected to grow, and is measured whole. So is a JSON audit log: a decode
// resumed at a record does not know whether it is in an array, and would take what a pass
// from the start refuses (a missing comma, records after the ]).
func (x *Index) Grown(src io.ReaderAt, size int64) *View {
	g := NewView(src, size, x.opts)
	if x.opts.Unfinished && (x.binlog || resumesAsXML(src, x.points[len(x.points)-1])) {
		g.points, g.spacing, g.binlog = slices.Clone(x.points), x.spacing, x.binlog
	}
	return g
}

// resumesAsXML reports whether an audit log's point is an XML record, or the log's start.
func resumesAsXML(src io.ReaderAt, pt point) bool {
	var b [1]byte
	_, err := src.ReadAt(b[:], pt.in)
	return pt.in == 0 || err == nil && b[0] == '<'
}

// Measure decodes the log once, or what it has grown by since the view it was Grown from:
// after it, Size is exact and reads find the index.
func (v *View) Measure(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.measured {
		return nil
	}
	if len(v.points) == 0 {
		v.points = []point{{0, 0, nil}}
	}
	// A Measure that fails leaves the index as it found it: one resumed from points a failed
	// pass recorded would skip the checks of the whole log that a pass from its start makes.
	points, spacing := slices.Clone(v.points), v.spacing
	from := v.points[len(v.points)-1]
	v.format = from.format
	count := &counter{n: from.out}
	opts := v.opts
	opts.observe = func(at int64, e *replication.BinlogEvent, outside bool) { v.note(count.n, at, e, outside) }
	plain := &countingReader{r: ctxReader{ctx, io.NewSectionReader(v.src, from.in, v.plainBound()-from.in)}, n: from.in}
	err := decodeFrom(count, plain, from, v.binlog, opts)
	if err == nil {
		_, err = io.Copy(io.Discard, plain) // to the end, which a size to learn is
	}
	if err != nil {
		v.points, v.spacing = points, spacing
		return err
	}
	if v.size < 0 {
		v.size = plain.n
	}
	v.measured, v.outSize = true, count.n
	return nil
}

// note records a point at a record or at a binlog transaction's start, and keeps a binlog's
// Format_description event.
func (v *View) note(out, in int64, e *replication.BinlogEvent, outsideTransaction bool) {
	if e != nil {
		v.binlog = true
		if e.Header.EventType == replication.FORMAT_DESCRIPTION_EVENT {
			v.format = append([]byte(nil), e.RawData...)
		}
		if !startsTransaction(e, outsideTransaction) {
			return
		}
	}
	if out < v.points[len(v.points)-1].out+v.spacing {
		return
	}
	if len(v.points) == viewMaxPoints {
		kept := v.points[:1]
		for i := 2; i < len(v.points); i += 2 {
			kept = append(kept, v.points[i])
		}
		v.points, v.spacing = kept, 2*v.spacing
	}
	v.points = append(v.points, point{out, in, v.format})
}

// startsTransaction: the events a binlog decode can start again from, with nothing carried
// over from the events before: a GTID event, or a statement outside any GTID's transaction
// (a log without GTIDs). A row event needs its table map, so it never is one.
func startsTransaction(e *replication.BinlogEvent, outsideTransaction bool) bool {
	switch e.Header.EventType {
	case replication.GTID_EVENT, replication.ANONYMOUS_GTID_EVENT, replication.GTID_TAGGED_LOG_EVENT,
		replication.MARIADB_GTID_EVENT:
		return true
	case replication.QUERY_EVENT, replication.MARIADB_QUERY_COMPRESSED_EVENT:
		return outsideTransaction
	}
	return false
}

// plainBound is how far Measure reads the plaintext. Called with mu held.
func (v *View) plainBound() int64 {
	if v.size < 0 {
		return math.MaxInt64
	}
	return v.size
}

// PlainSize is the size of the plaintext: as given, or as Measure found it.
func (v *View) PlainSize() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.size
}

// Size is the size of the events; exact once Measure has returned.
func (v *View) Size() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.outSize
}

// ErrNotMeasured: a read before Measure.
var ErrNotMeasured = errors.New("the events' size is not known yet: Measure first")

// ReadAt reads the events at off.
func (v *View) ReadAt(p []byte, off int64) (int, error) {
	return v.ReadAtContext(context.Background(), p, off)
}

// maxCursors: decodes kept per view, for readers at different places in it.
const maxCursors = 2

// ReadAtContext is ReadAt that stops with ctx's error once ctx is done.
func (v *View) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	v.mu.Lock()
	if !v.measured {
		v.mu.Unlock()
		return 0, ErrNotMeasured
	}
	if off >= v.outSize {
		v.mu.Unlock()
		return 0, io.EOF
	}
	c, err := v.take(ctx, off, min(off+int64(len(p)), v.outSize))
	v.mu.Unlock()
	if err != nil {
		return 0, err
	}

	n, err := c.readAt(ctx, p, off, v.outSize)
	v.mu.Lock()
	c.busy = false
	if err != nil {
		v.drop(c)
	} else {
		v.stopWhenIdle(c)
	}
	if len(v.cursors) > maxCursors { // the free one furthest behind goes
		if i := slices.IndexFunc(v.cursors, func(c *cursor) bool { return !c.busy }); i >= 0 {
			v.drop(v.cursors[i])
		}
	}
	v.turn.Broadcast()
	v.mu.Unlock()
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

// take returns a cursor for the read of [off, end), marked busy: the one whose decode is
// nearest before off, once it is free and no read between the two is waiting for it; or a
// new one from the point before off; ctx's error if it is done first. Called with mu held.
func (v *View) take(ctx context.Context, off, end int64) (*cursor, error) {
	me := readSpan{off, end}
	v.waiting = append(v.waiting, me)
	defer func() {
		v.waiting = slices.Delete(v.waiting, slices.Index(v.waiting, me), slices.Index(v.waiting, me)+1)
		v.turn.Broadcast()
	}()
	var wake func() bool // wakes this read when ctx is done
	for {
		c, queued := v.nearestBefore(off)
		if c == nil {
			c = v.start(v.pointBefore(off))
			v.cursors = append(v.cursors, c)
		} else if c.busy || queued {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if wake == nil {
				wake = context.AfterFunc(ctx, func() { v.mu.Lock(); v.turn.Broadcast(); v.mu.Unlock() })
				defer wake()
			}
			v.turn.Wait()
			continue
		}
		c.busy, c.next = true, end
		v.sortCursors()
		return c, nil
	}
}

// readSpan is a read's [off, end).
type readSpan struct{ off, end int64 }

// nearestBefore returns the cursor whose next byte is nearest at or before off, within the
// spacing of points (nearer than the decode a new cursor would start with) once the reads
// queued between the two have taken it there; queued says whether there are any.
func (v *View) nearestBefore(off int64) (best *cursor, queued bool) {
	for _, c := range v.cursors {
		if c.next > off || best != nil && c.next <= best.next {
			continue
		}
		reach, between := c.next, false
		for _, w := range v.waiting {
			if w.off >= c.next && w.off < off {
				reach, between = reach+w.end-w.off, true
			}
		}
		if off-reach <= v.spacing {
			best, queued = c, between
		}
	}
	return best, queued
}

// sortCursors orders the cursors by where their next read starts, furthest behind first.
func (v *View) sortCursors() {
	slices.SortFunc(v.cursors, func(a, b *cursor) int { return cmp.Compare(a.next, b.next) })
}

// idleStop is how long a decode no read uses keeps running: its window's memory (two
// chunks) and goroutine go back then, and a read after it starts from the point before it.
var idleStop = 5 * time.Second

// stopWhenIdle drops c once no read has used it for idleStop. Called with mu held.
func (v *View) stopWhenIdle(c *cursor) {
	c.idleSince = time.Now()
	if c.idle != nil {
		c.idle.Reset(idleStop)
		return
	}
	c.idle = time.AfterFunc(idleStop, func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		if !c.busy && time.Since(c.idleSince) >= idleStop && slices.Contains(v.cursors, c) {
			v.drop(c)
		}
	})
}

// drop stops a cursor and forgets it. Called with mu held, which the decode never takes.
func (v *View) drop(c *cursor) {
	if c.idle != nil {
		c.idle.Stop()
	}
	c.stop()
	v.cursors = slices.DeleteFunc(v.cursors, func(d *cursor) bool { return d == c })
}

// pointBefore returns the last point at or before off. Called with mu held.
func (v *View) pointBefore(off int64) point {
	i := len(v.points) - 1
	for i > 0 && v.points[i].out > off {
		i--
	}
	return v.points[i]
}

// Release stops the decodes that reads left running. Reads in progress keep theirs.
func (v *View) Release() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range slices.Clone(v.cursors) {
		if !c.busy {
			v.drop(c)
		}
	}
}

// cursor is a decode running from a point, its events read through a pipe.
type cursor struct {
	out  int64 // the offset of the next byte the pipe gives
	next int64 // where the read that has it, or had it last, ends; guarded by View.mu
	busy bool  // a read has it; guarded by View.mu
	// When the last read let it go, and the timer that stops it if none takes it; guarded
	// by View.mu.
	idleSince time.Time
	idle      *time.Timer
	pipe      *io.PipeReader
	done      chan struct{}
}

// start begins decoding at pt. Called with mu held.
func (v *View) start(pt point) *cursor {
	pr, pw := io.Pipe()
	c := &cursor{out: pt.out, next: pt.out, pipe: pr, done: make(chan struct{})}
	src := io.NewSectionReader(v.src, pt.in, v.size-pt.in)
	opts, binlog := v.opts, v.binlog
	go func() {
		defer close(c.done)
		out := bufio.NewWriterSize(pw, 64<<10)
		err := decodeFrom(out, src, pt, binlog, opts)
		if err == nil {
			err = out.Flush()
		}
		pw.CloseWithError(err)
	}()
	return c
}

// readAt skips to off and fills p, up to size.
func (c *cursor) readAt(ctx context.Context, p []byte, off, size int64) (int, error) {
	if err := c.skip(ctx, off-c.out); err != nil {
		return 0, err
	}
	p = p[:min(int64(len(p)), size-off)]
	n := 0
	for n < len(p) {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, err := c.pipe.Read(p[n:])
		n += k
		c.out += int64(k)
		if err == io.EOF {
			return n, errors.New("the events ended before their measured size: the log changed")
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (c *cursor) skip(ctx context.Context, n int64) error {
	var buf [32 << 10]byte
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, err := c.pipe.Read(buf[:min(n, int64(len(buf)))])
		n -= int64(k)
		c.out += int64(k)
		if err != nil {
			return err
		}
	}
	return nil
}

// stop ends the decode and waits for it.
func (c *cursor) stop() {
	c.pipe.CloseWithError(errStopped)
	<-c.done
}

var errStopped = errors.New("stopped")

// decodeFrom writes the events from point pt on to w; r is the plaintext from pt on.
func decodeFrom(w io.Writer, r io.Reader, pt point, binlog bool, opts Options) error {
	switch {
	case binlog && pt.in > 0:
		return resumeBinlog(w, bufio.NewReaderSize(r, 256<<10), pt.format, pt.in, opts)
	case pt.in > 0:
		return writeAuditFrom(w, bufio.NewReaderSize(r, 256<<10), pt.in, opts)
	}
	return decode(w, r, opts)
}

// decode writes the events of plaintext from its start to w, unbuffered above w.
func decode(w io.Writer, r io.Reader, opts Options) error {
	br := bufio.NewReaderSize(r, 256<<10)
	head, _ := br.Peek(len(binlogMagic))
	switch {
	case bytes.Equal(head, binlogMagic):
		return writeBinlog(w, br, opts)
	case len(head) > 0:
		return writeAudit(w, br, opts)
	}
	return nil
}

// writeAuditFrom writes the records of an audit log from the record at from, where r starts.
func writeAuditFrom(w io.Writer, r *bufio.Reader, from int64, opts Options) error {
	head, _ := r.Peek(1)
	if len(head) == 1 && head[0] == '{' {
		return writeJSONRecordsFrom(w, r, from, opts)
	}
	return writeXMLRecordsFrom(w, r, from, opts)
}

// countingReader counts what is read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// ctxReader stops reading once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
