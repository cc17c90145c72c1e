// Package aesmode is AES-CTR and AES-CBC decryption at any block offset, sixteen blocks a step
// with vector AES where the CPU has it (VAES on 512- or 256-bit registers), crypto/cipher
// elsewhere and for the odd blocks. It knows nothing of files or formats. GODEBUG
// cpu.avx2=off,cpu.avx512bw=off forces crypto/cipher everywhere.
package aesmode

import (
	"crypto/aes"
	"encoding/binary"
	"fmt"
	"math/bits"
)

// The AES-256 key schedules the vector paths (aes_amd64.s) need; crypto/aes keeps its own
// to itself.

// roundKeys is an expanded AES-256 key: the 15 round keys in the order AESENC, or AESDEC for
// a decryption schedule, uses them.
type roundKeys [15][aes.BlockSize]byte

// wideStep is how many blocks the vector paths take at least, and a multiple of what they take.
const wideStep = 4

// vectorAES is one width of vector AES: its CTR and CBC-decryption loops over AES-256.
type vectorAES struct {
	bits       int
	ctrXOR     func(rk *roundKeys, dst, src *byte, blocks int, lanes *[8]uint64)
	cbcDecrypt func(rk *roundKeys, dst, src *byte, blocks int, iv *[16]byte)
}

// name says which path vec is, for tests and benchmarks: its width, or crypto/cipher for nil.
func (vec *vectorAES) name() string {
	if vec == nil {
		return "crypto-cipher"
	}
	return fmt.Sprintf("vaes%d", vec.bits)
}

// Implementation names the path 256-bit keys take on this CPU: "vaes512", "vaes256" or
// "crypto-cipher".
func Implementation() string { return fastestVectorAES().name() }

// fastestVectorAES is the widest vector AES this CPU runs, nil where it has none.
func fastestVectorAES() *vectorAES {
	if len(vectorAESes) == 0 {
		return nil
	}
	return vectorAESes[0]
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

// decryptionKeys is the schedule of FIPS-197's equivalent inverse cipher (section 5.3.5),
// the one AESDEC uses: the round keys in reverse, the inner ones through InvMixColumns.
func decryptionKeys(enc *roundKeys) *roundKeys {
	dk := new(roundKeys)
	dk[0], dk[14] = enc[14], enc[0]
	for i := 1; i < 14; i++ {
		dk[i] = invMixColumns(enc[14-i])
	}
	return dk
}

func invMixColumns(s [aes.BlockSize]byte) (out [aes.BlockSize]byte) {
	for c := 0; c < aes.BlockSize; c += 4 {
		a0, a1, a2, a3 := s[c], s[c+1], s[c+2], s[c+3]
		out[c] = mul(a0, 14) ^ mul(a1, 11) ^ mul(a2, 13) ^ mul(a3, 9)
		out[c+1] = mul(a0, 9) ^ mul(a1, 14) ^ mul(a2, 11) ^ mul(a3, 13)
		out[c+2] = mul(a0, 13) ^ mul(a1, 9) ^ mul(a2, 14) ^ mul(a3, 11)
		out[c+3] = mul(a0, 11) ^ mul(a1, 13) ^ mul(a2, 9) ^ mul(a3, 14)
	}
	return out
}

// mul multiplies in GF(2^8).
func mul(a, b byte) byte {
	var p byte
	for ; b != 0; b >>= 1 {
		p ^= a * (b & 1)
		a = xtime(a)
	}
	return p
}
