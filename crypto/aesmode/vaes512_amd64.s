//go:build !purego

#include "textflag.h"

// AES-256 on 512-bit registers (VAES): four blocks to a register, four registers (16 blocks)
// to a step, then single registers for the last multiples of four. Round keys are broadcast
// to Z16-Z30. X15 is left alone (Go's zero register).
//
// CTR: Z31 holds the byte swap that turns a (low, high) pair of counter halves into a
// big-endian counter block; Z12 holds the counters of the next four blocks, Z13 the step
// between them.

DATA bswap128<>+0x00(SB)/8, $0x08090a0b0c0d0e0f
DATA bswap128<>+0x08(SB)/8, $0x0001020304050607
GLOBL bswap128<>(SB), RODATA|NOPTR, $16

DATA four<>+0x00(SB)/8, $4
DATA four<>+0x08(SB)/8, $0
DATA four<>+0x10(SB)/8, $4
DATA four<>+0x18(SB)/8, $0
DATA four<>+0x20(SB)/8, $4
DATA four<>+0x28(SB)/8, $0
DATA four<>+0x30(SB)/8, $4
DATA four<>+0x38(SB)/8, $0
GLOBL four<>(SB), RODATA|NOPTR, $64

// The schedule at AX into Z16-Z30.
#define LOAD_ROUND_KEYS() \
	VBROADCASTI32X4 0(AX), Z16; \
	VBROADCASTI32X4 16(AX), Z17; \
	VBROADCASTI32X4 32(AX), Z18; \
	VBROADCASTI32X4 48(AX), Z19; \
	VBROADCASTI32X4 64(AX), Z20; \
	VBROADCASTI32X4 80(AX), Z21; \
	VBROADCASTI32X4 96(AX), Z22; \
	VBROADCASTI32X4 112(AX), Z23; \
	VBROADCASTI32X4 128(AX), Z24; \
	VBROADCASTI32X4 144(AX), Z25; \
	VBROADCASTI32X4 160(AX), Z26; \
	VBROADCASTI32X4 176(AX), Z27; \
	VBROADCASTI32X4 192(AX), Z28; \
	VBROADCASTI32X4 208(AX), Z29; \
	VBROADCASTI32X4 224(AX), Z30

// All 14 rounds on Z0-Z3 (CIPHER4) or Z0 (CIPHER1): round is VAESENC or VAESDEC, last its
// final-round form.
#define CIPHER4(round, last) \
	VPXORQ Z16, Z0, Z0; \
	VPXORQ Z16, Z1, Z1; \
	VPXORQ Z16, Z2, Z2; \
	VPXORQ Z16, Z3, Z3; \
	round Z17, Z0, Z0; \
	round Z17, Z1, Z1; \
	round Z17, Z2, Z2; \
	round Z17, Z3, Z3; \
	round Z18, Z0, Z0; \
	round Z18, Z1, Z1; \
	round Z18, Z2, Z2; \
	round Z18, Z3, Z3; \
	round Z19, Z0, Z0; \
	round Z19, Z1, Z1; \
	round Z19, Z2, Z2; \
	round Z19, Z3, Z3; \
	round Z20, Z0, Z0; \
	round Z20, Z1, Z1; \
	round Z20, Z2, Z2; \
	round Z20, Z3, Z3; \
	round Z21, Z0, Z0; \
	round Z21, Z1, Z1; \
	round Z21, Z2, Z2; \
	round Z21, Z3, Z3; \
	round Z22, Z0, Z0; \
	round Z22, Z1, Z1; \
	round Z22, Z2, Z2; \
	round Z22, Z3, Z3; \
	round Z23, Z0, Z0; \
	round Z23, Z1, Z1; \
	round Z23, Z2, Z2; \
	round Z23, Z3, Z3; \
	round Z24, Z0, Z0; \
	round Z24, Z1, Z1; \
	round Z24, Z2, Z2; \
	round Z24, Z3, Z3; \
	round Z25, Z0, Z0; \
	round Z25, Z1, Z1; \
	round Z25, Z2, Z2; \
	round Z25, Z3, Z3; \
	round Z26, Z0, Z0; \
	round Z26, Z1, Z1; \
	round Z26, Z2, Z2; \
	round Z26, Z3, Z3; \
	round Z27, Z0, Z0; \
	round Z27, Z1, Z1; \
	round Z27, Z2, Z2; \
	round Z27, Z3, Z3; \
	round Z28, Z0, Z0; \
	round Z28, Z1, Z1; \
	round Z28, Z2, Z2; \
	round Z28, Z3, Z3; \
	round Z29, Z0, Z0; \
	round Z29, Z1, Z1; \
	round Z29, Z2, Z2; \
	round Z29, Z3, Z3; \
	last Z30, Z0, Z0; \
	last Z30, Z1, Z1; \
	last Z30, Z2, Z2; \
	last Z30, Z3, Z3

