package fma

import "math"

// NaN32Bits is the bit pattern of every NaN that FMA32 returns: the positive
// quiet NaN with an empty payload.
const NaN32Bits = 0x7fc00000

// lowMask selects the 28 low mantissa bits of a float64. At any magnitude
// float32 can reach, every float32 value, every midpoint between two
// adjacent float32 values and the overflow threshold 2^128 - 2^103 are
// float64 values whose 28 low mantissa bits are zero (28 = 53 - 24 - 1; see
// the package comment). A float64 with one of these bits set is none of
// them.
const lowMask = 1<<28 - 1

// FMA32 returns a*b + c computed exactly and rounded once to float32, to
// nearest with ties to even: IEEE 754 fusedMultiplyAdd in binary32. It is
// pure Go, gives the same bits on every architecture, with or without the
// noasm tag, and agrees with the VFMADD (x86) and FMADD/FMLA (arm64)
// instructions, in the default floating-point environment, on every result
// that is not a NaN.
//
// Zeros, infinities, overflow and subnormal results follow IEEE 754: an
// exact zero sum is +0 unless a*b and c are both -0; a nonzero result that
// rounds to zero keeps its sign; a result whose magnitude reaches
// 2^128 - 2^103 is ±Inf; 0*Inf, Inf*0 and Inf - Inf give NaN. Every NaN
// result, whether from a NaN operand or an invalid operation, is the
// canonical NaN with bits NaN32Bits: operand payloads are not propagated,
// because which operand's payload hardware propagates depends on the
// instruction form the compiler picks.
//
// The package comment proves the method correct.
func FMA32(a, b, c float32) float32 {
	// The product of two float32 values is exact in float64. The explicit
	// conversion rounds it on its own, so that no compiler may fuse it into
	// the addition (the Go specification allows fusion otherwise). Fusion
	// would not change the value, the product being exact, but the proof
	// is about separately rounded operations and the code says so.
	p := float64(float64(a) * float64(b))
	s := p + float64(c)
	// When s is not a float32 breakpoint, the single rounding of p + c to
	// float64 has not moved it across one, and float32(s) is the correctly
	// rounded result. NaNs go to the slow path, which makes them canonical.
	if math.Float64bits(s)&lowMask == 0 || s != s {
		return slow(p, float64(c), s)
	}
	return float32(s)
}

// slow finishes FMA32 when s = p + c rounded to float64 may be a float32
// breakpoint, or is not finite. It replaces s by the exact sum rounded to
// odd at float64 precision, which float32 conversion then rounds correctly.
//
//go:noinline
func slow(p, c, s float64) float32 {
	if s != s {
		return math.Float32frombits(NaN32Bits)
	}
	if s-s != 0 {
		// ±Inf: an infinite operand, the other terms finite or infinities
		// of the same sign. No rounding is involved.
		return float32(s)
	}
	// TwoSum: e = (p + c) - s exactly, for any order of magnitudes of p
	// and c. No product appears, so nothing can be fused.
	cs := s - p
	ps := s - cs
	e := (p - ps) + (c - cs)
	if e == 0 {
		// s is the exact sum (this includes every zero sum, with its
		// IEEE 754 sign already given by the float64 addition).
		return float32(s)
	}
	// Round p + c = s + e to odd. s is not zero here (a zero float64 sum
	// of these operands is exact), and the exact sum lies strictly between
	// s and its neighbour in the direction of e. Truncating towards zero
	// gives s when e has the sign of s and the neighbour towards zero of s
	// otherwise (one less in the magnitude's bit pattern, which also steps
	// down across a power of two correctly); setting the last bit then
	// picks whichever of the two neighbours of p + c is odd.
	bs := math.Float64bits(s)
	bs -= (math.Float64bits(e) ^ bs) >> 63
	bs |= 1
	return float32(math.Float64frombits(bs))
}
