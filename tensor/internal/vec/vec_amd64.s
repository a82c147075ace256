//go:build amd64 && !noasm

#include "textflag.h"

// AVX2 kernels. Each computes, lane by lane, the same sequence of IEEE 754
// float32 operations as the reference loop in ref.go: VADDPS, VSUBPS,
// VMULPS, VDIVPS and VSQRTPS round exactly like the scalar operations, and
// no fused multiply-add is used. Branches of the scalar code become masks:
// each branch that some lane takes is computed for the whole vector, and
// the lanes are blended.
//
// Operand order is the Go assembler's: VSUBPS b, a, d sets d = a - b;
// VPCMPGTD b, a, d sets d = (a > b) as signed integers; VBLENDVPS m, a, b, d
// sets d = a where the sign bit of m is set and b elsewhere.

// Constants, each repeated in eight lanes (32 bytes).
#define C8(off, v) \
	DATA vconst<>+(off+0)(SB)/4, $v; \
	DATA vconst<>+(off+4)(SB)/4, $v; \
	DATA vconst<>+(off+8)(SB)/4, $v; \
	DATA vconst<>+(off+12)(SB)/4, $v; \
	DATA vconst<>+(off+16)(SB)/4, $v; \
	DATA vconst<>+(off+20)(SB)/4, $v; \
	DATA vconst<>+(off+24)(SB)/4, $v; \
	DATA vconst<>+(off+28)(SB)/4, $v

// f32.Exp
C8(0, 0x3fb8aa3b)   // log2e
C8(32, 0x4b400000)  // round = 1.5*2^23
C8(64, 0x3f317200)  // ln2Hi
C8(96, 0x35bfbe8e)  // ln2Lo
C8(128, 0x3efffffe) // e2
C8(160, 0x3e2aaa46) // e3
C8(192, 0x3d2aac83) // e4
C8(224, 0x3c091ea0) // e5
C8(256, 0x3ab50f4f) // e6
C8(288, 0x4b3fff81) // roundB - 127: bits(t) minus it is k+127
C8(320, 0x42ac0000) // expFastMax (86.0)
C8(352, 0x42b17217) // expOverflow
C8(384, 0xc2cff1b4) // expUnderflow
C8(416, 0x0000007f) // exponent bias 127

// f32.Tanh
C8(448, 0xbeaaaa99) // t3
C8(480, 0x3e088393) // t5
C8(512, 0xbd5c1e2c) // t7
C8(544, 0x3ca91348) // t9
C8(576, 0xbbbaf0cf) // t11
C8(608, 0x3f200000) // tanhPolyMax (0.625)
C8(640, 0x41120000) // tanhSatMin (9.125)

// GELU
C8(672, 0x3f4c422a) // geluC = float32(sqrt(2/pi))
C8(704, 0x3d372713) // geluK = float32(0.044715)
C8(736, 0x3f000000) // 0.5

// Common
C8(768, 0x3f800000) // 1
C8(800, 0x40000000) // 2
C8(832, 0x7fffffff) // abs mask
C8(864, 0x80000000) // sign mask
C8(896, 0x7f800000) // +Inf; bits above it (without the sign) are NaN

GLOBL vconst<>(SB), RODATA|NOPTR, $928

// Eight lanes of ones then eight of zeros: the 32 bytes at 32-4*r are the
// mask of the first r lanes.
DATA tailmask<>+0(SB)/8, $-1
DATA tailmask<>+8(SB)/8, $-1
DATA tailmask<>+16(SB)/8, $-1
DATA tailmask<>+24(SB)/8, $-1
DATA tailmask<>+32(SB)/8, $0
DATA tailmask<>+40(SB)/8, $0
DATA tailmask<>+48(SB)/8, $0
DATA tailmask<>+56(SB)/8, $0
GLOBL tailmask<>(SB), RODATA|NOPTR, $64

