package crypto

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"sync"

	"github.com/mysqllogfs/mysqllogfs/keysrc"
)

// MariaDB 10.1.7+ encrypted binary logs (docs/formats.md section 4): a plain binlog start
// (magic, Format_description), a Start_encryption event, then every event encrypted on its
// own, its length left readable. The view keeps every event at its offset: the
// Start_encryption event becomes an ignorable event of the same length, every other event is
// the server's plaintext.
const (
	startEncryptionEvent = 164
	ignorableEvent       = 28   // readers skip it
	ignorableFlag        = 0x80 // LOG_EVENT_IGNORABLE_F
	mariadbNonceSize     = 12
	mariadbKeyID         = "1" // file_key_management's key for binlogs
)

// maxStartEncryption bounds the Start_encryption event: 19 bytes of header, 17 of body, and a
// checksum; a little room for what a later server may add.
const maxStartEncryption = 256

// mariadbStart is what the cleartext start of a MariaDB encrypted binlog says.
type mariadbStart struct {
	fdeEnd     int64 // where the Start_encryption event begins
	startLen   int64
	checksums  bool
	keyVersion uint32
	nonce      [mariadbNonceSize]byte
}

// parseMariaDBStart recognises magic, Format_description and Start_encryption in head.
func parseMariaDBStart(head []byte) (mariadbStart, bool) {
	var s mariadbStart
	if len(head) < 4+eventHeaderSize || string(head[:4]) != string(binlogMagic) || head[4+4] != formatDescription {
		return s, false
	}
	fdeLen := int64(binary.LittleEndian.Uint32(head[4+eventLengthOffset:]))
	s.fdeEnd = 4 + fdeLen
	if fdeLen < eventHeaderSize+5 || int64(len(head)) < s.fdeEnd+eventHeaderSize+1+4+mariadbNonceSize {
		return s, false
	}
	s.checksums = head[s.fdeEnd-5] == checksumCRC32
	ev := head[s.fdeEnd:]
	if ev[4] != startEncryptionEvent {
		return s, false
	}
	s.startLen = int64(binary.LittleEndian.Uint32(ev[eventLengthOffset:]))
	body := ev[eventHeaderSize:]
	s.keyVersion = binary.LittleEndian.Uint32(body[1:])
	copy(s.nonce[:], body[5:])
	return s, true
}

// mariadbBinlog is a MariaDB 10.1.7+ encrypted binary log.
type mariadbBinlog struct{}

func (mariadbBinlog) recognise(name string, head []byte) (Info, bool) {
	_, ok := parseMariaDBStart(head)
	return Info{Kind: KindMariaDBBinlog, PlainName: name, KeyID: mariadbKeyID, Encrypted: true}, ok
}

func (mariadbBinlog) open(o opening) (plaintext, error) {
	return openMariaDBBinlog(o.src, o.size, o.head, o.keys, previous[*mariadbReader](o.opts))
}

func (mariadbBinlog) check(plain io.Reader) (int, error) {
	return checkBinlog(bufio.NewReaderSize(plain, 1<<20))
}

// mariadbReader serves the decrypted view. Event offsets are indexed once at open, from the
// cleartext lengths; a read decrypts only the events it touches.
type mariadbReader struct {
	src    io.ReaderAt
	head   []byte  // the view of [0, first encrypted event): magic, FDE, ignorable event
	events []int64 // start offsets of the encrypted events, and their end as the last entry
	block  cipher.Block
	ctr    bool // AES-CTR; else AES-CBC without padding
	start  mariadbStart

	mu       sync.Mutex // guards the last decrypted event, for reads smaller than an event
	lastPos  int64
	lastData []byte
}

func openMariaDBBinlog(src io.ReaderAt, size int64, head []byte, keys keysrc.Source, prev *mariadbReader) (*mariadbReader, error) {
	start, _ := parseMariaDBStart(head)
	if prev != nil && prev.start == start && prev.Size() <= size {
		return prev.grown(src, size)
	}
	key, err := lookup(keys, mariadbKeyID, keysrc.AnyOwner)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: MariaDB key %s is %d bytes; AES keys are 16, 24 or 32", ErrWrongKey, mariadbKeyID, len(key))
	}
	r := &mariadbReader{src: src, block: block, start: start, lastPos: -1}
	firstEncrypted := start.fdeEnd + start.startLen
	if start.startLen < eventHeaderSize+1+4+mariadbNonceSize || start.startLen > maxStartEncryption || firstEncrypted > size {
		// A length field is not allowed to size an allocation the file cannot fill.
		return nil, fmt.Errorf("%w: the Start_encryption event claims %d bytes", ErrCorrupt, start.startLen)
	}
	r.head = make([]byte, firstEncrypted)
	if _, err := src.ReadAt(r.head, 0); err != nil {
		return nil, readError(err, "reading the binlog start")
	}
	r.rewriteStartEncryption()
	if r.events, err = indexEvents(src, firstEncrypted, size); err != nil {
		return nil, err
	}
	if err := r.pickCipher(); err != nil {
		return nil, err
	}
	return r, nil
}

// grown continues prev's index over the file as it is now: a binlog the server appends to.
func (prev *mariadbReader) grown(src io.ReaderAt, size int64) (*mariadbReader, error) {
	indexed := prev.events[:len(prev.events)-1]
	more, err := indexEvents(src, prev.Size(), size)
	if err != nil {
		return nil, err
	}
	r := &mariadbReader{src: src, head: prev.head, block: prev.block, ctr: prev.ctr, start: prev.start, lastPos: -1}
	r.events = append(append(make([]int64, 0, len(indexed)+len(more)), indexed...), more...)
	if len(indexed) == 0 {
		if err := r.pickCipher(); err != nil { // the first encrypted event has just arrived
			return nil, err
		}
	}
	return r, nil
}

