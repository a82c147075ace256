//go:build amd64 && !noasm

#include "textflag.h"

// Micro-kernel for a 12×32 tile of C with AVX-512F.
//
// Z0..Z23 hold the tile: row i in Z(2i) (columns 0..15) and Z(2i+1)
// (columns 16..31). Each step p loads 32 values of op(B) into Z24, Z25,
// broadcasts each of the 12 values of op(A) and does one fused
// multiply-add (VFMADD231PS, one rounding) into each accumulator, which is
// the reference loop's operation. Before the tile is stored, every NaN is
// replaced by the canonical quiet NaN 0x7fc00000 (the hardware propagates
// payloads, and its default NaN has the sign bit set), as the reference
// does. Only AVX-512F instructions are used.

// ROW multiplies the broadcast of op(A) at aoff(SI) by Z24, Z25 and adds the
// products to acc0, acc1, each with one rounding; t is scratch.
#define ROW(aoff, acc0, acc1, t) \
	VBROADCASTSS aoff(SI), t; \
	VFMADD231PS  Z24, t, acc0; \
	VFMADD231PS  Z25, t, acc1

// STEP does one step of k: op(A) at a(SI)..a+44(SI), op(B) at b(DI),
// b+64(DI). Two scratch registers alternate between rows.
#define STEP(a, b) \
	VMOVUPS b(DI), Z24;       \
	VMOVUPS (b+64)(DI), Z25;  \
	ROW(a, Z0, Z1, Z26);      \
	ROW(a+4, Z2, Z3, Z27);    \
	ROW(a+8, Z4, Z5, Z26);    \
	ROW(a+12, Z6, Z7, Z27);   \
	ROW(a+16, Z8, Z9, Z26);   \
	ROW(a+20, Z10, Z11, Z27); \
	ROW(a+24, Z12, Z13, Z26); \
	ROW(a+28, Z14, Z15, Z27); \
	ROW(a+32, Z16, Z17, Z26); \
	ROW(a+36, Z18, Z19, Z27); \
	ROW(a+40, Z20, Z21, Z26); \
	ROW(a+44, Z22, Z23, Z27)

// CANON replaces NaN lanes of acc by Z24 (canonical NaNs).
#define CANON(acc) \
	VCMPPS  $3, acc, acc, K1; \
	VMOVAPS Z24, K1, acc

// Row r of C is at (base)(R8*s): rows 0-2 from DX, 3-5 from R9, 6-8 from
// R10, 9-11 from R11, with s = 0, 1, 2.
#define LOADROWS(base, r0a, r0b, r1a, r1b, r2a, r2b) \
	VMOVUPS (base), r0a;              \
	VMOVUPS 64(base), r0b;            \
	VMOVUPS (base)(R8*1), r1a;        \
	VMOVUPS 64(base)(R8*1), r1b;      \
	VMOVUPS (base)(R8*2), r2a;        \
	VMOVUPS 64(base)(R8*2), r2b

#define STOREROWS(base, r0a, r0b, r1a, r1b, r2a, r2b) \
	VMOVUPS r0a, (base);              \
	VMOVUPS r0b, 64(base);            \
	VMOVUPS r1a, (base)(R8*1);        \
	VMOVUPS r1b, 64(base)(R8*1);      \
	VMOVUPS r2a, (base)(R8*2);        \
	VMOVUPS r2b, 64(base)(R8*2)

#define PREFETCHROWS(base) \
	PREFETCHT0 (base);          \
	PREFETCHT0 124(base);       \
	PREFETCHT0 (base)(R8*1);    \
	PREFETCHT0 124(base)(R8*1); \
	PREFETCHT0 (base)(R8*2);    \
	PREFETCHT0 124(base)(R8*2)

// func kern12x32(k int, a, b, c *float32, ldc int, load bool)
TEXT ·kern12x32(SB), NOSPLIT, $0-41
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8               // row stride in bytes
	LEAQ (R8)(R8*2), AX       // three rows
	LEAQ (DX)(AX*1), R9       // row 3
	LEAQ (R9)(AX*1), R10      // row 6
	LEAQ (R10)(AX*1), R11     // row 9
	MOVBLZX load+40(FP), AX
	TESTL AX, AX
	JZ   zero

	LOADROWS(DX, Z0, Z1, Z2, Z3, Z4, Z5)
	LOADROWS(R9, Z6, Z7, Z8, Z9, Z10, Z11)
	LOADROWS(R10, Z12, Z13, Z14, Z15, Z16, Z17)
	LOADROWS(R11, Z18, Z19, Z20, Z21, Z22, Z23)
	JMP  start

zero:
	// Start from +0, as the reference does.
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	PREFETCHROWS(DX)
	PREFETCHROWS(R9)
	PREFETCHROWS(R10)
	PREFETCHROWS(R11)

start:
	MOVQ CX, BX
	SHRQ $2, BX
	JZ   tail

loop4:
	// op(A) streams from L2 while the panel of op(B) stays in L1: fetch
	// op(A) a few iterations ahead. Prefetches past the end are harmless.
	PREFETCHT0 512(SI)
	STEP(0, 0)
	STEP(48, 128)
	PREFETCHT0 576(SI)
	STEP(96, 256)
	STEP(144, 384)
	ADDQ $192, SI
	ADDQ $512, DI
	DECQ BX
	JNZ  loop4

tail:
	ANDQ $3, CX
	JZ   store

loop1:
	STEP(0, 0)
	ADDQ $48, SI
	ADDQ $128, DI
	DECQ CX
	JNZ  loop1

store:
	MOVL         $0x7fc00000, AX
	VPBROADCASTD AX, Z24
	CANON(Z0)
	CANON(Z1)
	CANON(Z2)
	CANON(Z3)
	CANON(Z4)
	CANON(Z5)
	CANON(Z6)
	CANON(Z7)
	CANON(Z8)
	CANON(Z9)
	CANON(Z10)
	CANON(Z11)
	CANON(Z12)
	CANON(Z13)
	CANON(Z14)
	CANON(Z15)
	CANON(Z16)
	CANON(Z17)
	CANON(Z18)
	CANON(Z19)
	CANON(Z20)
	CANON(Z21)
	CANON(Z22)
	CANON(Z23)
	STOREROWS(DX, Z0, Z1, Z2, Z3, Z4, Z5)
	STOREROWS(R9, Z6, Z7, Z8, Z9, Z10, Z11)
	STOREROWS(R10, Z12, Z13, Z14, Z15, Z16, Z17)
	STOREROWS(R11, Z18, Z19, Z20, Z21, Z22, Z23)
	VZEROUPPER
	RET
