package fma

import (
	"fmt"
	"math"
	"sort"
	"testing"
)

// The exhaustive test runs FMA32's algorithm, step for step, on binary
// formats small enough that every triple of operands can be tried: a narrow
// format standing for float32 and a wide one standing for float64, both
// with gradual underflow, infinities and NaNs. The proof in the package
// comment uses three properties of the pair (float32, float64):
//
//  1. the wide precision is at least twice the narrow one, so products of
//     narrow values are exact (53 ≥ 2·24);
//  2. the wide format is normal, with no overflow, over the whole range of
//     products and sums of narrow values, and down to half the narrow
//     format's smallest subnormal (float64 is normal down to 2^-1022,
//     products of float32 values reach 2^-298 and sums 2^257);
//  3. consequently, at every magnitude the narrow format can round to, the
//     wide unit is at most a quarter of the narrow unit, which is what
//     round-to-odd needs (P ≥ p + 2 follows from P ≥ 2p for p ≥ 2).
//
// The wide formats below have exactly these properties, one of them with
// the smallest precision property 1 allows (P = 2p, tighter than float64's
// 2p + 5) and some with float64's margin (P = 2p + 5). Values of both formats
// are held in float64 and every operation is done exactly in float64 and
// then rounded to the format; tinyCase checks that float64 is exact for
// every value that occurs.

// format is a binary floating-point format with p significant bits
// (the leading one included), normal exponents emin..emax and subnormals
// below 2^emin.
type format struct {
	p, emin, emax int
}

// minUnit is the exponent of the format's smallest subnormal.
func (f format) minUnit() int { return f.emin - f.p + 1 }

// round rounds x to f, to nearest with ties to even, overflowing to ±Inf.
// x must have at most 53 significant bits above 2^-1022 (it is then exact
// in float64, and so are the scalings below).
func (f format) round(x float64) float64 {
	if x == 0 || x != x || math.IsInf(x, 0) {
		return x
	}
	_, e := math.Frexp(x) // |x| in [2^(e-1), 2^e)
	q := e - f.p          // the exponent of the unit at |x|
	if q < f.minUnit() {
		q = f.minUnit()
	}
	r := math.Ldexp(math.RoundToEven(math.Ldexp(x, -q)), q)
	if math.Abs(r) >= math.Ldexp(1, f.emax+1) {
		return math.Copysign(math.Inf(1), x)
	}
	return r
}

// bits returns the IEEE 754 encoding of finite x in f: sign, then the
// biased exponent (0 for subnormals and zero), then p-1 fraction bits.
// Consecutive values have consecutive encodings, as in float64.
func (f format) bits(x float64) uint64 {
	var u uint64
	if math.Signbit(x) {
		u = 1 << 63
	}
	ax := math.Abs(x)
	if ax < math.Ldexp(1, f.emin) {
		return u | uint64(math.Ldexp(ax, -f.minUnit()))
	}
	_, e := math.Frexp(ax)
	m := uint64(math.Ldexp(ax, f.p-e)) // in [2^(p-1), 2^p)
	return u | uint64(e-1-f.emin+1)<<(f.p-1) | (m - 1<<(f.p-1))
}

// frombits is the inverse of bits.
func (f format) frombits(u uint64) float64 {
	neg := u>>63 != 0
	u &^= 1 << 63
	be := int(u >> (f.p - 1))
	m := u & (1<<(f.p-1) - 1)
	var x float64
	if be == 0 {
		x = math.Ldexp(float64(m), f.minUnit())
	} else {
		x = math.Ldexp(float64(m|1<<(f.p-1)), be-1+f.emin-f.p+1)
	}
	if neg {
		x = -x
	}
	return x
}

// tiny is a narrow format with its wide companion.
type tiny struct {
	narrow, wide format
	// expBits is the width of the narrow exponent field.
	expBits int
	// mask is the wide mirror of lowMask: P - p - 1 low bits.
	mask uint64
	// values are the narrow format's encodings, decoded.
	values []float64
	// ref holds the exact reference's rounding table: the nonnegative
	// finite values in units of 2^(2·minUnit), increasing, then 2^(emax+1)
	// (where ±Inf takes over); refEven says whether each has an even
	// significand.
	ref     []int64
	refEven []bool
	// ties counts the exact sums lookup found halfway between two
	// narrow values.
	ties int
}

