package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The backward kernels against naive float64 loops, with guard values
// around every output buffer, over sizes including 1, primes and odd
// sizes. Each accumulates into a buffer holding random values, so the
// "+=" contract is checked too.

func accCheck(t *testing.T, name string, got []float32, init []float32, want func(i int) float64) {
	t.Helper()
	for i := range got {
		w := float64(init[i]) + want(i)
		if !closeTo(got[i], w, 1e-4, 1e-5) {
			t.Fatalf("%s: element %d = %g, want %g", name, i, got[i], w)
		}
	}
}

func guardedInit(t *testing.T, r *rand.Rand, n int) ([]float32, []float32, func(string)) {
	buf, check := guarded(t, n)
	init := randSlice(r, n, 1)
	copy(buf, init)
	return buf, init, check
}

func TestGradKernelsElementwise(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	gelu := func(x float64) float64 {
		return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
	}
	for _, n := range sizes {
		x, dy := randSlice(r, n, 2), randSlice(r, n, 1)
		dx, init, check := guardedInit(t, r, n)
		GELUGrad(dx, x, dy)
		check("GELUGrad")
		accCheck(t, "GELUGrad", dx, init, func(i int) float64 {
			h := 1e-4
			xi := float64(x[i])
			return (gelu(xi+h) - gelu(xi-h)) / (2 * h) * float64(dy[i])
		})
		y := make([]float32, n)
		Tanh(y, x)
		dx, init, check = guardedInit(t, r, n)
		TanhGrad(dx, y, dy)
		check("TanhGrad")
		accCheck(t, "TanhGrad", dx, init, func(i int) float64 {
			th := math.Tanh(float64(x[i]))
			return (1 - th*th) * float64(dy[i])
		})
		Exp(y, x)
		dx, init, check = guardedInit(t, r, n)
		ExpGrad(dx, y, dy)
		check("ExpGrad")
		accCheck(t, "ExpGrad", dx, init, func(i int) float64 { return math.Exp(float64(x[i])) * float64(dy[i]) })
		pos := make([]float32, n)
		for i := range pos {
			pos[i] = float32(math.Abs(float64(x[i]))) + 0.5
		}
		dx, init, check = guardedInit(t, r, n)
		LogGrad(dx, pos, dy)
		check("LogGrad")
		accCheck(t, "LogGrad", dx, init, func(i int) float64 { return float64(dy[i]) / float64(pos[i]) })
		dx, init, check = guardedInit(t, r, n)
		ReLUGrad(dx, x, dy)
		check("ReLUGrad")
		accCheck(t, "ReLUGrad", dx, init, func(i int) float64 {
			if x[i] > 0 {
				return float64(dy[i])
			}
			return 0
		})
	}
}

func TestGradKernelsRows(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for _, n := range sizes {
		rows := 3
		x, dy := randSlice(r, rows*n, 2), randSlice(r, rows*n, 1)
		y := make([]float32, rows*n)
		Softmax(y, x, rows, n, 1)
		dx, init, check := guardedInit(t, r, rows*n)
		SoftmaxGrad(dx, y, dy, rows, n, 1)
		check("SoftmaxGrad")
		accCheck(t, "SoftmaxGrad", dx, init, func(i int) float64 {
			row := i / n
			var s float64
			for j := 0; j < n; j++ {
				s += float64(dy[row*n+j]) * float64(y[row*n+j])
			}
			return float64(y[i]) * (float64(dy[i]) - s)
		})
		LogSoftmax(y, x, rows, n, 1)
		dx, init, check = guardedInit(t, r, rows*n)
		LogSoftmaxGrad(dx, y, dy, rows, n, 1)
		check("LogSoftmaxGrad")
		accCheck(t, "LogSoftmaxGrad", dx, init, func(i int) float64 {
			row := i / n
			var s float64
			for j := 0; j < n; j++ {
				s += float64(dy[row*n+j])
			}
			return float64(dy[i]) - math.Exp(float64(y[i]))*s
		})
		// Cross-entropy: d/dlogits = scale*(softmax - onehot).
		tg := make([]int32, rows)
		for i := range tg {
			tg[i] = int32(r.IntN(n))
		}
		probs := make([]float32, rows*n)
		CrossEntropy(probs, x, tg, n)
		dx, init, check = guardedInit(t, r, rows*n)
		CrossEntropyGrad(dx, probs, tg, n, 0.25)
		check("CrossEntropyGrad")
		accCheck(t, "CrossEntropyGrad", dx, init, func(i int) float64 {
			row, j := i/n, i%n
			mx := math.Inf(-1)
			for k := 0; k < n; k++ {
				mx = math.Max(mx, float64(x[row*n+k]))
			}
			var s float64
			for k := 0; k < n; k++ {
				s += math.Exp(float64(x[row*n+k]) - mx)
			}
			p := math.Exp(float64(x[i])-mx) / s
			if int32(j) == tg[row] {
				p--
			}
			return 0.25 * p
		})
		// LayerNorm: compare with central differences of a float64 layer norm.
		gm, bt := randSlice(r, n, 1), randSlice(r, n, 1)
		mean, rstd := make([]float32, rows), make([]float32, rows)
		LayerNorm(y, mean, rstd, x, gm, bt, n, 1e-5)
		dxl, initx, checkx := guardedInit(t, r, rows*n)
		dg, initg, checkg := guardedInit(t, r, n)
		db, initb, checkb := guardedInit(t, r, n)
		LayerNormGrad(dxl, dg, db, x, gm, mean, rstd, dy, make([]float32, 2*n), n)
		checkx("LayerNormGrad dx")
		checkg("LayerNormGrad dgamma")
		checkb("LayerNormGrad dbeta")
		ln := func(row []float64) []float64 {
			var m, v float64
			for _, a := range row {
				m += a
			}
			m /= float64(n)
			for _, a := range row {
				v += (a - m) * (a - m)
			}
			v /= float64(n)
			out := make([]float64, n)
			for j, a := range row {
				out[j] = (a - m) / math.Sqrt(v+1e-5)
			}
			return out
		}
		accCheck(t, "LayerNormGrad dx", dxl, initx, func(i int) float64 {
			row, j := i/n, i%n
			xs := make([]float64, n)
			for k := range xs {
				xs[k] = float64(x[row*n+k])
			}
			const h = 1e-5
			var lp, lm float64
			xs[j] += h
			for k, v := range ln(xs) {
				lp += v * float64(gm[k]) * float64(dy[row*n+k])
			}
			xs[j] -= 2 * h
			for k, v := range ln(xs) {
				lm += v * float64(gm[k]) * float64(dy[row*n+k])
			}
			return (lp - lm) / (2 * h)
		})
		accCheck(t, "LayerNormGrad dbeta", db, initb, func(j int) float64 {
			var s float64
			for row := 0; row < rows; row++ {
				s += float64(dy[row*n+j])
			}
			return s
		})
		accCheck(t, "LayerNormGrad dgamma", dg, initg, func(j int) float64 {
			var s float64
			for row := 0; row < rows; row++ {
				xs := make([]float64, n)
				for k := range xs {
					xs[k] = float64(x[row*n+k])
				}
				s += ln(xs)[j] * float64(dy[row*n+j])
			}
			return s
		})
	}
}

