//go:build !purego

package aesmode

import "golang.org/x/sys/cpu"

// vectorAESes lists the widths of vector AES this CPU runs, widest first: VAES on 512-bit
// registers with AVX-512 (Zen 4, Ice Lake and later; VPSHUFB on them, for CTR's counters,
// needs AVX-512 BW), and VAES on 256-bit registers with AVX2 (also Zen 3 and Alder Lake).
var vectorAESes = func() (list []*vectorAES) {
	if cpu.X86.HasAVX512VAES && cpu.X86.HasAVX512BW {
		list = append(list, &vectorAES{bits: 512, ctrXOR: ctrXOR512, cbcDecrypt: cbcDecrypt512})
	}
	if cpu.X86.HasAVX2 && cpuidVAES() {
		list = append(list, &vectorAES{bits: 256, ctrXOR: ctrXOR256, cbcDecrypt: cbcDecrypt256})
	}
	return list
}()

// cpuidVAES reports CPUID's VAES flag, which golang.org/x/sys/cpu reports only with AVX-512.
func cpuidVAES() bool

// The vector loops of vaes512_amd64.s and vaes256_amd64.s. blocks is a multiple of wideStep.
// CTR XORs blocks blocks of src with the keystream into dst; lanes holds the first four
// counters as (low, high) pairs, and the low halves do not wrap within the call. CBC
// deciphers blocks blocks of src into dst with the decryption schedule rk; iv is the cipher
// block before src[0].

//go:noescape
func ctrXOR512(rk *roundKeys, dst, src *byte, blocks int, lanes *[8]uint64)

//go:noescape
func cbcDecrypt512(rk *roundKeys, dst, src *byte, blocks int, iv *[16]byte)

//go:noescape
func ctrXOR256(rk *roundKeys, dst, src *byte, blocks int, lanes *[8]uint64)

//go:noescape
func cbcDecrypt256(rk *roundKeys, dst, src *byte, blocks int, iv *[16]byte)
