package aesmode

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

// fillRandom fills b from rng and returns it.
func fillRandom(rng *rand.Rand, b []byte) []byte {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// requireVectorAES skips a test that compares vector AES with crypto/cipher where the CPU has
// none (or GODEBUG turned it off): there, crypto/cipher serves every read, and comparing it
// with itself would prove nothing.
func requireVectorAES(t testing.TB) {
	if len(vectorAESes) == 0 {
		t.Skip("no vector AES on this CPU (or turned off by GODEBUG): crypto/cipher serves every read")
	}
}

// TestAESCTRMatchesCryptoCipher compares each width of vector AES this CPU runs with
// crypto/cipher's CTR: every start within a block, lengths around the vector step, counters
// about to carry into the high half, and dst overlapping src.
func TestAESCTRMatchesCryptoCipher(t *testing.T) {
	requireVectorAES(t)
	rng := rand.New(rand.NewPCG(1, 2))
	key := fillRandom(rng, make([]byte, 32))
	fast, err := NewCTR(key)
	if err != nil {
		t.Fatal(err)
	}
	if fast.vec != fastestVectorAES() {
		t.Fatal("this CPU has vector AES but the fast path is off")
	}
	var paths []*CTR
	for _, vec := range vectorAESes {
		paths = append(paths, &CTR{block: fast.block, vec: vec, wide: expandKey256(key)})
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
					c.XORKeyStream(got, src[:n], ctr, skip)
					if !bytes.Equal(got, want) {
						t.Fatalf("%s low=%#x n=%d skip=%d: keystream differs from crypto/cipher", c.vec.name(), lo, n, skip)
					}
					inPlace := append([]byte(nil), src[:n]...)
					c.XORKeyStream(inPlace, inPlace, ctr, skip)
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
		c := &CTR{block: block}
		if vec != nil {
			c.vec, c.wide = vec, expandKey256(key)
		}
		return func(buf []byte) { c.XORKeyStream(buf, buf, [aes.BlockSize]byte{}, 0) }
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

// TestAESCBCMatchesCryptoCipher compares each width of vector AES with crypto/cipher's CBC
// decrypter: lengths around the vector steps, in place and not.
func TestAESCBCMatchesCryptoCipher(t *testing.T) {
	requireVectorAES(t)
	rng := rand.New(rand.NewPCG(3, 4))
	key := fillRandom(rng, make([]byte, 32))
	iv := [aes.BlockSize]byte(fillRandom(rng, make([]byte, aes.BlockSize)))
	fast, err := NewCBC(key)
	if err != nil {
		t.Fatal(err)
	}
	if fast.vec != fastestVectorAES() {
		t.Fatal("this CPU has vector AES but the fast path is off")
	}
	var paths []*CBC
	for _, vec := range vectorAESes {
		paths = append(paths, &CBC{block: fast.block, vec: vec, wide: decryptionKeys(expandKey256(key))})
	}
	src := fillRandom(rng, make([]byte, 80*aes.BlockSize))
	for _, c := range paths {
		for blocks := range 80 {
			ct := src[:blocks*aes.BlockSize]
			want := make([]byte, len(ct))
			cipher.NewCBCDecrypter(fast.block, iv[:]).CryptBlocks(want, ct)
			got := make([]byte, len(ct))
			c.Decrypt(got, ct, iv)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s blocks=%d: plaintext differs from crypto/cipher", c.vec.name(), blocks)
			}
			inPlace := append([]byte(nil), ct...)
			c.Decrypt(inPlace, inPlace, iv)
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
		c := &CBC{block: block}
		if vec != nil {
			c.vec, c.wide = vec, decryptionKeys(expandKey256(key))
		}
		return func(buf []byte) { c.Decrypt(buf, buf, [aes.BlockSize]byte{}) }
	})
}

// TestFallbackWhenForced: with GODEBUG turning vector AES off, no vector path is chosen.
func TestFallbackWhenForced(t *testing.T) {
	if !strings.Contains(os.Getenv("GODEBUG"), "cpu.avx2=off") || !strings.Contains(os.Getenv("GODEBUG"), "cpu.avx512bw=off") {
		t.Skip("run with GODEBUG=cpu.avx2=off,cpu.avx512bw=off to force the fallback")
	}
	if Implementation() != "crypto-cipher" {
		t.Fatalf("GODEBUG turned vector AES off, but %s is used", Implementation())
	}
}

// FuzzAESCTR compares every vector width with crypto/cipher at random keys, counters,
// offsets into a block, lengths and buffer alignments.
func FuzzAESCTR(f *testing.F) {
	f.Add([]byte("0123456789abcdef0123456789abcdef"), uint64(0), uint64(math.MaxUint64-2), uint8(3), uint16(1000), uint8(1))
	f.Fuzz(func(t *testing.T, key []byte, hi, lo uint64, skip uint8, n uint16, align uint8) {
		requireVectorAES(t)
		if len(key) != 32 {
			return
		}
		block, _ := aes.NewCipher(key)
		var ctr [aes.BlockSize]byte
		binary.BigEndian.PutUint64(ctr[:8], hi)
		binary.BigEndian.PutUint64(ctr[8:], lo)
		k := int(skip % aes.BlockSize)
		buf := fillRandom(rand.New(rand.NewPCG(hi, lo)), make([]byte, int(n)+64))
		src := buf[align%64:][:n]
		want := referenceCTR(block, ctr, k, src)
		for _, vec := range vectorAESes {
			c := &CTR{block: block, vec: vec, wide: expandKey256(key)}
			got := make([]byte, len(src)+int(align%7))[align%7:]
			c.XORKeyStream(got, src, ctr, k)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: keystream at counter %x, skip %d, %d bytes differs from crypto/cipher", vec.name(), ctr, k, n)
			}
		}
	})
}

// FuzzAESCBC compares every vector width with crypto/cipher's CBC decrypter at random keys,
// IVs, lengths and buffer alignments.
func FuzzAESCBC(f *testing.F) {
	f.Add([]byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210"), uint16(64), uint8(1))
	f.Fuzz(func(t *testing.T, key, ivBytes []byte, blocks uint16, align uint8) {
		requireVectorAES(t)
		if len(key) != 32 || len(ivBytes) != aes.BlockSize {
			return
		}
		block, _ := aes.NewCipher(key)
		iv := [aes.BlockSize]byte(ivBytes)
		buf := fillRandom(rand.New(rand.NewPCG(uint64(blocks), uint64(align))), make([]byte, int(blocks%512)*aes.BlockSize+64))
		ct := buf[align%64:][:int(blocks%512)*aes.BlockSize]
		want := make([]byte, len(ct))
		cipher.NewCBCDecrypter(block, iv[:]).CryptBlocks(want, ct)
		for _, vec := range vectorAESes {
			c := &CBC{block: block, vec: vec, wide: decryptionKeys(expandKey256(key))}
			got := make([]byte, len(ct)+int(align%7))[align%7:]
			c.Decrypt(got, ct, iv)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: %d blocks differ from crypto/cipher", vec.name(), len(ct)/aes.BlockSize)
			}
		}
	})
}
