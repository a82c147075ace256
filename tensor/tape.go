package tensor

// Tape records the operations of a forward pass so that Backward can run
// their gradients in reverse order. Its intermediate tensors come from an
// arena: Reset rewinds it, and a forward pass that repeats the same
// sequence of shapes reuses the same buffers, so a training step allocates
// no tensor memory after its first run.
//
// A Tape is used by one goroutine at a time.
type Tape struct {
	nodes  []node
	noGrad bool

	bufs    [][]float32
	nbuf    int
	tensors []*Tensor
	ntensor int
	ints    [][]int32
	nint    int
}

// NewTape returns an empty tape.
func NewTape() *Tape { return &Tape{} }

// NewInferenceTape returns a tape that records no gradients: its results
// never need one, so a forward pass costs no backward bookkeeping. Backward
// cannot be called on it.
func NewInferenceTape() *Tape { return &Tape{noGrad: true} }

// Reset forgets the recorded operations and rewinds the arena. Tensors the
// tape returned before are invalid afterwards.
func (tp *Tape) Reset() {
	clear(tp.nodes)
	tp.nodes = tp.nodes[:0]
	tp.nbuf, tp.ntensor, tp.nint = 0, 0, 0
}

// Len returns the number of operations recorded with a backward pass.
func (tp *Tape) Len() int { return len(tp.nodes) }

// Backward runs the recorded gradients in reverse order, starting from
// d(loss)/d(loss) = 1. loss must be a one-element tensor computed on this
// tape. Gradients accumulate into Grad of every tensor that needs them;
// clear the parameters' gradients before each step.
func (tp *Tape) Backward(loss *Tensor) {
	if len(loss.Data) != 1 {
		panic("tensor: Backward from a tensor with more than one element")
	}
	if !loss.needsGrad {
		panic("tensor: Backward from a tensor that needs no gradient")
	}
	loss.Grad[0] = 1
	for i := len(tp.nodes) - 1; i >= 0; i-- {
		n := &tp.nodes[i]
		n.back(n)
	}
}

// node is one recorded operation: a backward function that is a plain
// top-level function (so recording allocates nothing) and the operands it
// reads. Which fields an operation uses is up to it.
type node struct {
	back    func(*node)
	a, b, c *Tensor
	out     *Tensor
	i       [8]int
	f       float32
	flag    bool
	buf     [3][]float32
	ids     []int32
}

// record appends a node for the backward function and returns it for the
// caller to fill in. The pointer is valid until the next record.
func (tp *Tape) record(back func(*node), out *Tensor) *node {
	tp.nodes = append(tp.nodes, node{back: back, out: out})
	return &tp.nodes[len(tp.nodes)-1]
}

// buf returns an arena buffer of n elements; when zero is set it is cleared,
// otherwise its contents are stale and the caller overwrites every element.
func (tp *Tape) buf(n int, zero bool) []float32 {
	if tp.nbuf == len(tp.bufs) {
		tp.bufs = append(tp.bufs, nil)
	}
	b := tp.bufs[tp.nbuf]
	if cap(b) < n {
		b = make([]float32, n)
		tp.bufs[tp.nbuf] = b
	} else {
		b = b[:n]
		if zero {
			clear(b)
		}
	}
	tp.nbuf++
	return b
}

// Int32s returns an arena buffer of n int32 values with stale contents,
// valid until Reset; for token IDs and the like.
func (tp *Tape) Int32s(n int) []int32 {
	if tp.nint == len(tp.ints) {
		tp.ints = append(tp.ints, nil)
	}
	b := tp.ints[tp.nint]
	if cap(b) < n {
		b = make([]int32, n)
		tp.ints[tp.nint] = b
	}
	tp.nint++
	return b[:n]
}

// tensor returns an arena tensor of the given shape whose values are stale
// (zero when zero is set). When grad is set it also needs a gradient, and
// its Grad buffer is cleared.
func (tp *Tape) tensor(shape []int, grad, zero bool) *Tensor {
	if tp.ntensor == len(tp.tensors) {
		tp.tensors = append(tp.tensors, &Tensor{})
	}
	t := tp.tensors[tp.ntensor]
	tp.ntensor++
	t.shape = append(t.shape[:0], shape...)
	n := numel(shape)
	t.Data = tp.buf(n, zero)
	grad = grad && !tp.noGrad
	t.Grad = nil
	t.needsGrad = grad
	if grad {
		t.Grad = tp.buf(n, true)
	}
	return t
}

// view returns an arena tensor sharing data (and grad) with another.
func (tp *Tape) view(shape []int, data, grad []float32, needsGrad bool) *Tensor {
	if tp.ntensor == len(tp.tensors) {
		tp.tensors = append(tp.tensors, &Tensor{})
	}
	t := tp.tensors[tp.ntensor]
	tp.ntensor++
	t.shape = append(t.shape[:0], shape...)
	t.Data, t.Grad, t.needsGrad = data, grad, needsGrad
	return t
}

// Scratch returns a zeroed tensor from the arena that needs no gradient,
// valid until Reset.
func (tp *Tape) Scratch(shape ...int) *Tensor { return tp.tensor(shape, false, true) }

// Constant copies data into an arena tensor that needs no gradient.
func (tp *Tape) Constant(data []float32, shape ...int) *Tensor {
	t := tp.tensor(shape, false, false)
	if len(data) != len(t.Data) {
		panic("tensor: Constant data does not match shape")
	}
	copy(t.Data, data)
	return t
}
