package gradient

import (
	"fmt"
	"math"
)

// Quantised weights for local inference. A weight matrix is kept by
// rows, one per output, each cut into groups of Group inputs; a group
// holds one float32 scale (its largest magnitude over 127 for 8 bits, over
// 7 for 4) and a signed integer per weight, round(w / scale). A product
// with a vector sums, group by group, q·x in float32 in input order, and
// adds scale·sum to the output: every operation is written out and
// rounded where Go's rules say (no fused multiply-add), in pure Go, so
// the same weights and inputs give the same bits on every machine and
// under -tags noasm, as training's kernels do.

// Quant says how to quantise: Bits is 8 or 4, Group the weights per
// scale (default DefaultQuantGroup).
type Quant struct {
	Bits, Group int
}

// DefaultQuantGroup is the weights per scale by default.
const DefaultQuantGroup = 64

// ParseQuant reads "int8" or "int4" ("" and "fp32": none).
func ParseQuant(s string) (Quant, error) {
	switch s {
	case "", "fp32", "f32":
		return Quant{}, nil
	case "int8":
		return Quant{Bits: 8, Group: DefaultQuantGroup}, nil
	case "int4":
		return Quant{Bits: 4, Group: DefaultQuantGroup}, nil
	}
	return Quant{}, fmt.Errorf("quantisation %q: want int8, int4 or fp32", s)
}

// String names the quantisation ("fp32" for none).
func (q Quant) String() string {
	if q.Bits == 0 {
		return "fp32"
	}
	return fmt.Sprintf("int%d", q.Bits)
}

// qmatrix is a quantised matrix of rows × cols, by rows.
type qmatrix struct {
	rows, cols, group, bits int
	groups                  int       // per row
	q8                      []int8    // bits 8: rows·cols values
	q4                      []byte    // bits 4: per row ⌈cols/2⌉ bytes, value+8 in each nibble, the even column low
	scale                   []float32 // rows·groups
}

// quantize quantises a rows × cols matrix whose element (r, k) is at(r, k).
func quantize(rows, cols int, at func(r, k int) float32, q Quant) *qmatrix {
	g := q.Group
	if g <= 0 {
		g = DefaultQuantGroup
	}
	m := &qmatrix{rows: rows, cols: cols, group: g, bits: q.Bits, groups: (cols + g - 1) / g}
	m.scale = make([]float32, rows*m.groups)
	qmax := float32(127)
	if q.Bits == 4 {
		qmax = 7
		m.q4 = make([]byte, rows*((cols+1)/2))
	} else {
		m.q8 = make([]int8, rows*cols)
	}
	rowBytes := (cols + 1) / 2
	for r := range rows {
		for gi := range m.groups {
			lo, hi := gi*g, min((gi+1)*g, cols)
			var amax float32
			for k := lo; k < hi; k++ {
				amax = max(amax, float32(math.Abs(float64(at(r, k)))))
			}
			s := amax / qmax
			m.scale[r*m.groups+gi] = s
			for k := lo; k < hi; k++ {
				var v int
				if s > 0 {
					v = int(math.Round(float64(at(r, k)) / float64(s)))
					v = max(-int(qmax), min(int(qmax), v))
				}
				if q.Bits == 4 {
					b := &m.q4[r*rowBytes+k/2]
					if k%2 == 0 {
						*b = *b&0xf0 | byte(v+8)
					} else {
						*b = *b&0x0f | byte(v+8)<<4
					}
				} else {
					m.q8[r*cols+k] = int8(v)
				}
			}
		}
	}
	return m
}

// value returns the integer of weight (r, k).
func (m *qmatrix) value(r, k int) float32 {
	if m.bits == 4 {
		b := m.q4[r*((m.cols+1)/2)+k/2]
		if k%2 == 1 {
			b >>= 4
		}
		return float32(int(b&0x0f) - 8)
	}
	return float32(m.q8[r*m.cols+k])
}

// mulVec sets dst[r] = Σ_k w(r, k)·x[k] for every row r.
func (m *qmatrix) mulVec(dst, x []float32) {
	for r := range m.rows {
		var out float32
		for gi := range m.groups {
			lo, hi := gi*m.group, min((gi+1)*m.group, m.cols)
			var acc float32
			if m.bits == 4 {
				row := m.q4[r*((m.cols+1)/2):]
				for k := lo; k < hi; k++ {
					b := row[k/2]
					if k%2 == 1 {
						b >>= 4
					}
					acc += float32(float32(int(b&0x0f)-8) * x[k])
				}
			} else {
				row := m.q8[r*m.cols:]
				for k := lo; k < hi; k++ {
					acc += float32(float32(row[k]) * x[k])
				}
			}
			out += float32(m.scale[r*m.groups+gi] * acc)
		}
		dst[r] = out
	}
}

// row sets dst to row r, dequantised.
func (m *qmatrix) row(dst []float32, r int) {
	for k := range m.cols {
		dst[k] = float32(m.scale[r*m.groups+k/m.group] * m.value(r, k))
	}
}

// bytes is the memory the matrix holds.
func (m *qmatrix) bytes() int64 {
	return int64(len(m.q8)) + int64(len(m.q4)) + 4*int64(len(m.scale))
}
