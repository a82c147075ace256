package codec

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// refHalfValue is the value of binary16 bits from the definition.
func refHalfValue(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp, man := int(h>>10)&0x1f, float64(h&0x3ff)
	switch exp {
	case 0x1f:
		if man == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	case 0:
		return sign * math.Ldexp(man, -24)
	}
	return sign * math.Ldexp(1+man/1024, exp-15)
}

func TestFloat16Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := Float16ToFloat32(h)
		want := refHalfValue(h)
		if math.IsNaN(want) {
			if f == f {
				t.Fatalf("%#04x: got %g, want NaN", h, f)
			}
			if back := Float32ToFloat16(f); back != h|0x200 {
				t.Fatalf("NaN %#04x comes back as %#04x, want %#04x", h, back, h|0x200)
			}
			continue
		}
		if float64(f) != want || math.Signbit(float64(f)) != math.Signbit(want) {
			t.Fatalf("%#04x: got %g, want %g", h, f, want)
		}
		if back := Float32ToFloat16(f); back != h {
			t.Fatalf("%#04x -> %g -> %#04x", h, f, back)
		}
	}
}

// refRound returns the code of the nearest of two adjacent codes lo and
// lo+1 with values vlo < vhi to a (ties to the even code).
func refRound(a float64, lo uint16, vlo, vhi float64) uint16 {
	dlo, dhi := a-vlo, vhi-a
	switch {
	case dlo < dhi:
		return lo
	case dhi < dlo:
		return lo + 1
	case lo&1 == 0:
		return lo
	}
	return lo + 1
}

// refToHalf rounds finite f to binary16 by searching the table of
// positive binary16 values; 0x7c00 stands for 2^16, as IEEE-754 rounds
// overflow.
func refToHalf(f float32) uint16 {
	a := math.Abs(float64(f))
	val := func(h uint16) float64 {
		if h == 0x7c00 {
			return 65536
		}
		return refHalfValue(h)
	}
	// Largest code with value <= a.
	lo := uint16(sort.Search(0x7c01, func(i int) bool { return val(uint16(i)) > a }) - 1)
	h := lo
	if lo < 0x7c00 {
		h = refRound(a, lo, val(lo), val(lo+1))
	}
	if math.Signbit(float64(f)) {
		h |= 0x8000
	}
	return h
}

func refToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	lo := uint16(b >> 16)
	val := func(h uint16) float64 {
		if h&0x7fff == 0x7f80 {
			return math.Copysign(0x1p128, float64(f))
		}
		return float64(math.Float32frombits(uint32(h) << 16))
	}
	return refRound(math.Abs(float64(f)), lo&0x7fff, math.Abs(val(lo)), math.Abs(val(lo+1))) | lo&0x8000
}

// edgeFloats are the float32 values around every binary16 and bfloat16
// boundary worth testing.
func edgeFloats() []float32 {
	var out []float32
	add := func(f float32) {
		for d := -3; d <= 3; d++ {
			b := int64(math.Float32bits(f)) + int64(d)
			if b >= 0 && b < 0x7f800000 {
				out = append(out, math.Float32frombits(uint32(b)), -math.Float32frombits(uint32(b)))
			}
		}
	}
	for _, f := range []float32{
		0, 0x1p-149, 0x1p-126, 0x1p-25, 0x1.8p-25, 0x1p-24, 0x1.8p-24, 0x1p-14, 0x1.ffcp-15,
		65504, 65519, 65520, 65536, 1, 1.5, 0x1.ff8p127, 0x1.fep63, 0x1p64, math.MaxFloat32,
	} {
		add(f)
	}
	for h := range 0x7c00 {
		v := Float16ToFloat32(uint16(h))
		add(v)
		if h+1 < 0x7c00 {
			add(float32((float64(v) + float64(Float16ToFloat32(uint16(h+1)))) / 2))
		}
	}
	return out
}

