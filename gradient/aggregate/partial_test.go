package aggregate

import (
	"math"
	"math/rand/v2"
	"testing"
)

// keepSome keeps each coordinate of a dense contribution with probability
// p, as a sparse contribution.
func keepSome(r *rand.Rand, c Contribution, p float64) Contribution {
	s := &Sparse{Len: len(c.Dense)}
	for j, v := range c.Dense {
		if r.Float64() < p {
			s.Index = append(s.Index, uint32(j))
			s.Value = append(s.Value, v)
		}
	}
	c.Dense, c.Sparse = nil, s
	return c
}

// refPartial is Σ_{i∋j} coef_i·x_ij / Σ_{i∋j} w_i in float64, with coef
// the clipping scale times the weight (no clipping if bound < 0).
func refPartial(cs []Contribution, bound float64) []float64 {
	var xs [][]float32
	var held [][]bool
	var ws []float64
	for _, c := range cs {
		x := toDense(c)
		if !finite(x) {
			continue
		}
		h := make([]bool, len(x))
		if c.Sparse == nil {
			for j := range h {
				h[j] = true
			}
		} else {
			for _, j := range c.Sparse.Index {
				h[j] = true
			}
		}
		xs, held, ws = append(xs, x), append(held, h), append(ws, c.Weight)
	}
	coef := append([]float64(nil), ws...)
	if bound >= 0 {
		norms := make([]float64, len(xs))
		for i, x := range xs {
			norms[i] = refNorm(x)
		}
		if bound == 0 {
			bound = refMedianOf(norms)
		}
		for i := range coef {
			if norms[i] > bound {
				coef[i] = ws[i] * bound / norms[i]
			}
		}
	}
	out := make([]float64, len(xs[0]))
	for j := range out {
		var num, den float64
		for i, x := range xs {
			if held[i][j] {
				num += coef[i] * float64(x[j])
				den += ws[i]
			}
		}
		if den > 0 {
			out[j] = num / den
		}
	}
	return out
}

// TestPartialDense checks that with dense contributions only the partial
// rules give the same bits as the plain ones: every coordinate is held by
// every contribution.
func TestPartialDense(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cs := randomContribs(r, 7, 5000)
	for _, pair := range [][2]Rule{{Mean{}, Mean{Partial: true}}, {NormClip{}, NormClip{Partial: true}}, {NormClip{Max: 2}, NormClip{Max: 2, Partial: true}}} {
		a, b := make([]float32, 5000), make([]float32, 5000)
		if _, err := pair[0].Aggregate(a, cs); err != nil {
			t.Fatal(err)
		}
		if _, err := pair[1].Aggregate(b, cs); err != nil {
			t.Fatal(err)
		}
		for j := range a {
			if math.Float32bits(a[j]) != math.Float32bits(b[j]) {
				t.Fatalf("%s coordinate %d: %g, %s gives %g", pair[1].Name(), j, b[j], pair[0].Name(), a[j])
			}
		}
	}
}

// TestPartialSparse checks the partial rules on sparse contributions (and
// a dense one, and a non-finite one, which must not count) against the
// float64 reference, that a coordinate held by one contribution gets its
// value undiluted and that a coordinate held by none is +0.
func TestPartialSparse(t *testing.T) {
	const n = 3000
	r := rand.New(rand.NewPCG(5, 6))
	cs := randomContribs(r, 6, n)
	for i := 1; i < len(cs); i++ {
		cs[i] = keepSome(r, cs[i], 0.2)
	}
	// Contribution 0 stays dense: take its coordinates below 100 out of
	// the picture by making it sparse there too, so that some coordinates
	// are held by no one.
	cs[0] = keepSome(r, cs[0], 1)
	k := 0
	for k < len(cs[0].Sparse.Index) && cs[0].Sparse.Index[k] < 100 {
		k++
	}
	cs[0].Sparse.Index, cs[0].Sparse.Value = cs[0].Sparse.Index[k:], cs[0].Sparse.Value[k:]
	bad := keepSome(r, randomContribs(r, 1, n)[0], 0.5)
	bad.Peer = "peer-zz"
	bad.Sparse.Value[0] = float32(math.NaN())
	cs = append(cs, bad)
	holders := make([]int, n)
	for _, c := range cs[:len(cs)-1] {
		for _, j := range c.Sparse.Index {
			holders[j]++
		}
	}
	for _, rule := range []Rule{Mean{Partial: true}, NormClip{Partial: true}, NormClip{Max: 0.5, Partial: true}} {
		dst := make([]float32, n)
		rep, err := rule.Aggregate(dst, cs)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Excluded) != 1 || rep.Excluded[0] != "peer-zz" {
			t.Fatalf("%s: excluded %v, want the non-finite contribution", rule.Name(), rep.Excluded)
		}
		bound := -1.0
		if nc, ok := rule.(NormClip); ok {
			bound = nc.Max
		}
		want := refPartial(cs, bound)
		single := 0
		for j, y := range dst {
			if math.Abs(float64(y)-want[j]) > 2e-7*math.Abs(want[j])+1e-30 {
				t.Fatalf("%s coordinate %d: %g, want %g", rule.Name(), j, y, want[j])
			}
			if holders[j] == 0 && math.Float32bits(y) != 0 {
				t.Fatalf("%s coordinate %d held by none: %g, want +0", rule.Name(), j, y)
			}
			if holders[j] == 1 && bound < 0 {
				single++
				for _, c := range cs[:len(cs)-1] {
					for k, i := range c.Sparse.Index {
						if int(i) == j && y != c.Sparse.Value[k] {
							t.Fatalf("coordinate %d held by one: %g, want its value %g", j, y, c.Sparse.Value[k])
						}
					}
				}
			}
		}
		if bound < 0 && single == 0 {
			t.Fatal("no coordinate is held by exactly one contribution: the test is vacuous")
		}
	}
}