#define LOG2E vconst<>+0(SB)
#define ROUND vconst<>+32(SB)
#define LN2HI vconst<>+64(SB)
#define LN2LO vconst<>+96(SB)
#define E2 vconst<>+128(SB)
#define E3 vconst<>+160(SB)
#define E4 vconst<>+192(SB)
#define E5 vconst<>+224(SB)
#define E6 vconst<>+256(SB)
#define KMAGIC vconst<>+288(SB)
#define EXPFASTMAX vconst<>+320(SB)
#define EXPOVER vconst<>+352(SB)
#define EXPUNDER vconst<>+384(SB)
#define BIAS vconst<>+416(SB)
#define T3 vconst<>+448(SB)
#define T5 vconst<>+480(SB)
#define T7 vconst<>+512(SB)
#define T9 vconst<>+544(SB)
#define T11 vconst<>+576(SB)
#define TPOLYMAX vconst<>+608(SB)
#define TSATMIN vconst<>+640(SB)
#define GELUC vconst<>+672(SB)
#define GELUK vconst<>+704(SB)
#define HALF vconst<>+736(SB)
#define ONE vconst<>+768(SB)
#define TWO vconst<>+800(SB)
#define ABSMASK vconst<>+832(SB)
#define SIGNMASK vconst<>+864(SB)
#define INF vconst<>+896(SB)

// EXPFAST computes the fast path of f32.Exp for the eight lanes of in:
//
//	t := float32(x*log2e) + round
//	kf := t - round
//	k := int32(bits(t)) - roundB
//	r := x - float32(kf*ln2Hi)
//	r = r - float32(kf*ln2Lo)
//	q := float32(e6*r) + e5; q = float32(q*r) + e4; q = float32(q*r) + e3; q = float32(q*r) + e2
//	p := 1 + (r + float32(float32(r*r)*q))
//	result = p * frombits(uint32(k+127)<<23)
//
// It leaves the result in Y6, p in Y4 and k+127 in Y2, and uses Y1..Y6.
// Lanes outside the fast path get meaningless values.
#define EXPFAST(in) \
	VMULPS LOG2E, in, Y1;  \
	VADDPS ROUND, Y1, Y1;  \
	VPSUBD KMAGIC, Y1, Y2; \
	VSUBPS ROUND, Y1, Y1;  \
	VMULPS LN2HI, Y1, Y3;  \
	VSUBPS Y3, in, Y3;     \
	VMULPS LN2LO, Y1, Y5;  \
	VSUBPS Y5, Y3, Y3;     \
	VMULPS E6, Y3, Y4;     \
	VADDPS E5, Y4, Y4;     \
	VMULPS Y3, Y4, Y4;     \
	VADDPS E4, Y4, Y4;     \
	VMULPS Y3, Y4, Y4;     \
	VADDPS E3, Y4, Y4;     \
	VMULPS Y3, Y4, Y4;     \
	VADDPS E2, Y4, Y4;     \
	VMULPS Y3, Y3, Y5;     \
	VMULPS Y4, Y5, Y5;     \
	VADDPS Y3, Y5, Y5;     \
	VADDPS ONE, Y5, Y4;    \
	VPSLLD $23, Y2, Y6;    \
	VMULPS Y6, Y4, Y6

// EXPCHECK sets Y7 to the lanes of in outside the fast path of f32.Exp
// (|x| > 86 or NaN: bits(x)&0x7fffffff > expFastMax) and jumps to slow if
// there is any.
#define EXPCHECK(in, slow) \
	VANDPS   ABSMASK, in, Y7;    \
	VPCMPGTD EXPFASTMAX, Y7, Y7; \
	VPTEST   Y7, Y7;             \
	JNZ      slow

