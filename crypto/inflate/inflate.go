package inflate

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// inflater decodes one raw deflate stream (RFC 1951) from a bufio.Reader, leaving the reader
// at the byte after the stream's last block, where a gzip trailer starts. It reports a
// checkpoint at the end of every block but the last, and resumes from one: that is what the
// gzip index is built of.
//
// It replaces klauspost/compress/flate's decoder for reading because the first read of a
// compressed log is bound by one core's decoding: this one loads 8 input bytes at a time,
// decodes a literal or a whole length/distance pair per load from 11-bit tables, and copies
// matches 8 bytes (or a memmove) at a time: about 1.45x klauspost's speed on audit logs
// (BenchmarkInflate). klauspost/compress still writes gzip for the tests and the demo, and is
// what FuzzInflate holds this decoder to.
type inflater struct {
	br       *bufio.Reader
	in       []byte // br's buffered bytes, peeked; in[:pos] are in bitbuf or used
	pos      int
	consumed int64 // bytes discarded from br since the stream's first byte
	bitbuf   uint64
	bitcnt   uint
	inEOF    bool  // in holds the last of br's bytes: a symbol that needs more is a truncation
	inErr    error // why br has no more bytes, when that is not the end of the input

	hist []byte // up to inflateWindow bytes of history, then output
	lo   int    // hist[lo:] is valid history or output
	rd   int    // hist[rd:wr] is decoded output not yet read
	wr   int
	base int64 // stream offset of hist[0] (negative before the first slide)

	state      int // what the next step decodes
	final      bool
	storedLeft int
	lit, dist  huffmanTable
	curLit     *huffmanTable
	curDist    *huffmanTable
	onBlockEnd func(inflateCheckpoint)
	err        error
}

// inflateCheckpoint is a block boundary of a deflate stream: decoding resumes there with the
// window of output before it.
type inflateCheckpoint struct {
	uoff   int64  // output bytes before the boundary
	bit    int64  // bits of input before the boundary
	window []byte // the last up to 32 KiB of output; plaintext
}

const (
	inflateWindow = 32 << 10
	inflateOutput = 128 << 10 // decoded per step before the output is handed out
	maxMatch      = 258
	copySlack     = 8 // matches are copied in 8-byte words and may write this far past their end
)

// What an inflater's next step decodes.
const (
	stateHeader = iota
	stateStored
	stateHuffman
	stateDone
)

var errDeflate = errors.New("invalid deflate data")

// newInflater starts decoding at the beginning of a deflate stream, or at checkpoint cp. br
// must be at the stream's first byte, or at the checkpoint's byte (cp.bit/8).
func newInflater(br *bufio.Reader, cp *inflateCheckpoint, onBlockEnd func(inflateCheckpoint)) *inflater {
	return new(inflater).reset(br, cp, onBlockEnd)
}

// reset starts f on another stream, as newInflater does, keeping its buffers: a gzip stream
// of many small members costs a header and a trailer per member, not 160 KiB of allocation.
func (f *inflater) reset(br *bufio.Reader, cp *inflateCheckpoint, onBlockEnd func(inflateCheckpoint)) *inflater {
	hist, lit, dist := f.hist, f.lit, f.dist
	if hist == nil {
		hist = make([]byte, inflateWindow+inflateOutput+maxMatch+copySlack)
	}
	*f = inflater{br: br, hist: hist, lit: lit, dist: dist, onBlockEnd: onBlockEnd}
	f.lo, f.rd, f.wr = inflateWindow, inflateWindow, inflateWindow
	f.base = -inflateWindow
	if cp != nil {
		f.lo = inflateWindow - len(cp.window)
		copy(f.hist[f.lo:], cp.window)
		f.base = cp.uoff - inflateWindow
		f.consumed = cp.bit / 8
		if skip := uint(cp.bit % 8); skip > 0 {
			f.refill()
			if f.bitcnt < skip {
				f.err = f.truncated()
				return f
			}
			f.bitbuf >>= skip
			f.bitcnt -= skip
		}
	}
	return f
}

// Read returns decoded bytes; io.EOF after the last block, with br just past the stream.
func (f *inflater) Read(p []byte) (int, error) {
	for f.rd == f.wr {
		if f.err != nil {
			return 0, f.err
		}
		f.step()
	}
	n := copy(p, f.hist[f.rd:f.wr])
	f.rd += n
	return n, nil
}

