package tensor

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shoal-network/shoal/tensor/internal/fma"
)

// guard is the bit pattern written around every output buffer; a kernel
// that writes out of bounds changes it.
const guard = 0x7fc0dead

// guarded returns a slice of n elements with g guard elements on each side
// (all set to the guard pattern) and a check that the guards are intact.
func guarded(t *testing.T, n int) ([]float32, func(what string)) {
	const g = 16
	buf := make([]float32, n+2*g)
	for i := range buf {
		buf[i] = math.Float32frombits(guard)
	}
	return buf[g : g+n : g+n], func(what string) {
		t.Helper()
		for i := 0; i < g; i++ {
			if math.Float32bits(buf[i]) != guard || math.Float32bits(buf[g+n+i]) != guard {
				t.Fatalf("%s: write outside the output buffer", what)
			}
		}
	}
}

func randSlice(r *rand.Rand, n int, scale float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64()) * scale
	}
	return s
}

// sizes are the lengths every kernel is tried on: 1, small primes, odd
// sizes and sizes around the 8-lane boundary.
var sizes = []int{1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 31, 64, 97, 128, 257}

func closeTo(got float32, want, rel, abs float64) bool {
	return math.Abs(float64(got)-want) <= abs+rel*math.Abs(want)
}

func TestSumDotMax(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range sizes {
		x, y := randSlice(r, n, 1), randSlice(r, n, 1)
		var s, d float64
		m := x[0]
		for i := range x {
			s += float64(x[i])
			d += float64(x[i]) * float64(y[i])
			m = max(m, x[i])
		}
		if got := Sum(x); !closeTo(got, s, 1e-5, 1e-5*float64(n)) {
			t.Errorf("seed 1 n=%d: Sum = %g, want %g", n, got, s)
		}
		if got := Dot(x, y); !closeTo(got, d, 1e-5, 1e-5*float64(n)) {
			t.Errorf("seed 1 n=%d: Dot = %g, want %g", n, got, d)
		}
		if got := Max(x); got != m {
			t.Errorf("seed 1 n=%d: Max = %g, want %g", n, got, m)
		}
	}
	// The lane order is part of the contract: check it exactly.
	x := []float32{1e8, 1, 1, 1, 1, 1, 1, 1, -1e8, 1, 1}
	want := float32(0)
	var lanes [8]float32
	for i := 0; i < 8; i++ {
		lanes[i] = x[i]
	}
	want = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
	for _, v := range x[8:] {
		want += v
	}
	if got := Sum(x); got != want {
		t.Errorf("Sum lane order: got %g, want %g", got, want)
	}
}

func TestElementwise(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	gelu := func(x float64) float64 {
		return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
	}
	cases := []struct {
		name string
		f    func(dst, x []float32)
		ref  func(float64) float64
		pos  bool // input must be positive
	}{
		{"GELU", GELU, gelu, false},
		{"ReLU", ReLU, func(x float64) float64 { return math.Max(x, 0) }, false},
		{"Tanh", Tanh, math.Tanh, false},
		{"Exp", Exp, math.Exp, false},
		{"Log", Log, math.Log, true},
		{"Scale", func(d, x []float32) { Scale(d, x, 0.5) }, func(x float64) float64 { return 0.5 * x }, false},
	}
	for _, c := range cases {
		for _, n := range sizes {
			x := randSlice(r, n, 3)
			if c.pos {
				for i := range x {
					x[i] = float32(math.Abs(float64(x[i]))) + 1e-3
				}
			}
			dst, check := guarded(t, n)
			c.f(dst, x)
			check(c.name)
			for i := range x {
				if want := c.ref(float64(x[i])); !closeTo(dst[i], want, 1e-5, 1e-6) {
					t.Fatalf("seed 3: %s(%g) = %g, want %g", c.name, x[i], dst[i], want)
				}
			}
		}
	}
}

