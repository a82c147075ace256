package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// The sparse codecs, topk and dct-topk, split every tensor into chunks and
// send, per chunk, a record of the k largest-magnitude values (of the
// elements for topk, of the DCT coefficients for dct-topk): their indices
// and their quantised values.

// encoder holds an Encode call's scratch buffers.
type encoder struct {
	x     []float32 // the chunk being encoded, delta+residual
	coef  []float32 // its DCT coefficients
	y     []float32 // the inverse DCT of what is sent
	heap  []uint64
	sel   []int32
	yv    []float32 // decoded values of the selected entries
	codes []uint16
	part  []float32 // DCT basis of a partial chunk
	partL int
}

// newEncoder sizes the scratch buffers for tensors of at most maxN
// elements.
func (c *codec) newEncoder(maxN int) *encoder {
	n := min(c.chunk, maxN)
	if c.id == idSign || c.id == idBlockSign {
		return &encoder{x: make([]float32, n)}
	}
	if c.id != idTopK && c.id != idDCTTopK {
		return nil
	}
	kk := min(c.k, n)
	e := &encoder{
		x:     make([]float32, n),
		heap:  make([]uint64, kk),
		sel:   make([]int32, 0, kk),
		yv:    make([]float32, kk),
		codes: make([]uint16, kk),
	}
	if c.id == idDCTTopK {
		e.coef = make([]float32, n)
		e.y = make([]float32, n)
	}
	return e
}

// decoder holds a Decode call's scratch buffers.
type decoder struct {
	sel []int32
	yv  []float32
	row []float32
	sup *support // if non-nil, collects the sent elements (topk, block-sign)
}

// newDecoder sizes the scratch buffers for tensors of at most maxN
// elements, so that a large chunk or k in the parameters allocates
// nothing beyond what the shapes need.
func (c *codec) newDecoder(maxN int) *decoder {
	if c.id != idTopK && c.id != idDCTTopK {
		return nil
	}
	n := min(c.chunk, maxN)
	kk := min(c.k, n)
	d := &decoder{sel: make([]int32, kk), yv: make([]float32, kk)}
	if c.id == idDCTTopK {
		d.row = make([]float32, n)
	}
	return d
}

// valueBits and scaleBytes give the size of one quantised value and of the
// scales of a record.
func (c *codec) valueBits() uint {
	switch c.values {
	case valFP16:
		return 16
	case valInt8:
		return 8
	}
	return 2
}

func (c *codec) scaleBytes() int {
	switch c.values {
	case valInt8:
		return 4
	case val2Bit:
		return 8
	}
	return 0
}

// recordLen is the size of a record of kk entries.
func (c *codec) recordLen(kk int) int {
	return c.scaleBytes() + (kk*int(c.ibits+c.valueBits())+7)/8
}

// top returns the indices of the kk largest |v[j]|, ties going to the
// lower index, in increasing order. It keeps a min-heap of the best kk
// keys seen, so it costs O(len(v) + kk·log(kk)·replacements).
func (e *encoder) top(v []float32, kk int) []int32 {
	sel := e.sel[:0]
	if kk >= len(v) {
		for j := range v {
			sel = append(sel, int32(j))
		}
		e.sel = sel
		return sel
	}
	// key orders by magnitude, then by lower index; all keys differ.
	key := func(j int) uint64 { return uint64(absBits(v[j]))<<32 | uint64(^uint32(j)) }
	h := e.heap[:kk]
	for j := range h {
		h[j] = key(j)
	}
	for i := kk/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	least := h[0]
	for j := kk; j < len(v); j++ {
		if kj := key(j); kj > least {
			h[0] = kj
			siftDown(h, 0)
			least = h[0]
		}
	}
	for _, kj := range h {
		sel = append(sel, int32(^uint32(kj)))
	}
	slices.Sort(sel)
	e.sel = sel
	return sel
}

