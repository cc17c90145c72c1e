package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// fillRandom fills b from rng and returns it.
func fillRandom(rng *rand.Rand, b []byte) []byte {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestAESCTRMatchesCryptoCipher compares every path of aesCTR, each width of vector AES this
// CPU runs and crypto/cipher's, with crypto/cipher's CTR: every start within a block, lengths
// around the vector step, counters about to carry into the high half, and dst overlapping src.
func TestAESCTRMatchesCryptoCipher(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	key := fillRandom(rng, make([]byte, 32))
	fast, err := newAESCTR(key)
	if err != nil {
		t.Fatal(err)
	}
	if fast.vec != fastestVectorAES() {
		t.Fatal("this CPU has vector AES but the fast path is off")
	}
	paths := []*aesCTR{{block: fast.block}}
	for _, vec := range vectorAESes {
		paths = append(paths, &aesCTR{block: fast.block, vec: vec, wide: expandKey256(key)})
	}
	t.Logf("vector AES widths: %v", vectorWidths())
	src := fillRandom(rng, make([]byte, 5000))
	lows := []uint64{0, 7, math.MaxUint64 - 70, math.MaxUint64 - 3, math.MaxUint64}
	for _, c := range paths {
		for _, lo := range lows {
			for _, n := range []int{0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 257, 1000, 4096, 5000} {
				for skip := range aes.BlockSize {
					if skip > 0 && n == 0 {
						continue
					}
					var ctr [aes.BlockSize]byte
					binary.BigEndian.PutUint64(ctr[:8], 0x0102030405060708)
					binary.BigEndian.PutUint64(ctr[8:], lo)
					want := referenceCTR(fast.block, ctr, skip, src[:n])
					got := make([]byte, n)
					c.xorKeyStream(got, src[:n], ctr, skip)
					if !bytes.Equal(got, want) {
						t.Fatalf("%s low=%#x n=%d skip=%d: keystream differs from crypto/cipher", c.vec.name(), lo, n, skip)
					}
					inPlace := append([]byte(nil), src[:n]...)
					c.xorKeyStream(inPlace, inPlace, ctr, skip)
					if !bytes.Equal(inPlace, want) {
						t.Fatalf("%s low=%#x n=%d skip=%d: in-place result differs", c.vec.name(), lo, n, skip)
					}
				}
			}
		}
	}
}

func referenceCTR(block cipher.Block, ctr [aes.BlockSize]byte, skip int, src []byte) []byte {
	stream := cipher.NewCTR(block, ctr[:])
	discard := make([]byte, skip)
	stream.XORKeyStream(discard, discard)
	out := make([]byte, len(src))
	stream.XORKeyStream(out, src)
	return out
}

// TestExpandKey256 checks the key schedule against FIPS-197 appendix A.3.
func TestExpandKey256(t *testing.T) {
	key := []byte{
		0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0, 0x85, 0x7d, 0x77, 0x81,
		0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4,
	}
	rk := expandKey256(key)
	last := []byte{0xfe, 0x48, 0x90, 0xd1, 0xe6, 0x18, 0x8d, 0x0b, 0x04, 0x6d, 0xf3, 0x44, 0x70, 0x6c, 0x63, 0x1e} // w[56..59]
	if !bytes.Equal(rk[0][:], key[:16]) || !bytes.Equal(rk[14][:], last) {
		t.Fatalf("round keys 0 and 14 are %x and %x", rk[0], rk[14])
	}
}

// BenchmarkAESCTR decrypts 1 MiB, as one large binlog read does, with each width of vector AES
// this CPU runs and with crypto/cipher's CTR side by side.
func BenchmarkAESCTR(b *testing.B) {
	key := make([]byte, 32)
	block, err := aes.NewCipher(key)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkEveryPath(b, func(vec *vectorAES) func([]byte) {
		c := &aesCTR{block: block}
		if vec != nil {
			c.vec, c.wide = vec, expandKey256(key)
		}
		return func(buf []byte) { c.xorKeyStream(buf, buf, [aes.BlockSize]byte{}, 0) }
	})
}

// benchmarkEveryPath runs, on the same 1 MiB buffer, the path that path builds for each width
// of vector AES this CPU runs and for crypto/cipher (vec nil).
func benchmarkEveryPath(b *testing.B, path func(vec *vectorAES) func(buf []byte)) {
	buf := make([]byte, 1<<20)
	for _, vec := range append(slices.Clone(vectorAESes), nil) { // nil: crypto/cipher
		run := path(vec)
		b.Run(vec.name(), func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				run(buf)
			}
		})
	}
}

// vectorWidths names the widths of vector AES this CPU runs.
func vectorWidths() []string {
	var names []string
	for _, vec := range vectorAESes {
		names = append(names, vec.name())
	}
	return names
}

// TestAESCBCMatchesCryptoCipher compares both paths of aesCBC with crypto/cipher's CBC
// decrypter: lengths around the vector steps, in place and not.
func TestAESCBCMatchesCryptoCipher(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	key := fillRandom(rng, make([]byte, 32))
	iv := [aes.BlockSize]byte(fillRandom(rng, make([]byte, aes.BlockSize)))
	fast, err := newAESCBC(key)
	if err != nil {
		t.Fatal(err)
	}
	if fast.vec != fastestVectorAES() {
		t.Fatal("this CPU has vector AES but the fast path is off")
	}
	paths := []*aesCBC{{block: fast.block}}
	for _, vec := range vectorAESes {
		paths = append(paths, &aesCBC{block: fast.block, vec: vec, wide: decryptionKeys(expandKey256(key))})
	}
	src := fillRandom(rng, make([]byte, 80*aes.BlockSize))
	for _, c := range paths {
		for blocks := range 80 {
			ct := src[:blocks*aes.BlockSize]
			want := make([]byte, len(ct))
			cipher.NewCBCDecrypter(fast.block, iv[:]).CryptBlocks(want, ct)
			got := make([]byte, len(ct))
			c.decrypt(got, ct, iv)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s blocks=%d: plaintext differs from crypto/cipher", c.vec.name(), blocks)
			}
			inPlace := append([]byte(nil), ct...)
			c.decrypt(inPlace, inPlace, iv)
			if !bytes.Equal(inPlace, want) {
				t.Fatalf("%s blocks=%d: in-place plaintext differs", c.vec.name(), blocks)
			}
		}
	}
}

// BenchmarkAESCBC decrypts 1 MiB with each width of vector AES and crypto/cipher's CBC side by
// side.
func BenchmarkAESCBC(b *testing.B) {
	key := make([]byte, 32)
	block, err := aes.NewCipher(key)
	if err != nil {
		b.Fatal(err)
	}
	benchmarkEveryPath(b, func(vec *vectorAES) func([]byte) {
		c := &aesCBC{block: block}
		if vec != nil {
			c.vec, c.wide = vec, decryptionKeys(expandKey256(key))
		}
		return func(buf []byte) { c.decrypt(buf, buf, [aes.BlockSize]byte{}) }
	})
}