// EXPSLOW replaces, in Y6, the lanes of Y7 by the result of expSlow, from
// x in in and Y2, Y4 as left by EXPFAST:
//
//	k1 := k / 2; k2 := k - k1
//	p = p * frombits(uint32(k1+127)<<23) * frombits(uint32(k2+127)<<23)
//
// then, in this order of priority (the last wins), +0 where x is below the
// underflow threshold (bits(x) > expUnderflow as unsigned integers), +Inf
// where it is above the overflow threshold (int32(bits(x)) > expOverflow)
// and x itself where it is NaN. Uses Y1, Y3, Y5.
#define EXPSLOW(in) \
	VPSUBD    BIAS, Y2, Y1;     \
	VPSRLD    $31, Y1, Y3;      \
	VPADDD    Y3, Y1, Y3;       \
	VPSRAD    $1, Y3, Y3;       \
	VPSUBD    Y3, Y1, Y1;       \
	VPADDD    BIAS, Y3, Y3;     \
	VPSLLD    $23, Y3, Y3;      \
	VPADDD    BIAS, Y1, Y1;     \
	VPSLLD    $23, Y1, Y1;      \
	VMULPS    Y3, Y4, Y5;       \
	VMULPS    Y1, Y5, Y5;       \
	VBLENDVPS Y7, Y5, Y6, Y6;   \
	VPCMPGTD  EXPUNDER, in, Y3; \
	VPAND     in, Y3, Y3;       \
	VXORPS    Y1, Y1, Y1;       \
	VBLENDVPS Y3, Y1, Y6, Y6;   \
	VPCMPGTD  EXPOVER, in, Y3;  \
	VBLENDVPS Y3, INF, Y6, Y6;  \
	VCMPPS    $3, in, in, Y3;   \
	VBLENDVPS Y3, in, Y6, Y6

// TANH computes f32.Tanh of the lanes of in into Y9. It computes
// 1 - 2/(e^(2|x|)+1) only if some lane needs it (0.625 <= |x| <= 9.125) and
// the polynomial always (skipping it when no lane needs it costs more in
// mispredicted branches than it saves), then sets the sign of x and
// returns x itself for NaN. Uses Y1..Y10 and Y12..Y15; in must be none of
// them. nomid is a label for the macro's branch.
//
//	a := |x|
//	poly: z := a*a; p := float32(t11*z) + t9; p = float32(p*z) + t7; p = float32(p*z) + t5
//	      p = float32(p*z) + t3; t = a + float32(float32(a*z)*p)
//	mid:  t = 1 - 2/(Exp(2*a)+1)
//	else: t = 1
#define TANH(in, nomid) \
	VANDPS    ABSMASK, in, Y7;   \
	VMOVUPS   ONE, Y9;           \
	VMOVDQU   TPOLYMAX, Y10;     \
	VPCMPGTD  Y7, Y10, Y10;      \
	VPCMPGTD  TSATMIN, Y7, Y12;  \
	VPOR      Y10, Y12, Y12;     \
	VMOVMSKPS Y12, AX;           \
	CMPL      AX, $0xff;         \
	JEQ       nomid;             \
	VMULPS    TWO, Y7, Y8;       \
	EXPFAST(Y8);                 \
	VADDPS    ONE, Y6, Y6;       \
	VMOVUPS   TWO, Y13;          \
	VDIVPS    Y6, Y13, Y6;       \
	VMOVUPS   ONE, Y13;          \
	VSUBPS    Y6, Y13, Y6;       \
	VBLENDVPS Y12, Y9, Y6, Y9;   \
nomid:                           \
	VMULPS    Y7, Y7, Y13;       \
	VMULPS    T11, Y13, Y14;     \
	VADDPS    T9, Y14, Y14;      \
	VMULPS    Y13, Y14, Y14;     \
	VADDPS    T7, Y14, Y14;      \
	VMULPS    Y13, Y14, Y14;     \
	VADDPS    T5, Y14, Y14;      \
	VMULPS    Y13, Y14, Y14;     \
	VADDPS    T3, Y14, Y14;      \
	VMULPS    Y13, Y7, Y15;      \
	VMULPS    Y14, Y15, Y15;     \
	VADDPS    Y15, Y7, Y15;      \
	VBLENDVPS Y10, Y15, Y9, Y9;  \
	VANDPS    SIGNMASK, in, Y13; \
	VORPS     Y13, Y9, Y9;       \
	VPCMPGTD  INF, Y7, Y13;      \
	VBLENDVPS Y13, in, Y9, Y9

