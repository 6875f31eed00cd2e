//go:build amd64 && !purego

#include "textflag.h"

// The two kernels of AES-256-GCM (aesgcm.go). GHASH works on
// byte-reflected blocks (VPSHUFB with revMask): as a 128-bit integer, bit
// i is then the coefficient of x^(127-i), and a carry-less product of a
// reflected block and a reflected H·x^-1 is the reflected 256-bit a·H.
// It is reduced modulo P = x^128 + x^7 + x^2 + x + 1 in two folds of 64
// bits, each a multiplication by x^7 + x^2 + x (the constant 0xc2 << 56 in
// poly's high word) and a swap of the halves (Gueron and Kounavis, "Intel
// Carry-Less Multiplication Instruction and its Usage for Computing the
// GCM Mode", 2010, §5).

DATA revMask<>+0(SB)/8, $0x08090a0b0c0d0e0f
DATA revMask<>+8(SB)/8, $0x0001020304050607
GLOBL revMask<>(SB), RODATA|NOPTR, $16

DATA poly<>+0(SB)/8, $0x0000000000000001
DATA poly<>+8(SB)/8, $0xc200000000000000
GLOBL poly<>(SB), RODATA|NOPTR, $16

// inc4 adds 4 to the counter of each reflected 128-bit lane.
DATA inc4<>+0(SB)/8, $4
DATA inc4<>+8(SB)/8, $0
GLOBL inc4<>(SB), RODATA|NOPTR, $16

// laneFirst turns four copies of a reflected J0 into the first four data
// counters, J0+1 .. J0+4.
DATA laneFirst<>+0(SB)/8, $1
DATA laneFirst<>+8(SB)/8, $0
DATA laneFirst<>+16(SB)/8, $2
DATA laneFirst<>+24(SB)/8, $0
DATA laneFirst<>+32(SB)/8, $3
DATA laneFirst<>+40(SB)/8, $0
DATA laneFirst<>+48(SB)/8, $4
DATA laneFirst<>+56(SB)/8, $0
GLOBL laneFirst<>(SB), RODATA|NOPTR, $64

#define AESROUND(k) \
	VAESENC k, Z0, Z0; \
	VAESENC k, Z1, Z1; \
	VAESENC k, Z2, Z2; \
	VAESENC k, Z3, Z3

// MULACC multiplies four reflected blocks d by the four powers at p (a
// 64-byte memory operand) and adds the unreduced products to Z8 (low
// halves), Z9 (high halves) and Z10 (middle terms), with temporaries Z11
// and Z12. MULSET is the same for the first group: it sets the sums.
#define MULACC(d, p) \
	VPCLMULQDQ $0x00, p, d, Z11; \
	VPXORQ     Z11, Z8, Z8; \
	VPCLMULQDQ $0x11, p, d, Z11; \
	VPXORQ     Z11, Z9, Z9; \
	VPCLMULQDQ $0x01, p, d, Z11; \
	VPCLMULQDQ $0x10, p, d, Z12; \
	VPTERNLOGD $0x96, Z11, Z12, Z10

#define MULSET(d, p) \
	VPCLMULQDQ $0x00, p, d, Z8; \
	VPCLMULQDQ $0x11, p, d, Z9; \
	VPCLMULQDQ $0x01, p, d, Z10; \
	VPCLMULQDQ $0x10, p, d, Z11; \
	VPXORQ     Z11, Z10, Z10

// REDUCE1 and REDUCE2 fold the middle terms X10 into X8:X9 (low:high) and
// reduce the 256-bit product modulo P into dst, in two halves so that
// AES rounds can go between them.
#define REDUCE1 \
	VPSLLDQ    $8, X10, X11; \
	VPSRLDQ    $8, X10, X10; \
	VPXOR      X11, X8, X8; \
	VPXOR      X10, X9, X9; \
	VPCLMULQDQ $0x10, poly<>(SB), X8, X11; \
	VPSHUFD    $0x4e, X8, X8; \
	VPXOR      X11, X8, X8

#define REDUCE2(dst) \
	VPCLMULQDQ $0x10, poly<>(SB), X8, X11; \
	VPSHUFD    $0x4e, X8, X8; \
	VPXOR      X11, X8, X8; \
	VPXOR      X9, X8, dst

// MUL1 sets dst to X0·X1 for single reflected blocks (X1 a power of H in
// the x^-1 form), reduced.
#define MUL1(dst) \
	VPCLMULQDQ $0x00, X1, X0, X8; \
	VPCLMULQDQ $0x11, X1, X0, X9; \
	VPCLMULQDQ $0x01, X1, X0, X10; \
	VPCLMULQDQ $0x10, X1, X0, X11; \
	VPXOR      X11, X10, X10; \
	REDUCE1; \
	REDUCE2(dst)

