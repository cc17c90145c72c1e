package aesmode

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"math/bits"
)

// CTR is AES in counter mode with a 128-bit big-endian counter, as OpenSSL (and so MySQL)
// counts, started at any counter block. It is the cost of every byte a binlog read serves:
// where the CPU has vector AES, whole runs of blocks go through it sixteen at a time, two to
// three times faster than crypto/cipher's CTR; the rest, and every other CPU, use crypto/cipher.
type CTR struct {
	block cipher.Block
	vec   *vectorAES // nil where vector AES is not available
	wide  *roundKeys // vec's key schedule
}

func NewCTR(key []byte) (*CTR, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	c := &CTR{block: block}
	if vec := fastestVectorAES(); vec != nil && len(key) == 32 {
		c.vec, c.wide = vec, expandKey256(key)
	}
	return c, nil
}

// XORKeyStream sets dst to src XORed with the keystream that starts skip bytes into counter
// block ctr. dst and src may overlap entirely or not at all.
func (c *CTR) XORKeyStream(dst, src []byte, ctr [aes.BlockSize]byte, skip int) {
	hi, lo := binary.BigEndian.Uint64(ctr[:8]), binary.BigEndian.Uint64(ctr[8:])
	if skip > 0 { // the rest of a block begun before this read
		n := min(len(src), aes.BlockSize-skip)
		c.narrow(dst[:n], src[:n], counterBlock(hi, lo), skip)
		dst, src = dst[n:], src[n:]
		hi, lo = addCounter(hi, lo, 1)
	}
	if blocks := len(src) / aes.BlockSize &^ (wideStep - 1); c.vec != nil && blocks > 0 && lo+uint64(blocks) > lo {
		lanes := [8]uint64{lo, hi, lo + 1, hi, lo + 2, hi, lo + 3, hi}
		c.vec.ctrXOR(c.wide, &dst[0], &src[0], blocks, &lanes)
		n := blocks * aes.BlockSize
		dst, src = dst[n:], src[n:]
		hi, lo = addCounter(hi, lo, uint64(blocks))
	}
	if len(src) > 0 {
		c.narrow(dst, src, counterBlock(hi, lo), 0)
	}
}

// narrow is crypto/cipher's CTR from counter block ctr, skip bytes in.
func (c *CTR) narrow(dst, src []byte, ctr [aes.BlockSize]byte, skip int) {
	stream := cipher.NewCTR(c.block, ctr[:])
	if skip > 0 {
		var discard [aes.BlockSize]byte
		stream.XORKeyStream(discard[:skip], discard[:skip])
	}
	stream.XORKeyStream(dst, src)
}

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