// TAILMASK sets R8 to the address of the mask of the first BX (1..7)
// lanes and loads it into mask. VMASKMOVPS loads zeros into the other
// lanes, without touching their memory, and does not store them.
#define TAILMASK(mask) \
	LEAQ    tailmask<>+32(SB), R8; \
	SHLQ    $2, BX;                \
	SUBQ    BX, R8;                \
	VMOVDQU (R8), mask

// func expAVX2(dst, x []float32)
TEXT ·expAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ CX, BX
	SHRQ $3, CX
	JZ   tail

loop:
	VMOVUPS (SI), Y0
	EXPFAST(Y0)
	EXPCHECK(Y0, slow)

store:
	VMOVUPS Y6, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     loop

tail:
	ANDQ       $7, BX
	JZ         done
	TAILMASK(Y15)
	VMASKMOVPS (SI), Y15, Y0
	EXPFAST(Y0)
	EXPCHECK(Y0, tailslow)

tailstore:
	VMASKMOVPS Y6, Y15, (DI)

done:
	VZEROUPPER
	RET

slow:
	EXPSLOW(Y0)
	JMP store

tailslow:
	EXPSLOW(Y0)
	JMP tailstore

// func expSubAVX2(dst, x []float32, m float32)
TEXT ·expSubAVX2(SB), NOSPLIT, $0-52
	MOVQ         dst_base+0(FP), DI
	MOVQ         x_base+24(FP), SI
	MOVQ         x_len+32(FP), CX
	VBROADCASTSS m+48(FP), Y15
	MOVQ         CX, BX
	SHRQ         $3, CX
	JZ           tail

loop:
	VMOVUPS (SI), Y0
	VSUBPS  Y15, Y0, Y0
	EXPFAST(Y0)
	EXPCHECK(Y0, slow)

store:
	VMOVUPS Y6, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     loop

tail:
	ANDQ       $7, BX
	JZ         done
	TAILMASK(Y14)
	VMASKMOVPS (SI), Y14, Y0
	VSUBPS     Y15, Y0, Y0
	EXPFAST(Y0)
	EXPCHECK(Y0, tailslow)

tailstore:
	VMASKMOVPS Y6, Y14, (DI)

done:
	VZEROUPPER
	RET

slow:
	EXPSLOW(Y0)
	JMP store

tailslow:
	EXPSLOW(Y0)
	JMP tailstore

// func tanhAVX2(dst, x []float32)
TEXT ·tanhAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ CX, BX
	SHRQ $3, CX
	JZ   tail

loop:
	VMOVUPS (SI), Y0
	TANH(Y0, nomid)
	VMOVUPS Y9, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     loop

tail:
	ANDQ       $7, BX
	JZ         done
	TAILMASK(Y11)
	VMASKMOVPS (SI), Y11, Y0
	TANH(Y0, tailnomid)
	VMASKMOVPS Y9, Y11, (DI)

done:
	VZEROUPPER
	RET

// GELUSTEP computes GELU of the lanes of Y11 (v): the tanh term in Y9
// and the result in Y1.
//
//	x3 := float32(float32(v*v) * v)
//	t := f32.Tanh(float32(geluC * (v + float32(geluK*x3))))
//	th[i] = t
//	dst[i] = float32(float32(0.5*v) * (1 + t))
#define GELUSTEP(nomid) \
	VMULPS  Y11, Y11, Y0; \
	VMULPS  Y11, Y0, Y0;  \
	VMULPS  GELUK, Y0, Y0; \
	VADDPS  Y0, Y11, Y0;  \
	VMULPS  GELUC, Y0, Y0; \
	TANH(Y0, nomid);      \
	VADDPS  ONE, Y9, Y1;  \
	VMULPS  HALF, Y11, Y2; \
	VMULPS  Y1, Y2, Y1