// FOLD4 xors the four 128-bit lanes of z (whose low half is y, low
// quarter x) into x.
#define FOLD4(z, y, x) \
	VEXTRACTI64X4 $1, z, Y11; \
	VPXORQ        Y11, y, y; \
	VEXTRACTI32X4 $1, y, X11; \
	VPXOR         X11, x, x

// GHASH16 absorbs up to sixteen blocks in d0-d3 (raw bytes, zero past the
// end) into the state X13: the state is added to the first block, and
// block i of m is multiplied by H^(m-i), read from ht[16-m+i] at R11
// (zero past ht[15], so that absent blocks add nothing). One reduction
// per sixteen blocks.
#define GHASH16(d0, d1, d2, d3) \
	VPSHUFB Z31, d0, d0; \
	VPSHUFB Z31, d1, d1; \
	VPSHUFB Z31, d2, d2; \
	VPSHUFB Z31, d3, d3; \
	VPXORQ  Z13, d0, d0; \
	MULSET(d0, 0(R11)); \
	MULACC(d1, 64(R11)); \
	MULACC(d2, 128(R11)); \
	MULACC(d3, 192(R11)); \
	FOLD4(Z8, Y8, X8); \
	FOLD4(Z9, Y9, X9); \
	FOLD4(Z10, Y10, X10); \
	REDUCE1; \
	REDUCE2(X13)

// func powers(ht *[32][16]byte)
TEXT ·powers(SB), NOSPLIT, $0-8
	MOVQ    ht+0(FP), AX
	VMOVDQU 240(AX), X1
	VMOVDQU X1, X0
	MOVQ    $224, CX

powLoop:
	MUL1(X0)
	VMOVDQU    X0, (AX)(CX*1)
	SUBQ       $16, CX
	JGE        powLoop
	VZEROUPPER
	RET

// CHUNK sets R10 to the bytes of this iteration: min(rem, 256).
#define CHUNK(rem) \
	MOVQ    $256, R10; \
	CMPQ    rem, R10; \
	CMOVQLT rem, R10

// POWERS points R11 at ht[16-m] (ht at DX) for the m = ceil(R10/16)
// blocks of this iteration.
#define POWERS \
	LEAQ 15(R10), R11; \
	SHRQ $4, R11; \
	NEGQ R11; \
	ADDQ $16, R11; \
	SHLQ $4, R11; \
	ADDQ DX, R11

// MASKS sets K1-K4 to the byte masks of the four 64-byte segments of a
// partial iteration of R10 < 256 bytes (R8 = -1, R13 = 0).
#define MASKS \
	MOVQ    R10, R12; \
	BZHIQ   R12, R8, R9; \
	KMOVQ   R9, K1; \
	SUBQ    $64, R12; \
	CMOVQLT R13, R12; \
	BZHIQ   R12, R8, R9; \
	KMOVQ   R9, K2; \
	SUBQ    $64, R12; \
	CMOVQLT R13, R12; \
	BZHIQ   R12, R8, R9; \
	KMOVQ   R9, K3; \
	SUBQ    $64, R12; \
	CMOVQLT R13, R12; \
	BZHIQ   R12, R8, R9; \
	KMOVQ   R9, K4

// COUNTERS puts the next sixteen counter blocks in Z0-Z3, with round 0.
#define COUNTERS \
	VPSHUFB Z31, Z15, Z0; \
	VPADDD  Z14, Z15, Z15; \
	VPSHUFB Z31, Z15, Z1; \
	VPADDD  Z14, Z15, Z15; \
	VPSHUFB Z31, Z15, Z2; \
	VPADDD  Z14, Z15, Z15; \
	VPSHUFB Z31, Z15, Z3; \
	VPADDD  Z14, Z15, Z15; \
	VPXORQ  Z16, Z0, Z0; \
	VPXORQ  Z16, Z1, Z1; \
	VPXORQ  Z16, Z2, Z2; \
	VPXORQ  Z16, Z3, Z3

#define LASTROUND \
	VAESENCLAST Z30, Z0, Z0; \
	VAESENCLAST Z30, Z1, Z1; \
	VAESENCLAST Z30, Z2, Z2; \
	VAESENCLAST Z30, Z3, Z3

