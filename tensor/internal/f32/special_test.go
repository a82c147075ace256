package f32

import (
	"math"
	"testing"
)

var (
	inf     = float32(math.Inf(1))
	nan     = float32(math.NaN())
	negZero = math.Float32frombits(0x80000000)
	minSub  = math.Float32frombits(1)          // 2^-149
	maxSub  = math.Float32frombits(0x007fffff) // largest subnormal
)

func bits(f float32) uint32 { return math.Float32bits(f) }

// same reports whether a and b are the same value, telling -0 from +0 and
// treating all NaNs as equal.
func same(a, b float32) bool {
	if a != a || b != b {
		return a != a && b != b
	}
	return bits(a) == bits(b)
}

func TestSpecialValues(t *testing.T) {
	cases := []struct {
		name string
		f    func(float32) float32
		in   float32
		want float32
	}{
		// Exp
		{"Exp", Exp, nan, nan},
		{"Exp", Exp, inf, inf},
		{"Exp", Exp, -inf, 0},
		{"Exp", Exp, 0, 1},
		{"Exp", Exp, negZero, 1},
		{"Exp", Exp, minSub, 1},
		{"Exp", Exp, -minSub, 1},
		{"Exp", Exp, math.MaxFloat32, inf},
		{"Exp", Exp, -math.MaxFloat32, 0},
		{"Exp", Exp, math.Float32frombits(expOverflow + 1), inf},
		{"Exp", Exp, math.Float32frombits(expUnderflow), minSub},
		{"Exp", Exp, math.Float32frombits(expUnderflow + 1), 0},
		{"Exp", Exp, -200, 0},
		{"Exp", Exp, 1000, inf},
		// Log
		{"Log", Log, nan, nan},
		{"Log", Log, inf, inf},
		{"Log", Log, -inf, nan},
		{"Log", Log, 0, -inf},
		{"Log", Log, negZero, -inf},
		{"Log", Log, -1, nan},
		{"Log", Log, -minSub, nan},
		{"Log", Log, 1, 0},
		{"Log", Log, math.Float32frombits(0xffc00000), nan}, // NaN with the sign bit
		// Tanh
		{"Tanh", Tanh, nan, nan},
		{"Tanh", Tanh, inf, 1},
		{"Tanh", Tanh, -inf, -1},
		{"Tanh", Tanh, 0, 0},
		{"Tanh", Tanh, negZero, negZero},
		{"Tanh", Tanh, minSub, minSub},
		{"Tanh", Tanh, -minSub, -minSub},
		{"Tanh", Tanh, maxSub, maxSub},
		{"Tanh", Tanh, 1e-6, 1e-6},
		{"Tanh", Tanh, -1e-6, -1e-6},
		{"Tanh", Tanh, 9.2, 1},
		{"Tanh", Tanh, -9.2, -1},
		{"Tanh", Tanh, math.MaxFloat32, 1},
		{"Tanh", Tanh, -math.MaxFloat32, -1},
		// Sigmoid
		{"Sigmoid", Sigmoid, nan, nan},
		{"Sigmoid", Sigmoid, inf, 1},
		{"Sigmoid", Sigmoid, -inf, 0},
		{"Sigmoid", Sigmoid, 0, 0.5},
		{"Sigmoid", Sigmoid, negZero, 0.5},
		{"Sigmoid", Sigmoid, 17.5, 1},
		{"Sigmoid", Sigmoid, -104, 0},
		{"Sigmoid", Sigmoid, math.MaxFloat32, 1},
		{"Sigmoid", Sigmoid, -math.MaxFloat32, 0},
		{"Sigmoid", Sigmoid, math.Float32frombits(expUnderflow), minSub},
	}
	for _, c := range cases {
		if got := c.f(c.in); !same(got, c.want) {
			t.Errorf("%s(%g [%#08x]) = %g [%#08x], want %g [%#08x]",
				c.name, c.in, bits(c.in), got, bits(got), c.want, bits(c.want))
		}
	}
}