// func geluAVX2(dst, th, x []float32)
TEXT ·geluAVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ th_base+24(FP), DX
	MOVQ x_base+48(FP), SI
	MOVQ x_len+56(FP), CX
	MOVQ CX, BX
	SHRQ $3, CX
	JZ   tail

loop:
	VMOVUPS (SI), Y11
	GELUSTEP(nomid)
	VMOVUPS Y9, (DX)
	VMOVUPS Y1, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JNZ     loop

tail:
	ANDQ       $7, BX
	JZ         done
	TAILMASK(Y11)
	VMASKMOVPS (SI), Y11, Y11
	GELUSTEP(tailnomid)
	VMOVDQU    (R8), Y13
	VMASKMOVPS Y9, Y13, (DX)
	VMASKMOVPS Y1, Y13, (DI)

done:
	VZEROUPPER
	RET

// BINARY is the loop of dst[i] = x[i] op y[i] for CX/8 vectors, four at a
// time and then one, with dst in DI, x in SI and y in DX.
#define BINARY(op) \
	XORQ AX, AX;               \
	SHRQ $3, CX;               \
	MOVQ CX, BX;               \
	SHRQ $2, BX;               \
	JZ   tail;                 \
loop4:                         \
	VMOVUPS (SI)(AX*1), Y0;    \
	VMOVUPS 32(SI)(AX*1), Y1;  \
	VMOVUPS 64(SI)(AX*1), Y2;  \
	VMOVUPS 96(SI)(AX*1), Y3;  \
	op      (DX)(AX*1), Y0, Y0;   \
	op      32(DX)(AX*1), Y1, Y1; \
	op      64(DX)(AX*1), Y2, Y2; \
	op      96(DX)(AX*1), Y3, Y3; \
	VMOVUPS Y0, (DI)(AX*1);    \
	VMOVUPS Y1, 32(DI)(AX*1);  \
	VMOVUPS Y2, 64(DI)(AX*1);  \
	VMOVUPS Y3, 96(DI)(AX*1);  \
	ADDQ    $128, AX;          \
	DECQ    BX;                \
	JNZ     loop4;             \
tail:                          \
	ANDQ $3, CX;               \
	JZ   done;                 \
loop1:                         \
	VMOVUPS (SI)(AX*1), Y0;    \
	op      (DX)(AX*1), Y0, Y0; \
	VMOVUPS Y0, (DI)(AX*1);    \
	ADDQ    $32, AX;           \
	DECQ    CX;                \
	JNZ     loop1;             \
done:                          \
	VZEROUPPER;                \
	RET

// func addAVX2(dst, x, y []float32)
TEXT ·addAVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ y_base+48(FP), DX
	BINARY(VADDPS)

// func mulAVX2(dst, x, y []float32)
TEXT ·mulAVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ y_base+48(FP), DX
	BINARY(VMULPS)

// func accumulateAVX2(dst, x []float32)
//
// dst[i] = dst[i] + x[i]
TEXT ·accumulateAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	XORQ AX, AX
	SHRQ $3, CX
	MOVQ CX, BX
	SHRQ $2, BX
	JZ   tail

loop4:
	VMOVUPS (DI)(AX*1), Y0
	VMOVUPS 32(DI)(AX*1), Y1
	VMOVUPS 64(DI)(AX*1), Y2
	VMOVUPS 96(DI)(AX*1), Y3
	VADDPS  (SI)(AX*1), Y0, Y0
	VADDPS  32(SI)(AX*1), Y1, Y1
	VADDPS  64(SI)(AX*1), Y2, Y2
	VADDPS  96(SI)(AX*1), Y3, Y3
	VMOVUPS Y0, (DI)(AX*1)
	VMOVUPS Y1, 32(DI)(AX*1)
	VMOVUPS Y2, 64(DI)(AX*1)
	VMOVUPS Y3, 96(DI)(AX*1)
	ADDQ    $128, AX
	DECQ    BX
	JNZ     loop4

tail:
	ANDQ $3, CX
	JZ   done