func TestSoftmaxAxes(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, shape := range [][3]int{{1, 1, 1}, {3, 5, 1}, {2, 7, 3}, {1, 13, 4}, {4, 64, 1}, {5, 1, 2}} {
		o, n, in := shape[0], shape[1], shape[2]
		x := randSlice(r, o*n*in, 4)
		sm, check1 := guarded(t, len(x))
		lsm, check2 := guarded(t, len(x))
		Softmax(sm, x, o, n, in)
		LogSoftmax(lsm, x, o, n, in)
		check1("Softmax")
		check2("LogSoftmax")
		for a := 0; a < o; a++ {
			for c := 0; c < in; c++ {
				at := func(j int) int { return (a*n+j)*in + c }
				mx := math.Inf(-1)
				for j := 0; j < n; j++ {
					mx = math.Max(mx, float64(x[at(j)]))
				}
				var s float64
				for j := 0; j < n; j++ {
					s += math.Exp(float64(x[at(j)]) - mx)
				}
				for j := 0; j < n; j++ {
					want := math.Exp(float64(x[at(j)])-mx) / s
					if !closeTo(sm[at(j)], want, 1e-5, 1e-7) {
						t.Fatalf("seed 5 shape %v: softmax = %g, want %g", shape, sm[at(j)], want)
					}
					if wl := math.Log(want); !closeTo(lsm[at(j)], wl, 1e-5, 1e-5) {
						t.Fatalf("seed 5 shape %v: log-softmax = %g, want %g", shape, lsm[at(j)], wl)
					}
				}
			}
		}
	}
	// Masked rows: -Inf elements get probability 0.
	x := []float32{1, float32(math.Inf(-1)), 2}
	y := make([]float32, 3)
	Softmax(y, x, 1, 3, 1)
	if y[1] != 0 || math.Abs(float64(y[0]+y[2])-1) > 1e-6 {
		t.Errorf("softmax with -Inf: %v", y)
	}
}

func TestLayerNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, d := range sizes {
		rows := 3
		x := randSlice(r, rows*d, 2)
		gm, bt := randSlice(r, d, 1), randSlice(r, d, 1)
		y, check := guarded(t, rows*d)
		mean, rstd := make([]float32, rows), make([]float32, rows)
		LayerNorm(y, mean, rstd, x, gm, bt, d, 1e-5)
		check("LayerNorm")
		for i := 0; i < rows; i++ {
			var m, v float64
			for j := 0; j < d; j++ {
				m += float64(x[i*d+j])
			}
			m /= float64(d)
			for j := 0; j < d; j++ {
				v += (float64(x[i*d+j]) - m) * (float64(x[i*d+j]) - m)
			}
			v /= float64(d)
			for j := 0; j < d; j++ {
				want := (float64(x[i*d+j])-m)/math.Sqrt(v+1e-5)*float64(gm[j]) + float64(bt[j])
				if !closeTo(y[i*d+j], want, 1e-4, 1e-4) {
					t.Fatalf("seed 7 d=%d: layernorm = %g, want %g", d, y[i*d+j], want)
				}
			}
		}
	}
}

func TestCrossEntropy(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, v := range sizes {
		rows := 5
		x := randSlice(r, rows*v, 3)
		tg := make([]int32, rows)
		for i := range tg {
			tg[i] = int32(r.IntN(v))
		}
		probs, check := guarded(t, rows*v)
		got := CrossEntropy(probs, x, tg, v)
		check("CrossEntropy")
		var want float64
		for i := 0; i < rows; i++ {
			row := x[i*v : (i+1)*v]
			mx := math.Inf(-1)
			for _, a := range row {
				mx = math.Max(mx, float64(a))
			}
			var s float64
			for _, a := range row {
				s += math.Exp(float64(a) - mx)
			}
			want += math.Log(s) - (float64(row[tg[i]]) - mx)
		}
		if math.Abs(got-want) > 1e-5*float64(rows)*(1+math.Abs(want)) {
			t.Fatalf("seed 9 v=%d: cross-entropy %g, want %g", v, got, want)
		}
	}
}

func TestMaskCausalEmbedding(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{1, 2, 5, 8, 13} {
		x := randSlice(r, 3*n*n, 1)
		y, check := guarded(t, len(x))
		MaskCausal(y, x, n)
		check("MaskCausal")
		for b := 0; b < 3; b++ {
			for i := 0; i < n; i++ {
				for j := 0; j < n; j++ {
					k := b*n*n + i*n + j
					if j > i && !math.IsInf(float64(y[k]), -1) || j <= i && y[k] != x[k] {
						t.Fatalf("seed 11 n=%d: mask[%d,%d,%d] = %g", n, b, i, j, y[k])
					}
				}
			}
		}
	}
	for _, d := range sizes {
		table := randSlice(r, 7*d, 1)
		ids := []int32{6, 0, 3, 3, 1}
		y, check := guarded(t, len(ids)*d)
		Embedding(y, table, ids, d)
		check("Embedding")
		for i, id := range ids {
			for j := 0; j < d; j++ {
				if y[i*d+j] != table[int(id)*d+j] {
					t.Fatalf("seed 11 d=%d: embedding mismatch", d)
				}
			}
		}
	}
}