// step decodes some output: the rest of a block, or up to inflateOutput bytes of it.
func (f *inflater) step() {
	if f.wr >= inflateWindow+inflateOutput {
		f.slide()
	}
	switch f.state {
	case stateHeader:
		f.err = f.blockHeader()
	case stateStored:
		f.err = f.stored()
	case stateHuffman:
		f.err = f.huffman()
	case stateDone:
		f.giveBack()
		f.err = io.EOF
	}
	if f.err != nil && f.err != io.EOF {
		f.giveBack()
		f.state = stateDone
	}
}

// slide keeps the window's worth of history before the next output.
func (f *inflater) slide() {
	keep := min(f.wr-f.lo, inflateWindow)
	copy(f.hist[inflateWindow-keep:], f.hist[f.wr-keep:f.wr])
	f.base += int64(f.wr - inflateWindow)
	f.lo, f.rd, f.wr = inflateWindow-keep, inflateWindow, inflateWindow
}

// endBlock moves to the next block header, reporting a checkpoint unless this was the last.
func (f *inflater) endBlock() {
	if f.final {
		f.state = stateDone
		return
	}
	f.state = stateHeader
	if f.onBlockEnd != nil {
		f.onBlockEnd(inflateCheckpoint{
			uoff:   f.base + int64(f.wr),
			bit:    (f.consumed+int64(f.pos))*8 - int64(f.bitcnt),
			window: f.hist[max(f.lo, f.wr-inflateWindow):f.wr],
		})
	}
}

// refill tops the bit buffer up to at least 56 bits, or to what the input has left.
func (f *inflater) refill() {
	for f.bitcnt <= 56 {
		if f.pos+8 <= len(f.in) {
			f.bitbuf |= binary.LittleEndian.Uint64(f.in[f.pos:]) << f.bitcnt
			n := (63 - f.bitcnt) >> 3
			f.pos += int(n)
			f.bitcnt += n * 8
			return
		}
		if f.pos < len(f.in) {
			f.bitbuf |= uint64(f.in[f.pos]) << f.bitcnt
			f.pos++
			f.bitcnt += 8
			continue
		}
		if f.inEOF || !f.nextInput() {
			return
		}
	}
}

// nextInput gives the whole bytes still in the bit buffer back to br, drops what was used
// and peeks the next buffer; false at the end of the input.
func (f *inflater) nextInput() bool {
	f.giveBack()
	f.br.Discard(f.pos)
	f.consumed += int64(f.pos)
	in, err := f.br.Peek(f.br.Size()) // short only at the end of the input, or on an error
	f.in, f.pos = in, 0
	if err != nil {
		f.inEOF = true
		if err != io.EOF {
			f.inErr = err // a read error, reported where the data runs out
		}
	}
	return len(in) > 0
}

// giveBack returns the whole unused bytes of the bit buffer to the input, so that br can be
// positioned exactly where the deflate data ends.
func (f *inflater) giveBack() {
	whole := f.bitcnt / 8
	f.pos -= int(whole)
	f.bitcnt -= whole * 8
	f.bitbuf &= 1<<f.bitcnt - 1
	if f.state == stateDone || f.err != nil {
		f.br.Discard(f.pos)
		f.consumed += int64(f.pos)
		f.in, f.pos = nil, 0
	}
}

// bits reads n (at most 32) bits.
func (f *inflater) bits(n uint) (uint32, error) {
	if f.bitcnt < n {
		f.refill()
		if f.bitcnt < n {
			return 0, f.truncated()
		}
	}
	v := uint32(f.bitbuf & (1<<n - 1))
	f.bitbuf >>= n
	f.bitcnt -= n
	return v, nil
}

func (f *inflater) blockHeader() error {
	header, err := f.bits(3)
	if err != nil {
		return err
	}
	f.final = header&1 == 1
	switch header >> 1 {
	case 0:
		f.bitbuf >>= f.bitcnt % 8 // to the byte boundary
		f.bitcnt -= f.bitcnt % 8
		length, err := f.bits(16)
		if err != nil {
			return err
		}
		check, err := f.bits(16)
		if err != nil {
			return err
		}
		if length != ^check&0xffff {
			return fmt.Errorf("%w: stored block length does not match its complement", errDeflate)
		}
		f.storedLeft, f.state = int(length), stateStored
	case 1:
		f.curLit, f.curDist, f.state = &fixedLit, &fixedDist, stateHuffman
	case 2:
		if err := f.dynamicTables(); err != nil {
			return err
		}
		f.curLit, f.curDist, f.state = &f.lit, &f.dist, stateHuffman
	default:
		return fmt.Errorf("%w: reserved block type 3", errDeflate)
	}
	return nil
}