func newTiny(p, expBits, wideP int) *tiny {
	emax := 1<<(expBits-1) - 1
	n := format{p: p, emin: 1 - emax, emax: emax}
	// Property 2: products reach 2^(2·minUnit) and sums stay below
	// 2^(2·emax+3); the wide format is normal on all of that.
	w := format{p: wideP, emin: 2*n.minUnit() - 1, emax: 2*(emax+1) + 1}
	t := &tiny{narrow: n, wide: w, expBits: expBits, mask: 1<<(wideP-p-1) - 1}
	fracBits := p - 1
	for u := 0; u < 1<<(1+expBits+fracBits); u++ {
		be := u >> fracBits & (1<<expBits - 1)
		m := u & (1<<fracBits - 1)
		var x float64
		switch {
		case be == 1<<expBits-1 && m == 0:
			x = math.Inf(1)
		case be == 1<<expBits-1:
			x = math.NaN()
		case be == 0:
			x = math.Ldexp(float64(m), n.minUnit())
		default:
			x = math.Ldexp(float64(m|1<<fracBits), be-1+n.emin-fracBits)
		}
		if u>>(expBits+fracBits) != 0 {
			x = -x
		}
		t.values = append(t.values, x)
		if u>>(expBits+fracBits) == 0 && be < 1<<expBits-1 {
			t.ref = append(t.ref, int64(math.Ldexp(x, -2*n.minUnit())))
			t.refEven = append(t.refEven, m%2 == 0)
		}
	}
	t.ref = append(t.ref, int64(math.Ldexp(1, emax+1-2*n.minUnit())))
	t.refEven = append(t.refEven, true) // 1.000…·2^(emax+1)
	return t
}

func (t *tiny) String() string {
	return fmt.Sprintf("p=%d, exponent %d..%d, wide P=%d", t.narrow.p, t.narrow.emin, t.narrow.emax, t.wide.p)
}

// wideOp rounds the exact result x of a wide operation to the wide format,
// checking that it neither overflows nor underflows there (property 2).
func (t *tiny) wideOp(x float64) float64 {
	r := t.wide.round(x)
	if math.IsInf(r, 0) && !math.IsInf(x, 0) {
		panic(fmt.Sprintf("%v: wide overflow of %g", t, x))
	}
	if x != 0 && math.Abs(x) < math.Ldexp(1, t.wide.emin) {
		panic(fmt.Sprintf("%v: wide underflow of %g", t, x))
	}
	return r
}

// fma is FMA32 in the tiny formats, operation for operation.
func (t *tiny) fma(a, b, c float64) float64 {
	p := t.wideOp(a * b)
	if p != a*b && p == p {
		panic(fmt.Sprintf("%v: inexact product %g·%g", t, a, b)) // property 1
	}
	s := t.wideOp(p + c)
	r := t.narrow.round(s)
	finite := s-s == 0
	if finite && t.wide.bits(s)&t.mask != 0 && r == r {
		return r
	}
	if s != s {
		return math.NaN()
	}
	if !finite {
		return r
	}
	cs := t.wideOp(s - p)
	ps := t.wideOp(s - cs)
	e := t.wideOp(t.wideOp(p-ps) + t.wideOp(c-cs))
	if e == 0 {
		return r
	}
	bs := t.wide.bits(s)
	bs -= (t.wide.bits(e) ^ bs) >> 63
	bs |= 1
	return t.narrow.round(t.wide.frombits(bs))
}

// naive is the double rounding that FMA32 avoids: the exact sum rounded to
// the wide format, then to the narrow one.
func (t *tiny) naive(a, b, c float64) float64 {
	if r, ok := specialRule(a, b, c); ok {
		return r
	}
	return t.narrow.round(t.wideOp(float64(a*b) + c)) // exact: the values are short
}

// exact is the reference: the IEEE 754 rules for special operands, and
// otherwise the exact sum in integer units of 2^(2·minUnit), rounded by
// looking up the two nearest narrow values.
func (t *tiny) exact(a, b, c float64) float64 {
	if r, ok := specialRule(a, b, c); ok {
		return r
	}
	mu := t.narrow.minUnit()
	na := int64(math.Ldexp(a, -mu))
	nb := int64(math.Ldexp(b, -mu))
	nc := int64(math.Ldexp(c, -mu))
	n := na*nb + nc<<(-mu)
	if mu > 0 {
		panic("minUnit > 0")
	}
	if n == 0 {
		return 0 // exact cancellation of a nonzero product
	}
	return t.lookup(n)
}