#define CIPHER1(round, last) \
	VPXORQ Z16, Z0, Z0; \
	round Z17, Z0, Z0; \
	round Z18, Z0, Z0; \
	round Z19, Z0, Z0; \
	round Z20, Z0, Z0; \
	round Z21, Z0, Z0; \
	round Z22, Z0, Z0; \
	round Z23, Z0, Z0; \
	round Z24, Z0, Z0; \
	round Z25, Z0, Z0; \
	round Z26, Z0, Z0; \
	round Z27, Z0, Z0; \
	round Z28, Z0, Z0; \
	round Z29, Z0, Z0; \
	last Z30, Z0, Z0

#define NEXT_COUNTERS(z) \
	VPSHUFB Z31, Z12, z; \
	VPADDQ  Z13, Z12, Z12

// func ctrXOR512(rk *roundKeys, dst, src *byte, blocks int, lanes *[8]uint64)
TEXT ·ctrXOR512(SB), NOSPLIT, $0-40
	MOVQ rk+0(FP), AX
	MOVQ dst+8(FP), DI
	MOVQ src+16(FP), SI
	MOVQ blocks+24(FP), CX
	MOVQ lanes+32(FP), DX
	LOAD_ROUND_KEYS()
	VBROADCASTI32X4 bswap128<>(SB), Z31
	VMOVDQU64 (DX), Z12
	VMOVDQU64 four<>(SB), Z13

loop16:
	CMPQ CX, $16
	JB   loop4
	NEXT_COUNTERS(Z0)
	NEXT_COUNTERS(Z1)
	NEXT_COUNTERS(Z2)
	NEXT_COUNTERS(Z3)
	CIPHER4(VAESENC, VAESENCLAST)
	VPXORQ    0(SI), Z0, Z0
	VPXORQ    64(SI), Z1, Z1
	VPXORQ    128(SI), Z2, Z2
	VPXORQ    192(SI), Z3, Z3
	VMOVDQU64 Z0, 0(DI)
	VMOVDQU64 Z1, 64(DI)
	VMOVDQU64 Z2, 128(DI)
	VMOVDQU64 Z3, 192(DI)
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $16, CX
	JMP  loop16

loop4:
	CMPQ CX, $4
	JB   done
	NEXT_COUNTERS(Z0)
	CIPHER1(VAESENC, VAESENCLAST)
	VPXORQ    0(SI), Z0, Z0
	VMOVDQU64 Z0, 0(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $4, CX
	JMP  loop4

done:
	VZEROUPPER
	RET

// CBC decryption: Z0-Z3 take 16 cipher blocks; Z4-Z7 the blocks before each (VALIGNQ shifts
// one block in from the register before), which the decrypted blocks are XORed with. Z11
// keeps the last cipher block of the step before, so dst may be src: every load of a step
// happens before its stores.
// func cbcDecrypt512(rk *roundKeys, dst, src *byte, blocks int, iv *[16]byte)
TEXT ·cbcDecrypt512(SB), NOSPLIT, $0-40
	MOVQ rk+0(FP), AX
	MOVQ dst+8(FP), DI
	MOVQ src+16(FP), SI
	MOVQ blocks+24(FP), CX
	MOVQ iv+32(FP), DX
	LOAD_ROUND_KEYS()
	VBROADCASTI32X4 (DX), Z11

dec16:
	CMPQ CX, $16
	JB   dec4
	VMOVDQU64 0(SI), Z0
	VMOVDQU64 64(SI), Z1
	VMOVDQU64 128(SI), Z2
	VMOVDQU64 192(SI), Z3
	VALIGNQ   $6, Z11, Z0, Z4
	VALIGNQ   $6, Z0, Z1, Z5
	VALIGNQ   $6, Z1, Z2, Z6
	VALIGNQ   $6, Z2, Z3, Z7
	VMOVDQA64 Z3, Z11
	CIPHER4(VAESDEC, VAESDECLAST)
	VPXORQ    Z4, Z0, Z0
	VPXORQ    Z5, Z1, Z1
	VPXORQ    Z6, Z2, Z2
	VPXORQ    Z7, Z3, Z3
	VMOVDQU64 Z0, 0(DI)
	VMOVDQU64 Z1, 64(DI)
	VMOVDQU64 Z2, 128(DI)
	VMOVDQU64 Z3, 192(DI)
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $16, CX
	JMP  dec16

dec4:
	CMPQ CX, $4
	JB   decdone
	VMOVDQU64 0(SI), Z0
	VALIGNQ   $6, Z11, Z0, Z4
	VMOVDQA64 Z0, Z11
	CIPHER1(VAESDEC, VAESDECLAST)
	VPXORQ    Z4, Z0, Z0
	VMOVDQU64 Z0, 0(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $4, CX
	JMP  dec4

decdone:
	VZEROUPPER
	RET
