package codec

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Decode implements Codec.
func (c *codec) Decode(b []byte, lim Limits) ([]Tensor, error) {
	return c.decode(b, lim, nil)
}

// DecodeSupport decodes b as c.Decode does and also tells which elements
// the encoding sent. For topk and block-sign, which send only some
// elements of each tensor, sparse is true and index lists the sent
// elements in increasing order, numbered across the tensors concatenated
// in order (an element sent with the value zero is listed: it was sent).
// For the other codecs, which send every element (dct-topk sends
// coefficients, and its decoded update is dense), sparse is false and
// index is nil. An update of 2^32 elements or more cannot be numbered by
// uint32 and is rejected for a sparse codec. The index costs at most 4
// bytes per decoded element.
func DecodeSupport(c Codec, b []byte, lim Limits) (ts []Tensor, index []uint32, sparse bool, err error) {
	cc, ok := c.(*codec)
	if !ok {
		return nil, nil, false, fmt.Errorf("codec: DecodeSupport of a %T, not a codec of this package", c)
	}
	if cc.id != idTopK && cc.id != idBlockSign {
		ts, err = cc.decode(b, lim, nil)
		return ts, nil, false, err
	}
	sup := &support{index: []uint32{}}
	ts, err = cc.decode(b, lim, sup)
	if err != nil {
		return nil, nil, false, err
	}
	return ts, sup.index, true, nil
}

// support collects the flat indices of the sent elements while decoding.
type support struct {
	index []uint32
	off   int // flat index of the current tensor's first element
}

func (c *codec) decode(b []byte, lim Limits, sup *support) ([]Tensor, error) {
	name := c.Name()
	h, off, err := readPrefix(b)
	if err != nil {
		if e, ok := err.(*FormatError); ok {
			e.Codec = name
		}
		return nil, err
	}
	if h.id != c.id {
		return nil, &FormatError{name, "codec", fmt.Sprintf("encoding is %s", h.Name())}
	}
	if h.chunk != c.chunk || h.k != c.k || h.values != c.values {
		return nil, &FormatError{name, "params", fmt.Sprintf("encoding is %s, want %s", h, c)}
	}
	maxT, maxE := lim.bounds()
	if len(b)-off < 4 {
		return nil, &FormatError{name, "count", "truncated"}
	}
	count := binary.LittleEndian.Uint32(b[off:])
	off += 4
	if uint64(count) > uint64(maxT) {
		return nil, &FormatError{name, "count", fmt.Sprintf("%d tensors exceed the limit of %d", count, maxT)}
	}
	if lim.Expect != nil && int(count) != len(lim.Expect) {
		return nil, &FormatError{name, "count", fmt.Sprintf("%d tensors, want %d", count, len(lim.Expect))}
	}
	// Every header takes at least 4 bytes.
	if uint64(count) > uint64(len(b)-off)/4 {
		return nil, &FormatError{name, "count", fmt.Sprintf("%d tensors cannot fit in %d bytes", count, len(b)-off)}
	}
	ts := make([]Tensor, count)
	total, body, maxN := 0, 0, 0
	for i := range ts {
		prev := ""
		if i > 0 {
			prev = ts[i-1].Name
		}
		t, n, next, ferr := readHeader(b, off, i, prev, lim)
		if ferr != nil {
			ferr.Codec = name
			return nil, ferr
		}
		off = next
		if n > maxE-total {
			return nil, &FormatError{name, "elements", fmt.Sprintf("more than the limit of %d elements", maxE)}
		}
		total += n
		maxN = max(maxN, n)
		body += c.bodyLen(n)
		ts[i] = t
	}
	if rest := len(b) - off; rest != body {
		msg := fmt.Sprintf("truncated: the tensors need %d bytes, %d remain", body, rest)
		if rest > body {
			msg = fmt.Sprintf("%d trailing bytes", rest-body)
		}
		return nil, &FormatError{name, "length", msg}
	}
	if sup != nil && total > math.MaxUint32 {
		return nil, &FormatError{name, "elements", fmt.Sprintf("%d elements cannot be indexed by uint32", total)}
	}
	data := make([]float32, total)
	d := c.newDecoder(maxN)
	if d == nil {
		d = &decoder{}
	}
	d.sup = sup
	for i := range ts {
		n := 1
		for _, x := range ts[i].Shape {
			n *= x
		}
		out := data[:n:n]
		data = data[n:]
		bl := c.bodyLen(n)
		if field, msg := c.decodeBody(d, b[off:off+bl], out); msg != "" {
			return nil, &FormatError{name, fmt.Sprintf("tensor[%d].%s", i, field), msg}
		}
		off += bl
		if sup != nil {
			sup.off += n
		}
		ts[i].Data = out
	}
	return ts, nil
}

