package codec

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The dense codecs: fp32, fp16, bf16 and int8. In every encoder d is the
// delta, r the residual (nil for none); x = d+r is what is encoded and
// r' = x - decoded what is left behind.

func encodeFP32(dst []byte, d, r []float32) {
	dst = dst[:4*len(d)]
	if r == nil {
		for j, x := range d {
			binary.LittleEndian.PutUint32(dst[4*j:], math.Float32bits(x))
		}
		return
	}
	r = r[:len(d)]
	for j, x := range d {
		x += r[j]
		r[j] = x - x
		binary.LittleEndian.PutUint32(dst[4*j:], math.Float32bits(x))
	}
}

func decodeFP32(src []byte, out []float32) (string, string) {
	for j := range out {
		u := binary.LittleEndian.Uint32(src[4*j:])
		if u&0x7fffffff >= maxValueBits {
			return "value", fmt.Sprintf("element %d is not finite or has magnitude >= 2^64", j)
		}
		out[j] = math.Float32frombits(u)
	}
	return "", ""
}

func encodeFP16(dst []byte, d, r []float32) {
	dst = dst[:2*len(d)]
	if r == nil {
		for j, x := range d {
			binary.LittleEndian.PutUint16(dst[2*j:], fp16Sat(x))
		}
		return
	}
	r = r[:len(d)]
	for j, x := range d {
		x += r[j]
		h := fp16Sat(x)
		r[j] = x - Float16ToFloat32(h)
		binary.LittleEndian.PutUint16(dst[2*j:], h)
	}
}

func decodeFP16(src []byte, out []float32) (string, string) {
	for j := range out {
		h := binary.LittleEndian.Uint16(src[2*j:])
		if h&0x7c00 == 0x7c00 {
			return "value", fmt.Sprintf("element %d is not finite", j)
		}
		out[j] = Float16ToFloat32(h)
	}
	return "", ""
}

func encodeBF16(dst []byte, d, r []float32) {
	dst = dst[:2*len(d)]
	if r == nil {
		for j, x := range d {
			binary.LittleEndian.PutUint16(dst[2*j:], bf16Sat(x))
		}
		return
	}
	r = r[:len(d)]
	for j, x := range d {
		x += r[j]
		h := bf16Sat(x)
		r[j] = x - BFloat16ToFloat32(h)
		binary.LittleEndian.PutUint16(dst[2*j:], h)
	}
}

func decodeBF16(src []byte, out []float32) (string, string) {
	for j := range out {
		h := binary.LittleEndian.Uint16(src[2*j:])
		if h&0x7fff >= maxValueBits>>16 {
			return "value", fmt.Sprintf("element %d is not finite or has magnitude >= 2^64", j)
		}
		out[j] = BFloat16ToFloat32(h)
	}
	return "", ""
}

// roundEven rounds f to the nearest integer, ties to even; |f| < 2^22.
func roundEven(f float32) int32 {
	const magic = 0x1p23 + 0x1p22
	return int32(float32(f+magic) - magic)
}

// absBits is the bit pattern of |f|; for finite values it orders like |f|.
func absBits(f float32) uint32 { return math.Float32bits(f) & 0x7fffffff }

// int8Scale returns the scale of a block or chunk whose largest magnitude
// has bits amax: amax/127, or 0 if that is below the smallest normal
// float32 (the block is then sent as zeros).
func int8Scale(amax uint32) float32 {
	s := math.Float32frombits(amax) / 127
	if math.Float32bits(s) < minNormBits {
		return 0
	}
	return s
}

// quantInt8 returns round-half-even(x/s), for s = 0 zero.
func quantInt8(x, s float32) int8 {
	if s == 0 {
		return 0
	}
	q := roundEven(x / s)
	return int8(max(-127, min(127, q)))
}

// checkInt8Scale validates a decoded int8 scale: +0, or a normal float32
// below 2^80.
func checkInt8Scale(u uint32) string {
	if u != 0 && (u < minNormBits || u >= maxScaleBits) {
		return fmt.Sprintf("%g is not zero or a normal float32 below 2^80", math.Float32frombits(u))
	}
	return ""
}

func (c *codec) encodeInt8(dst []byte, d, r []float32) {
	for base := 0; base < len(d); base += c.chunk {
		end := min(base+c.chunk, len(d))
		var amax uint32
		for j := base; j < end; j++ {
			v := d[j]
			if r != nil {
				v += r[j]
			}
			amax = max(amax, absBits(v))
		}
		s := int8Scale(amax)
		binary.LittleEndian.PutUint32(dst, math.Float32bits(s))
		q := dst[4 : 4+end-base]
		dst = dst[4+end-base:]
		for j := base; j < end; j++ {
			v := d[j]
			if r != nil {
				v += r[j]
			}
			qv := quantInt8(v, s)
			q[j-base] = byte(qv)
			if r != nil {
				r[j] = v - float32(float32(qv)*s)
			}
		}
	}
}

func (c *codec) decodeInt8(src []byte, out []float32) (string, string) {
	for base := 0; base < len(out); base += c.chunk {
		end := min(base+c.chunk, len(out))
		u := binary.LittleEndian.Uint32(src)
		if msg := checkInt8Scale(u); msg != "" {
			return "scale", fmt.Sprintf("block %d: %s", base/c.chunk, msg)
		}
		s := math.Float32frombits(u)
		q := src[4 : 4+end-base]
		src = src[4+end-base:]
		var qmax int8
		for j, b := range q {
			v := int8(b)
			if v == -128 {
				return "value", fmt.Sprintf("element %d is -128", base+j)
			}
			qmax = max(qmax, v, -v)
			out[base+j] = float32(v) * s
		}
		if s == 0 && qmax != 0 {
			return "value", fmt.Sprintf("block %d: nonzero values with scale 0", base/c.chunk)
		}
		if s != 0 && qmax != 127 {
			return "value", fmt.Sprintf("block %d: largest |value| is %d, not 127", base/c.chunk, qmax)
		}
	}
	return "", ""
}
