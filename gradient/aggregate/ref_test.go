package aggregate

import (
	"math"
	"math/rand/v2"
	"slices"
)

// This file holds the test inputs and straightforward float64 reference
// implementations of every rule, written independently of the package's
// kernels: dense, naive loops, no lanes, no blocks.

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// denseValues returns x of length n, Normal(0, scale²) in each coordinate.
func denseValues(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for j := range x {
		x[j] = float32(r.NormFloat64() * scale)
	}
	return x
}

// randomContribs returns k dense contributions of length n with random
// weights and distinct peers, in canonical order.
func randomContribs(r *rand.Rand, k, n int) []Contribution {
	cs := make([]Contribution, k)
	for i := range cs {
		cs[i] = Contribution{
			Peer:   peerName(i),
			ID:     "u" + peerName(i),
			Weight: float64(1 + r.IntN(1000)),
			Dense:  denseValues(r, n, math.Exp(r.NormFloat64())),
		}
	}
	return cs
}

func peerName(i int) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	return "peer-" + string(digits[i/36%36]) + string(digits[i%36])
}

// sparsify returns x with each coordinate zeroed (as +0 or -0) with
// probability 1-density.
func sparsify(r *rand.Rand, x []float32, density float64) []float32 {
	out := slices.Clone(x)
	for j := range out {
		if r.Float64() >= density {
			out[j] = 0
			if r.IntN(2) == 0 {
				out[j] = float32(math.Copysign(0, -1))
			}
		}
	}
	return out
}

// toSparse returns the sparse form of x: its non-zero entries, plus, with
// probability pZero each, some of its zeros listed explicitly.
func toSparse(r *rand.Rand, x []float32, pZero float64) *Sparse {
	s := &Sparse{Len: len(x)}
	for j, v := range x {
		if v != 0 || r.Float64() < pZero {
			s.Index = append(s.Index, uint32(j))
			s.Value = append(s.Value, v)
		}
	}
	return s
}

func toDense(c Contribution) []float32 {
	if c.Sparse == nil {
		return c.Dense
	}
	x := make([]float32, c.Sparse.Len)
	for k, j := range c.Sparse.Index {
		x[j] = c.Sparse.Value[k]
	}
	return x
}

func finite(x []float32) bool {
	for _, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

// refValid returns the dense vectors and weights of the finite
// contributions.
func refValid(cs []Contribution) (xs [][]float32, ws []float64) {
	for _, c := range cs {
		x := toDense(c)
		if finite(x) {
			xs = append(xs, x)
			ws = append(ws, c.Weight)
		}
	}
	return xs, ws
}

func refNorm(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

func refMedianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func refWeighted(xs [][]float32, coef []float64, denom float64) []float64 {
	out := make([]float64, len(xs[0]))
	for j := range out {
		var s float64
		for i, x := range xs {
			s += coef[i] * float64(x[j])
		}
		out[j] = s / denom
	}
	return out
}

func refMean(cs []Contribution) []float64 {
	xs, ws := refValid(cs)
	var total float64
	for _, w := range ws {
		total += w
	}
	return refWeighted(xs, ws, total)
}

func refNormClip(cs []Contribution, bound float64, screen bool) []float64 {
	xs, ws := refValid(cs)
	norms := make([]float64, len(xs))
	for i, x := range xs {
		norms[i] = refNorm(x)
	}
	if bound == 0 {
		bound = refMedianOf(norms)
	}
	coef := make([]float64, len(xs))
	var total float64
	for i := range xs {
		coef[i] = ws[i]
		if norms[i] > bound {
			coef[i] = ws[i] * bound / norms[i]
		}
		total += ws[i]
	}
	if screen && len(xs) >= MinScreen {
		keep := refScreen(xs, coef)
		var kx [][]float32
		var kc []float64
		total = 0
		for i, ok := range keep {
			if ok {
				kx, kc = append(kx, xs[i]), append(kc, coef[i])
				total += ws[i]
			}
		}
		if len(kx) == 0 {
			return make([]float64, len(xs[0]))
		}
		xs, coef = kx, kc
	}
	return refWeighted(xs, coef, total)
}

// refScreen is NormClip.Screen's choice in float64: keep[i] is whether
// x_i·(S − coef_i·x_i) > 0 with S = Σ_k coef_k·x_k.
func refScreen(xs [][]float32, coef []float64) []bool {
	sum := make([]float64, len(xs[0]))
	for i, x := range xs {
		for j, v := range x {
			sum[j] += coef[i] * float64(v)
		}
	}
	keep := make([]bool, len(xs))
	for i, x := range xs {
		var d float64
		for j, v := range x {
			d += float64(v) * (sum[j] - coef[i]*float64(v))
		}
		keep[i] = d > 0
	}
	return keep
}

func column(xs [][]float32, j int) []float64 {
	col := make([]float64, len(xs))
	for i, x := range xs {
		col[i] = float64(x[j])
	}
	return col
}

func refMedian(cs []Contribution) []float64 {
	xs, _ := refValid(cs)
	out := make([]float64, len(xs[0]))
	for j := range out {
		out[j] = refMedianOf(column(xs, j))
	}
	return out
}

func refTrimmed(cs []Contribution, trim float64) []float64 {
	xs, _ := refValid(cs)
	n := len(xs)
	k := int(math.Floor(trim*float64(n) + 1e-9))
	out := make([]float64, len(xs[0]))
	for j := range out {
		col := column(xs, j)
		slices.Sort(col)
		var s float64
		for _, v := range col[k : n-k] {
			s += v
		}
		out[j] = s / float64(n-2*k)
	}
	return out
}

func refCentered(cs []Contribution, tau float64, iters int, start []float64) []float64 {
	xs, _ := refValid(cs)
	v := start
	if v == nil {
		v = refMedian(cs)
	}
	v = slices.Clone(v)
	n := float64(len(xs))
	for range iters {
		dist := make([]float64, len(xs))
		for i, x := range xs {
			var s float64
			for j := range v {
				d := float64(x[j]) - v[j]
				s += d * d
			}
			dist[i] = math.Sqrt(s)
		}
		t := tau
		if t == 0 {
			t = refMedianOf(dist)
		}
		next := slices.Clone(v)
		for i, x := range xs {
			c := 1.0
			if dist[i] > t {
				c = t / dist[i]
			}
			for j := range v {
				next[j] += c * (float64(x[j]) - v[j]) / n
			}
		}
		v = next
	}
	return v
}