func siftDown(h []uint64, i int) {
	n := len(h)
	for {
		m := 2*i + 1
		if m >= n {
			return
		}
		if r := m + 1; r < n && h[r] < h[m] {
			m = r
		}
		if h[i] <= h[m] {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// putRecord writes the record of the entries sel of v into dst (of exactly
// recordLen(len(sel)) bytes) and leaves their decoded values in e.yv.
func (c *codec) putRecord(e *encoder, dst []byte, v []float32, sel []int32) {
	yv := e.yv[:len(sel)]
	codes := e.codes[:len(sel)]
	switch c.values {
	case valFP16:
		for i, j := range sel {
			h := fp16Sat(v[j])
			codes[i] = h
			yv[i] = Float16ToFloat32(h)
		}
	case valInt8:
		var amax uint32
		for _, j := range sel {
			amax = max(amax, absBits(v[j]))
		}
		s := int8Scale(amax)
		binary.LittleEndian.PutUint32(dst, math.Float32bits(s))
		for i, j := range sel {
			q := quantInt8(v[j], s)
			codes[i] = uint16(uint8(q))
			yv[i] = float32(q) * s
		}
	case val2Bit:
		// Two levels: the mean magnitude of the entries below the mean
		// magnitude m, and that of the entries at or above it.
		var sum, amax float64
		for _, j := range sel {
			a := float64(math.Float32frombits(absBits(v[j])))
			sum += a
			amax = max(amax, a)
		}
		m := min(sum/float64(len(sel)), amax)
		var loSum, hiSum float64
		var loN, hiN int
		for _, j := range sel {
			a := float64(math.Float32frombits(absBits(v[j])))
			if a >= m {
				hiSum += a
				hiN++
			} else {
				loSum += a
				loN++
			}
		}
		var lo, hi float32
		if loN > 0 {
			lo = float32(loSum / float64(loN))
		}
		hi = float32(hiSum / float64(hiN))
		binary.LittleEndian.PutUint32(dst, math.Float32bits(lo))
		binary.LittleEndian.PutUint32(dst[4:], math.Float32bits(hi))
		for i, j := range sel {
			code := uint16(math.Float32bits(v[j]) >> 31)
			level := lo
			if float64(math.Float32frombits(absBits(v[j]))) >= m {
				code |= 2
				level = hi
			}
			codes[i] = code
			if code&1 != 0 {
				level = -level
			}
			yv[i] = level
		}
	}
	w := bitWriter{b: dst[c.scaleBytes():]}
	for _, j := range sel {
		w.put(uint64(j), c.ibits)
	}
	vb := c.valueBits()
	for _, code := range codes {
		w.put(uint64(code), vb)
	}
	w.flush()
}

// getRecord reads a record of kk entries of a chunk of length n from src
// (of exactly recordLen(kk) bytes), validating it; it leaves the indices in
// d.sel and the values in d.yv.
func (c *codec) getRecord(d *decoder, src []byte, n, kk int) (field, msg string) {
	sel := d.sel[:kk]
	yv := d.yv[:kk]
	var s, lo, hi float32
	switch c.values {
	case valInt8:
		u := binary.LittleEndian.Uint32(src)
		if msg := checkInt8Scale(u); msg != "" {
			return "scale", msg
		}
		s = math.Float32frombits(u)
	case val2Bit:
		ul := binary.LittleEndian.Uint32(src)
		uh := binary.LittleEndian.Uint32(src[4:])
		if ul >= maxScaleBits || uh >= maxScaleBits {
			return "scale", "levels must be non-negative float32 below 2^80"
		}
		if ul > uh {
			return "scale", "low level above high level"
		}
		lo, hi = math.Float32frombits(ul), math.Float32frombits(uh)
	}
	r := bitReader{b: src[c.scaleBytes():]}
	prev := -1
	for i := range sel {
		j := int(r.get(c.ibits))
		if j <= prev {
			return "index", fmt.Sprintf("index %d does not follow %d", j, prev)
		}
		if j >= n {
			return "index", fmt.Sprintf("index %d outside a chunk of %d", j, n)
		}
		sel[i] = int32(j)
		prev = j
	}
	switch c.values {
	case valFP16:
		for i := range yv {
			h := uint16(r.get(16))
			if h&0x7c00 == 0x7c00 {
				return "value", "not finite"
			}
			yv[i] = Float16ToFloat32(h)
		}
	case valInt8:
		var qmax int8
		for i := range yv {
			q := int8(r.get(8))
			if q == -128 {
				return "value", "-128"
			}
			qmax = max(qmax, q, -q)
			yv[i] = float32(q) * s
		}
		if s == 0 && qmax != 0 {
			return "value", "nonzero values with scale 0"
		}
		if s != 0 && qmax != 127 {
			return "value", fmt.Sprintf("largest |value| is %d, not 127", qmax)
		}
	case val2Bit:
		for i := range yv {
			code := r.get(2)
			level := lo
			if code&2 != 0 {
				level = hi
			}
			if code&1 != 0 {
				level = -level
			}
			yv[i] = level
		}
	}
	if r.padding() != 0 {
		return "padding", "nonzero padding bits"
	}
	return "", ""
}

func (c *codec) encodeTopK(e *encoder, dst []byte, d, r []float32) {
	for base := 0; base < len(d); base += c.chunk {
		end := min(base+c.chunk, len(d))
		xs := e.x[:end-base]
		copy(xs, d[base:end])
		if r != nil {
			for j, rv := range r[base:end] {
				xs[j] += rv
			}
		}
		sel := e.top(xs, min(c.k, len(xs)))
		rl := c.recordLen(len(sel))
		c.putRecord(e, dst[:rl], xs, sel)
		dst = dst[rl:]
		if r != nil {
			copy(r[base:end], xs)
			for i, j := range sel {
				r[base+int(j)] = xs[j] - e.yv[i]
			}
		}
	}
}

func (c *codec) decodeTopK(d *decoder, src []byte, out []float32) (string, string) {
	for base := 0; base < len(out); base += c.chunk {
		end := min(base+c.chunk, len(out))
		kk := min(c.k, end-base)
		rl := c.recordLen(kk)
		if field, msg := c.getRecord(d, src[:rl], end-base, kk); msg != "" {
			return field, fmt.Sprintf("chunk %d: %s", base/c.chunk, msg)
		}
		src = src[rl:]
		for i, j := range d.sel[:kk] {
			out[base+int(j)] = d.yv[i]
		}
		if d.sup != nil {
			for _, j := range d.sel[:kk] {
				d.sup.index = append(d.sup.index, uint32(d.sup.off+base+int(j)))
			}
		}
	}
	return "", ""
}
