//go:build !purego

#include "textflag.h"

// AES-256 on 256-bit registers (VAES with AVX2, for CPUs without AVX-512 such as Zen 3 and
// Alder Lake): two blocks to a register, eight registers (16 blocks) to a step, so that
// enough independent rounds are in flight to keep the AES units busy (11.6 GB/s CTR here,
// -bench AESCTR); then two registers for the last multiples of four blocks. Y8 takes each round key in turn, broadcast to both halves. X15 is
// left alone (Go's zero register).
//
// CTR: Y11 holds the byte swap that turns a (low, high) pair of counter halves into a
// big-endian counter block; Y9 holds the counters of the next two blocks, Y10 the step
// between them.

DATA bswap128<>+0x00(SB)/8, $0x08090a0b0c0d0e0f
DATA bswap128<>+0x08(SB)/8, $0x0001020304050607
GLOBL bswap128<>(SB), RODATA|NOPTR, $16

DATA two<>+0x00(SB)/8, $2
DATA two<>+0x08(SB)/8, $0
DATA two<>+0x10(SB)/8, $2
DATA two<>+0x18(SB)/8, $0
GLOBL two<>(SB), RODATA|NOPTR, $32

// One round on Y0-Y7 (ROUND8) or Y0-Y1 (ROUND2) with the round key at off(AX); op is VPXOR
// for the first, VAESENC or VAESDEC for the middle ones, their final-round forms for the last.
#define ROUND8(op, off) \
	VBROADCASTI128 off(AX), Y8; \
	op Y8, Y0, Y0; \
	op Y8, Y1, Y1; \
	op Y8, Y2, Y2; \
	op Y8, Y3, Y3; \
	op Y8, Y4, Y4; \
	op Y8, Y5, Y5; \
	op Y8, Y6, Y6; \
	op Y8, Y7, Y7

#define ROUND2(op, off) \
	VBROADCASTI128 off(AX), Y8; \
	op Y8, Y0, Y0; \
	op Y8, Y1, Y1

// All 14 rounds, with round for the middle ones and last for the final one.
#define CIPHER(rounds, round, last) \
	rounds(VPXOR, 0); \
	rounds(round, 16); \
	rounds(round, 32); \
	rounds(round, 48); \
	rounds(round, 64); \
	rounds(round, 80); \
	rounds(round, 96); \
	rounds(round, 112); \
	rounds(round, 128); \
	rounds(round, 144); \
	rounds(round, 160); \
	rounds(round, 176); \
	rounds(round, 192); \
	rounds(round, 208); \
	rounds(last, 224)

// The ciphertext of a binlog read comes straight from the page cache (crypto/mapped_linux.go),
// mostly out of the CPU's caches, and the hardware prefetcher stops at each 4 KiB page: the
// loop asks 2 KiB ahead, about eight steps. Decrypting a cached 1 GiB binlog through views, one
// thread: 97-109 ms with it, 112-131 ms without.
#define PREFETCH_AHEAD() \
	PREFETCHT0 2048(SI); \
	PREFETCHT0 2112(SI); \
	PREFETCHT0 2176(SI); \
	PREFETCHT0 2240(SI)

#define NEXT_COUNTERS(y) \
	VPSHUFB Y11, Y9, y; \
	VPADDQ  Y10, Y9, Y9

// func ctrXOR256(rk *roundKeys, dst, src *byte, blocks int, lanes *[8]uint64)
TEXT ·ctrXOR256(SB), NOSPLIT, $0-40
	MOVQ rk+0(FP), AX
	MOVQ dst+8(FP), DI
	MOVQ src+16(FP), SI
	MOVQ blocks+24(FP), CX
	MOVQ lanes+32(FP), DX
	VBROADCASTI128 bswap128<>(SB), Y11
	VMOVDQU (DX), Y9
	VMOVDQU two<>(SB), Y10

