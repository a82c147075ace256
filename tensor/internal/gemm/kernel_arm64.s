//go:build arm64 && !noasm

#include "textflag.h"

// Micro-kernel for an 8×12 tile of C with NEON (Advanced SIMD, part of
// every arm64 CPU).
//
// V0..V23 hold the tile: row i in V(3i), V(3i+1), V(3i+2) (columns 0..3,
// 4..7, 8..11). Each step p loads 12 values of op(B) into V24..V26,
// broadcasts each of the 8 values of op(A) (LD1R into V27 or V28) and does
// one fused multiply-add (FMLA, one rounding) into each accumulator, which
// is the reference loop's operation. Before the tile is stored, every NaN
// is replaced by the canonical quiet NaN 0x7fc00000 (FMLA propagates
// payloads), as the reference does.

// ROW broadcasts the next value of op(A) into t and adds its products with
// V24..V26 to acc0..acc2, each with one rounding.
#define ROW(t, acc0, acc1, acc2) \
	VLD1R.P 4(R1), [t.S4];      \
	VFMLA   V24.S4, t.S4, acc0; \
	VFMLA   V25.S4, t.S4, acc1; \
	VFMLA   V26.S4, t.S4, acc2

// CANON replaces the NaN lanes of Vn (register number n) by V24's, using
// V25: FCMEQ sets the lanes that equal themselves (not NaN), and BIF
// inserts V24 where they are clear. The Go assembler has no FCMEQ; it is
// written as a WORD: FCMEQ V25.4S, Vn.4S, Vn.4S is 0x4e20e419 | n<<16 | n<<5.
#define CANON(v, n) \
	WORD $(0x4e20e419 | (n << 16) | (n << 5)); \
	VBIF V25.B16, V24.B16, v.B16

// LOADROW and STOREROW move row i of the tile (at R6) and step R6 by the
// row stride R4.
#define LOADROW(a, b, c) \
	VLD1 (R6), [a.S4, b.S4, c.S4]; \
	ADD  R4, R6, R6

#define STOREROW(a, b, c) \
	VST1 [a.S4, b.S4, c.S4], (R6); \
	ADD  R4, R6, R6

// func kern8x12(k int, a, b, c *float32, ldc int, load bool)
TEXT ·kern8x12(SB), NOSPLIT, $0-41
	MOVD  k+0(FP), R0
	MOVD  a+8(FP), R1
	MOVD  b+16(FP), R2
	MOVD  c+24(FP), R3
	MOVD  ldc+32(FP), R4
	LSL   $2, R4, R4 // row stride in bytes
	MOVBU load+40(FP), R5
	CBZ   R5, zero
	MOVD  R3, R6
	LOADROW(V0, V1, V2)
	LOADROW(V3, V4, V5)
	LOADROW(V6, V7, V8)
	LOADROW(V9, V10, V11)
	LOADROW(V12, V13, V14)
	LOADROW(V15, V16, V17)
	LOADROW(V18, V19, V20)
	LOADROW(V21, V22, V23)
	B     loop

zero:
	// Start from +0, as the reference does.
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16

loop:
	VLD1.P 48(R2), [V24.S4, V25.S4, V26.S4]
	ROW(V27, V0.S4, V1.S4, V2.S4)
	ROW(V28, V3.S4, V4.S4, V5.S4)
	ROW(V27, V6.S4, V7.S4, V8.S4)
	ROW(V28, V9.S4, V10.S4, V11.S4)
	ROW(V27, V12.S4, V13.S4, V14.S4)
	ROW(V28, V15.S4, V16.S4, V17.S4)
	ROW(V27, V18.S4, V19.S4, V20.S4)
	ROW(V28, V21.S4, V22.S4, V23.S4)
	SUBS   $1, R0, R0
	BNE    loop

	MOVW $0x7fc00000, R5
	VDUP R5, V24.S4
	CANON(V0, 0)
	CANON(V1, 1)
	CANON(V2, 2)
	CANON(V3, 3)
	CANON(V4, 4)
	CANON(V5, 5)
	CANON(V6, 6)
	CANON(V7, 7)
	CANON(V8, 8)
	CANON(V9, 9)
	CANON(V10, 10)
	CANON(V11, 11)
	CANON(V12, 12)
	CANON(V13, 13)
	CANON(V14, 14)
	CANON(V15, 15)
	CANON(V16, 16)
	CANON(V17, 17)
	CANON(V18, 18)
	CANON(V19, 19)
	CANON(V20, 20)
	CANON(V21, 21)
	CANON(V22, 22)
	CANON(V23, 23)
	MOVD R3, R6
	STOREROW(V0, V1, V2)
	STOREROW(V3, V4, V5)
	STOREROW(V6, V7, V8)
	STOREROW(V9, V10, V11)
	STOREROW(V12, V13, V14)
	STOREROW(V15, V16, V17)
	STOREROW(V18, V19, V20)
	STOREROW(V21, V22, V23)
	RET
