package events

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// withoutChecksums rewrites a CRC32 binlog's events (after the magic) as binlog_checksum=NONE.
func withoutChecksums(t *testing.T, log []byte) []byte {
	t.Helper()
	out := []byte{}
	for pos := 4; pos < len(log); {
		size := int(binary.LittleEndian.Uint32(log[pos+9:]))
		ev := append([]byte(nil), log[pos:pos+size]...)
		pos += size
		if ev[4] == 15 { // Format_description: alg NONE, checksum field kept
			ev[len(ev)-5] = 0
			copy(ev[len(ev)-4:], []byte{0, 0, 0, 0})
		} else {
			ev = ev[:len(ev)-4]
			binary.LittleEndian.PutUint32(ev[9:], uint32(len(ev)))
		}
		out = append(out, ev...)
	}
	return out
}

// compareView reads a view backwards, so that each read starts again from a point, against
// Write.
func compareView(t *testing.T, name string, plain []byte, opts Options) {
	t.Helper()
	var want bytes.Buffer
	if err := Write(&want, bytes.NewReader(plain), opts); err != nil {
		t.Fatalf("%s: Write: %v", name, err)
	}
	v := NewView(bytes.NewReader(plain), int64(len(plain)), opts)
	v.spacing = 4096
	if err := v.Measure(context.Background()); err != nil {
		t.Fatalf("%s: Measure: %v", name, err)
	}
	defer v.Release()
	if v.Size() != int64(want.Len()) {
		t.Fatalf("%s: size %d, Write %d", name, v.Size(), want.Len())
	}
	bad := 0
	// backwards so that each read starts again from a point
	for off := int64(want.Len()) - 1000; off > 0; off -= 5000 {
		buf := make([]byte, 1000)
		n, err := v.ReadAt(buf, off)
		if err != nil && err != io.EOF || !bytes.Equal(buf[:n], want.Bytes()[off:off+int64(n)]) {
			if bad < 3 {
				t.Errorf("%s: ReadAt(%d): %d bytes, %v", name, off, n, err)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d reads differ from Write (%d points)", name, bad, len(v.points))
	}
}

// A relay log may hold several Format_description events, here with binlog_checksum NONE,
// then CRC32, and the other way round: each point resumes with the one in effect there.
// Before, every resumed read used the last one: wrong bytes without an error, or EIO. (From
// the review of mount --events.)
func TestViewResumesWithTheFormatInEffect(t *testing.T) {
	var a, b bytes.Buffer
	sample.Binlog(&a, 64<<10, 1, "x.000002")
	sample.Binlog(&b, 64<<10, 2, "x.000003")
	plain := append([]byte(nil), sample.BinlogMagic...)
	plain = append(plain, withoutChecksums(t, a.Bytes())...)
	plain = append(plain, b.Bytes()[4:]...)
	compareView(t, "NONE then CRC32", plain, Options{File: "relay.000001", Unfinished: true})
	plain = append(append([]byte(nil), a.Bytes()...), withoutChecksums(t, b.Bytes())...)
	compareView(t, "CRC32 then NONE", plain, Options{File: "relay.000001", Unfinished: true})
}

// A rotated XML log with a closed <AUDIT> section, then one the server never closed: resumed
// reads in the last section give what Write gives. Before, they failed with EIO.
func TestViewResumesInAnUnclosedSection(t *testing.T) {
	var a, b bytes.Buffer
	sample.AuditLog(&a, sample.AuditXML, 64<<10, 1, true)
	sample.AuditLog(&b, sample.AuditXML, 64<<10, 2, false)
	second := b.String()[strings.Index(b.String(), "<AUDIT>"):]
	compareView(t, "xml", []byte(a.String()+"\n"+second), Options{File: "audit.20240101T000000.log"})
}

// The binlog a server is writing carries LOG_EVENT_BINLOG_IN_USE_F in its first event's
// header, which its checksum leaves out: its events are those of the same binlog closed.
// Before, go-mysql refused its checksum and the live binlog had no events.
func TestEventsOfTheBinlogInUse(t *testing.T) {
	var closed bytes.Buffer
	sample.Binlog(&closed, 64<<10, 3, "x.000002")
	inUse := append([]byte(nil), closed.Bytes()...)
	inUse[4+firstEventFlags] |= binlogInUse
	var want, got bytes.Buffer
	if err := Write(&want, bytes.NewReader(closed.Bytes()), Options{File: "x.000001"}); err != nil {
		t.Fatal(err)
	}
	if err := Write(&got, bytes.NewReader(inUse), Options{File: "x.000001"}); err != nil || got.String() != want.String() {
		t.Fatalf("in use: %v, %d bytes of %d", err, got.Len(), want.Len())
	}
	compareView(t, "in use", inUse, Options{File: "x.000001"})
}

// A read queued behind another's decode stops when its context is done, though the decode it
// waits for is still at work: an interrupted reader does not wait for someone else's read.
func TestQueuedReadStopsWhenCancelled(t *testing.T) {
	var doc bytes.Buffer
	sample.AuditLog(&doc, sample.AuditXML, 8<<20, 5, true)
	src := &gatedReader{r: bytes.NewReader(doc.Bytes()), gate: make(chan struct{})}
	v := NewView(src, int64(doc.Len()), Options{File: "audit.log"})
	if err := v.Measure(context.Background()); err != nil {
		t.Fatal(err)
	}
	src.closed.Store(true) // from now on the plaintext reads only once the gate opens
	first := make(chan error)
	go func() { _, err := v.ReadAt(make([]byte, 4<<20), 0); first <- err }()
	for !src.waiting.Load() {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() { _, err := v.ReadAtContext(ctx, make([]byte, 128<<10), 4<<20); second <- err }()
	time.Sleep(20 * time.Millisecond) // let it queue behind the first
	cancel()
	select {
	case err := <-second:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the cancelled read: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the cancelled read waits for the other read's decode")
		defer func() { <-second }()
	}
	close(src.gate)
	if err := <-first; err != nil {
		t.Errorf("the first read: %v", err)
	}
	v.Release()
}

// gatedReader reads only once gate is open while closed is set, and says when a read waits.
type gatedReader struct {
	r       io.ReaderAt
	gate    chan struct{}
	closed  atomic.Bool
	waiting atomic.Bool
}

func (g *gatedReader) ReadAt(p []byte, off int64) (int, error) {
	if g.closed.Load() {
		g.waiting.Store(true)
		<-g.gate
	}
	return g.r.ReadAt(p, off)
}

// A decode no read has used for a while stops, giving back its memory and goroutine; the
// next read starts one again and reads the same bytes.
func TestIdleDecodeStops(t *testing.T) {
	defer func(d time.Duration) { idleStop = d }(idleStop)
	idleStop = 50 * time.Millisecond
	var doc, want bytes.Buffer
	sample.AuditLog(&doc, sample.AuditXML, 4<<20, 5, true)
	if err := Write(&want, bytes.NewReader(doc.Bytes()), Options{File: "audit.log"}); err != nil {
		t.Fatal(err)
	}
	v := NewView(bytes.NewReader(doc.Bytes()), int64(doc.Len()), Options{File: "audit.log"})
	if err := v.Measure(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	for _, off := range []int64{100, 200 << 10} {
		got := make([]byte, 64<<10)
		if _, err := v.ReadAt(got, off); err != nil || !bytes.Equal(got, want.Bytes()[off:off+int64(len(got))]) {
			t.Fatalf("the read at %d: %v, or other bytes", off, err)
		}
		v.mu.Lock()
		running := len(v.cursors)
		v.mu.Unlock()
		if running != 1 {
			t.Fatalf("after a read, %d decodes run, want 1", running)
		}
		for deadline := time.Now().Add(10 * time.Second); running > 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			v.mu.Lock()
			running = len(v.cursors)
			v.mu.Unlock()
		}
		if running > 0 {
			t.Fatalf("a decode idle for %v still runs", idleStop)
		}
	}
}

// The view of a log that has grown continues the older version's index: its Measure reads
// only from the older one's last point on, and gives every byte Write gives for the whole
// log, for binlogs and XML audit logs cut anywhere, even inside an event (a JSON one is
// measured whole, and gives them too).
func TestGrownViewDecodesOnlyWhatIsNew(t *testing.T) {
	var rows, xmlLog, jsonLog bytes.Buffer
	sample.RowBinlog(&rows, 1<<20, 1, "binlog.000002")
	sample.AuditLog(&xmlLog, sample.AuditXML, 1<<20, 2, false)
	sample.AuditLog(&jsonLog, sample.AuditJSON, 1<<20, 3, false)
	for name, log := range map[string][]byte{"binlog.000001": rows.Bytes(), "audit.log (XML)": xmlLog.Bytes(), "audit.log (JSON)": jsonLog.Bytes()} {
		opts := Options{File: name, Unfinished: true}
		var want bytes.Buffer
		if err := Write(&want, bytes.NewReader(log), opts); err != nil {
			t.Fatalf("%s: Write: %v", name, err)
		}
		older := NewView(bytes.NewReader(log[:len(log)/3+7]), -1, opts)
		older.spacing = 4096
		if err := older.Measure(context.Background()); err != nil {
			t.Fatalf("%s: the oldest version: %v", name, err)
		}
		older = older.Index().Grown(bytes.NewReader(log[:len(log)*2/3+7]), -1) // grown twice
		if err := older.Measure(context.Background()); err != nil {
			t.Fatalf("%s: the older version: %v", name, err)
		}
		last := older.points[len(older.points)-1].in
		src := &lowestRead{r: bytes.NewReader(log), lowest: int64(len(log))}
		grown := older.Index().Grown(src, -1)
		if err := grown.Measure(context.Background()); err != nil {
			t.Fatalf("%s: the grown version: %v", name, err)
		}
		isJSON := strings.Contains(name, "JSON") // measured whole: see TestGrownJSONKeepsTheArrayChecks
		if !isJSON && (src.lowest < last || last == 0) {
			t.Errorf("%s: the grown version's decode read from byte %d; the older one's last point is at %d", name, src.lowest, last)
		}
		if grown.Size() != int64(want.Len()) || grown.PlainSize() != int64(len(log)) {
			t.Fatalf("%s: grown: %d bytes of events of %d plaintext; Write: %d of %d", name, grown.Size(), grown.PlainSize(), want.Len(), len(log))
		}
		for off := int64(want.Len()) - 1000; off > 0; off -= 5000 { // backwards: from the points, old and new
			got := make([]byte, 1000)
			if n, err := grown.ReadAt(got, off); n != len(got) || !bytes.Equal(got, want.Bytes()[off:off+1000]) {
				t.Fatalf("%s: the grown view at %d reads %d bytes (%v), other than Write's", name, off, n, err)
			}
		}
		grown.Release()
	}
}

// lowestRead remembers the lowest offset read.
type lowestRead struct {
	r      io.ReaderAt
	mu     sync.Mutex
	lowest int64
}

func (l *lowestRead) ReadAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	l.lowest = min(l.lowest, off)
	l.mu.Unlock()
	return l.r.ReadAt(p, off)
}

// cancelAfter cancels its context once a read reaches past offset at.
type cancelAfter struct {
	r      io.ReaderAt
	at     int64
	cancel context.CancelFunc
	armed  atomic.Bool
}

func (c *cancelAfter) ReadAt(p []byte, off int64) (int, error) {
	if c.armed.Load() && off+int64(len(p)) > c.at {
		c.cancel()
	}
	return c.r.ReadAt(p, off)
}

// A Measure interrupted half way leaves no points for the next to resume from: a resumed
// decode skips the checks of a whole pass, and a rotated XML log that lacks </AUDIT> (cut
// short) would then be measured without an error, though a Measure never interrupted
// refuses it. (From review.)
func TestInterruptedMeasureKeepsItsChecks(t *testing.T) {
	var log bytes.Buffer
	sample.AuditLog(&log, sample.AuditXML, 8<<20, 2, false) // no </AUDIT>
	plain := log.Bytes()
	opts := Options{File: "audit.20240101T000000.log"} // rotated: not Unfinished

	fresh := NewView(bytes.NewReader(plain), int64(len(plain)), opts)
	if err := fresh.Measure(context.Background()); !errors.Is(err, ErrBadLog) {
		t.Fatalf("uninterrupted Measure: %v, want ErrBadLog", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	src := &cancelAfter{r: bytes.NewReader(plain), at: int64(len(plain)) / 2, cancel: cancel}
	src.armed.Store(true)
	v := NewView(src, int64(len(plain)), opts)
	if err := v.Measure(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Measure: %v", err)
	}
	if len(v.points) != 1 {
		t.Errorf("%d points after the interrupted Measure, want the start only", len(v.points))
	}
	src.armed.Store(false)
	if err := v.Measure(context.Background()); !errors.Is(err, ErrBadLog) {
		t.Errorf("Measure after an interrupted one: %v (size %d), want ErrBadLog as without the interruption", err, v.Size())
	}
}

// Reads at random offsets, some cancelled, with decodes stopped after 1 ms idle and Release
// called meanwhile: every read that succeeds gives Write's bytes, nothing deadlocks, and no
// decode is left. (From review.)
func TestViewUnderStress(t *testing.T) {
	defer func(d time.Duration) { idleStop = d }(idleStop)
	idleStop = time.Millisecond
	var doc, want bytes.Buffer
	sample.AuditLog(&doc, sample.AuditXML, 4<<20, 5, true)
	if err := Write(&want, bytes.NewReader(doc.Bytes()), Options{File: "audit.log"}); err != nil {
		t.Fatal(err)
	}
	v := NewView(bytes.NewReader(doc.Bytes()), int64(doc.Len()), Options{File: "audit.log"})
	v.spacing = 64 << 10
	if err := v.Measure(context.Background()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
				v.Release()
			}
		}
	})
	var readers sync.WaitGroup
	for k := range 6 {
		readers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(k), 9))
			off := rng.Int64N(int64(want.Len()))
			for range 300 {
				if rng.IntN(4) == 0 {
					off = rng.Int64N(int64(want.Len()))
				}
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(5) == 0 {
					time.AfterFunc(time.Duration(rng.IntN(500))*time.Microsecond, cancel)
				}
				p := make([]byte, 1+rng.IntN(128<<10))
				n, err := v.ReadAtContext(ctx, p, off)
				cancel()
				if err != nil && err != io.EOF && !errors.Is(err, context.Canceled) {
					t.Errorf("read at %d: %v", off, err)
					return
				}
				if !bytes.Equal(p[:n], want.Bytes()[off:off+int64(n)]) {
					t.Errorf("read at %d: other bytes", off)
					return
				}
				if err == nil {
					off += int64(n)
				}
				if off >= int64(want.Len()) {
					off = 0
				}
				if rng.IntN(20) == 0 {
					time.Sleep(2 * time.Millisecond)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		t.Fatal("deadlock")
	}
	close(stop)
	wg.Wait()
	v.Release()
	time.Sleep(20 * time.Millisecond)
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.cursors) != 0 {
		t.Errorf("%d cursors after Release", len(v.cursors))
	}
}