// lookup rounds n units of 2^(2·minUnit) to the narrow format by finding
// the two narrow values around it.
func (t *tiny) lookup(n int64) float64 {
	mu := t.narrow.minUnit()
	an := n
	if an < 0 {
		an = -an
	}
	// ref[i-1] <= an < ref[i]
	i := sort.Search(len(t.ref), func(i int) bool { return t.ref[i] > an })
	var k int
	switch {
	case i == len(t.ref):
		k = len(t.ref) - 1 // beyond 2^(emax+1): overflow
	case 2*an < t.ref[i-1]+t.ref[i]:
		k = i - 1
	case 2*an > t.ref[i-1]+t.ref[i]:
		k = i
	case t.refEven[i-1]:
		k, t.ties = i-1, t.ties+1
	default:
		k, t.ties = i, t.ties+1
	}
	var r float64
	if k == len(t.ref)-1 {
		r = math.Inf(1)
	} else {
		r = math.Ldexp(float64(t.ref[k]), 2*mu)
	}
	if n < 0 {
		r = -r
	}
	return r
}

// same reports whether x and y are the same value, with zeros of different
// signs different and all NaNs the same.
func same(x, y float64) bool {
	if x != x || y != y {
		return x != x && y != y
	}
	return x == y && math.Signbit(x) == math.Signbit(y)
}

// TestTinyExhaustive runs every triple of operands of each tiny format
// (with -short, of the two 7-bit formats only).
func TestTinyExhaustive(t *testing.T) {
	for _, tf := range []*tiny{
		newTiny(5, 3, 10), // P = 2p, the least property 1 allows
		newTiny(4, 4, 8),  // a wider exponent range, P = 2p
		newTiny(3, 4, 6),  // P = 2p
		newTiny(3, 4, 11), // P = 2p + 5, float64's margin over float32
	} {
		if testing.Short() && len(tf.values) > 128 {
			continue
		}
		t.Run(tf.String(), func(t *testing.T) {
			// float64 must hold every wide value exactly: wide values are
			// multiples of the wide format's smallest subnormal below
			// 2^(emax+1).
			if span := tf.wide.emax + 1 - tf.wide.minUnit(); span > 53 {
				t.Fatalf("wide values span %d bits", span)
			}
			var fails, naiveFails int
			vs := tf.values
			for _, a := range vs {
				for _, b := range vs {
					for _, c := range vs {
						want := tf.exact(a, b, c)
						got := tf.fma(a, b, c)
						if !same(got, want) {
							if fails < 10 {
								t.Errorf("fma(%g, %g, %g) = %g, want %g", a, b, c, got, want)
							}
							fails++
						}
						if !same(tf.naive(a, b, c), want) {
							naiveFails++
						}
					}
				}
			}
			n := len(vs) * len(vs) * len(vs)
			t.Logf("%d triples: %d failures; %d exact sums halfway between two values; double rounding wrong in %d",
				n, fails, tf.ties, naiveFails)
			if fails != 0 {
				t.Fatalf("%d failures", fails)
			}
			// The test can see a double rounding error: the naive method
			// must fail somewhere, or the exhaustive comparison proves
			// nothing about the rounding to odd.
			if naiveFails == 0 {
				t.Error("double rounding never wrong: the test does not exercise halfway cases")
			}
		})
	}
}

// TestTinyFormatRoundTrip checks the helpers the exhaustive test relies on:
// bits and frombits are inverse and monotone, and round agrees with the
// reference's table lookup on every narrow value and midpoint.
func TestTinyFormatRoundTrip(t *testing.T) {
	tf := newTiny(5, 3, 10)
	for _, f := range []format{tf.narrow, tf.wide} {
		prev := -1.0
		for u := uint64(0); ; u++ {
			x := f.frombits(u)
			if x >= math.Ldexp(1, f.emax+1) {
				break
			}
			if x <= prev && u > 0 {
				t.Fatalf("%+v: frombits(%d) = %g not above %g", f, u, x, prev)
			}
			if f.bits(x) != u || f.round(x) != x {
				t.Fatalf("%+v: %d -> %g -> %d", f, u, x, f.bits(x))
			}
			prev = x
		}
	}
	for i := 0; i+1 < len(tf.ref); i++ {
		mid := math.Ldexp(float64(tf.ref[i]+tf.ref[i+1]), 2*tf.narrow.minUnit()-1)
		n := (tf.ref[i] + tf.ref[i+1]) / 2
		for _, d := range []int64{-1, 0, 1} {
			x := math.Ldexp(float64(n+d), 2*tf.narrow.minUnit())
			if got, want := tf.narrow.round(x), tf.lookup(n+d); !same(got, want) {
				t.Errorf("round(%g) = %g, reference %g", x, got, want)
			}
		}
		if got, want := tf.narrow.round(mid), tf.lookup(n); !same(got, want) {
			t.Errorf("round(%g) = %g, reference %g", mid, got, want)
		}
	}
}
