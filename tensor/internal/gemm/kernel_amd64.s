//go:build amd64 && !noasm

#include "textflag.h"

// Micro-kernel for a 6×16 tile of C with AVX2.
//
// Y0..Y11 hold the tile: row i in Y(2i) (columns 0..7) and Y(2i+1)
// (columns 8..15). Each step p loads 16 values of op(B) into Y12, Y13,
// broadcasts each of the 6 values of op(A) into Y14 and does one fused
// multiply-add (VFMADD231PS, one rounding) into each accumulator, which is
// the reference loop's operation. Only AVX2 and FMA3 instructions are used.
// Before the tile is stored, every NaN is replaced by the canonical quiet
// NaN 0x7fc00000 (the hardware propagates payloads, and its default NaN has
// the sign bit set), as the reference does.

// ROW multiplies the broadcast of op(A) at aoff(SI) by Y12, Y13 and adds the
// products to acc0, acc1, each with one rounding.
#define ROW(aoff, acc0, acc1) \
	VBROADCASTSS aoff(SI), Y14; \
	VFMADD231PS  Y12, Y14, acc0; \
	VFMADD231PS  Y13, Y14, acc1

// CANON replaces NaN lanes of acc by Y12 (canonical NaNs), using Y13.
#define CANON(acc) \
	VCMPPS    $3, acc, acc, Y13; \
	VBLENDVPS Y13, Y12, acc, acc

// STEP does one step of k: op(A) at a0(SI)..a0+20(SI), op(B) at b0(DI),
// b1(DI) = b0+32(DI).
#define STEP(a0, a1, a2, a3, a4, a5, b0, b1) \
	VMOVUPS b0(DI), Y12; \
	VMOVUPS b1(DI), Y13; \
	ROW(a0, Y0, Y1);     \
	ROW(a1, Y2, Y3);     \
	ROW(a2, Y4, Y5);     \
	ROW(a3, Y6, Y7);     \
	ROW(a4, Y8, Y9);     \
	ROW(a5, Y10, Y11)

// func kern6x16(k int, a, b, c *float32, ldc int, load bool)
TEXT ·kern6x16(SB), NOSPLIT, $0-41
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8               // row stride in bytes
	LEAQ (DX)(R8*2), R10      // row 2
	LEAQ (R10)(R8*2), R11     // row 4
	MOVBLZX load+40(FP), AX
	TESTL AX, AX
	JZ   zero

	VMOVUPS (DX), Y0
	VMOVUPS 32(DX), Y1
	VMOVUPS (DX)(R8*1), Y2
	VMOVUPS 32(DX)(R8*1), Y3
	VMOVUPS (R10), Y4
	VMOVUPS 32(R10), Y5
	VMOVUPS (R10)(R8*1), Y6
	VMOVUPS 32(R10)(R8*1), Y7
	VMOVUPS (R11), Y8
	VMOVUPS 32(R11), Y9
	VMOVUPS (R11)(R8*1), Y10
	VMOVUPS 32(R11)(R8*1), Y11
	JMP  start

zero:
	// Start from +0, as the reference does.
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	PREFETCHT0 (DX)
	PREFETCHT0 60(DX)
	PREFETCHT0 (DX)(R8*1)
	PREFETCHT0 60(DX)(R8*1)
	PREFETCHT0 (R10)
	PREFETCHT0 60(R10)
	PREFETCHT0 (R10)(R8*1)
	PREFETCHT0 60(R10)(R8*1)
	PREFETCHT0 (R11)
	PREFETCHT0 60(R11)
	PREFETCHT0 (R11)(R8*1)
	PREFETCHT0 60(R11)(R8*1)

start:
	MOVQ CX, BX
	SHRQ $2, BX
	JZ   tail

loop4:
	STEP(0, 4, 8, 12, 16, 20, 0, 32)
	STEP(24, 28, 32, 36, 40, 44, 64, 96)
	STEP(48, 52, 56, 60, 64, 68, 128, 160)
	STEP(72, 76, 80, 84, 88, 92, 192, 224)
	ADDQ $96, SI
	ADDQ $256, DI
	DECQ BX
	JNZ  loop4

tail:
	ANDQ $3, CX
	JZ   store

loop1:
	STEP(0, 4, 8, 12, 16, 20, 0, 32)
	ADDQ $24, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  loop1

store:
	MOVL         $0x7fc00000, AX
	VMOVD        AX, X12
	VPBROADCASTD X12, Y12
	CANON(Y0)
	CANON(Y1)
	CANON(Y2)
	CANON(Y3)
	CANON(Y4)
	CANON(Y5)
	CANON(Y6)
	CANON(Y7)
	CANON(Y8)
	CANON(Y9)
	CANON(Y10)
	CANON(Y11)
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, (DX)(R8*1)
	VMOVUPS Y3, 32(DX)(R8*1)
	VMOVUPS Y4, (R10)
	VMOVUPS Y5, 32(R10)
	VMOVUPS Y6, (R10)(R8*1)
	VMOVUPS Y7, 32(R10)(R8*1)
	VMOVUPS Y8, (R11)
	VMOVUPS Y9, 32(R11)
	VMOVUPS Y10, (R11)(R8*1)
	VMOVUPS Y11, 32(R11)(R8*1)
	VZEROUPPER
	RET