// func crypt(rk *[15][16]byte, ht *[32][16]byte, j0 *[16]byte, dst, src *byte, n int, ad *byte, adLen int, lens, tag *[16]byte, dec int)
//
// One pass of AES-256-GCM: tag = GHASH(ad, c, lens) xor E(J0), and dst =
// src xor the keystream from J0+1, where c is dst when sealing (dec = 0)
// and src when opening. Each iteration encrypts sixteen counter blocks
// and, between its AES rounds, hashes the previous iteration's sixteen
// blocks of c (kept in Z4-Z7), so that the AES and carry-less
// multiplication units work at once. Registers: Z16-Z30 round keys, Z31
// revMask, Z15 the next counters (reflected), Z14 inc4, X13 the hash
// state, Z8-Z12 hashing.
TEXT ·crypt(SB), NOSPLIT, $0-88
	MOVQ rk+0(FP), AX
	MOVQ ht+8(FP), DX
	MOVQ j0+16(FP), BX
	MOVQ dst+24(FP), DI
	MOVQ src+32(FP), SI
	MOVQ n+40(FP), CX

	VBROADCASTI32X4 0(AX), Z16
	VBROADCASTI32X4 16(AX), Z17
	VBROADCASTI32X4 32(AX), Z18
	VBROADCASTI32X4 48(AX), Z19
	VBROADCASTI32X4 64(AX), Z20
	VBROADCASTI32X4 80(AX), Z21
	VBROADCASTI32X4 96(AX), Z22
	VBROADCASTI32X4 112(AX), Z23
	VBROADCASTI32X4 128(AX), Z24
	VBROADCASTI32X4 144(AX), Z25
	VBROADCASTI32X4 160(AX), Z26
	VBROADCASTI32X4 176(AX), Z27
	VBROADCASTI32X4 192(AX), Z28
	VBROADCASTI32X4 208(AX), Z29
	VBROADCASTI32X4 224(AX), Z30
	VBROADCASTI32X4 revMask<>(SB), Z31
	VBROADCASTI32X4 inc4<>(SB), Z14
	VPXOR   X13, X13, X13
	MOVQ    $-1, R8
	XORQ    R13, R13

	// E(J0), kept in tag until the end.
	VMOVDQU     (BX), X0
	VPXORQ      X16, X0, X0
	VAESENC     X17, X0, X0
	VAESENC     X18, X0, X0
	VAESENC     X19, X0, X0
	VAESENC     X20, X0, X0
	VAESENC     X21, X0, X0
	VAESENC     X22, X0, X0
	VAESENC     X23, X0, X0
	VAESENC     X24, X0, X0
	VAESENC     X25, X0, X0
	VAESENC     X26, X0, X0
	VAESENC     X27, X0, X0
	VAESENC     X28, X0, X0
	VAESENC     X29, X0, X0
	VAESENCLAST X30, X0, X0
	MOVQ        tag+72(FP), R9
	VMOVDQU     X0, (R9)

	// The first data counters: J0+1 .. J0+4.
	VBROADCASTI32X4 (BX), Z15
	VPSHUFB         Z31, Z15, Z15
	VPADDD          laneFirst<>(SB), Z15, Z15

	// The associated data: BX its next byte, AX the bytes left.
	MOVQ  ad+48(FP), BX
	MOVQ  adLen+56(FP), AX
	TESTQ AX, AX
	JLE   adDone

adLoop:
	CHUNK(AX)
	POWERS
	CMPQ      R10, $256
	JB        adPart
	VMOVDQU64 0(BX), Z0
	VMOVDQU64 64(BX), Z1
	VMOVDQU64 128(BX), Z2
	VMOVDQU64 192(BX), Z3
	JMP       adLoaded

adPart:
	MASKS
	VMOVDQU8.Z 0(BX), K1, Z0
	VMOVDQU8.Z 64(BX), K2, Z1
	VMOVDQU8.Z 128(BX), K3, Z2
	VMOVDQU8.Z 192(BX), K4, Z3

adLoaded:
	GHASH16(Z0, Z1, Z2, Z3)
	ADDQ R10, BX
	SUBQ R10, AX
	JNZ  adLoop

adDone:
	MOVQ  dec+80(FP), AX
	TESTQ CX, CX
	JLE   lenBlock
	JMP   firstChunk

mainLoop: // AES of this chunk, interleaved with the hash of the last (R11)
	CHUNK(CX)
	COUNTERS
	VPSHUFB Z31, Z4, Z4
	VPSHUFB Z31, Z5, Z5
	VPSHUFB Z31, Z6, Z6
	VPSHUFB Z31, Z7, Z7
	VPXORQ  Z13, Z4, Z4
	AESROUND(Z17)
	MULSET(Z4, 0(R11))
	AESROUND(Z18)
	MULACC(Z5, 64(R11))
	AESROUND(Z19)
	MULACC(Z6, 128(R11))
	AESROUND(Z20)
	MULACC(Z7, 192(R11))
	AESROUND(Z21)
	FOLD4(Z8, Y8, X8)
	AESROUND(Z22)
	FOLD4(Z9, Y9, X9)
	AESROUND(Z23)
	FOLD4(Z10, Y10, X10)
	AESROUND(Z24)
	REDUCE1
	AESROUND(Z25)
	REDUCE2(X13)
	AESROUND(Z26)
	AESROUND(Z27)
	AESROUND(Z28)
	AESROUND(Z29)
	LASTROUND
	JMP crypted

