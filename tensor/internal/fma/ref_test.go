package fma

import (
	"math"
	"math/big"
	"math/bits"
)

// This file holds two exact references for FMA32, written independently of
// it and of each other: refBig computes a*b + c exactly with math/big and
// lets big.Float round it to float32; refInt does the same with 128-bit
// integer arithmetic on the significands, fast enough for billions of
// cases. Both share only specialFMA, the IEEE 754 rules for NaN, infinite
// and zero operands.

var nan32 = math.Float32frombits(NaN32Bits)

// specialFMA returns the IEEE 754 fusedMultiplyAdd result and true when an
// operand is NaN or infinite, or when a*b and c are both zero; otherwise it
// returns false. NaN results are the canonical NaN.
func specialFMA(a, b, c float32) (float32, bool) {
	r, ok := specialRule(float64(a), float64(b), float64(c))
	if r != r {
		return nan32, ok
	}
	return float32(r), ok
}

// specialRule is specialFMA for operands of any binary format, held in
// float64; it returns math.NaN() for NaN results.
func specialRule(a, b, c float64) (float64, bool) {
	if a != a || b != b || c != c {
		return math.NaN(), true
	}
	infA, infB, infC := math.IsInf(a, 0), math.IsInf(b, 0), math.IsInf(c, 0)
	negP := math.Signbit(a) != math.Signbit(b)
	if infA || infB {
		if a == 0 || b == 0 {
			return math.NaN(), true // 0 × ∞
		}
		if infC && math.Signbit(c) != negP {
			return math.NaN(), true // ∞ - ∞
		}
		if negP {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	}
	if infC {
		return c, true
	}
	if (a == 0 || b == 0) && c == 0 {
		// The sum of two zeros is -0 only when both are -0.
		if negP && math.Signbit(c) {
			return math.Copysign(0, -1), true
		}
		return 0, true
	}
	return 0, false
}

// refBig is the exact reference computed with math/big.
func refBig(a, b, c float32) float32 {
	if r, ok := specialFMA(a, b, c); ok {
		return r
	}
	// Finite nonzero float32 magnitudes lie in [2^-149, 2^128), so the
	// exact sum spans at most 2^257 down to 2^-298: 600 bits hold it.
	const prec = 600
	x := new(big.Float).SetPrec(prec).SetFloat64(float64(a))
	y := new(big.Float).SetPrec(prec).SetFloat64(float64(b))
	z := new(big.Float).SetPrec(prec).SetFloat64(float64(c))
	x.Mul(x, y)
	if x.Acc() != big.Exact {
		panic("refBig: inexact product")
	}
	x.Add(x, z)
	if x.Acc() != big.Exact {
		panic("refBig: inexact sum")
	}
	if x.Sign() == 0 {
		// A nonzero a*b cancelled by c exactly (zero operands were
		// handled above): +0 when rounding to nearest.
		return 0
	}
	// Float32 rounds to nearest even, to the precision of float32 at the
	// value's magnitude (fewer bits for subnormals), overflowing to ±Inf.
	f, _ := x.Float32()
	return f
}

// unpack returns f = ±m·2^e with m < 2^24 and neg its sign bit, for finite f.
func unpack(f float32) (neg bool, m uint64, e int) {
	u := math.Float32bits(f)
	neg = u>>31 != 0
	exp := int(u >> 23 & 0xff)
	m = uint64(u & (1<<23 - 1))
	if exp == 0 {
		return neg, m, -149
	}
	return neg, m | 1<<23, exp - 150
}

// refInt is the exact reference computed with integers. It writes both
// terms as 64-bit significands with the top bit at position 62, aligns the
// smaller to the larger in a 128-bit window 64 bits below the larger's
// exponent, and keeps the bits that fall off the window as a sticky flag.
func refInt(a, b, c float32) float32 {
	if r, ok := specialFMA(a, b, c); ok {
		return r
	}
	na, ma, ea := unpack(a)
	nb, mb, eb := unpack(b)
	nc, mc, ec := unpack(c)
	np, mp, ep := na != nb, ma*mb, ea+eb
	if mp == 0 {
		return c // a*b is ±0 and c is not zero: the sum is c exactly.
	}
	if mc == 0 {
		return roundInt(np, 0, mp, ep, false)
	}
	// Normalise: m·2^e = (m << k)·2^(e-k) with the top bit at 62.
	kp := 63 - bits.Len64(mp)
	mp, ep = mp<<kp, ep-kp
	kc := 63 - bits.Len64(mc)
	mc, ec = mc<<kc, ec-kc
	// X is the term of larger magnitude.
	nx, mx, ex, ny, my, ey := np, mp, ep, nc, mc, ec
	if ec > ep || (ec == ep && mc > mp) {
		nx, mx, ex, ny, my, ey = nc, mc, ec, np, mp, ep
	}
	// X in units of 2^(ex-64) is mx·2^64: (hi, lo) = (mx, 0).
	d := ex - ey
	var yhi, ylo uint64
	sticky := false
	switch {
	case d == 0:
		yhi = my
	case d <= 64:
		// my·2^(64-d) fits: my < 2^63 and the shift is at most 63.
		yhi, ylo = my>>d, my<<(64-d)
	case d < 128:
		// The term is below the window's unit: keep its integer part
		// and note whether anything fell off. Here |Y| < 2^-1·|X|·2^-63,
		// so the sum keeps more than 120 bits in the window.
		k := d - 64
		ylo = my >> k
		sticky = my&(1<<k-1) != 0
	default:
		sticky = true
	}
	var hi, lo uint64
	if nx == ny {
		// The exact sum is (hi, lo) + δ with 0 ≤ δ < 1, δ > 0 iff sticky.
		var carry uint64
		lo, carry = bits.Add64(0, ylo, 0)
		hi, _ = bits.Add64(mx, yhi, carry)
	} else {
		// The exact difference is (mx, 0) - (yhi, ylo) - δ. With a
		// sticky δ, borrow one unit so that the remainder 1 - δ is
		// again in (0, 1).
		var borrow uint64
		lo, borrow = bits.Sub64(0, ylo, 0)
		hi, _ = bits.Sub64(mx, yhi, borrow)
		if sticky {
			lo, borrow = bits.Sub64(lo, 1, 0)
			hi -= borrow
		}
		if hi == 0 && lo == 0 && !sticky {
			return 0 // exact cancellation
		}
	}
	return roundInt(nx, hi, lo, ex-64, sticky)
}

// roundInt rounds ±(hi·2^64 + lo + δ)·2^e to float32, to nearest with ties
// to even, where 0 ≤ δ < 1 and δ > 0 exactly when sticky. A sticky δ comes
// only with values of at least 2^100 units, so it never decides anything but
// an exact tie.
func roundInt(neg bool, hi, lo uint64, e int, sticky bool) float32 {
	n := bits.Len64(lo)
	if hi != 0 {
		n = 64 + bits.Len64(hi)
	}
	if n == 0 {
		panic("roundInt: zero")
	}
	top := n - 1 + e // the exponent of the leading bit
	q := top - 23    // the exponent of float32's unit at this magnitude
	if q < -149 {
		q = -149
	}
	shift := q - e // the number of bits rounded off
	var m uint64
	switch {
	case shift <= 0:
		// Exact: fewer than 24 significant bits above float32's unit.
		if sticky {
			panic("roundInt: sticky with an exact result")
		}
		m = lo << -shift
	case shift > 128:
		// Below half a unit: |value| < 2^128·2^e ≤ 2^(shift-1)·2^e.
		m = 0
	default:
		// m = value >> shift, r = the bits shifted off, compared with
		// half = 1 << (shift-1).
		var rhi, rlo, hhi, hlo uint64
		if shift >= 64 {
			if shift == 128 {
				m = 0
			} else {
				m = hi >> (shift - 64)
			}
			rhi, rlo = hi&(1<<(shift-64)-1), lo
			if shift == 128 {
				rhi = hi
			}
			if shift-1 >= 64 {
				hhi = 1 << (shift - 1 - 64)
			} else {
				hlo = 1 << (shift - 1)
			}
		} else {
			m = lo>>shift | hi<<(64-shift)
			rlo = lo & (1<<shift - 1)
			hlo = 1 << (shift - 1)
		}
		var up bool
		switch {
		case rhi > hhi || (rhi == hhi && rlo > hlo):
			up = true
		case rhi == hhi && rlo == hlo:
			up = sticky || m&1 != 0
		}
		if up {
			m++
		}
		if m == 1<<24 {
			m, q = 1<<23, q+1
		}
	}
	var u uint32
	switch {
	case m >= 1<<23:
		be := q + 150 // the biased exponent of m·2^q
		if be >= 255 {
			u = 0x7f800000
		} else {
			u = uint32(be)<<23 | uint32(m-1<<23)
		}
	default:
		u = uint32(m) // subnormal or zero: q is -149
	}
	if neg {
		u |= 1 << 31
	}
	return math.Float32frombits(u)
}
