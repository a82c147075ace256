//go:build amd64 && !noasm

#include "textflag.h"

// func transpose4x8(dst *float32, stride int, src *float32, ld int, blocks int)
//
// For b < blocks and q < 8, t < 4: dst[(8b+q)*stride + t] = src[t*ld + 8b+q].
// Each block loads eight values from each of four rows of src, transposes
// them in registers (AVX unpacks) and stores eight groups of four values,
// one per step p of the packed panel. Values are only moved, never
// computed, so their bits (NaN payloads included) are kept.
TEXT ·transpose4x8(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ stride+8(FP), R8
	SHLQ $2, R8               // dst step in bytes
	MOVQ src+16(FP), SI
	MOVQ ld+24(FP), R9
	SHLQ $2, R9               // src row stride in bytes
	MOVQ blocks+32(FP), CX
	LEAQ (SI)(R9*2), R10      // row 2
	LEAQ (R8)(R8*2), R11      // three dst steps
	TESTQ CX, CX
	JZ   done

loop:
	VMOVUPS (SI), Y0          // a0..a7
	VMOVUPS (SI)(R9*1), Y1    // b0..b7
	VMOVUPS (R10), Y2         // c0..c7
	VMOVUPS (R10)(R9*1), Y3   // d0..d7
	VUNPCKLPS Y1, Y0, Y4      // a0 b0 a1 b1 | a4 b4 a5 b5
	VUNPCKHPS Y1, Y0, Y5      // a2 b2 a3 b3 | a6 b6 a7 b7
	VUNPCKLPS Y3, Y2, Y6      // c0 d0 c1 d1 | c4 d4 c5 d5
	VUNPCKHPS Y3, Y2, Y7      // c2 d2 c3 d3 | c6 d6 c7 d7
	VUNPCKLPD Y6, Y4, Y0      // step 0 | step 4
	VUNPCKHPD Y6, Y4, Y1      // step 1 | step 5
	VUNPCKLPD Y7, Y5, Y2      // step 2 | step 6
	VUNPCKHPD Y7, Y5, Y3      // step 3 | step 7
	VMOVUPS X0, (DI)
	VMOVUPS X1, (DI)(R8*1)
	VMOVUPS X2, (DI)(R8*2)
	VMOVUPS X3, (DI)(R11*1)
	LEAQ (DI)(R8*4), DX       // step 4
	VEXTRACTF128 $1, Y0, (DX)
	VEXTRACTF128 $1, Y1, (DX)(R8*1)
	VEXTRACTF128 $1, Y2, (DX)(R8*2)
	VEXTRACTF128 $1, Y3, (DX)(R11*1)
	LEAQ (DX)(R8*4), DI       // step 8
	ADDQ $32, SI
	ADDQ $32, R10
	DECQ CX
	JNZ  loop

done:
	VZEROUPPER
	RET

// func transpose2x8(dst *float32, stride int, src *float32, ld int, blocks int)
//
// transpose4x8 for two rows: dst[(8b+q)*stride + t] = src[t*ld + 8b+q]
// for t < 2. Each step's pair of values is one 8-byte store.
TEXT ·transpose2x8(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ stride+8(FP), R8
	SHLQ $2, R8               // dst step in bytes
	MOVQ src+16(FP), SI
	MOVQ ld+24(FP), R9
	SHLQ $2, R9               // src row stride in bytes
	MOVQ blocks+32(FP), CX
	LEAQ (R8)(R8*2), R11      // three dst steps
	TESTQ CX, CX
	JZ   done2

loop2:
	VMOVUPS (SI), Y0          // a0..a7
	VMOVUPS (SI)(R9*1), Y1    // b0..b7
	VUNPCKLPS Y1, Y0, Y2      // a0 b0 a1 b1 | a4 b4 a5 b5
	VUNPCKHPS Y1, Y0, Y3      // a2 b2 a3 b3 | a6 b6 a7 b7
	VEXTRACTF128 $1, Y2, X4   // a4 b4 a5 b5
	VEXTRACTF128 $1, Y3, X5   // a6 b6 a7 b7
	VMOVQ   X2, (DI)
	VMOVHPS X2, (DI)(R8*1)
	VMOVQ   X3, (DI)(R8*2)
	VMOVHPS X3, (DI)(R11*1)
	LEAQ (DI)(R8*4), DX       // step 4
	VMOVQ   X4, (DX)
	VMOVHPS X4, (DX)(R8*1)
	VMOVQ   X5, (DX)(R8*2)
	VMOVHPS X5, (DX)(R11*1)
	LEAQ (DX)(R8*4), DI       // step 8
	ADDQ $32, SI
	DECQ CX
	JNZ  loop2

done2:
	VZEROUPPER
	RET