loop1:
	VMOVUPS (DI)(AX*1), Y0
	VADDPS  (SI)(AX*1), Y0, Y0
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ    $32, AX
	DECQ    CX
	JNZ     loop1

done:
	VZEROUPPER
	RET

// func addScaledAVX2(dst, x []float32, s float32)
//
// dst[i] = dst[i] + float32(s*x[i])
TEXT ·addScaledAVX2(SB), NOSPLIT, $0-52
	MOVQ         dst_base+0(FP), DI
	MOVQ         x_base+24(FP), SI
	MOVQ         x_len+32(FP), CX
	VBROADCASTSS s+48(FP), Y15
	XORQ         AX, AX
	SHRQ         $3, CX
	MOVQ         CX, BX
	SHRQ         $2, BX
	JZ           tail

loop4:
	VMULPS  (SI)(AX*1), Y15, Y0
	VMULPS  32(SI)(AX*1), Y15, Y1
	VMULPS  64(SI)(AX*1), Y15, Y2
	VMULPS  96(SI)(AX*1), Y15, Y3
	VADDPS  (DI)(AX*1), Y0, Y0
	VADDPS  32(DI)(AX*1), Y1, Y1
	VADDPS  64(DI)(AX*1), Y2, Y2
	VADDPS  96(DI)(AX*1), Y3, Y3
	VMOVUPS Y0, (DI)(AX*1)
	VMOVUPS Y1, 32(DI)(AX*1)
	VMOVUPS Y2, 64(DI)(AX*1)
	VMOVUPS Y3, 96(DI)(AX*1)
	ADDQ    $128, AX
	DECQ    BX
	JNZ     loop4

tail:
	ANDQ $3, CX
	JZ   done

loop1:
	VMULPS  (SI)(AX*1), Y15, Y0
	VADDPS  (DI)(AX*1), Y0, Y0
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ    $32, AX
	DECQ    CX
	JNZ     loop1

done:
	VZEROUPPER
	RET

// SCALAR is the loop of dst[i] = x[i] op s for CX/8 vectors, four at a time
// and then one, with dst in DI, x in SI and s broadcast in Y15.
#define SCALAR(op) \
	XORQ         AX, AX;             \
	SHRQ         $3, CX;             \
	MOVQ         CX, BX;             \
	SHRQ         $2, BX;             \
	JZ           tail;               \
loop4:                               \
	VMOVUPS (SI)(AX*1), Y0;          \
	VMOVUPS 32(SI)(AX*1), Y1;        \
	VMOVUPS 64(SI)(AX*1), Y2;        \
	VMOVUPS 96(SI)(AX*1), Y3;        \
	op      Y15, Y0, Y0;             \
	op      Y15, Y1, Y1;             \
	op      Y15, Y2, Y2;             \
	op      Y15, Y3, Y3;             \
	VMOVUPS Y0, (DI)(AX*1);          \
	VMOVUPS Y1, 32(DI)(AX*1);        \
	VMOVUPS Y2, 64(DI)(AX*1);        \
	VMOVUPS Y3, 96(DI)(AX*1);        \
	ADDQ    $128, AX;                \
	DECQ    BX;                      \
	JNZ     loop4;                   \
tail:                                \
	ANDQ $3, CX;                     \
	JZ   done;                       \
loop1:                               \
	VMOVUPS (SI)(AX*1), Y0;          \
	op      Y15, Y0, Y0;             \
	VMOVUPS Y0, (DI)(AX*1);          \
	ADDQ    $32, AX;                 \
	DECQ    CX;                      \
	JNZ     loop1;                   \
done:                                \
	VZEROUPPER;                      \
	RET

// func scaleAVX2(dst, x []float32, s float32)
//
// dst[i] = float32(s*x[i])
TEXT ·scaleAVX2(SB), NOSPLIT, $0-52
	MOVQ         dst_base+0(FP), DI
	MOVQ         x_base+24(FP), SI
	MOVQ         x_len+32(FP), CX
	VBROADCASTSS s+48(FP), Y15
	SCALAR(VMULPS)

