package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// composedAttention is CausalSelfAttention written with the general
// operations: permuted per-head copies, MatMul, Scale, MaskCausal, Softmax.
func composedAttention(tp *Tape, qkv *Tensor, batch, heads int) *Tensor {
	t := qkv.shape[0] / batch
	d := qkv.shape[1] / 3
	hd := d / heads
	x := tp.Permute(tp.Reshape(qkv, batch, t, 3, heads, hd), 2, 0, 3, 1, 4)
	q, k, v := tp.Index(x, 0), tp.Index(x, 1), tp.Index(x, 2)
	att := tp.Softmax(tp.MaskCausal(tp.Scale(tp.MatMul(q, k, true), 1/Sqrt32(float32(hd)))), -1)
	y := tp.Permute(tp.MatMul(att, v, false), 0, 2, 1, 3)
	return tp.Reshape(y, batch*t, d)
}

func TestAttentionMatchesComposition(t *testing.T) {
	const seed = 8
	r := rand.New(rand.NewPCG(seed, 0))
	for _, c := range []struct{ batch, t, heads, hd int }{{1, 1, 1, 1}, {2, 5, 2, 3}, {3, 17, 4, 8}, {2, 64, 4, 32}} {
		qkv := param(r, 1, 0, c.batch*c.t, 3*c.heads*c.hd)
		proj := randSlice(r, c.batch*c.t*c.heads*c.hd, 1)
		run := func(f func(*Tape, *Tensor, int, int) *Tensor) ([]float32, []float32) {
			tp := NewTape()
			qkv.ZeroGrad()
			y := f(tp, qkv, c.batch, c.heads)
			out := append([]float32(nil), y.Data...)
			tp.Backward(tp.Sum(tp.Mul(y, tp.Constant(proj, y.Shape()...))))
			return out, append([]float32(nil), qkv.Grad...)
		}
		y1, g1 := run(func(tp *Tape, x *Tensor, b, h int) *Tensor { return tp.CausalSelfAttention(x, b, h) })
		y2, g2 := run(composedAttention)
		for i := range y1 {
			if math.Float32bits(y1[i]) != math.Float32bits(y2[i]) {
				t.Fatalf("seed %d %+v: output[%d] = %g, composition gives %g (must be bit-identical)", seed, c, i, y1[i], y2[i])
			}
		}
		for i := range g1 {
			if math.Abs(float64(g1[i]-g2[i])) > 1e-6*(1+math.Abs(float64(g2[i]))) {
				t.Fatalf("seed %d %+v: gradient[%d] = %g, composition gives %g", seed, c, i, g1[i], g2[i])
			}
		}
	}
}

func TestAttentionGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 0))
	checkGradients(t, 21, gradCase{"CausalSelfAttention", []*Tensor{param(r, 1, 0, 2*5, 3*2*3)},
		func(tp *Tape, in []*Tensor) *Tensor { return tp.CausalSelfAttention(in[0], 2, 2) }})
}

// TestLinearMatchesComposition: Linear gives the bits of MatMul then Add,
// forward and backward, including a gradient of -0 (which the separate
// product's gradient, accumulated into zeros, turns into +0).
func TestLinearMatchesComposition(t *testing.T) {
	const seed = 12
	r := rand.New(rand.NewPCG(seed, 0))
	x, w, b := param(r, 1, 0, 7, 5), param(r, 1, 0, 5, 6), param(r, 1, 0, 6)
	proj := randSlice(r, 7*6, 1)
	proj[3], proj[10] = float32(math.Copysign(0, -1)), 0
	run := func(f func(tp *Tape) *Tensor) [][]float32 {
		tp := NewTape()
		for _, p := range []*Tensor{x, w, b} {
			p.ZeroGrad()
		}
		y := f(tp)
		out := append([]float32(nil), y.Data...)
		tp.Backward(tp.Sum(tp.Mul(y, tp.Constant(proj, y.Shape()...))))
		return [][]float32{out, append([]float32(nil), x.Grad...), append([]float32(nil), w.Grad...), append([]float32(nil), b.Grad...)}
	}
	got := run(func(tp *Tape) *Tensor { return tp.Linear(x, w, b) })
	want := run(func(tp *Tape) *Tensor { return tp.Add(tp.MatMul(x, w, false), b) })
	for k, name := range []string{"output", "d x", "d w", "d bias"} {
		for i := range want[k] {
			if math.Float32bits(got[k][i]) != math.Float32bits(want[k][i]) {
				t.Fatalf("seed %d: %s[%d] = %g, composition gives %g (must be bit-identical)", seed, name, i, got[k][i], want[k][i])
			}
		}
	}
}

