//go:build !purego

package crypto

import "golang.org/x/sys/cpu"

// haveWideAES: VAES on 512-bit registers, and VPSHUFB on them (AVX-512 BW) for CTR's
// counters.
var haveWideAES = cpu.X86.HasAVX512VAES && cpu.X86.HasAVX512BW

// ctrXORWide XORs blocks blocks of src with the keystream into dst. blocks is a multiple of
// wideStep; lanes holds the first four counters as (low, high) pairs, and the low halves do
// not wrap within the call.
//
//go:noescape
func ctrXORWide(rk *roundKeys, dst, src *byte, blocks int, lanes *[8]uint64)

// cbcDecryptWide deciphers blocks blocks of src into dst with the decryption schedule rk. iv
// is the cipher block before src[0]; blocks is a multiple of wideStep.
//
//go:noescape
func cbcDecryptWide(rk *roundKeys, dst, src *byte, blocks int, iv *[16]byte)
