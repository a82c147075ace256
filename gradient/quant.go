package gradient

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/shoal-network/shoal/tensor"
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

// Quantised checkpoints. A quantised model is kept as a checkpoint of
// float32 tensors, the only type the checkpoint format has. Each matrix a
// generator quantises (the token embedding and the blocks' four) becomes
// two tensors: NAME.qscale, its scales [rows, groups], and NAME.qcodes,
// its codes [rows, ⌈b/4⌉] where b is a row's bytes (a signed byte per
// weight for 8 bits; for 4, two weights a byte, value+8 in each nibble,
// the even column low), packed four bytes to a 32-bit word, little
// endian, the last word of a row padded with zero bytes. Those words are
// bit patterns, not numbers; the format keeps every value's bits (NaN
// payloads included), so they arrive as written. A row is one of the
// matrix's outputs: a column of a stored [in, out] matrix, a row of the
// token embedding. Every other parameter is kept as it is.
const (
	QuantCodes = ".qcodes"
	QuantScale = ".qscale"
)

// QuantTensor is a tensor of a quantised model's checkpoint.
type QuantTensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// quantMatrices returns the matrices of g that a generator quantises, by
// tensor, each with whether it is used transposed (stored out×in) and
// its parameter name.
func quantMatrices(g *gpt) map[*tensor.Tensor]struct {
	trans bool
	name  string
} {
	names := map[*tensor.Tensor]string{}
	for _, p := range g.list {
		names[p.Tensor] = p.Name
	}
	out := map[*tensor.Tensor]struct {
		trans bool
		name  string
	}{}
	add := func(t *tensor.Tensor, trans bool) {
		out[t] = struct {
			trans bool
			name  string
		}{trans, names[t]}
	}
	add(g.wte, true)
	for _, b := range g.blocks {
		for _, w := range []*tensor.Tensor{b.attnW, b.projW, b.fcW, b.mlpW} {
			add(w, false)
		}
	}
	return out
}

// QuantizeModel returns the tensors of m's quantised checkpoint, in m's
// parameter order: each quantised matrix's codes and scales (as
// NewQuantGenerator quantises it) in place of its values. m must be a
// whole gpt: an adapter is folded into its base first.
func QuantizeModel(m Model, q Quant) ([]QuantTensor, error) {
	g, ok := m.(*gpt)
	if !ok {
		if _, isA := m.(adapted); isA {
			return nil, errors.New("quantize: an adapter is not a whole model: fold it into its base first")
		}
		return nil, fmt.Errorf("quantize: a %s is not quantised for inference; only gpt is", m.Config().Arch)
	}
	if q.Bits != 8 && q.Bits != 4 {
		return nil, fmt.Errorf("quantize: %d-bit weights: want 8 or 4", q.Bits)
	}
	if q.Group <= 0 {
		q.Group = DefaultQuantGroup
	}
	mats := quantMatrices(g)
	var out []QuantTensor
	for _, p := range g.list {
		mt, ok := mats[p.Tensor]
		if !ok {
			out = append(out, QuantTensor{Name: p.Name, Shape: slices.Clone(p.Shape()), Data: p.Data})
			continue
		}
		qm := newQuantLinear(p.Tensor, mt.trans, q).q
		rowBytes := qm.rowBytes()
		words := (rowBytes + 3) / 4
		codes := make([]float32, qm.rows*words)
		var buf [4]byte
		for r := range qm.rows {
			for w := range words {
				buf = [4]byte{}
				for i := range 4 {
					if k := 4*w + i; k < rowBytes {
						buf[i] = qm.rowByte(r, k)
					}
				}
				codes[r*words+w] = math.Float32frombits(binary.LittleEndian.Uint32(buf[:]))
			}
		}
		out = append(out,
			QuantTensor{Name: p.Name + QuantCodes, Shape: []int{qm.rows, words}, Data: codes},
			QuantTensor{Name: p.Name + QuantScale, Shape: []int{qm.rows, qm.groups}, Data: qm.scale})
	}
	return out, nil
}

// rowBytes is the bytes of a row's codes.
func (m *qmatrix) rowBytes() int {
	if m.bits == 4 {
		return (m.cols + 1) / 2
	}
	return m.cols
}

// rowByte returns byte k of row r's codes.
func (m *qmatrix) rowByte(r, k int) byte {
	if m.bits == 4 {
		return m.q4[r*m.rowBytes()+k]
	}
	return byte(m.q8[r*m.cols+k])
}

// NewGeneratorFromQuantized returns a generator of the gpt of cfg whose
// quantised checkpoint's tensors (QuantizeModel's, quantised as q says)
// get returns by name. It gives the same bits as NewQuantGenerator on the
// model that was quantised. Shapes are checked, so a checkpoint of
// another model or quantisation is refused with an error naming the
// tensor.
func NewGeneratorFromQuantized(cfg ModelConfig, q Quant, get func(name string) (shape []int, data []float32, ok bool)) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Arch != "gpt" || cfg.Adapter != nil {
		return nil, errors.New("generate: a quantised checkpoint holds a whole gpt")
	}
	if q.Bits != 8 && q.Bits != 4 || q.Group <= 0 || q.Group > 1<<20 {
		return nil, fmt.Errorf("generate: quantisation of %d bits in groups of %d: want 8 or 4 bits and a positive group", q.Bits, q.Group)
	}
	g := newGPT(cfg, &params{noInit: true})
	mats := quantMatrices(g)
	for _, p := range g.list {
		if _, ok := mats[p.Tensor]; ok {
			continue
		}
		shape, data, ok := get(p.Name)
		if !ok || !slices.Equal(shape, p.Shape()) || len(data) != p.Size() {
			return nil, fmt.Errorf("quantised checkpoint: parameter %s of shape %v missing or of shape %v", p.Name, p.Shape(), shape)
		}
		copy(p.Data, data)
	}
	return newGenerator(g, q, func(t *tensor.Tensor, trans bool) (linear, error) {
		mt := mats[t]
		sh := t.Shape()
		rows, cols := sh[1], sh[0]
		if trans {
			rows, cols = sh[0], sh[1]
		}
		m := &qmatrix{rows: rows, cols: cols, group: q.Group, bits: q.Bits, groups: (cols + q.Group - 1) / q.Group}
		rowBytes := m.rowBytes()
		words := (rowBytes + 3) / 4
		cshape, codes, ok := get(mt.name + QuantCodes)
		if !ok || !slices.Equal(cshape, []int{rows, words}) || len(codes) != rows*words {
			return nil, fmt.Errorf("quantised checkpoint: %s%s missing or of shape %v, want [%d %d]", mt.name, QuantCodes, cshape, rows, words)
		}
		sshape, scale, ok := get(mt.name + QuantScale)
		if !ok || !slices.Equal(sshape, []int{rows, m.groups}) || len(scale) != rows*m.groups {
			return nil, fmt.Errorf("quantised checkpoint: %s%s missing or of shape %v, want [%d %d]", mt.name, QuantScale, sshape, rows, m.groups)
		}
		m.scale = slices.Clone(scale)
		raw := make([]byte, rows*rowBytes)
		var buf [4]byte
		for r := range rows {
			for k := range rowBytes {
				if k%4 == 0 {
					binary.LittleEndian.PutUint32(buf[:], math.Float32bits(codes[r*words+k/4]))
				}
				raw[r*rowBytes+k] = buf[k%4]
			}
		}
		if q.Bits == 4 {
			m.q4 = raw
		} else {
			m.q8 = make([]int8, len(raw))
			for i, b := range raw {
				m.q8[i] = int8(b)
			}
		}
		return &quantLinear{m}, nil
	})
}