// func divScalarAVX2(dst, x []float32, s float32)
//
// dst[i] = x[i] / s
TEXT ·divScalarAVX2(SB), NOSPLIT, $0-52
	MOVQ         dst_base+0(FP), DI
	MOVQ         x_base+24(FP), SI
	MOVQ         x_len+32(FP), CX
	VBROADCASTSS s+48(FP), Y15
	SCALAR(VDIVPS)

// HSUM sets X0[0] to ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)), the lanes s of
// Y0. Uses X1.
#define HSUM \
	VEXTRACTF128 $1, Y0, X1; \
	VHADDPS      X1, X0, X0; \
	VHADDPS      X0, X0, X0; \
	VMOVSHDUP    X0, X1;     \
	VADDSS       X1, X0, X0

// func sumAVX2(x []float32) float32
//
// One accumulator, Y0: lane l adds x[l], x[l+8], ... in order. Unrolling
// keeps the additions in sequence.
TEXT ·sumAVX2(SB), NOSPLIT, $0-28
	MOVQ   x_base+0(FP), SI
	MOVQ   x_len+8(FP), CX
	VXORPS Y0, Y0, Y0
	SHRQ   $3, CX
	MOVQ   CX, BX
	SHRQ   $2, BX
	JZ     tail

loop4:
	VADDPS (SI), Y0, Y0
	VADDPS 32(SI), Y0, Y0
	VADDPS 64(SI), Y0, Y0
	VADDPS 96(SI), Y0, Y0
	ADDQ   $128, SI
	DECQ   BX
	JNZ    loop4

tail:
	ANDQ $3, CX
	JZ   done

loop1:
	VADDPS (SI), Y0, Y0
	ADDQ   $32, SI
	DECQ   CX
	JNZ    loop1

done:
	HSUM
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotAVX2(x, y []float32) float32
//
// As sumAVX2, adding float32(x[i]*y[i]).
TEXT ·dotAVX2(SB), NOSPLIT, $0-52
	MOVQ   x_base+0(FP), SI
	MOVQ   x_len+8(FP), CX
	MOVQ   y_base+24(FP), DX
	VXORPS Y0, Y0, Y0
	SHRQ   $3, CX
	MOVQ   CX, BX
	SHRQ   $2, BX
	JZ     tail

loop4:
	VMOVUPS (SI), Y1
	VMOVUPS 32(SI), Y2
	VMOVUPS 64(SI), Y3
	VMOVUPS 96(SI), Y4
	VMULPS  (DX), Y1, Y1
	VMULPS  32(DX), Y2, Y2
	VMULPS  64(DX), Y3, Y3
	VMULPS  96(DX), Y4, Y4
	VADDPS  Y1, Y0, Y0
	VADDPS  Y2, Y0, Y0
	VADDPS  Y3, Y0, Y0
	VADDPS  Y4, Y0, Y0
	ADDQ    $128, SI
	ADDQ    $128, DX
	DECQ    BX
	JNZ     loop4

tail:
	ANDQ $3, CX
	JZ   done

loop1:
	VMOVUPS (SI), Y1
	VMULPS  (DX), Y1, Y1
	VADDPS  Y1, Y0, Y0
	ADDQ    $32, SI
	ADDQ    $32, DX
	DECQ    CX
	JNZ     loop1

done:
	HSUM
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func maxAVX2(x []float32) (m float32, ok bool)
//
// Lane maxima in Y0 and Y1 and the lanes that saw a NaN in Y2; the order
// does not matter, because the result is used only when it is the one
// nonzero value that is the maximum.
TEXT ·maxAVX2(SB), NOSPLIT, $0-29
	MOVQ    x_base+0(FP), SI
	MOVQ    x_len+8(FP), CX
	SHRQ    $3, CX
	VMOVUPS (SI), Y0
	VMOVUPS Y0, Y1
	VCMPPS  $3, Y0, Y0, Y2
	ADDQ    $32, SI
	DECQ    CX
	MOVQ    CX, BX
	SHRQ    $1, BX
	JZ      tail