// stored copies a stored block's bytes, as far as the output has room.
func (f *inflater) stored() error {
	for f.storedLeft > 0 && f.wr < len(f.hist)-maxMatch-copySlack {
		if f.bitcnt >= 8 { // whole bytes loaded before the block's length was known
			b, _ := f.bits(8)
			f.hist[f.wr] = byte(b)
			f.wr++
			f.storedLeft--
			continue
		}
		f.bitbuf = 0 // drop what a word load read past bitcnt: those bytes are copied below
		if f.pos == len(f.in) && (f.inEOF || !f.nextInput()) {
			return f.truncated()
		}
		n := copy(f.hist[f.wr:min(len(f.hist)-maxMatch-copySlack, f.wr+f.storedLeft)], f.in[f.pos:])
		f.pos += n
		f.wr += n
		f.storedLeft -= n
	}
	if f.storedLeft == 0 {
		f.endBlock()
	}
	return nil
}

// huffman decodes a compressed block until its end or until the output is full.
func (f *inflater) huffman() error {
	bitbuf, bitcnt := f.bitbuf, f.bitcnt
	in, pos := f.in, f.pos
	hist, wr := f.hist, f.wr
	litTable, distTable := f.curLit.entries, f.curDist.entries
	limit := inflateWindow + inflateOutput
	for wr < limit {
		if bitcnt < 48 {
			if pos+8 <= len(in) {
				bitbuf |= binary.LittleEndian.Uint64(in[pos:]) << bitcnt
				n := (63 - bitcnt) >> 3
				pos += int(n)
				bitcnt += n * 8
			} else {
				f.save(bitbuf, bitcnt, pos, wr)
				f.refill()
				bitbuf, bitcnt, in, pos = f.bitbuf, f.bitcnt, f.in, f.pos
			}
		}
		e := litTable[bitbuf&(1<<litTableBits-1)]
		if e.kind() == kindLink {
			e = litTable[e.link(bitbuf>>litTableBits)]
		}
		n := e.codeLen()
		if n > bitcnt || e.kind() == kindInvalid {
			f.save(bitbuf, bitcnt, pos, wr)
			return f.symbolError(n > bitcnt)
		}
		bitbuf >>= n
		bitcnt -= n
		switch e.kind() {
		case kindLiteral:
			hist[wr] = byte(e.value())
			wr++
			continue
		case kindEnd:
			f.save(bitbuf, bitcnt, pos, wr)
			f.endBlock()
			return nil
		}
		extra := e.extra()
		length := int(e.value()) + int(bitbuf&(1<<extra-1))
		bitbuf >>= extra
		d := distTable[bitbuf&(1<<distTableBits-1)]
		if d.kind() == kindLink {
			d = distTable[d.link(bitbuf>>distTableBits)]
		}
		n, dextra := d.codeLen(), d.extra()
		if extra+n+dextra > bitcnt || d.kind() == kindInvalid {
			f.save(bitbuf, bitcnt, pos, wr)
			return f.symbolError(extra+n+dextra > bitcnt)
		}
		bitbuf >>= n
		distance := int(d.value()) + int(bitbuf&(1<<dextra-1))
		bitbuf >>= dextra
		bitcnt -= extra + n + dextra
		from := wr - distance
		if from < f.lo {
			f.save(bitbuf, bitcnt, pos, wr)
			return fmt.Errorf("%w: a match reaches %d bytes back, before the data", errDeflate, distance)
		}
		switch {
		case distance >= length && length > 32:
			copy(hist[wr:wr+length], hist[from:from+length])
		case distance >= 8: // 8 bytes at a time; each word reads bytes already written
			for k := 0; k < length; k += 8 {
				binary.LittleEndian.PutUint64(hist[wr+k:], binary.LittleEndian.Uint64(hist[from+k:]))
			}
		default:
			for k := range length {
				hist[wr+k] = hist[from+k]
			}
		}
		wr += length
	}
	f.save(bitbuf, bitcnt, pos, wr)
	return nil
}

// save stores the decoding loop's registers.
func (f *inflater) save(bitbuf uint64, bitcnt uint, pos, wr int) {
	f.bitbuf, f.bitcnt, f.pos, f.wr = bitbuf, bitcnt, pos, wr
}