// TestGELULinearMatchesComposition: GELULinear gives the bits of GELU then
// Linear, forward and backward.
func TestGELULinearMatchesComposition(t *testing.T) {
	const seed = 13
	r := rand.New(rand.NewPCG(seed, 0))
	u, w, b := param(r, 2, 0, 9, 12), param(r, 1, 0, 12, 5), param(r, 1, 0, 5)
	proj := randSlice(r, 9*5, 1)
	proj[7] = float32(math.Copysign(0, -1))
	run := func(f func(tp *Tape) *Tensor) [][]float32 {
		tp := NewTape()
		for _, p := range []*Tensor{u, w, b} {
			p.ZeroGrad()
		}
		y := f(tp)
		out := append([]float32(nil), y.Data...)
		tp.Backward(tp.Sum(tp.Mul(y, tp.Constant(proj, y.Shape()...))))
		return [][]float32{out, append([]float32(nil), u.Grad...), append([]float32(nil), w.Grad...), append([]float32(nil), b.Grad...)}
	}
	got := run(func(tp *Tape) *Tensor { return tp.GELULinear(u, w, b) })
	want := run(func(tp *Tape) *Tensor { return tp.Linear(tp.GELU(u), w, b) })
	for k, name := range []string{"output", "d u", "d w", "d bias"} {
		for i := range want[k] {
			if math.Float32bits(got[k][i]) != math.Float32bits(want[k][i]) {
				t.Fatalf("seed %d: %s[%d] = %g, composition gives %g (must be bit-identical)", seed, name, i, got[k][i], want[k][i])
			}
		}
	}
	itp := NewInferenceTape()
	y := itp.GELULinear(u, w, b)
	for i := range y.Data {
		if math.Float32bits(y.Data[i]) != math.Float32bits(got[0][i]) {
			t.Fatalf("seed %d: inference output[%d] = %g, training %g", seed, i, y.Data[i], got[0][i])
		}
	}
}

// TestLayerNormLinearMatchesComposition: LayerNormLinear gives the bits of
// LayerNorm then Linear, forward and backward, with the normalised input
// also feeding a residual sum (as in a transformer block).
func TestLayerNormLinearMatchesComposition(t *testing.T) {
	const seed = 14
	r := rand.New(rand.NewPCG(seed, 0))
	x, g, lb := param(r, 1, 0.5, 6, 8), param(r, 0.3, 1, 8), param(r, 0.3, 0, 8)
	w, b := param(r, 1, 0, 8, 8), param(r, 1, 0, 8)
	proj := randSlice(r, 6*8, 1)
	proj[2] = float32(math.Copysign(0, -1))
	run := func(f func(tp *Tape) *Tensor) [][]float32 {
		tp := NewTape()
		for _, p := range []*Tensor{x, g, lb, w, b} {
			p.ZeroGrad()
		}
		y := tp.Add(x, f(tp))
		out := append([]float32(nil), y.Data...)
		tp.Backward(tp.Sum(tp.Mul(y, tp.Constant(proj, y.Shape()...))))
		res := [][]float32{out}
		for _, p := range []*Tensor{x, g, lb, w, b} {
			res = append(res, append([]float32(nil), p.Grad...))
		}
		return res
	}
	got := run(func(tp *Tape) *Tensor { return tp.LayerNormLinear(x, g, lb, 1e-5, w, b) })
	want := run(func(tp *Tape) *Tensor { return tp.Linear(tp.LayerNorm(x, g, lb, 1e-5), w, b) })
	for k, name := range []string{"output", "d x", "d gain", "d ln bias", "d w", "d bias"} {
		for i := range want[k] {
			if math.Float32bits(got[k][i]) != math.Float32bits(want[k][i]) {
				t.Fatalf("seed %d: %s[%d] = %g, composition gives %g (must be bit-identical)", seed, name, i, got[k][i], want[k][i])
			}
		}
	}
}
