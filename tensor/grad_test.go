package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Finite-difference checks of every differentiable operation.
//
// Each case computes out = f(inputs) and the scalar L = Σ out·R for a fixed
// random R, back-propagates L on a tape, and compares every input gradient
// element with the central difference (L(x+h) - L(x-h)) / 2h, where L is
// accumulated in float64 from the float32 outputs.
//
// Tolerance: with h = 1e-2 and inputs of order 1, the truncation error of
// the central difference is h²/6·|L'''| ≈ 2e-5·|L'''|, and the float32
// rounding of O(100) outputs of order 1 (relative 6e-8 each, errors of
// random sign) moves L by ~1e-6, i.e. ~5e-5 after dividing by 2h. We allow
// |analytic - numeric| ≤ 5e-4 + 5e-3·|numeric|: ten times those estimates
// (every case passes at 2e-4 + 2e-3 too), and small enough that a
// backward formula off by 1% fails.

const (
	fdStep = 1e-2
	fdAbs  = 5e-4
	fdRel  = 5e-3
)

type gradCase struct {
	name   string
	inputs []*Tensor
	f      func(tp *Tape, in []*Tensor) *Tensor
}

func param(r *rand.Rand, scale, offset float32, shape ...int) *Tensor {
	t := NewParam(shape...)
	for i := range t.Data {
		t.Data[i] = float32(r.NormFloat64())*scale + offset
	}
	return t
}

// awayFromZero pushes values out of (-0.1, 0.1) so kinks (ReLU) are not
// straddled by the finite difference.
func awayFromZero(t *Tensor) *Tensor {
	for i, v := range t.Data {
		if v >= 0 && v < 0.1 {
			t.Data[i] = v + 0.1
		} else if v < 0 && v > -0.1 {
			t.Data[i] = v - 0.1
		}
	}
	return t
}

func checkGradients(t *testing.T, seed uint64, c gradCase) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	tp := NewTape()
	out := c.f(tp, c.inputs)
	proj := make([]float32, out.Size())
	for i := range proj {
		proj[i] = float32(r.NormFloat64())
	}
	loss := tp.Sum(tp.Mul(out, tp.Constant(proj, out.Shape()...)))
	for _, in := range c.inputs {
		in.ZeroGrad()
	}
	tp.Backward(loss)
	eval := func() float64 {
		itp := NewInferenceTape()
		o := c.f(itp, c.inputs)
		var s float64
		for i, v := range o.Data {
			s += float64(v) * float64(proj[i])
		}
		return s
	}
	for k, in := range c.inputs {
		for j := range in.Data {
			old := in.Data[j]
			in.Data[j] = old + fdStep
			lp := eval()
			in.Data[j] = old - fdStep
			lm := eval()
			in.Data[j] = old
			num := (lp - lm) / (2 * fdStep)
			if got := float64(in.Grad[j]); math.Abs(got-num) > fdAbs+fdRel*math.Abs(num) || math.IsNaN(got) {
				t.Fatalf("seed %d %s: d/d input %d [%d] = %g, finite difference %g", seed, c.name, k, j, got, num)
			}
		}
	}
}