func TestGradKernelsIndexing(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	for _, d := range sizes {
		ids := []int32{3, 0, 3, 1}
		dy := randSlice(r, len(ids)*d, 1)
		dt, init, check := guardedInit(t, r, 5*d)
		EmbeddingGrad(dt, dy, ids, d)
		check("EmbeddingGrad")
		accCheck(t, "EmbeddingGrad", dt, init, func(i int) float64 {
			var s float64
			for k, id := range ids {
				if int(id) == i/d {
					s += float64(dy[k*d+i%d])
				}
			}
			return s
		})
	}
	for _, n := range []int{1, 2, 5, 8} {
		dy := randSlice(r, 2*n*n, 1)
		dx, init, check := guardedInit(t, r, 2*n*n)
		MaskCausalGrad(dx, dy, n)
		check("MaskCausalGrad")
		accCheck(t, "MaskCausalGrad", dx, init, func(k int) float64 {
			if i, j := (k/n)%n, k%n; j > i {
				return 0
			}
			return float64(dy[k])
		})
	}
	// Broadcast gradients: reduce over stretched dimensions.
	as, bs := []int{2, 3, 4}, []int{3, 1}
	a, b := FromSlice(randSlice(r, 24, 1), as...), FromSlice(randSlice(r, 3, 1), bs...)
	dy := randSlice(r, 24, 1)
	da, inita, checka := guardedInit(t, r, 24)
	dbuf, initb, checkb := guardedInit(t, r, 3)
	MulGrad(da, dbuf, a, b, dy)
	checka("MulGrad da")
	checkb("MulGrad db")
	accCheck(t, "MulGrad da", da, inita, func(i int) float64 { return float64(dy[i]) * float64(b.Data[(i/4)%3]) })
	accCheck(t, "MulGrad db", dbuf, initb, func(j int) float64 {
		var s float64
		for i := range dy {
			if (i/4)%3 == j {
				s += float64(dy[i]) * float64(a.Data[i])
			}
		}
		return s
	})
	da2, inita2, _ := guardedInit(t, r, 24)
	db2, initb2, checkb2 := guardedInit(t, r, 3)
	AddGrad(da2, db2, as, bs, dy)
	checkb2("AddGrad db")
	accCheck(t, "AddGrad da", da2, inita2, func(i int) float64 { return float64(dy[i]) })
	accCheck(t, "AddGrad db", db2, initb2, func(j int) float64 {
		var s float64
		for i := range dy {
			if (i/4)%3 == j {
				s += float64(dy[i])
			}
		}
		return s
	})
	// Permute: the gradient is the inverse permutation.
	src := []int{2, 3, 4}
	perm := []int{2, 0, 1}
	g := randSlice(r, 24, 1)
	ds, inits, checks := guardedInit(t, r, 24)
	PermuteGrad(ds, src, g, perm)
	checks("PermuteGrad")
	accCheck(t, "PermuteGrad", ds, inits, func(i int) float64 {
		// src index (a, b, c) maps to output index (c, a, b) in shape [4, 2, 3].
		a, b, c := i/12, (i/4)%3, i%4
		return float64(g[c*6+a*3+b])
	})
}
