package codec

import "math"

// Float32ToFloat16 converts f to IEEE-754 binary16 bits, rounding to
// nearest, ties to even. Values of magnitude 65520 or more round to
// infinity; values below 2^-25 in magnitude round to a signed zero; values
// in between the binary16 subnormal and normal ranges round to the nearest
// subnormal (or to the smallest normal). Infinities are kept. A NaN becomes
// the quiet NaN with f's sign and the top 9 bits of its payload.
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	switch {
	case exp == 0xff:
		if man == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7e00 | uint16(man>>13)
	case exp >= 143: // 2^16 and above
		return sign | 0x7c00
	case exp >= 113: // binary16 normal range, 2^-14 and above
		v := uint32(exp-112)<<23 | man
		v += 0xfff + (v>>13)&1 // a carry out of the mantissa bumps the exponent, up to infinity
		return sign | uint16(v>>13)
	case exp >= 102: // binary16 subnormal range: units of 2^-24
		m := man | 0x800000
		shift := uint(126 - exp) // 14..24
		q := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || rem == half && q&1 == 1 {
			q++ // may reach 0x400, the smallest normal
		}
		return sign | uint16(q)
	}
	return sign
}

// Float16ToFloat32 converts IEEE-754 binary16 bits to float32, exactly.
// A NaN keeps its sign and payload (shifted into the top of the float32
// payload), so Float32ToFloat16(Float16ToFloat32(h)) == h for every h but
// the signaling NaNs, which come back quiet.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	f := float32(man) * 0x1p-24 // subnormal; exact
	if sign != 0 {
		f = -f
	}
	return f
}

// Float32ToBFloat16 converts f to bfloat16 bits (the top half of a
// float32), rounding to nearest, ties to even. Values of magnitude at least
// 0x1.ff8p127 round to infinity; subnormals round like normals. A NaN
// becomes the quiet NaN with f's sign and the top 6 bits of its payload.
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// BFloat16ToFloat32 converts bfloat16 bits to float32, exactly.
func BFloat16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// fp16Sat is Float32ToFloat16 for finite f, saturating at ±65504 instead
// of overflowing to infinity.
func fp16Sat(f float32) uint16 {
	h := Float32ToFloat16(f)
	if h&0x7fff == 0x7c00 {
		h = h&0x8000 | 0x7bff
	}
	return h
}

// bf16Sat is Float32ToBFloat16 for f of magnitude below MaxValue,
// saturating at the largest bfloat16 below MaxValue (0x1.fep63).
func bf16Sat(f float32) uint16 {
	h := Float32ToBFloat16(f)
	if h&0x7fff >= maxValueBits>>16 {
		h = h&0x8000 | (maxValueBits>>16 - 1)
	}
	return h
}
