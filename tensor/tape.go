package tensor

// Tape records the operations of a forward pass so that Backward can run
// their gradients in reverse order. Its intermediate tensors come from a
// pool of buffers the tape owns: Reset returns them all, and a forward
// pass that repeats the same sequence of shapes reuses the same buffers,
// so a training step allocates no tensor memory after its first run.
//
// Memory. The gradient of an intermediate tensor is allocated only when
// Backward first needs it, and Backward gives a tensor's value and
// gradient (and the buffers its operation kept) back to the pool as soon
// as the operation that computed it has run its backward step: nothing
// later reads them. So a training step holds the forward values plus a
// frontier of gradients, not every value and every gradient at once.
// After Backward, only the value of the loss it started from is still
// valid; the other tensors computed on a recording tape are not. Free
// gives back, during the forward pass, values the caller is done with and
// no backward step reads.
//
// A Tape is used by one goroutine at a time.
type Tape struct {
	nodes  []node
	noGrad bool

	all     [][]float32         // every buffer of the pool
	free    map[int][][]float32 // the pool's buffers not in use, by length
	shared  [][]float32         // scratch kept across Reset (see scratch)
	tensors []*Tensor
	ntensor int
	ints    [][]int32
	nint    int
}

// NewTape returns an empty tape.
func NewTape() *Tape { return &Tape{free: map[int][][]float32{}} }

// NewInferenceTape returns a tape that records no gradients: its results
// never need one, so a forward pass costs no backward bookkeeping. Backward
// cannot be called on it.
func NewInferenceTape() *Tape { return &Tape{noGrad: true, free: map[int][][]float32{}} }

// Reset forgets the recorded operations and returns every buffer to the
// pool. Tensors the tape returned before are invalid afterwards.
func (tp *Tape) Reset() {
	clear(tp.nodes)
	tp.nodes = tp.nodes[:0]
	tp.ntensor, tp.nint = 0, 0
	for n, l := range tp.free {
		clear(l)
		tp.free[n] = l[:0]
	}
	for _, b := range tp.all {
		tp.release(b)
	}
}

// Len returns the number of operations recorded with a backward pass.
func (tp *Tape) Len() int { return len(tp.nodes) }

// Backward runs the recorded gradients in reverse order, starting from
// d(loss)/d(loss) = 1. loss must be a one-element tensor computed on this
// tape. Gradients accumulate into Grad of every tensor that needs them;
// clear the parameters' gradients before each step. Afterwards the tape's
// intermediate tensors are invalid, except loss's value (see Tape).
func (tp *Tape) Backward(loss *Tensor) {
	if len(loss.Data) != 1 {
		panic("tensor: Backward from a tensor with more than one element")
	}
	if !loss.needsGrad {
		panic("tensor: Backward from a tensor that needs no gradient")
	}
	tp.needGrad(loss)
	loss.Grad[0] = 1
	for i := len(tp.nodes) - 1; i >= 0; i-- {
		n := &tp.nodes[i]
		tp.needGrad(n.a)
		tp.needGrad(n.b)
		tp.needGrad(n.c)
		tp.needGrad(n.d)
		tp.needGrad(n.e)
		tp.needGrad(n.out)
		n.back(n)
		// Every reader of out was recorded after it, so its backward has
		// run: out's value and gradient, and what its operation kept, are
		// free. Values are read only in the forward pass and by backward
		// steps, so this changes no result.
		tp.release(n.out.Grad)
		n.out.Grad = nil
		if n.out != loss {
			tp.release(n.out.Data)
			n.out.Data = nil
		}
		for k, b := range n.buf {
			tp.release(b)
			n.buf[k] = nil
		}
	}
}

// needGrad gives t, if it is a tape tensor that needs a gradient and has
// none yet, a zeroed one (a view, the matching part of its base's).
func (tp *Tape) needGrad(t *Tensor) {
	if t == nil || !t.needsGrad || t.Grad != nil {
		return
	}
	if t.base != nil {
		tp.needGrad(t.base)
		n := numel(t.shape)
		t.Grad = t.base.Grad[t.off : t.off+n : t.off+n]
		return
	}
	t.Grad = tp.buf(numel(t.shape), true)
}

// node is one recorded operation: a backward function that is a plain
// top-level function (so recording allocates nothing) and the operands it
// reads. Which fields an operation uses is up to it; buf holds only whole
// buffers of the tape's pool, which Backward releases after the node.
type node struct {
	back          func(*node)
	a, b, c, d, e *Tensor
	out           *Tensor
	i             [8]int
	f             float32
	flag          bool
	buf           [3][]float32
	ids           []int32
	tp            *Tape
	// reads says whose values the backward function reads: readA ..
	// readE, readOut. record sets them all; an operation that reads fewer
	// clears the others, which lets Free release them early.
	reads uint8
}

const (
	readA = 1 << iota
	readB
	readC
	readD
	readE
	readOut
)

// record appends a node for the backward function and returns it for the
// caller to fill in. The pointer is valid until the next record.
func (tp *Tape) record(back func(*node), out *Tensor) *node {
	tp.nodes = append(tp.nodes, node{back: back, out: out, tp: tp, reads: readA | readB | readC | readD | readE | readOut})
	return &tp.nodes[len(tp.nodes)-1]
}