loop2:
	VMOVUPS (SI), Y3
	VMOVUPS 32(SI), Y4
	VMAXPS  Y3, Y0, Y0
	VMAXPS  Y4, Y1, Y1
	VCMPPS  $3, Y3, Y4, Y5
	VORPS   Y5, Y2, Y2
	ADDQ    $64, SI
	DECQ    BX
	JNZ     loop2

tail:
	ANDQ $1, CX
	JZ   reduce
	VMOVUPS (SI), Y3
	VMAXPS  Y3, Y0, Y0
	VCMPPS  $3, Y3, Y3, Y5
	VORPS   Y5, Y2, Y2

reduce:
	VPTEST       Y2, Y2
	JNZ          fail
	VMAXPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VMAXPS       X1, X0, X0
	VXORPS       X1, X1, X1
	VUCOMISS     X1, X0
	JEQ          fail
	VMOVSS       X0, m+24(FP)
	MOVB         $1, ok+28(FP)
	VZEROUPPER
	RET

fail:
	MOVL $0, m+24(FP)
	MOVB $0, ok+28(FP)
	VZEROUPPER
	RET

// func adamWAVX2(w, g, m, v []float32, p *adamParams)
//
//	gj := float32(g[j] * gscale)
//	m[j] = float32(b1*m[j]) + float32(omb1*gj)
//	v[j] = float32(b2*v[j]) + float32(float32(omb2*gj)*gj)
//	mh := m[j] / c1
//	vh := v[j] / c2
//	w[j] = (w[j] - float32(decay*w[j])) - float32(lr*(mh/(sqrt(vh)+eps)))
//
// Loads and stores come in the order of the reference loop.
TEXT ·adamWAVX2(SB), NOSPLIT, $0-104
	MOVQ         w_base+0(FP), DI
	MOVQ         w_len+8(FP), CX
	MOVQ         g_base+24(FP), SI
	MOVQ         m_base+48(FP), DX
	MOVQ         v_base+72(FP), BX
	MOVQ         p+96(FP), AX
	VBROADCASTSS 0(AX), Y6   // gscale
	VBROADCASTSS 4(AX), Y7   // b1
	VBROADCASTSS 8(AX), Y8   // b2
	VBROADCASTSS 12(AX), Y9  // omb1 = 1-b1
	VBROADCASTSS 16(AX), Y10 // omb2 = 1-b2
	VBROADCASTSS 20(AX), Y11 // c1
	VBROADCASTSS 24(AX), Y12 // c2
	VBROADCASTSS 28(AX), Y13 // lr
	VBROADCASTSS 32(AX), Y14 // decay
	VBROADCASTSS 36(AX), Y15 // eps
	XORQ         AX, AX
	SHRQ         $3, CX
	JZ           done

loop:
	VMULPS  (SI)(AX*1), Y6, Y0
	VMULPS  (DX)(AX*1), Y7, Y1
	VMULPS  Y0, Y9, Y2
	VADDPS  Y2, Y1, Y1
	VMOVUPS Y1, (DX)(AX*1)
	VMULPS  (BX)(AX*1), Y8, Y2
	VMULPS  Y0, Y10, Y3
	VMULPS  Y0, Y3, Y3
	VADDPS  Y3, Y2, Y2
	VMOVUPS Y2, (BX)(AX*1)
	VDIVPS  Y11, Y1, Y1
	VDIVPS  Y12, Y2, Y2
	VSQRTPS Y2, Y2
	VADDPS  Y15, Y2, Y2
	VDIVPS  Y2, Y1, Y1
	VMULPS  Y13, Y1, Y1
	VMOVUPS (DI)(AX*1), Y3
	VMULPS  Y3, Y14, Y4
	VSUBPS  Y4, Y3, Y3
	VSUBPS  Y1, Y3, Y3
	VMOVUPS Y3, (DI)(AX*1)
	ADDQ    $32, AX
	DECQ    CX
	JNZ     loop

done:
	VZEROUPPER
	RET
