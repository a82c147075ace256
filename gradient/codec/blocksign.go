package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// The block-sign codec: sign compression of only some chunks of each
// tensor. A tensor of n elements has nc = ceil(n/C) chunks, of which the
// m = ceil(nc/D) with the largest gain L·s² are sent (L the chunk's length,
// s = mean |x| its sign scale), ties to the lower chunk. L·s² is exactly
// how much sending the chunk as ±s lowers its squared error (‖x‖² −
// ‖x − s·sign(x)‖² = 2s·Σ|x| − L·s² = L·s²), so the chosen chunks are
// those where a bit buys the most. With error feedback an unsent chunk
// keeps growing in the residual until it wins, so over D steps every
// chunk is sent about once, carrying what accumulated meanwhile.
//
// A pseudo-gradient of AdamW steps is dense and of nearly uniform
// magnitude (Adam normalises every coordinate), which is why element
// top-k fails on it and sign does well: block-sign keeps sign's one bit
// per sent element and pays for the selection with one bit per chunk
// instead of an index per element.

// blockSignCounts returns the number of chunks of a tensor of n elements
// and how many of them are sent.
func (c *codec) blockSignCounts(n int) (nc, m int) {
	nc = (n + c.chunk - 1) / c.chunk
	return nc, (nc + c.k - 1) / c.k
}

// blockSignRecord is the size of one sent chunk: its scale and a full
// chunk's sign bytes (the last chunk of a tensor pads its bits with zeros,
// so that the body length depends on the shape alone, not on which chunks
// are sent).
func (c *codec) blockSignRecord() int { return 4 + (c.chunk+7)/8 }

func (c *codec) blockSignLen(n int) int {
	nc, m := c.blockSignCounts(n)
	return (nc+7)/8 + m*c.blockSignRecord()
}

// chunkX sets e.x to the chunk [base, end) of d+r and returns it with its
// sign scale, computed exactly as the sign codec computes it.
func chunkX(e *encoder, d, r []float32, base, end int) ([]float32, float32) {
	xs := e.x[:end-base]
	copy(xs, d[base:end])
	if r != nil {
		for j, rv := range r[base:end] {
			xs[j] += rv
		}
	}
	var sum float64
	for _, v := range xs {
		sum += float64(math.Float32frombits(absBits(v)))
	}
	return xs, float32(sum / float64(len(xs)))
}

func (c *codec) encodeBlockSign(e *encoder, dst []byte, d, r []float32) {
	nc, m := c.blockSignCounts(len(d))
	if nc == 0 {
		return
	}
	gain := make([]float64, nc)
	for ci := range gain {
		base := ci * c.chunk
		end := min(base+c.chunk, len(d))
		_, s := chunkX(e, d, r, base, end)
		// Products only, each rounded: no fused multiply-add can apply.
		g := float64(float64(s) * float64(s))
		gain[ci] = float64(g * float64(end-base))
	}
	order := make([]int32, nc)
	for i := range order {
		order[i] = int32(i)
	}
	// All keys differ (the index breaks ties), so the order is canonical.
	slices.SortFunc(order, func(a, b int32) int {
		if ga, gb := gain[a], gain[b]; ga != gb {
			if ga > gb {
				return -1
			}
			return 1
		}
		return int(a - b)
	})
	bm := dst[:(nc+7)/8]
	clear(bm)
	for _, ci := range order[:m] {
		bm[ci>>3] |= 1 << (ci & 7)
	}
	rec := dst[len(bm):]
	rl := c.blockSignRecord()
	for ci := 0; ci < nc; ci++ {
		base := ci * c.chunk
		end := min(base+c.chunk, len(d))
		xs, s := chunkX(e, d, r, base, end)
		if bm[ci>>3]>>(ci&7)&1 == 0 {
			if r != nil {
				copy(r[base:end], xs)
			}
			continue
		}
		u := math.Float32bits(s)
		binary.LittleEndian.PutUint32(rec, u)
		sb := rec[4:rl]
		clear(sb)
		for j, v := range xs {
			sb[j>>3] |= byte(math.Float32bits(v)>>31) << (j & 7)
		}
		rec = rec[rl:]
		if r != nil {
			rr := r[base:end]
			for j, v := range xs {
				rr[j] = v - math.Float32frombits(u|math.Float32bits(v)&0x80000000)
			}
		}
	}
}

func (c *codec) decodeBlockSign(d *decoder, src []byte, out []float32) (string, string) {
	nc, m := c.blockSignCounts(len(out))
	if nc == 0 {
		return "", ""
	}
	bm := src[:(nc+7)/8]
	set := 0
	for _, b := range bm {
		set += bits.OnesCount8(b)
	}
	if pad := nc & 7; pad != 0 && bm[len(bm)-1]>>pad != 0 {
		return "padding", "nonzero padding bits in the chunk map"
	}
	if set != m {
		return "map", fmt.Sprintf("%d chunks sent, want %d of %d", set, m, nc)
	}
	rec := src[len(bm):]
	rl := c.blockSignRecord()
	for ci := 0; ci < nc; ci++ {
		if bm[ci>>3]>>(ci&7)&1 == 0 {
			continue
		}
		base := ci * c.chunk
		end := min(base+c.chunk, len(out))
		u := binary.LittleEndian.Uint32(rec)
		if u >= maxValueBits { // a mean of values below 2^64
			return "scale", fmt.Sprintf("chunk %d: %g is not a non-negative float32 below 2^64", ci, math.Float32frombits(u))
		}
		sb := rec[4:rl]
		rec = rec[rl:]
		o := out[base:end]
		for j := range o {
			// -s is s with the sign bit set.
			o[j] = math.Float32frombits(u | uint32(sb[j>>3]>>(j&7)&1)<<31)
		}
		// Bits past the chunk's length, in its last byte and in whole
		// bytes after it, must be zero.
		l := end - base
		if l&7 != 0 && sb[l>>3]>>(l&7) != 0 {
			return "padding", fmt.Sprintf("chunk %d: nonzero padding bits", ci)
		}
		for _, b := range sb[(l+7)/8:] {
			if b != 0 {
				return "padding", fmt.Sprintf("chunk %d: nonzero padding bytes", ci)
			}
		}
		if d.sup != nil {
			for j := base; j < end; j++ {
				d.sup.index = append(d.sup.index, uint32(d.sup.off+j))
			}
		}
	}
	return "", ""
}