// A JSON audit log that grows is measured whole: what a pass from its start refuses after
// the older version's end (a missing comma, records after the ]) is refused by the grown
// view too. (From review.)
func TestGrownJSONKeepsTheArrayChecks(t *testing.T) {
	var log bytes.Buffer
	sample.AuditLog(&log, sample.AuditJSON, 1<<20, 3, false) // "[\n{...},\n{...}": still open
	older := log.Bytes()
	opts := Options{File: "audit.log", Unfinished: true}
	for name, tail := range map[string]string{
		"no comma":        "\n{\"id\": 1}\n{\"id\": 2}",
		"two commas":      ",\n,\n{\"id\": 1}",
		"records after ]": "\n]\n,{\"id\": 1}",
		"comma then ]":    ",\n]",
	} {
		grownLog := append(bytes.Clone(older), tail...)
		whole := Write(&bytes.Buffer{}, bytes.NewReader(grownLog), opts)
		fresh := NewView(bytes.NewReader(grownLog), int64(len(grownLog)), opts)
		freshErr := fresh.Measure(context.Background())

		v := NewView(bytes.NewReader(older), int64(len(older)), opts)
		v.spacing = 4096
		if err := v.Measure(context.Background()); err != nil {
			t.Fatal(err)
		}
		g := v.Index().Grown(bytes.NewReader(grownLog), int64(len(grownLog)))
		grownErr := g.Measure(context.Background())
		if !errors.Is(whole, ErrBadLog) || !errors.Is(freshErr, ErrBadLog) {
			t.Fatalf("%s: Write: %v, a fresh view: %v; want both to refuse it", name, whole, freshErr)
		}
		if grownErr == nil {
			t.Errorf("%s: Write and a fresh view refuse the grown log; the grown view measures %d bytes of events", name, g.Size())
		}
	}
}