// TestExpThresholds checks that the documented overflow and underflow
// thresholds are the exact ones, against float64 math.
func TestExpThresholds(t *testing.T) {
	over := math.Float32frombits(expOverflow)
	if v := float32(math.Exp(float64(over))); math.IsInf(float64(v), 0) {
		t.Errorf("exp(%g) overflows in float64 reference", over)
	}
	next := math.Nextafter32(over, inf)
	if v := float32(math.Exp(float64(next))); !math.IsInf(float64(v), 1) {
		t.Errorf("exp(%g) = %g in float64 reference, want +Inf", next, v)
	}
	if got := Exp(over); math.IsInf(float64(got), 0) || got < math.MaxFloat32*0.99999 {
		t.Errorf("Exp(%g) = %g, want about MaxFloat32", over, got)
	}
	under := math.Float32frombits(expUnderflow)
	if v := float32(math.Exp(float64(under))); v != minSub {
		t.Errorf("exp(%g) = %g in float64 reference, want 2^-149", under, v)
	}
	below := math.Nextafter32(under, -inf)
	if v := float32(math.Exp(float64(below))); v != 0 {
		t.Errorf("exp(%g) = %g in float64 reference, want 0", below, v)
	}
}

// TestRangeEdges compares each function with the reference on the edges
// of its internal ranges and on extreme inputs, a few ulps either side.
func TestRangeEdges(t *testing.T) {
	edges := map[string][]uint32{
		"Exp": {expFastMax, expFastMax | 0x80000000, expOverflow, expUnderflow,
			0x42aeac50 /* -87.33654: e^x = 2^-126 */, 0xc2aeac50, 0x3f317218, 0xbf317218,
			0x00800000, 0x7f7fffff, 0xff7fffff, 0x3eb17218 /* ln2/2 */, 0xbeb17218},
		"Log": {0x00000001, 0x007fffff, 0x00800000, 0x7f7fffff, 0x3f800000,
			sqrtHalfBits, 0x3fb504f3, 0x3f7fffff, 0x40000000},
		"Tanh": {tanhPolyMax, tanhPolyMax | 0x80000000, tanhSatMin, tanhSatMin | 0x80000000,
			0x00000001, 0x00800000, 0x39800000 /* 2^-12 */, 0x3f800000},
		"Sigmoid": {0x00000001, 0x80000001, 0x41880000, 0xc2ae0000, 0xc2c80000,
			expUnderflow, 0x42ac0000, 0xc2ac0000, 0x41a00000, 0xc1a00000},
	}
	for _, f := range funcs {
		for _, e := range edges[f.name] {
			for d := -4; d <= 4; d++ {
				b := uint32(int64(e) + int64(d))
				x := math.Float32frombits(b)
				if x != x || math.IsInf(float64(x), 0) || b>>31 != e>>31 {
					continue
				}
				got, want := f.f(x), float32(f.ref(x))
				if f.name == "Log" && x < 0 {
					want = nan
				}
				if u := ulpDist(got, want); u > f.bound {
					t.Errorf("%s(%g [%#08x]) = %g [%#08x], want %g [%#08x] (%d ulp)",
						f.name, x, b, got, bits(got), want, bits(want), u)
				}
			}
		}
	}
}

func TestSliceFunctions(t *testing.T) {
	src := []float32{-120, -88, -3.5, -1, -1e-7, negZero, 0, 1e-30, 0.3, 0.7, 1, 2.5, 10, 50, 90, nan, inf, -inf}
	for _, c := range []struct {
		name string
		to   func(dst, src []float32)
		f    func(float32) float32
	}{
		{"ExpTo", ExpTo, Exp},
		{"LogTo", LogTo, Log},
		{"TanhTo", TanhTo, Tanh},
		{"SigmoidTo", SigmoidTo, Sigmoid},
	} {
		dst := make([]float32, len(src)+1)
		dst[len(src)] = 42
		c.to(dst, src)
		for i, x := range src {
			if !same(dst[i], c.f(x)) {
				t.Errorf("%s: dst[%d] = %g, want %g", c.name, i, dst[i], c.f(x))
			}
		}
		if dst[len(src)] != 42 {
			t.Errorf("%s wrote past len(src)", c.name)
		}
		// In place.
		buf := append([]float32(nil), src...)
		c.to(buf, buf)
		for i := range buf {
			if !same(buf[i], dst[i]) {
				t.Errorf("%s in place: [%d] = %g, want %g", c.name, i, buf[i], dst[i])
			}
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s with a short dst did not panic", c.name)
				}
			}()
			c.to(make([]float32, 2), src)
		}()
	}
}
