package f32

import (
	"math"
	"math/big"
	"testing"
)

// TestConstants checks the properties the algorithms rely on and that each
// coefficient has the bit pattern given in its comment.
func TestConstants(t *testing.T) {
	// k*ln2Hi must be exact for every k the reductions produce (|k| <= 150
	// in Exp, |k| <= 149 in Log). With its low 9 mantissa bits clear, ln2Hi
	// has 15 significant bits and k*ln2Hi fits in 24 bits for |k| < 2^9.
	if b := bits(ln2Hi); b&0x1ff != 0 {
		t.Errorf("ln2Hi = %#08x has low mantissa bits set", b)
	}
	// ln2Hi + ln2Lo must equal ln2 to well beyond float32 precision.
	ln2, _ := new(big.Float).SetPrec(200).SetString("0.69314718055994530941723212145817656807550013436025525412068")
	sum := new(big.Float).SetPrec(200).Add(big.NewFloat(float64(ln2Hi)), big.NewFloat(float64(ln2Lo)))
	diff, _ := sum.Sub(sum, ln2).Float64()
	if math.Abs(diff) > 1e-13 {
		t.Errorf("ln2Hi + ln2Lo - ln2 = %g", diff)
	}
	if math.Float32frombits(sqrtHalfBits) != float32(math.Sqrt2/2) {
		t.Errorf("sqrtHalfBits is not sqrt(2)/2")
	}
	if bits(round) != roundB {
		t.Errorf("round = %#08x, want %#08x", bits(round), roundB)
	}
	for _, c := range []struct {
		name string
		v    float32
		bits uint32
	}{
		{"e2", e2, 0x3efffffe}, {"e3", e3, 0x3e2aaa46}, {"e4", e4, 0x3d2aac83},
		{"e5", e5, 0x3c091ea0}, {"e6", e6, 0x3ab50f4f},
		{"l1", l1, 0x3f2aaabe}, {"l2", l2, 0x3eccae24}, {"l3", l3, 0x3e9914f1},
		{"t3", t3, 0xbeaaaa99}, {"t5", t5, 0x3e088393}, {"t7", t7, 0xbd5c1e2c},
		{"t9", t9, 0x3ca91348}, {"t11", t11, 0xbbbaf0cf},
		{"ln2Hi", ln2Hi, 0x3f317200},
	} {
		if bits(c.v) != c.bits {
			t.Errorf("%s = %#08x, want %#08x", c.name, bits(c.v), c.bits)
		}
	}
}