firstChunk: // nothing to hash yet
	CHUNK(CX)
	COUNTERS
	AESROUND(Z17)
	AESROUND(Z18)
	AESROUND(Z19)
	AESROUND(Z20)
	AESROUND(Z21)
	AESROUND(Z22)
	AESROUND(Z23)
	AESROUND(Z24)
	AESROUND(Z25)
	AESROUND(Z26)
	AESROUND(Z27)
	AESROUND(Z28)
	AESROUND(Z29)
	LASTROUND

crypted: // Z0-Z3 keystream: XOR, store, and keep this chunk's c in Z4-Z7
	POWERS
	CMPQ      R10, $256
	JB        mainPart
	VMOVDQU64 0(SI), Z4
	VMOVDQU64 64(SI), Z5
	VMOVDQU64 128(SI), Z6
	VMOVDQU64 192(SI), Z7
	VPXORQ    Z4, Z0, Z0
	VPXORQ    Z5, Z1, Z1
	VPXORQ    Z6, Z2, Z2
	VPXORQ    Z7, Z3, Z3
	VMOVDQU64 Z0, 0(DI)
	VMOVDQU64 Z1, 64(DI)
	VMOVDQU64 Z2, 128(DI)
	VMOVDQU64 Z3, 192(DI)
	TESTQ     AX, AX
	JNZ       next
	VMOVDQA64 Z0, Z4
	VMOVDQA64 Z1, Z5
	VMOVDQA64 Z2, Z6
	VMOVDQA64 Z3, Z7
	JMP       next

mainPart: // R10 < 256: byte masks; the kept blocks are zero past the end
	MASKS
	VMOVDQU8.Z 0(SI), K1, Z4
	VMOVDQU8.Z 64(SI), K2, Z5
	VMOVDQU8.Z 128(SI), K3, Z6
	VMOVDQU8.Z 192(SI), K4, Z7
	VPXORQ     Z4, Z0, Z0
	VPXORQ     Z5, Z1, Z1
	VPXORQ     Z6, Z2, Z2
	VPXORQ     Z7, Z3, Z3
	VMOVDQU8   Z0, K1, 0(DI)
	VMOVDQU8   Z1, K2, 64(DI)
	VMOVDQU8   Z2, K3, 128(DI)
	VMOVDQU8   Z3, K4, 192(DI)
	TESTQ      AX, AX
	JNZ        next
	VMOVDQU8.Z Z0, K1, Z4
	VMOVDQU8.Z Z1, K2, Z5
	VMOVDQU8.Z Z2, K3, Z6
	VMOVDQU8.Z Z3, K4, Z7

next:
	ADDQ R10, SI
	ADDQ R10, DI
	SUBQ R10, CX
	JNZ  mainLoop

	// The last chunk, m = ceil(R10/16) blocks. With room for one more
	// (m < 16), the lengths block goes in as block m, with the powers of
	// m+1 blocks: one reduction less at the end of the chain.
	CMPQ R10, $240
	JA   lastFull
	LEAQ 15(R10), CX
	SHRQ $4, CX
	SHLQ $1, CX     // 2m: the first qword of block m among Z4-Z7's 32
	MOVL $3, R9
	SHLQ CX, R9     // the two qwords of block m
	MOVQ lens+64(FP), BX
	VBROADCASTI32X4 (BX), Z8
	KMOVW     R9, K1
	SHRQ      $8, R9
	KMOVW     R9, K2
	SHRQ      $8, R9
	KMOVW     R9, K3
	SHRQ      $8, R9
	KMOVW     R9, K4
	VMOVDQU64 Z8, K1, Z4
	VMOVDQU64 Z8, K2, Z5
	VMOVDQU64 Z8, K3, Z6
	VMOVDQU64 Z8, K4, Z7
	SUBQ      $16, R11
	GHASH16(Z4, Z5, Z6, Z7)
	JMP       tagOut

lastFull:
	GHASH16(Z4, Z5, Z6, Z7)

lenBlock: // the lengths block, multiplied by H; then the tag
	MOVQ       lens+64(FP), BX
	VMOVDQU    (BX), X0
	VPSHUFB    X31, X0, X0
	VPXOR      X13, X0, X0
	VMOVDQU    240(DX), X1
	MUL1(X13)

tagOut:
	VPSHUFB    X31, X13, X13
	MOVQ       tag+72(FP), BX
	VPXOR      (BX), X13, X13
	VMOVDQU    X13, (BX)
	VZEROUPPER
	RET