func TestFloat32ToHalfReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	vals := edgeFloats()
	for range 200000 {
		b := rng.Uint32()
		if b&0x7fffffff < 0x7f800000 {
			vals = append(vals, math.Float32frombits(b))
		}
		// Concentrate on the binary16 range too.
		vals = append(vals, math.Float32frombits(uint32(rng.IntN(0x48000000))|rng.Uint32()&0x80000000))
	}
	for _, f := range vals {
		if got, want := Float32ToFloat16(f), refToHalf(f); got != want {
			t.Fatalf("Float32ToFloat16(%g = %#08x) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		}
		if got, want := Float32ToBFloat16(f), refToBF16(f); got != want {
			t.Fatalf("Float32ToBFloat16(%g = %#08x) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		}
		// bfloat16 round trip.
		if g := BFloat16ToFloat32(Float32ToBFloat16(f)); !math.IsInf(float64(g), 0) && Float32ToBFloat16(g) != Float32ToBFloat16(f) {
			t.Fatalf("bfloat16 of %g not idempotent", f)
		}
	}
}

func TestHalfSpecials(t *testing.T) {
	inf := float32(math.Inf(1))
	for _, tc := range []struct {
		f    float32
		h, b uint16
	}{
		{inf, 0x7c00, 0x7f80},
		{-inf, 0xfc00, 0xff80},
		{0, 0, 0},
		{float32(math.Copysign(0, -1)), 0x8000, 0x8000},
		{65520, 0x7c00, 0x4780},
		{65519.996, 0x7bff, 0x4780},
		{0x1p-24, 0x0001, 0x3380},
		{0x1p-25, 0x0000, 0x3300},     // tie to even: zero
		{0x1.8p-24, 0x0002, 0x33c0},   // tie to even: 2
		{0x1.ffcp-15, 0x0400, 0x3880}, // rounds up to the smallest normal
		{0x1p-149, 0, 0x0000},         // float32 subnormal: bfloat16 rounds it to even (zero)
		{0x1p-148, 0, 0x0000},
		{0x1.01p-126, 0, 0x0080},
		{math.MaxFloat32, 0x7c00, 0x7f80},
	} {
		if got := Float32ToFloat16(tc.f); got != tc.h {
			t.Errorf("Float32ToFloat16(%g) = %#04x, want %#04x", tc.f, got, tc.h)
		}
		if got := Float32ToBFloat16(tc.f); got != tc.b {
			t.Errorf("Float32ToBFloat16(%g) = %#04x, want %#04x", tc.f, got, tc.b)
		}
	}
	// NaN stays NaN with its sign, quiet, through every conversion.
	for _, bits := range []uint32{0x7fc00000, 0xffc00001, 0x7f800001, 0xff812345, 0x7fffffff} {
		f := math.Float32frombits(bits)
		h := Float32ToFloat16(f)
		if h&0x7e00 != 0x7e00 || h>>15 != uint16(bits>>31) || Float16ToFloat32(h) == Float16ToFloat32(h) {
			t.Errorf("Float32ToFloat16(NaN %#08x) = %#04x", bits, h)
		}
		b := Float32ToBFloat16(f)
		if b&0x7fc0 != 0x7fc0 || b>>15 != uint16(bits>>31) || BFloat16ToFloat32(b) == BFloat16ToFloat32(b) {
			t.Errorf("Float32ToBFloat16(NaN %#08x) = %#04x", bits, b)
		}
	}
	// Saturating forms used by the codecs.
	if fp16Sat(1e9) != 0x7bff || fp16Sat(-65520) != 0xfbff || fp16Sat(65519) != 0x7bff {
		t.Error("fp16Sat does not saturate at 65504")
	}
	if bf16Sat(math.Float32frombits(maxValueBits-1)) != 0x5f7f || bf16Sat(-0x1.ffp63) != 0xdf7f {
		t.Error("bf16Sat does not saturate below 2^64")
	}
}