// refIndex returns the element of a tensor of shape s at the broadcast
// output index idx (aligned right, dimension 1 stretched).
func refIndex(data []float32, s, out, idx []int) float32 {
	off, stride := 0, 1
	for i := len(s) - 1; i >= 0; i-- {
		k := idx[len(out)-len(s)+i]
		if s[i] == 1 {
			k = 0
		}
		off += k * stride
		stride *= s[i]
	}
	return data[off]
}

func TestBroadcast(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	cases := [][2][]int{
		{{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 4}, {1, 4}}, {{3, 1}, {1, 5}}, {{2, 3, 4}, {3, 1}},
		{{1}, {5, 2}}, {{7}, {1}}, {{2, 1, 3}, {2, 5, 1}}, {{1, 1}, {1, 1}}, {{4, 3, 2}, {1, 3, 2}},
	}
	for _, c := range cases {
		as, bs := c[0], c[1]
		out, ok := BroadcastShape(as, bs)
		if !ok {
			t.Fatalf("%v %v should broadcast", as, bs)
		}
		a, b := FromSlice(randSlice(r, numel(as), 1), as...), FromSlice(randSlice(r, numel(bs), 1), bs...)
		for _, op := range []string{"add", "mul"} {
			data, check := guarded(t, numel(out))
			dst := FromSlice(data, out...)
			if op == "add" {
				Add(dst, a, b)
			} else {
				Mul(dst, a, b)
			}
			check(op)
			idx := make([]int, len(out))
			for i := range dst.Data {
				rem := i
				for d := len(out) - 1; d >= 0; d-- {
					idx[d] = rem % out[d]
					rem /= out[d]
				}
				x, y := refIndex(a.Data, as, out, idx), refIndex(b.Data, bs, out, idx)
				want := x + y
				if op == "mul" {
					want = float32(x * y)
				}
				if dst.Data[i] != want {
					t.Fatalf("seed 13 %s %v %v at %v: %g, want %g", op, as, bs, idx, dst.Data[i], want)
				}
			}
		}
	}
	if _, ok := BroadcastShape([]int{3, 4}, []int{5}); ok {
		t.Error("[3 4] and [5] must not broadcast")
	}
}

func TestPermute(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	cases := []struct {
		shape, perm []int
	}{{[]int{3, 5}, []int{1, 0}}, {[]int{2, 3, 4}, []int{2, 0, 1}}, {[]int{2, 3, 1, 5, 2}, []int{2, 0, 3, 1, 4}}, {[]int{1}, []int{0}}, {[]int{4, 1, 3}, []int{0, 2, 1}}}
	for _, c := range cases {
		src := FromSlice(randSlice(r, numel(c.shape), 1), c.shape...)
		out := make([]int, len(c.perm))
		for i, p := range c.perm {
			out[i] = c.shape[p]
		}
		data, check := guarded(t, numel(out))
		dst := FromSlice(data, out...)
		Permute(dst, src, c.perm)
		check("Permute")
		idx := make([]int, len(out))
		for i := range dst.Data {
			rem := i
			for d := len(out) - 1; d >= 0; d-- {
				idx[d] = rem % out[d]
				rem /= out[d]
			}
			// source index: axis perm[d] has index idx[d]
			off, stride := 0, 1
			for a := len(c.shape) - 1; a >= 0; a-- {
				var k int
				for d, p := range c.perm {
					if p == a {
						k = idx[d]
					}
				}
				off += k * stride
				stride *= c.shape[a]
			}
			if dst.Data[i] != src.Data[off] {
				t.Fatalf("seed 15 permute %v %v mismatch at %v", c.shape, c.perm, idx)
			}
		}
	}
}

func TestMatMulShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	dims := []int{1, 2, 3, 7, 8, 17, 33}
	for trial := 0; trial < 60; trial++ {
		m, k, n := dims[r.IntN(len(dims))], dims[r.IntN(len(dims))], dims[r.IntN(len(dims))]
		batch := 1 + r.IntN(3)
		ta, tb, acc := r.IntN(2) == 1, r.IntN(2) == 1, r.IntN(2) == 1
		batchedB := r.IntN(2) == 1
		as := []int{batch, m, k}
		if ta {
			as = []int{batch, k, m}
		}
		bs := []int{k, n}
		if tb {
			bs = []int{n, k}
		}
		if batchedB {
			bs = append([]int{batch}, bs...)
		}
		a, b := FromSlice(randSlice(r, numel(as), 1), as...), FromSlice(randSlice(r, numel(bs), 1), bs...)
		data, check := guarded(t, batch*m*n)
		init := randSlice(r, len(data), 1)
		copy(data, init)
		MatMul(FromSlice(data, batch, m, n), a, b, ta, tb, acc)
		check("MatMul")
		name := fmt.Sprintf("seed 17 trial %d: b=%d m=%d k=%d n=%d ta=%v tb=%v acc=%v batchedB=%v", trial, batch, m, k, n, ta, tb, acc, batchedB)
		for bi := 0; bi < batch; bi++ {
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					var s float32
					if acc {
						s = init[(bi*m+i)*n+j]
					}
					for p := 0; p < k; p++ {
						var x, y float32
						if ta {
							x = a.Data[bi*m*k+p*m+i]
						} else {
							x = a.Data[bi*m*k+i*k+p]
						}
						boff := 0
						if batchedB {
							boff = bi * k * n
						}
						if tb {
							y = b.Data[boff+j*k+p]
						} else {
							y = b.Data[boff+p*n+j]
						}
						s = fma.FMA32(x, y, s)
					}
					if got := data[(bi*m+i)*n+j]; math.Float32bits(got) != math.Float32bits(s) {
						t.Fatalf("%s: C[%d,%d,%d] = %g, want %g (bit-exact)", name, bi, i, j, got, s)
					}
				}
			}
		}
	}
}

func TestSumAxis(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for _, s := range [][3]int{{1, 1, 1}, {2, 3, 4}, {5, 17, 1}, {1, 9, 7}} {
		o, n, in := s[0], s[1], s[2]
		x := randSlice(r, o*n*in, 1)
		dst, check := guarded(t, o*in)
		SumAxis(dst, x, o, n, in)
		check("SumAxis")
		for a := 0; a < o; a++ {
			for c := 0; c < in; c++ {
				var want float64
				for j := 0; j < n; j++ {
					want += float64(x[(a*n+j)*in+c])
				}
				if !closeTo(dst[a*in+c], want, 1e-5, 1e-5) {
					t.Fatalf("seed 19 %v: sum %g want %g", s, dst[a*in+c], want)
				}
			}
		}
	}
}

// TestGELUTanhSameBits: the variants that store and reuse the tanh terms
// give exactly the bits of GELU and GELUGrad.
func TestGELUTanhSameBits(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	x := randSlice(r, 1000, 4)
	dy := randSlice(r, 1000, 1)
	y1, y2, th := make([]float32, 1000), make([]float32, 1000), make([]float32, 1000)
	GELU(y1, x)
	GELUTanh(y2, th, x)
	g1, g2 := randSlice(r, 1000, 1), make([]float32, 1000)
	copy(g2, g1)
	GELUGrad(g1, x, dy)
	GELUGradTanh(g2, x, th, dy)
	for i := range x {
		if math.Float32bits(y1[i]) != math.Float32bits(y2[i]) || math.Float32bits(g1[i]) != math.Float32bits(g2[i]) {
			t.Fatalf("seed 23: element %d differs", i)
		}
	}
}

