package f32

import "math"

// Log polynomial. With f = m-1 and s = f/(2+f),
//
//	log(1+f) = log((1+s)/(1-s)) = 2s + s*R(s^2),
//	R(z) ≈ z*(l1 + l2*z + l3*z^2),
//
// a minimax fit for |s| <= 0.1716 (m in [sqrt(2)/2, sqrt(2))), with a
// relative error of about 1e-9.
const (
	l1 float32 = 0.666667819 // 0x3f2aaabe
	l2 float32 = 0.399766088 // 0x3eccae24
	l3 float32 = 0.298987895 // 0x3e9914f1
)

// sqrtHalfBits is the float32 closest to sqrt(2)/2 (0.70710677).
const sqrtHalfBits = 0x3f3504f3

// Log returns the natural logarithm of x.
//
// The error is at most 1 ulp for every positive x, subnormals included.
// Special cases:
//
//	Log(+Inf) = +Inf
//	Log(±0)   = -Inf
//	Log(x<0)  = NaN (including -Inf)
//	Log(NaN)  = NaN
//	Log(1)    = +0
func Log(x float32) float32 {
	b := math.Float32bits(x)
	var k0 int32
	if b-0x00800000 >= 0x7f000000 { // not a positive, finite, normal number
		if b-1 >= 0x007fffff { // not a positive subnormal either
			return logSpecial(x)
		}
		// Scale the subnormal by 2^23 (exactly) into the normal range.
		b = math.Float32bits(x * (1 << 23))
		k0 = -23
	}
	// Write x = 2^k * m with m in [sqrt(2)/2, sqrt(2)): shifting the
	// mantissa by 1-sqrt(2)/2 carries into the exponent exactly when the
	// mantissa of x is at least sqrt(2).
	b += 0x3f800000 - sqrtHalfBits
	k := int32(b>>23) - 127 + k0
	m := math.Float32frombits(b&0x007fffff + sqrtHalfBits)
	f := m - 1 // exact
	s := f / (2 + f)
	z := s * s
	R := float32(l3*z) + l2
	R = float32(R*z) + l1
	R = float32(R * z)
	// log(1+f) = f - f*f/2 + s*(f*f/2 + R); f itself is exact and the
	// other terms are small corrections to it.
	hfsq := float32(float32(0.5*f) * f)
	kf := float32(k)
	lo := float32(s*(hfsq+R)) + float32(kf*ln2Lo)
	return float32(kf*ln2Hi) + (f - (hfsq - lo))
}

// logSpecial handles zero, negative numbers, +Inf and NaN.
func logSpecial(x float32) float32 {
	b := math.Float32bits(x)
	switch {
	case b&0x7fffffff == 0:
		return float32(math.Inf(-1))
	case b>>31 != 0 || x != x:
		return float32(math.NaN())
	}
	return x // +Inf
}

// LogTo sets dst[i] = Log(src[i]) for every i < len(src). dst must be at
// least as long as src; dst and src may be the same slice.
func LogTo(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = Log(x)
	}
}
