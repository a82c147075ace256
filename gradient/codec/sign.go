package codec

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The sign codec: per chunk a scale s = mean |x| and one sign bit per
// element; element j decodes to -s if its bit is set and s otherwise.

func (c *codec) encodeSign(e *encoder, dst []byte, d, r []float32) {
	for base := 0; base < len(d); base += c.chunk {
		end := min(base+c.chunk, len(d))
		xs := e.x[:end-base]
		copy(xs, d[base:end])
		if r != nil {
			for j, rv := range r[base:end] {
				xs[j] += rv
			}
		}
		var sum float64 // exact for chunks of up to 2^20 elements of equal exponent; fixed order in any case
		for _, v := range xs {
			sum += float64(math.Float32frombits(absBits(v)))
		}
		s := float32(sum / float64(len(xs)))
		u := math.Float32bits(s)
		binary.LittleEndian.PutUint32(dst, u)
		nb := (len(xs) + 7) / 8
		sb := dst[4 : 4+nb]
		dst = dst[4+nb:]
		for i := range sb {
			var acc byte
			for j, v := range xs[8*i : min(8*i+8, len(xs))] {
				acc |= byte(math.Float32bits(v)>>31) << j
			}
			sb[i] = acc
		}
		if r != nil {
			rr := r[base:end]
			for j, v := range xs {
				// y is s with the sign bit of v: -s or s.
				rr[j] = v - math.Float32frombits(u|math.Float32bits(v)&0x80000000)
			}
		}
	}
}

func (c *codec) decodeSign(src []byte, out []float32) (string, string) {
	for base := 0; base < len(out); base += c.chunk {
		end := min(base+c.chunk, len(out))
		u := binary.LittleEndian.Uint32(src)
		if u >= maxValueBits { // a mean of values below 2^64
			return "scale", fmt.Sprintf("chunk %d: %g is not a non-negative float32 below 2^64", base/c.chunk, math.Float32frombits(u))
		}
		nb := (end - base + 7) / 8
		sb := src[4 : 4+nb]
		src = src[4+nb:]
		o := out[base:end]
		for j := range o {
			// -s is s with the sign bit set.
			o[j] = math.Float32frombits(u | uint32(sb[j>>3]>>(j&7)&1)<<31)
		}
		if pad := (end - base) & 7; pad != 0 && sb[nb-1]>>pad != 0 {
			return "padding", fmt.Sprintf("chunk %d: nonzero padding bits", base/c.chunk)
		}
	}
	return "", ""
}
