package tensor

import (
	"fmt"
	"strings"
)

// Tensor is a dense, row-major float32 array. Data holds the values. Grad,
// when non-nil, holds the gradient of the tape's output with respect to the
// values; it has the same length as Data.
type Tensor struct {
	shape []int
	Data  []float32
	Grad  []float32
	// needsGrad reports that gradients flow into this tensor: it is a
	// parameter, or computed from one on a tape.
	needsGrad bool
	// base, for a view made on a tape before its base has a gradient, is
	// the tensor whose gradient it shares from element off.
	base *Tensor
	off  int
	// pooled: Data is a whole buffer of a tape's pool.
	pooled bool
	// src, for a view on a tape, is the tensor whose values it shares.
	src *Tensor
}

// New returns a zero tensor of the given shape.
func New(shape ...int) *Tensor {
	return &Tensor{shape: cloneShape(shape), Data: make([]float32, numel(shape))}
}

// FromSlice wraps data (not copied) in a tensor of the given shape.
func FromSlice(data []float32, shape ...int) *Tensor {
	if len(data) != numel(shape) {
		panic("tensor: data length does not match shape")
	}
	return &Tensor{shape: cloneShape(shape), Data: data}
}

// NewParam returns a zero tensor that takes gradients: its Grad buffer is
// allocated and every tape operation that reads it accumulates into it.
func NewParam(shape ...int) *Tensor {
	t := New(shape...)
	t.Grad = make([]float32, len(t.Data))
	t.needsGrad = true
	return t
}

// Shape returns the tensor's dimensions. The caller must not modify it.
func (t *Tensor) Shape() []int { return t.shape }

// Dims returns the number of dimensions.
func (t *Tensor) Dims() int { return len(t.shape) }

// Dim returns dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// Size returns the number of elements.
func (t *Tensor) Size() int { return len(t.Data) }

// NeedsGrad reports whether gradients flow into t.
func (t *Tensor) NeedsGrad() bool { return t.needsGrad }

// ZeroGrad clears t's gradient buffer.
func (t *Tensor) ZeroGrad() { clear(t.Grad) }

// Item returns the value of a one-element tensor.
func (t *Tensor) Item() float32 {
	if len(t.Data) != 1 {
		panic("tensor: Item of a tensor with more than one element")
	}
	return t.Data[0]
}

// String describes the shape and the first few values.
func (t *Tensor) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Tensor%v[", t.shape)
	for i, v := range t.Data {
		if i == 8 {
			b.WriteString(" ...")
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%g", v)
	}
	b.WriteByte(']')
	return b.String()
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic("tensor: negative dimension")
		}
		n *= d
	}
	return n
}

func cloneShape(s []int) []int { return append([]int(nil), s...) }

func sameShape(a, b []int) bool {
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