// bounds returns the tensors and elements Decode accepts under lim.
func (lim Limits) bounds() (maxT, maxE int) {
	maxT, maxE = lim.MaxTensors, lim.MaxElements
	if maxT <= 0 {
		maxT = DefaultMaxTensors
		if lim.Expect != nil {
			maxT = len(lim.Expect)
		}
	}
	if maxE <= 0 {
		maxE = DefaultMaxElements
		if lim.Expect != nil {
			maxE = 0
			for _, t := range lim.Expect {
				maxE += specElements(t.Shape)
			}
		}
	}
	return maxT, min(maxE, 1<<50) // keeps the byte counts from overflowing
}

// readHeader reads the header of tensor i (name, rank, shape) at b[off:]
// and checks it against the one before (prev) and lim.Expect. It returns
// the tensor without data, its element count and the offset after it; a
// FormatError's Codec is left for the caller to fill.
func readHeader(b []byte, off, i int, prev string, lim Limits) (Tensor, int, int, *FormatError) {
	fail := func(f, msg string) (Tensor, int, int, *FormatError) {
		return Tensor{}, 0, 0, &FormatError{Field: fmt.Sprintf("tensor[%d].%s", i, f), Msg: msg}
	}
	if len(b)-off < 2 {
		return fail("name", "truncated")
	}
	nl := int(binary.LittleEndian.Uint16(b[off:]))
	off += 2
	if len(b)-off < nl {
		return fail("name", "truncated")
	}
	tn := string(b[off : off+nl])
	off += nl
	if msg := checkName(tn, prev, i); msg != "" {
		return fail("name", msg)
	}
	if len(b)-off < 1 {
		return fail("rank", "truncated")
	}
	rank := int(b[off])
	off++
	if rank > MaxRank {
		return fail("rank", fmt.Sprintf("%d exceeds %d", rank, MaxRank))
	}
	if len(b)-off < 4*rank {
		return fail("shape", "truncated")
	}
	shape := make([]int, rank)
	n := 1
	for j := range shape {
		d := int(binary.LittleEndian.Uint32(b[off:]))
		off += 4
		if d != 0 && n > MaxTensorElements/d {
			return fail("shape", fmt.Sprintf("more than %d elements", MaxTensorElements))
		}
		shape[j] = d
		n *= d
	}
	if lim.Expect != nil {
		want := lim.Expect[i]
		if tn != want.Name {
			return fail("name", fmt.Sprintf("%q, want %q", tn, want.Name))
		}
		if !equalShape(shape, want.Shape) {
			return fail("shape", fmt.Sprintf("%v, want %v", shape, want.Shape))
		}
	}
	return Tensor{Name: tn, Shape: shape}, n, off, nil
}

// specElements is the element count of an expected shape, at most
// MaxTensorElements.
func specElements(shape []int) int {
	n := 1
	for _, d := range shape {
		if d <= 0 {
			return 0
		}
		if n > MaxTensorElements/d {
			return MaxTensorElements
		}
		n *= d
	}
	return n
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
