package data

import "math"

// The functions in this file compute logarithms and exponentials with
// correctly rounded IEEE-754 operations only (+, -, *, / and exact scaling
// by powers of two), in a fixed order, with every product converted
// explicitly to float64 so the compiler may not fuse it into a multiply-add.
// Their results are therefore the same bits on every architecture, unlike
// math.Log, math.Exp and math.Pow, which may use assembly or fused
// instructions that differ in the last bit. They are accurate to a few ulp,
// which is all the lexicon weights need; what matters is that they are
// reproducible.

// ln 2 split so that k*ln2Hi is exact for |k| < 2^20.
const (
	ln2Hi  = 6.93147180369123816490e-01
	ln2Lo  = 1.90821492927058770002e-10
	invLn2 = 1.44269504088896338700e+00
)

// detLog returns ln x for finite x > 0.
func detLog(x float64) float64 {
	if !(x > 0) || math.IsInf(x, 1) {
		panic("data: detLog of a non-positive or infinite value")
	}
	frac, e := math.Frexp(x) // x = frac * 2^e, frac in [0.5, 1); exact
	if frac < math.Sqrt2/2 {
		frac *= 2 // exact
		e--
	}
	// frac in [sqrt(1/2), sqrt(2)): ln frac = 2 atanh(t) with |t| < 0.172,
	// = 2 (t + t^3/3 + t^5/5 + ...); t^28/29 < 1e-22.
	t := (frac - 1) / (frac + 1)
	t2 := float64(t * t)
	sum := 0.0
	for k := 27; k >= 1; k -= 2 {
		sum = float64(sum*t2) + 1/float64(k)
	}
	lnFrac := float64(2 * float64(t*sum))
	fe := float64(e)
	return float64(fe*ln2Hi) + (float64(fe*ln2Lo) + lnFrac)
}

// detExp returns e^x.
func detExp(x float64) float64 {
	switch {
	case math.IsNaN(x):
		return x
	case x > 709.78:
		return math.Inf(1)
	case x < -745.2:
		return 0
	}
	k := math.Round(float64(x * invLn2))
	// r = x - k ln 2, |r| <= 0.35 (plus rounding).
	r := (x - float64(k*ln2Hi)) - float64(k*ln2Lo)
	// e^r = 1 + r(1 + r/2(1 + r/3(...))); r^23/23! < 1e-33.
	p := 1.0
	for n := 22; n >= 1; n-- {
		p = 1 + float64(r*p)/float64(n)
	}
	return math.Ldexp(p, int(k)) // exact unless the result is subnormal
}

// detPow returns b^s for b > 0.
func detPow(b, s float64) float64 {
	if s == 0 {
		return 1
	}
	return detExp(float64(s * detLog(b)))
}