func TestGradients(t *testing.T) {
	const seed = 42
	r := rand.New(rand.NewPCG(seed, 1))
	p := func(shape ...int) *Tensor { return param(r, 1, 0, shape...) }
	cases := []gradCase{
		{"MatMul", []*Tensor{p(3, 4), p(4, 5)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.MatMul(in[0], in[1], false) }},
		{"MatMul transB", []*Tensor{p(3, 4), p(5, 4)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.MatMul(in[0], in[1], true) }},
		{"MatMul batched a", []*Tensor{p(2, 3, 4), p(4, 2)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.MatMul(in[0], in[1], false) }},
		{"MatMul batched", []*Tensor{p(2, 3, 4), p(2, 4, 3)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.MatMul(in[0], in[1], false) }},
		{"MatMul batched transB", []*Tensor{p(2, 2, 3, 4), p(2, 2, 5, 4)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.MatMul(in[0], in[1], true) }},
		{"Add same", []*Tensor{p(3, 4), p(3, 4)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Add(in[0], in[1]) }},
		{"Add bias", []*Tensor{p(3, 4), p(4)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Add(in[0], in[1]) }},
		{"Add outer", []*Tensor{p(3, 1), p(1, 4)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Add(in[0], in[1]) }},
		{"Mul same", []*Tensor{p(3, 4), p(3, 4)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Mul(in[0], in[1]) }},
		{"Mul broadcast", []*Tensor{p(2, 3, 1), p(3, 4)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Mul(in[0], in[1]) }},
		{"Scale", []*Tensor{p(5)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Scale(in[0], -1.5) }},
		{"GELU", []*Tensor{p(4, 5)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.GELU(in[0]) }},
		{"ReLU", []*Tensor{awayFromZero(p(4, 5))}, func(tp *Tape, in []*Tensor) *Tensor { return tp.ReLU(in[0]) }},
		{"Tanh", []*Tensor{p(4, 5)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Tanh(in[0]) }},
		{"Exp", []*Tensor{param(r, 0.5, 0, 4, 5)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Exp(in[0]) }},
		{"Log", []*Tensor{param(r, 0.1, 1.5, 4, 5)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Log(in[0]) }},
		{"Softmax last", []*Tensor{p(3, 6)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Softmax(in[0], -1) }},
		{"Softmax axis 0", []*Tensor{p(4, 3)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Softmax(in[0], 0) }},
		{"Softmax middle", []*Tensor{p(2, 4, 3)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Softmax(in[0], 1) }},
		{"LogSoftmax", []*Tensor{p(3, 6)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.LogSoftmax(in[0], -1) }},
		{"LogSoftmax axis 0", []*Tensor{p(4, 3)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.LogSoftmax(in[0], 0) }},
		{"LayerNorm", []*Tensor{p(3, 8), param(r, 0.3, 1, 8), p(8)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.LayerNorm(in[0], in[1], in[2], 1e-5) }},
		{"Embedding", []*Tensor{p(5, 3)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Embedding(in[0], []int32{4, 0, 4, 2}) }},
		{"Softmax(MaskCausal)", []*Tensor{p(2, 4, 4)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Softmax(tp.MaskCausal(in[0]), -1) }},
		{"Reshape", []*Tensor{p(2, 6)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Tanh(tp.Reshape(in[0], 3, 4)) }},
		{"Index", []*Tensor{p(3, 2, 2)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Mul(tp.Index(in[0], 1), tp.Index(in[0], 2)) }},
		{"Permute", []*Tensor{p(2, 3, 4)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Permute(in[0], 2, 0, 1) }},
		{"Sum", []*Tensor{p(3, 5)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Sum(in[0]) }},
		{"Mean", []*Tensor{p(3, 5)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.Mean(in[0]) }},
		{"SumAxis", []*Tensor{p(2, 3, 4)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.SumAxis(in[0], 1) }},
		{"MeanAxis", []*Tensor{p(2, 3, 4)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.MeanAxis(in[0], -1) }},
		{"CrossEntropy", []*Tensor{p(4, 6)}, func(tp *Tape, in []*Tensor) *Tensor { return tp.CrossEntropy(in[0], []int32{0, 5, 2, 2}) }},
		{"reused input", []*Tensor{p(3, 3)}, func(tp *Tape, in []*Tensor) *Tensor {
			return tp.Add(tp.MatMul(in[0], in[0], false), tp.Mul(in[0], in[0]))
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkGradients(t, seed+uint64(i), c) })
	}
}

// TestTapeReuse checks that a repeated program reuses the arena: the
// second pass allocates no tensor memory and gives the same bits.
func TestTapeReuse(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	w := param(r, 1, 0, 16, 16)
	x := param(r, 1, 0, 8, 16)
	tp := NewTape()
	g, b := param(r, 0.1, 1, 16), param(r, 0.1, 0, 16)
	run := func() float32 {
		tp.Reset()
		w.ZeroGrad()
		h := tp.GELU(tp.MatMul(tp.LayerNorm(x, g, b, 1e-5), w, false))
		out := tp.CrossEntropy(h, []int32{1, 2, 3, 4, 5, 6, 7, 8})
		tp.Backward(out)
		return out.Item()
	}
	first := run()
	g1 := append([]float32(nil), w.Grad...)
	allocs := testing.AllocsPerRun(5, func() {
		if got := run(); got != first {
			panic(fmt.Sprint("loss changed: ", got, first))
		}
	})
	for i := range g1 {
		if math.Float32bits(g1[i]) != math.Float32bits(w.Grad[i]) {
			t.Fatal("gradient changed between identical passes")
		}
	}
	// Closures and small bookkeeping may allocate; tensor buffers must not.
	if allocs > 64 {
		t.Errorf("a repeated pass made %v allocations, want the arena reused", allocs)
	}
}

