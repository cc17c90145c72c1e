package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"math/bits"
)

// aesCTR is AES in counter mode with a 128-bit big-endian counter, as OpenSSL (and so MySQL)
// counts, started at any counter block. It is the cost of every byte a binlog read serves:
// where the CPU has vector AES, whole runs of blocks go through it sixteen at a time, several
// times faster than crypto/cipher's CTR; the rest, and every other CPU, use crypto/cipher.
type aesCTR struct {
	block cipher.Block
	wide  *roundKeys // nil where vector AES is not available
}

// roundKeys is an expanded AES-256 key: the 15 round keys in the order AESENC uses them.
type roundKeys [15][aes.BlockSize]byte

func newAESCTR(key []byte) (*aesCTR, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	c := &aesCTR{block: block}
	if haveWideCTR && len(key) == 32 {
		c.wide = expandKey256(key)
	}
	return c, nil
}

// xorKeyStream sets dst to src XORed with the keystream that starts skip bytes into counter
// block ctr. dst and src may overlap entirely or not at all.
func (c *aesCTR) xorKeyStream(dst, src []byte, ctr [aes.BlockSize]byte, skip int) {
	hi, lo := binary.BigEndian.Uint64(ctr[:8]), binary.BigEndian.Uint64(ctr[8:])
	if skip > 0 { // the rest of a block begun before this read
		n := min(len(src), aes.BlockSize-skip)
		c.narrow(dst[:n], src[:n], counterBlock(hi, lo), skip)
		dst, src = dst[n:], src[n:]
		hi, lo = addCounter(hi, lo, 1)
	}
	if blocks := len(src) / aes.BlockSize &^ (wideStep - 1); c.wide != nil && blocks > 0 && lo+uint64(blocks) > lo {
		lanes := [8]uint64{lo, hi, lo + 1, hi, lo + 2, hi, lo + 3, hi}
		ctrXORWide(c.wide, &dst[0], &src[0], blocks, &lanes)
		n := blocks * aes.BlockSize
		dst, src = dst[n:], src[n:]
		hi, lo = addCounter(hi, lo, uint64(blocks))
	}
	if len(src) > 0 {
		c.narrow(dst, src, counterBlock(hi, lo), 0)
	}
}

// narrow is crypto/cipher's CTR from counter block ctr, skip bytes in.
func (c *aesCTR) narrow(dst, src []byte, ctr [aes.BlockSize]byte, skip int) {
	stream := cipher.NewCTR(c.block, ctr[:])
	if skip > 0 {
		var discard [aes.BlockSize]byte
		stream.XORKeyStream(discard[:skip], discard[:skip])
	}
	stream.XORKeyStream(dst, src)
}

// wideStep is how many blocks the vector path takes at least, and a multiple of what it takes.
const wideStep = 4

func counterBlock(hi, lo uint64) [aes.BlockSize]byte {
	var b [aes.BlockSize]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return b
}

func addCounter(hi, lo, n uint64) (uint64, uint64) {
	lo, carry := bits.Add64(lo, n, 0)
	return hi + carry, lo
}

// expandKey256 is the AES-256 key schedule of FIPS-197 section 5.2.
func expandKey256(key []byte) *roundKeys {
	var w [60]uint32
	for i := range 8 {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	rcon := uint32(1)
	for i := 8; i < len(w); i++ {
		t := w[i-1]
		switch i % 8 {
		case 0:
			t = subWord(bits.RotateLeft32(t, 8)) ^ rcon<<24
			rcon = uint32(xtime(byte(rcon)))
		case 4:
			t = subWord(t)
		}
		w[i] = w[i-8] ^ t
	}
	rk := new(roundKeys)
	for i, word := range w {
		binary.BigEndian.PutUint32(rk[i/4][4*(i%4):], word)
	}
	clear(w[:])
	return rk
}

func subWord(w uint32) uint32 {
	return uint32(sbox[w>>24])<<24 | uint32(sbox[w>>16&0xff])<<16 | uint32(sbox[w>>8&0xff])<<8 | uint32(sbox[w&0xff])
}

// xtime multiplies by x in AES's field GF(2^8).
func xtime(b byte) byte {
	return b<<1 ^ 0x1b*(b>>7)
}

// sbox is AES's S-box, computed (multiplicative inverse, then the affine map) rather than
// written out: p walks the field's elements by powers of 3 and q by the inverse powers.
var sbox = func() (s [256]byte) {
	p, q := byte(1), byte(1)
	for {
		p ^= xtime(p)
		q ^= q << 1
		q ^= q << 2
		q ^= q << 4
		if q&0x80 != 0 {
			q ^= 0x09
		}
		s[p] = q ^ bits.RotateLeft8(q, 1) ^ bits.RotateLeft8(q, 2) ^ bits.RotateLeft8(q, 3) ^ bits.RotateLeft8(q, 4) ^ 0x63
		if p == 1 {
			break
		}
	}
	s[0] = 0x63
	return s
}()
