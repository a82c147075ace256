package checkpoint

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// TestF16ToF32 checks the widening of every binary16 value against its
// definition computed in float64.
func TestF16ToF32(t *testing.T) {
	for h := range 1 << 16 {
		sign := 1.0
		if h>>15 != 0 {
			sign = -1
		}
		exp, frac := (h>>10)&0x1f, h&0x3ff
		got := F16ToF32(uint16(h))
		switch {
		case exp == 0x1f && frac == 0:
			if !math.IsInf(float64(got), int(sign)) {
				t.Fatalf("%#04x: %v, want %v infinity", h, got, sign)
			}
		case exp == 0x1f:
			if !math.IsNaN(float64(got)) || math.Float32bits(got)>>13&0x3ff != uint32(frac) {
				t.Fatalf("%#04x: %v (%#08x), want a NaN with payload %#x", h, got, math.Float32bits(got), frac)
			}
		default:
			want := sign * math.Ldexp(float64(frac)/1024, -14) // subnormal or zero
			if exp != 0 {
				want = sign * math.Ldexp(1+float64(frac)/1024, exp-15)
			}
			if float64(got) != want || math.Signbit(float64(got)) != (sign < 0) {
				t.Fatalf("%#04x: %v, want %v", h, got, want)
			}
		}
	}
}

// TestReadHalfPrecision reads F16 and BF16 tensors as float32.
func TestReadHalfPrecision(t *testing.T) {
	hdr := `{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}}`
	var buf bytes.Buffer
	binary.Write(&buf, binary.LittleEndian, uint64(len(hdr)))
	buf.WriteString(hdr)
	// a: 1.5 and -2^-24 (the smallest subnormal); b: 3.140625 and -0.
	for _, v := range []uint16{0x3e00, 0x8001, 0x4049, 0x8000} {
		binary.Write(&buf, binary.LittleEndian, v)
	}
	ts, _, err := ReadSafetensors(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{"a": {1.5, -float32(math.Ldexp(1, -24))}, "b": {3.140625, float32(math.Copysign(0, -1))}}
	for _, tt := range ts {
		for i, v := range tt.Data {
			if math.Float32bits(v) != math.Float32bits(want[tt.Name][i]) {
				t.Errorf("%s[%d] = %v, want %v", tt.Name, i, v, want[tt.Name][i])
			}
		}
	}
}
