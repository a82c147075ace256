package f32

import "math"

// Range reduction constants: x = k*ln2 + r with |r| <= ln2/2 (slightly more,
// because k comes from a rounded product).
//
// ln2Hi keeps only the top 15 significant bits of ln2 (its low 9 mantissa
// bits are zero), so k*ln2Hi is exact for |k| < 2^9; ln2Lo = ln2 - ln2Hi.
const (
	log2e  float32 = 1.44269504088896340736
	ln2Hi  float32 = 0.693145751953125         // 0x3f317200
	ln2Lo  float32 = 1.42860682030941723212e-6 // ln2 - ln2Hi
	round  float32 = 12582912                  // 1.5 * 2^23: adding it rounds to an integer
	roundB         = 0x4b400000
)

// Exp polynomial: e^r ≈ 1 + r + r^2*(e2 + e3*r + e4*r^2 + e5*r^3 + e6*r^4)
// on |r| <= 0.3486, a minimax fit to the relative error (about 5e-9 with
// these float32 coefficients).
const (
	e2 float32 = 0.49999994    // 0x3efffffe
	e3 float32 = 0.166665167   // 0x3e2aaa46
	e4 float32 = 0.0416684262  // 0x3d2aac83
	e5 float32 = 0.00836911798 // 0x3c091ea0
	e6 float32 = 0.00138137664 // 0x3ab50f4f
)

const (
	// expFastMax bounds the fast path: for |x| <= 86 the result and the
	// scale 2^k are normal numbers.
	expFastMax = 0x42ac0000 // 86.0
	// expOverflow is the largest x whose e^x rounds to a finite float32:
	// 88.72283172607421875 (0x42b17217). Above it Exp returns +Inf.
	expOverflow = 0x42b17217
	// expUnderflow is the smallest x whose e^x does not round to zero:
	// -103.972076416015625 (0xc2cff1b4), where e^x is just above 2^-150.
	// Below it Exp returns +0.
	expUnderflow = 0xc2cff1b4
)

// expReduced returns an approximation of e^r for |r| <= 0.35.
func expReduced(r float32) float32 {
	q := float32(e6*r) + e5
	q = float32(q*r) + e4
	q = float32(q*r) + e3
	q = float32(q*r) + e2
	r2 := r * r
	return 1 + (r + float32(r2*q))
}

// Exp returns e**x.
//
// The error is at most 1 ulp over the whole float32 range, including
// results that are subnormal. Special cases:
//
//	Exp(NaN)  = NaN
//	Exp(+Inf) = +Inf
//	Exp(-Inf) = 0
//	Exp(±0)   = 1
//	Exp(x)    = +Inf for x > 88.72283172607421875 (overflow)
//	Exp(x)    = 0    for x < -103.972076416015625 (underflow)
//
// Results between 2^-149 and 2^-126 are subnormal.
func Exp(x float32) float32 {
	if math.Float32bits(x)&0x7fffffff > expFastMax {
		return expSlow(x)
	}
	// k = round(x*log2e), as a float32 and as an integer.
	t := float32(x*log2e) + round
	kf := t - round
	k := int32(math.Float32bits(t)) - roundB
	// r = x - k*ln2; the first subtraction is exact.
	r := x - float32(kf*ln2Hi)
	r = r - float32(kf*ln2Lo)
	// Scale by 2^k, k in [-124, 124]: build 2^k from its exponent bits.
	return expReduced(r) * math.Float32frombits(uint32(k+127)<<23)
}

// expSlow handles |x| > 86, NaN and the infinities.
func expSlow(x float32) float32 {
	b := math.Float32bits(x)
	switch {
	case x != x:
		return x
	case int32(b) > expOverflow: // positive, beyond the overflow threshold
		return float32(math.Inf(1))
	case b > expUnderflow: // negative, below the underflow threshold
		return 0
	}
	t := float32(x*log2e) + round
	kf := t - round
	k := int32(math.Float32bits(t)) - roundB // k in [-150, 128]
	r := x - float32(kf*ln2Hi)
	r = r - float32(kf*ln2Lo)
	p := expReduced(r)
	// Scale in two steps so that neither factor overflows or is subnormal.
	// The first product is exact; the second rounds once, to a subnormal
	// result where e^x < 2^-126.
	k1 := k / 2
	k2 := k - k1
	p = p * math.Float32frombits(uint32(k1+127)<<23)
	return p * math.Float32frombits(uint32(k2+127)<<23)
}

// ExpTo sets dst[i] = Exp(src[i]) for every i < len(src). dst must be at
// least as long as src; dst and src may be the same slice.
func ExpTo(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = Exp(x)
	}
}