// symbolError is what a symbol that cannot be decoded means: the input ended, or it is not
// deflate data.
func (f *inflater) symbolError(short bool) error {
	if short {
		return f.truncated()
	}
	return fmt.Errorf("%w: an invalid Huffman code", errDeflate)
}

// truncated is the error for input that ends inside the stream.
func (f *inflater) truncated() error {
	if f.inErr != nil {
		return f.inErr
	}
	return io.ErrUnexpectedEOF
}

var codeLengthOrder = [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// dynamicTables reads a dynamic block's code lengths (RFC 1951 section 3.2.7).
func (f *inflater) dynamicTables() error {
	counts, err := f.bits(14)
	if err != nil {
		return err
	}
	nlit, ndist, nclen := int(counts&31)+257, int(counts>>5&31)+1, int(counts>>10)+4
	if nlit > 286 || ndist > 30 {
		return fmt.Errorf("%w: %d literal/length and %d distance codes", errDeflate, nlit, ndist)
	}
	var clens [19]uint8
	for i := range nclen {
		v, err := f.bits(3)
		if err != nil {
			return err
		}
		clens[codeLengthOrder[i]] = uint8(v)
	}
	var clTable huffmanTable
	if err := clTable.build(clens[:], 7, func(sym int, n uint) tableEntry { return newEntry(kindLiteral, uint32(sym), 0, n) }); err != nil {
		return err
	}
	var lens [286 + 30]uint8
	for i := 0; i < nlit+ndist; {
		if f.bitcnt < 14 {
			f.refill()
		}
		e := clTable.entries[f.bitbuf&127]
		if e.kind() == kindInvalid || e.codeLen() > f.bitcnt {
			return f.symbolError(e.codeLen() > f.bitcnt)
		}
		f.bitbuf >>= e.codeLen()
		f.bitcnt -= e.codeLen()
		sym := e.value()
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		repeat, value := 0, uint8(0)
		switch sym {
		case 16:
			if i == 0 {
				return fmt.Errorf("%w: a repeat before the first code length", errDeflate)
			}
			r, err := f.bits(2)
			repeat, value = int(r)+3, lens[i-1]
			if err != nil {
				return err
			}
		case 17:
			r, err := f.bits(3)
			repeat = int(r) + 3
			if err != nil {
				return err
			}
		default:
			r, err := f.bits(7)
			repeat = int(r) + 11
			if err != nil {
				return err
			}
		}
		if i+repeat > nlit+ndist {
			return fmt.Errorf("%w: code lengths run past their count", errDeflate)
		}
		for range repeat {
			lens[i] = value
			i++
		}
	}
	if lens[256] == 0 {
		return fmt.Errorf("%w: no end-of-block code", errDeflate)
	}
	if err := f.lit.build(lens[:nlit], litTableBits, literalEntry); err != nil {
		return err
	}
	return f.dist.build(lens[nlit:nlit+ndist], distTableBits, distanceEntry)
}

// tableEntry is one slot of a decoding table: kind, the value (a literal, a length or
// distance base, or a subtable's start), extra bits to read after the code (or a subtable's
// index bits), and the code's length.
type tableEntry uint64

const (
	kindInvalid = iota
	kindLiteral
	kindLength // a length base, or in a distance table a distance base
	kindEnd
	kindLink // to a subtable for codes longer than the main table's bits

	litTableBits  = 11
	distTableBits = 8
)

func newEntry(kind int, value uint32, extra, codeLen uint) tableEntry {
	return tableEntry(value)<<32 | tableEntry(kind)<<16 | tableEntry(extra)<<8 | tableEntry(codeLen)
}

func (e tableEntry) kind() int     { return int(e >> 16 & 0xff) }
func (e tableEntry) value() uint32 { return uint32(e >> 32) }
func (e tableEntry) extra() uint   { return uint(e >> 8 & 0xff) }
func (e tableEntry) codeLen() uint { return uint(e & 0xff) }
func (e tableEntry) link(rest uint64) uint64 {
	return uint64(e.value()) + rest&(1<<e.extra()-1)
}

// huffmanTable decodes a canonical Huffman code by table lookup of the next bits: codes up to
// the main table's bits in one step, longer ones through a subtable.
type huffmanTable struct{ entries []tableEntry }

var (
	lengthBase    = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra   = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distanceBase  = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distanceExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

func literalEntry(sym int, n uint) tableEntry {
	switch {
	case sym < 256:
		return newEntry(kindLiteral, uint32(sym), 0, n)
	case sym == 256:
		return newEntry(kindEnd, 0, 0, n)
	case sym < 286:
		return newEntry(kindLength, uint32(lengthBase[sym-257]), uint(lengthExtra[sym-257]), n)
	}
	return newEntry(kindInvalid, 0, 0, n) // 286 and 287 exist only in the fixed code
}

func distanceEntry(sym int, n uint) tableEntry {
	if sym < 30 {
		return newEntry(kindLength, uint32(distanceBase[sym]), uint(distanceExtra[sym]), n)
	}
	return newEntry(kindInvalid, 0, 0, n)
}

// build makes the table of the canonical code with these code lengths (RFC 1951 section
// 3.2.2). Like zlib, it refuses an over-subscribed code and an incomplete one, except a
// single code of one bit; slots no code reaches stay invalid.
func (t *huffmanTable) build(lens []uint8, mainBits uint, entry func(sym int, n uint) tableEntry) error {
	var count [16]uint16
	longest := uint8(0)
	for _, l := range lens {
		count[l]++
		longest = max(longest, l)
	}
	count[0] = 0
	left := 1
	for l := 1; l < 16; l++ {
		if left = left<<1 - int(count[l]); left < 0 {
			return fmt.Errorf("%w: over-subscribed Huffman code", errDeflate)
		}
	}
	if left > 0 && longest > 0 && !(longest == 1 && count[1] == 1) {
		return fmt.Errorf("%w: incomplete Huffman code", errDeflate)
	}
	var next, first [16]uint16 // each length's next code, and its first place in byLength
	for l, code := 1, uint16(0); l < 16; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
		first[l] = first[l-1] + count[l-1]
	}
	var reversed [288]uint16
	var byLength [288]uint16 // the symbols with codes, by code length, then by symbol
	var subBits [1 << litTableBits]uint8
	size := 1 << mainBits
	for sym, l := range lens {
		if l == 0 {
			continue
		}
		reversed[sym] = bits.Reverse16(next[l]) >> (16 - l)
		next[l]++
		byLength[first[l]] = uint16(sym)
		first[l]++
		if uint(l) > mainBits {
			prefix := reversed[sym] & uint16(size-1)
			subBits[prefix] = max(subBits[prefix], l-uint8(mainBits))
		}
	}
	// Codes up to mainBits long fill the main table as libdeflate fills its own: the table
	// grows from one invalid slot by doubling, each copy repeating every shorter code's entry
	// in all the slots whose low bits are its code, and each code of the next length then takes
	// one slot. That is a copy of the table and a store per code, where storing each code in
	// every slot it owns took strided loops of unpredictable length, twice the time.
	t.entries = append(t.entries[:0], make([]tableEntry, size)...)
	filled, i := 1, 0
	for l := uint(1); l <= mainBits; l++ {
		for ; filled < 1<<l; filled *= 2 {
			copy(t.entries[filled:2*filled], t.entries[:filled])
		}
		for end := int(first[l]); i < end; i++ { // first[l] is now where length l ends
			sym := int(byLength[i])
			t.entries[reversed[sym]] = entry(sym, l)
		}
	}
	// Longer codes go through a subtable per main-table prefix.
	if uint(longest) > mainBits {
		for prefix, b := range subBits[:size] {
			if b > 0 {
				t.entries[prefix] = newEntry(kindLink, uint32(len(t.entries)), uint(b), 0)
				t.entries = append(t.entries, make([]tableEntry, 1<<b)...)
			}
		}
	}
	for ; i < int(first[15]); i++ {
		sym := int(byLength[i])
		l := lens[sym]
		e, code, step := entry(sym, uint(l)), int(reversed[sym]), 1<<l
		link := t.entries[code&(size-1)]
		for j := code >> mainBits; j < 1<<link.extra(); j += step >> mainBits {
			t.entries[int(link.value())+j] = e
		}
	}
	return nil
}

// The fixed code of block type 1 (RFC 1951 section 3.2.6).
var fixedLit, fixedDist = func() (lit, dist huffmanTable) {
	var lens [288]uint8
	for i := range lens {
		switch {
		case i < 144:
			lens[i] = 8
		case i < 256:
			lens[i] = 9
		case i < 280:
			lens[i] = 7
		default:
			lens[i] = 8
		}
	}
	lit.build(lens[:], litTableBits, literalEntry)
	var dlens [32]uint8 // 30 and 31 have codes but never occur
	for i := range dlens {
		dlens[i] = 5
	}
	dist.build(dlens[:], distTableBits, distanceEntry)
	return lit, dist
}()