// rewriteStartEncryption turns the Start_encryption event into an ignorable one of the same
// length, zero body, valid checksum.
func (r *mariadbReader) rewriteStartEncryption() {
	ev := r.head[r.start.fdeEnd:]
	ev[4] = ignorableEvent
	binary.LittleEndian.PutUint16(ev[17:], binary.LittleEndian.Uint16(ev[17:])|ignorableFlag)
	clear(ev[eventHeaderSize:])
	if r.start.checksums {
		binary.LittleEndian.PutUint32(ev[len(ev)-4:], crc32.ChecksumIEEE(ev[:len(ev)-4]))
	}
}

// indexEvents walks the cleartext event lengths. A trailing event not yet complete (a binlog
// still being written) is left out.
func indexEvents(src io.ReaderAt, from, size int64) ([]int64, error) {
	walk := NewEventWalker(io.NewSectionReader(src, from, size-from), from)
	events := []int64{}
	pos := from
	for {
		e, err := walk.Next()
		switch {
		case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
			return append(events, pos), nil // the end, or an event not yet complete
		case err != nil && isIOError(err):
			return nil, readError(err, "indexing the event at offset %d", pos)
		case err != nil:
			return nil, err
		}
		if e.Pos+e.Length > size {
			return append(events, pos), nil
		}
		events = append(events, pos)
		pos += e.Length
	}
}

// pickCipher finds which of AES-CBC and AES-CTR the server used (the file does not say) by
// decrypting the first encrypted event both ways; a wrong key fits neither.
func (r *mariadbReader) pickCipher() error {
	if len(r.events) < 2 {
		return nil // no encrypted event yet
	}
	for _, ctr := range []bool{false, true} {
		r.ctr = ctr
		if _, err := r.decryptEvent(0); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: MariaDB key %s decrypts the first event neither as AES-CBC nor as AES-CTR", ErrWrongKey, mariadbKeyID)
}

// decryptEvent returns the plaintext of encrypted event i, checked.
func (r *mariadbReader) decryptEvent(i int) ([]byte, error) {
	pos, end := r.events[i], r.events[i+1]
	buf := make([]byte, end-pos)
	if _, err := r.src.ReadAt(buf, pos); err != nil {
		return nil, readError(err, "reading the event at offset %d", pos)
	}
	// The writer stored C[5:9] at 0..3, C[0:5] at 4..8 and the length at 9..12: put the
	// ciphertext back together in buf[4:], decrypt, and restore timestamp and length.
	copy(buf[eventLengthOffset:eventLengthOffset+4], buf[0:4])
	r.decrypt(buf[4:], pos)
	copy(buf[0:4], buf[eventLengthOffset:eventLengthOffset+4])
	binary.LittleEndian.PutUint32(buf[eventLengthOffset:], uint32(len(buf)))
	if endPos := binary.LittleEndian.Uint32(buf[eventEndPosOffset:]); endPos != uint32(end) {
		return nil, fmt.Errorf("%w: event at offset %d decrypts to end_log_pos %d, not %d", ErrCorrupt, pos, endPos, end)
	}
	if r.start.checksums && crc32.ChecksumIEEE(buf[:len(buf)-4]) != binary.LittleEndian.Uint32(buf[len(buf)-4:]) {
		return nil, fmt.Errorf("%w: event at offset %d: CRC32 mismatch after decryption", ErrCorrupt, pos)
	}
	return buf, nil
}

// decrypt deciphers an event's encrypted part in place. The IV is the nonce followed by the
// event's offset. AES-CBC has no padding: a trailing partial block is XORed with the
// encrypted IV.
func (r *mariadbReader) decrypt(b []byte, pos int64) {
	var iv [aes.BlockSize]byte
	copy(iv[:], r.start.nonce[:])
	binary.LittleEndian.PutUint32(iv[mariadbNonceSize:], uint32(pos))
	if r.ctr {
		cipher.NewCTR(r.block, iv[:]).XORKeyStream(b, b)
		return
	}
	whole := len(b) / aes.BlockSize * aes.BlockSize
	if whole > 0 {
		cipher.NewCBCDecrypter(r.block, iv[:]).CryptBlocks(b[:whole], b[:whole])
	}
	if tail := b[whole:]; len(tail) > 0 {
		var pad [aes.BlockSize]byte
		r.block.Encrypt(pad[:], iv[:])
		for i := range tail {
			tail[i] ^= pad[i]
		}
	}
}

func (r *mariadbReader) Size() int64 { return r.events[len(r.events)-1] }

func (r *mariadbReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	n := 0
	if off < int64(len(r.head)) {
		n = copy(p, r.head[off:])
	}
	for n < len(p) && off+int64(n) < r.Size() {
		at := off + int64(n)
		i := sort.Search(len(r.events)-1, func(i int) bool { return r.events[i+1] > at })
		event, err := r.event(i)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], event[at-r.events[i]:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// event returns event i decrypted, keeping the last one for reads that come in pieces.
func (r *mariadbReader) event(i int) ([]byte, error) {
	r.mu.Lock()
	if r.lastPos == r.events[i] {
		defer r.mu.Unlock()
		return r.lastData, nil
	}
	r.mu.Unlock()
	data, err := r.decryptEvent(i)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.lastPos, r.lastData = r.events[i], data
	r.mu.Unlock()
	return data, nil
}
