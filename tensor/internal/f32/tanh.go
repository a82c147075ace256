package f32

import "math"

// Tanh polynomial: tanh(x) ≈ x + x^3*(t3 + t5*z + t7*z^2 + t9*z^3 + t11*z^4)
// with z = x^2, a minimax fit to the relative error for |x| < 0.625
// (about 9e-9 with these float32 coefficients).
const (
	t3  float32 = -0.333332807   // 0xbeaaaa99
	t5  float32 = 0.133314416    // 0x3e088393
	t7  float32 = -0.0537397116  // 0xbd5c1e2c
	t9  float32 = 0.0206390768   // 0x3ca91348
	t11 float32 = -0.00570497615 // 0xbbbaf0cf
)

const (
	tanhPolyMax = 0x3f200000 // 0.625: below it Tanh uses the polynomial
	// tanhSatMin is 9.125; above it tanh(x) rounds to ±1 (it does so from
	// about 9.01 on).
	tanhSatMin = 0x41120000
)

// Tanh returns the hyperbolic tangent of x.
//
// The error is at most 1 ulp. Small arguments go through an odd
// polynomial, so Tanh(x) = x to within an ulp for tiny x and the sign of
// zero is kept. Special cases:
//
//	Tanh(±0)   = ±0
//	Tanh(±Inf) = ±1
//	Tanh(NaN)  = NaN
//	Tanh(x)    = ±1 for |x| > 9.125
func Tanh(x float32) float32 {
	// Work on a = |x| and copy the sign of x to the result, which keeps
	// the sign of zero and makes Tanh exactly odd.
	b := math.Float32bits(x)
	ab := b & 0x7fffffff
	a := math.Float32frombits(ab)
	var t float32
	switch {
	case ab < tanhPolyMax:
		z := a * a
		p := float32(t11*z) + t9
		p = float32(p*z) + t7
		p = float32(p*z) + t5
		p = float32(p*z) + t3
		t = a + float32(float32(a*z)*p)
	case ab <= tanhSatMin:
		// tanh(a) = 1 - 2/(e^(2a)+1) for a in [0.625, 9.125]. The
		// subtracted term is below 0.45, so the error of e^(2a) reaches
		// the result scaled down.
		t = 1 - 2/(Exp(2*a)+1)
	case x != x:
		return x
	default:
		t = 1
	}
	return math.Float32frombits(math.Float32bits(t) | b&0x80000000)
}

// TanhTo sets dst[i] = Tanh(src[i]) for every i < len(src). dst must be at
// least as long as src; dst and src may be the same slice.
func TanhTo(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = Tanh(x)
	}
}

// Sigmoid returns the logistic function 1/(1+e^-x).
//
// It is computed as 1/(1+e^-x) for x >= 0 and as e^x/(1+e^x) for x < 0, so
// that neither side overflows or loses its relative accuracy: the error is
// at most 2 ulp everywhere, including the subnormal results for x below
// about -87.34. Special cases:
//
//	Sigmoid(+Inf) = 1
//	Sigmoid(-Inf) = 0
//	Sigmoid(±0)   = 0.5
//	Sigmoid(NaN)  = NaN
//	Sigmoid(x)    = 1 for x > 16.6356 (1 + e^-x rounds to 1)
//	Sigmoid(x)    = 0 for x < -103.972076416015625
func Sigmoid(x float32) float32 {
	if x >= 0 {
		return 1 / (1 + Exp(-x))
	}
	e := Exp(x)
	return e / (1 + e)
}

// SigmoidTo sets dst[i] = Sigmoid(src[i]) for every i < len(src). dst must
// be at least as long as src; dst and src may be the same slice.
func SigmoidTo(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = Sigmoid(x)
	}
}