loop16:
	CMPQ CX, $16
	JB   loop4
	NEXT_COUNTERS(Y0)
	NEXT_COUNTERS(Y1)
	NEXT_COUNTERS(Y2)
	NEXT_COUNTERS(Y3)
	NEXT_COUNTERS(Y4)
	NEXT_COUNTERS(Y5)
	NEXT_COUNTERS(Y6)
	NEXT_COUNTERS(Y7)
	PREFETCH_AHEAD()
	CIPHER(ROUND8, VAESENC, VAESENCLAST)
	VPXOR   0(SI), Y0, Y0
	VPXOR   32(SI), Y1, Y1
	VPXOR   64(SI), Y2, Y2
	VPXOR   96(SI), Y3, Y3
	VPXOR   128(SI), Y4, Y4
	VPXOR   160(SI), Y5, Y5
	VPXOR   192(SI), Y6, Y6
	VPXOR   224(SI), Y7, Y7
	VMOVDQU Y0, 0(DI)
	VMOVDQU Y1, 32(DI)
	VMOVDQU Y2, 64(DI)
	VMOVDQU Y3, 96(DI)
	VMOVDQU Y4, 128(DI)
	VMOVDQU Y5, 160(DI)
	VMOVDQU Y6, 192(DI)
	VMOVDQU Y7, 224(DI)
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $16, CX
	JMP  loop16

loop4:
	CMPQ CX, $4
	JB   done
	NEXT_COUNTERS(Y0)
	NEXT_COUNTERS(Y1)
	CIPHER(ROUND2, VAESENC, VAESENCLAST)
	VPXOR   0(SI), Y0, Y0
	VPXOR   32(SI), Y1, Y1
	VMOVDQU Y0, 0(DI)
	VMOVDQU Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $4, CX
	JMP  loop4

done:
	VZEROUPPER
	RET

// CBC decryption: Y0-Y7 take 16 cipher blocks. Each decrypted pair is XORed with the pair of
// cipher blocks one block earlier: for the first register that is X12, the last cipher block of
// the step before, joined with the step's first (in Y13); for the others an unaligned load from
// src. Every load of a step happens before its stores, so dst may be src.
// func cbcDecrypt256(rk *roundKeys, dst, src *byte, blocks int, iv *[16]byte)
TEXT ·cbcDecrypt256(SB), NOSPLIT, $0-40
	MOVQ rk+0(FP), AX
	MOVQ dst+8(FP), DI
	MOVQ src+16(FP), SI
	MOVQ blocks+24(FP), CX
	MOVQ iv+32(FP), DX
	VMOVDQU (DX), X12

dec16:
	CMPQ CX, $16
	JB   dec4
	VMOVDQU     0(SI), Y0
	VMOVDQU     32(SI), Y1
	VMOVDQU     64(SI), Y2
	VMOVDQU     96(SI), Y3
	VMOVDQU     128(SI), Y4
	VMOVDQU     160(SI), Y5
	VMOVDQU     192(SI), Y6
	VMOVDQU     224(SI), Y7
	VINSERTI128 $1, 0(SI), Y12, Y13
	VMOVDQU     240(SI), X12
	CIPHER(ROUND8, VAESDEC, VAESDECLAST)
	VPXOR       Y13, Y0, Y0
	VPXOR       16(SI), Y1, Y1
	VPXOR       48(SI), Y2, Y2
	VPXOR       80(SI), Y3, Y3
	VPXOR       112(SI), Y4, Y4
	VPXOR       144(SI), Y5, Y5
	VPXOR       176(SI), Y6, Y6
	VPXOR       208(SI), Y7, Y7
	VMOVDQU     Y0, 0(DI)
	VMOVDQU     Y1, 32(DI)
	VMOVDQU     Y2, 64(DI)
	VMOVDQU     Y3, 96(DI)
	VMOVDQU     Y4, 128(DI)
	VMOVDQU     Y5, 160(DI)
	VMOVDQU     Y6, 192(DI)
	VMOVDQU     Y7, 224(DI)
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $16, CX
	JMP  dec16

dec4:
	CMPQ CX, $4
	JB   decdone
	VMOVDQU     0(SI), Y0
	VMOVDQU     32(SI), Y1
	VINSERTI128 $1, 0(SI), Y12, Y13
	VMOVDQU     48(SI), X12
	CIPHER(ROUND2, VAESDEC, VAESDECLAST)
	VPXOR       Y13, Y0, Y0
	VPXOR       16(SI), Y1, Y1
	VMOVDQU     Y0, 0(DI)
	VMOVDQU     Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $4, CX
	JMP  dec4

decdone:
	VZEROUPPER
	RET

// func cpuidVAES() bool
// CPUID leaf 7, ECX bit 9: VAES, which golang.org/x/sys/cpu reports only with AVX-512.
TEXT ·cpuidVAES(SB), NOSPLIT, $0-1
	MOVL $7, AX
	MOVL $0, CX
	CPUID
	SHRL $9, CX
	ANDL $1, CX
	MOVB CX, ret+0(FP)
	RET