// TestFree: an inference tape reuses a freed value's buffer at once and
// computes the same bits; a recording tape keeps a value its backward
// steps read; parameters, views and tensors of another tape are ignored.
func TestFree(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	x := param(r, 1, 0, 4, 8)
	run := func(tp *Tape, free bool) ([]float32, int) {
		a := tp.Tanh(x)
		b := tp.Exp(a)
		if free {
			tp.Free(a, a, x, tp.Reshape(b, 8, 4), NewInferenceTape().Scratch(4, 8))
		}
		c := tp.Tanh(b) // takes a's buffer when a was freed
		return append([]float32(nil), c.Data...), len(tp.all)
	}
	want, n := run(NewInferenceTape(), false)
	got, m := run(NewInferenceTape(), true)
	if m != n-1 {
		t.Errorf("inference tape: %d buffers with Free, %d without; want one fewer", m, n)
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("value %d: %g after Free, %g without", i, got[i], want[i])
		}
	}
	tp := NewTape()
	a := tp.Tanh(x)
	tp.Free(a)
	if a.Data == nil {
		t.Error("a recording tape freed a value Backward needs")
	}
	if x.Data == nil {
		t.Error("a parameter was freed")
	}
}

// TestFreeRecording: on a recording tape Free releases a value that only
// a sum reads (the output of Linear fed to Add), keeps one a backward step
// reads, and Backward gives the same gradients either way.
func TestFreeRecording(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	x, w, b, z := param(r, 1, 0, 5, 4), param(r, 1, 0, 4, 3), param(r, 1, 0, 3), param(r, 1, 0, 5, 3)
	run := func(free bool) [][]float32 {
		tp := NewTape()
		for _, p := range []*Tensor{x, w, b, z} {
			p.ZeroGrad()
		}
		h := tp.Tanh(x)
		p := tp.Linear(h, w, b)
		y := tp.Add(p, z)
		if free {
			tp.Free(h, p)
			if p.Data != nil || h.Data == nil {
				t.Errorf("Free: the sum's operand released %v, the product's input kept %v", p.Data == nil, h.Data != nil)
			}
		}
		tp.Backward(tp.Sum(tp.Tanh(y)))
		return [][]float32{x.Grad, w.Grad, b.Grad, z.Grad}
	}
	want := make([][]float32, 4)
	for i, g := range run(false) {
		want[i] = append([]float32(nil), g...)
	}
	for i, g := range run(true) {
		for j := range g {
			if math.Float32bits(g[j]) != math.Float32bits(want[i][j]) {
				t.Fatalf("gradient %d[%d] = %g with Free, %g without", i, j, g[j], want[i][j])
			}
		}
	}
}

// TestSoftTargetKLGradients checks the distillation loss's gradient with
// respect to the student's logits by finite differences, at temperatures
// below, at and above 1, on rows short enough for the scalar loops and
// long enough for the vector ones. The teacher is a constant: it receives
// no gradient.
func TestSoftTargetKLGradients(t *testing.T) {
	const seed = 77
	r := rand.New(rand.NewPCG(seed, 1))
	for i, c := range []struct {
		rows, v int
		temp    float32
	}{{4, 6, 1}, {4, 6, 2}, {3, 5, 0.5}, {3, 40, 4}, {2, 40, 1.5}} {
		teacher := param(r, 2, 0, c.rows, c.v).Data
		checkGradients(t, seed+uint64(i), gradCase{
			name:   fmt.Sprintf("SoftTargetKL %dx%d T=%g", c.rows, c.v, c.temp),
			inputs: []*Tensor{param(r, 2, 0, c.rows, c.v)},
			f: func(tp *Tape, in []*Tensor) *Tensor {
				return tp.SoftTargetKL(in[0], tp.Constant(teacher, c.rows, c.v), c.temp)
			},
		})
	}
}

// TestSoftTargetKLEqual: a student whose logits are the teacher's has a
// loss of exactly zero and a gradient of exactly zero, at any
// temperature, and the teacher, which is not a parameter, gets none.
func TestSoftTargetKLEqual(t *testing.T) {
	r := rand.New(rand.NewPCG(78, 1))
	for _, temp := range []float32{0.3, 1, 2, 7} {
		x := param(r, 3, 0, 5, 37)
		z := param(r, 1, 0, 5, 37)
		copy(z.Data, x.Data)
		x.ZeroGrad()
		tp := NewTape()
		loss := tp.SoftTargetKL(x, tp.Constant(z.Data, 5, 37), temp)
		tp.Backward(loss)
		if loss.Item() != 0 {
			t.Errorf("T=%g: loss %g for equal logits, want 0", temp, loss.Item())
		}
		for i, g := range x.Grad {
			if g != 0 {
				t.Fatalf("T=%g: gradient[%d] = %g for equal logits, want 0", temp, i, g)
			}
		}
	}
}