// buf returns a buffer of n elements from the pool; when zero is set it is
// cleared, otherwise its contents are stale and the caller overwrites
// every element.
func (tp *Tape) buf(n int, zero bool) []float32 {
	if l := tp.free[n]; len(l) > 0 {
		b := l[len(l)-1]
		l[len(l)-1] = nil
		tp.free[n] = l[:len(l)-1]
		if zero {
			clear(b)
		}
		return b
	}
	b := make([]float32, n)
	tp.all = append(tp.all, b)
	return b
}

// release gives a buffer of the pool (whole, as buf returned it) back to
// it before Reset. nil is ignored.
func (tp *Tape) release(b []float32) {
	if b != nil {
		if tp.free == nil {
			tp.free = map[int][][]float32{}
		}
		tp.free[len(b)] = append(tp.free[len(b)], b)
	}
}

// Scratch slots of the tape (see scratch).
const (
	scratchProbs   = iota // attention weights, per worker
	scratchDProbs         // their gradient, per worker
	scratchGELU           // GELU's tanh terms
	scratchGELUOut        // GELULinear's GELU values, then their gradient
	scratchLN             // LayerNormLinear's normalised values, then their gradient
	scratchKL             // SoftTargetKL's teacher row and log-ratio row
)

// scratch returns the i-th scratch buffer of the tape, of at least n
// elements with stale contents. Scratch is not part of the pool: it is
// kept across Reset and shared by every operation that uses slot i, so
// an operation may use it only within one forward or backward step.
func (tp *Tape) scratch(i, n int) []float32 {
	for len(tp.shared) <= i {
		tp.shared = append(tp.shared, nil)
	}
	if cap(tp.shared[i]) < n {
		tp.shared[i] = make([]float32, n)
	}
	return tp.shared[i][:n]
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

// tensor returns a tape tensor of the given shape whose values are stale
// (zero when zero is set). When grad is set it also needs a gradient,
// which Backward allocates, zeroed, when it first needs it.
func (tp *Tape) tensor(shape []int, grad, zero bool) *Tensor {
	t := tp.next()
	t.shape = append(t.shape[:0], shape...)
	t.Data = tp.buf(numel(shape), zero)
	t.Grad = nil
	t.needsGrad = grad && !tp.noGrad
	t.pooled = true
	return t
}

// next returns the next tensor header of the arena, cleared of its links.
func (tp *Tape) next() *Tensor {
	if tp.ntensor == len(tp.tensors) {
		tp.tensors = append(tp.tensors, &Tensor{})
	}
	t := tp.tensors[tp.ntensor]
	tp.ntensor++
	t.base, t.off, t.pooled, t.src = nil, 0, false, nil
	return t
}

// view returns a tape tensor sharing the values, and the gradient, of
// elements off .. off+numel(shape)-1 of a.
func (tp *Tape) view(a *Tensor, off int, shape []int) *Tensor {
	n := numel(shape)
	t := tp.next()
	t.shape = append(t.shape[:0], shape...)
	t.Data = a.Data[off : off+n : off+n]
	t.src = a
	if a.src != nil {
		t.src = a.src
	}
	t.needsGrad = a.needsGrad
	t.Grad = nil
	if a.Grad != nil {
		t.Grad = a.Grad[off : off+n : off+n]
	} else if a.needsGrad {
		// A tape tensor: the gradient comes with the base's, on demand.
		t.base, t.off = a, off
		if a.base != nil {
			t.base, t.off = a.base, a.off+off
		}
	}
	return t
}

// Free tells the tape that the caller will read none of ts (nor views of
// them) again. The tape gives a value back to its pool at once unless an
// operation recorded for Backward reads it: on an inference tape, always,
// so that a forward pass holds only the values still to be read rather
// than all of them; on a recording tape, for values only sums read (Add,
// and the output of Linear). Tensors the tape did not compute
// (parameters, views) are ignored.
func (tp *Tape) Free(ts ...*Tensor) {
	for _, t := range ts {
		if t.pooled && tp.owns(t) && !tp.readLater(t) {
			tp.release(t.Data)
			t.Data, t.pooled = nil, false
		}
	}
}

// readLater reports whether a recorded backward step reads t's value,
// directly or through a view.
func (tp *Tape) readLater(t *Tensor) bool {
	is := func(u *Tensor) bool { return u != nil && (u == t || u.src == t) }
	for i := range tp.nodes {
		n := &tp.nodes[i]
		if n.reads&readA != 0 && is(n.a) || n.reads&readB != 0 && is(n.b) || n.reads&readC != 0 && is(n.c) ||
			n.reads&readD != 0 && is(n.d) || n.reads&readE != 0 && is(n.e) || n.reads&readOut != 0 && is(n.out) {
			return true
		}
	}
	return false
}

// owns reports whether t is one of the tape's tensors of this pass.
func (tp *Tape) owns(t *Tensor) bool {
	for _, u := range tp.tensors[:tp.ntensor] {
		if u == t {
			return true
		}
	}
	return false
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