// klReference returns, in float64, the sum over rows of
// KL(softmax(z/T) || softmax(x/T)) and the gradient of that sum with
// respect to x, (q - p)/T.
func klReference(x, z []float32, v int, temp float64) (float64, []float64) {
	soft := func(row []float32) (logp []float64) {
		mx := math.Inf(-1)
		for _, a := range row {
			mx = math.Max(mx, float64(a)/temp)
		}
		var s float64
		for _, a := range row {
			s += math.Exp(float64(a)/temp - mx)
		}
		for _, a := range row {
			logp = append(logp, float64(a)/temp-mx-math.Log(s))
		}
		return logp
	}
	var total float64
	grad := make([]float64, len(x))
	for r := 0; r < len(x)/v; r++ {
		lq, lp := soft(x[r*v:(r+1)*v]), soft(z[r*v:(r+1)*v])
		for j := range lp {
			p, q := math.Exp(lp[j]), math.Exp(lq[j])
			total += p * (lp[j] - lq[j])
			grad[r*v+j] = (q - p) / temp
		}
	}
	return total, grad
}

// TestSoftTargetKL compares the kernel with a float64 reference over the
// sizes, for teachers far from and close to the student, checks that it
// writes nothing outside its output, and that the tape operation scales
// its total by T²/N.
//
// Tolerance: the logs of the sums of exponentials, of order 1, carry a
// float32 rounding error of a few 1e-8, which moves each row's divergence
// by as much however small it is; we allow 1e-6 per row plus 1e-5
// relative. A teacher 0.01 away from the student gives divergences of
// order 1e-6 per row, so the absolute part matters there.
func TestSoftTargetKL(t *testing.T) {
	r := rand.New(rand.NewPCG(79, 80))
	for _, v := range sizes {
		for _, c := range []struct {
			temp, spread float32
		}{{1, 3}, {2, 3}, {0.5, 1}, {4, 0.01}} {
			rows := 5
			x := randSlice(r, rows*v, 3)
			z := make([]float32, len(x))
			for i, e := range randSlice(r, rows*v, c.spread) {
				z[i] = x[i] + e
			}
			diff, check := guarded(t, rows*v)
			got := SoftTargetKL(diff, make([]float32, 2*v), x, z, v, c.temp)
			check("SoftTargetKL")
			want, grad := klReference(x, z, v, float64(c.temp))
			if math.Abs(got-want) > 1e-6*float64(rows)+1e-5*math.Abs(want) {
				t.Fatalf("seed 79 v=%d T=%g: KL %g, want %g", v, c.temp, got, want)
			}
			for i, d := range diff {
				if !closeTo(d/c.temp, grad[i], 1e-4, 1e-6) {
					t.Fatalf("seed 79 v=%d T=%g: (q-p)/T [%d] = %g, want %g", v, c.temp, i, d/c.temp, grad[i])
				}
			}
			tp := NewInferenceTape()
			loss := tp.SoftTargetKL(tp.Constant(x, rows, v), tp.Constant(z, rows, v), c.temp).Item()
			scaled := float64(c.temp) * float64(c.temp) * got / float64(rows)
			if !closeTo(loss, scaled, 1e-6, 0) {
				t.Fatalf("seed 79 v=%d T=%g: loss %g, want T²·KL/N = %g", v, c.temp, loss, scaled)
			}
		}
	}
}

// TestSoftTargetKLBits pins the bits of the loss and of the gradient of a
// fixed case: AVX2 assembly, the pure-Go loops (-tags noasm) and arm64 must
// all give them. The rows are long enough for every vector path (ExpSub,
// DivScalar, Max, Sum, Dot, AddScaled) and have a scalar tail.
func TestSoftTargetKLBits(t *testing.T) {
	r := rand.New(rand.NewPCG(81, 82))
	const rows, v = 6, 77
	x, z := param(r, 2, 0, rows, v), param(r, 2, 0.5, rows, v)
	h := fnv.New64a()
	put := func(f float32) {
		u := math.Float32bits(f)
		h.Write([]byte{byte(u), byte(u >> 8), byte(u >> 16), byte(u >> 24)})
	}
	for _, temp := range []float32{1, 2.5} {
		x.ZeroGrad()
		tp := NewTape()
		loss := tp.SoftTargetKL(x, tp.Constant(z.Data, rows, v), temp)
		put(loss.Item()) // Backward gives back every value but its root's
		tp.Backward(tp.Scale(loss, 0.75))
		for _, g := range x.Grad {
			put(g)
		}
	}
	const want uint64 = 0xb47fb3f11ec411e9
	if got := h.Sum64(); got != want {
		t.Errorf("SoftTargetKL bits hash to %#x, want %#x", got, want)
	}
}
