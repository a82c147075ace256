package aggregate

import (
	"fmt"
	"math"
)

// Mean is the mean of the contributions weighted by their samples:
// Σ w_i·x_i / Σ w_i.
type Mean struct {
	// Partial divides each coordinate by the weight of the contributions
	// that hold it, Σ_{i∋j} w_i·x_ij / Σ_{i∋j} w_i, where a sparse
	// contribution holds only its listed indices and a dense one every
	// coordinate; a coordinate no contribution holds is 0. With dense
	// contributions only it is the mean.
	Partial bool
}

// Name returns "mean", or "mean:partial=true".
func (r Mean) Name() string {
	if r.Partial {
		return "mean:partial=true"
	}
	return "mean"
}

// Aggregate writes the weighted mean of cs to dst.
func (r Mean) Aggregate(dst []float32, cs []Contribution) (Report, error) {
	p, err := prepare(r.Name(), dst, cs)
	if err != nil {
		return p.rep, err
	}
	coef := make([]float64, len(p.cs))
	var total float64
	for i := range p.cs {
		coef[i] = p.cs[i].Weight
		total += p.cs[i].Weight
	}
	if r.Partial {
		partialSum(dst, p.cs, coef)
		return p.rep, nil
	}
	weightedSum(dst, p.cs, coef, total)
	return p.rep, nil
}

// NormClip scales every contribution whose L2 norm exceeds a bound down to
// the bound, then takes the weighted mean: Σ w_i·s_i·x_i / Σ w_i with
// s_i = min(1, bound/‖x_i‖).
type NormClip struct {
	// Max is the bound; 0 means the median of the contributions' norms
	// (for an even count, the mean of the two middle norms).
	Max float64
	// Partial takes the clipped mean per coordinate over the
	// contributions that hold it, as Mean.Partial does.
	Partial bool
	// Screen leaves out, before the mean, every clipped contribution
	// that does not point the way the others do together: one whose
	// inner product with the sum of the other clipped contributions is
	// not positive (see screen). It applies from MinScreen
	// contributions up.
	Screen bool
}

// MinScreen is the number of contributions from which NormClip.Screen
// applies: with fewer, the others are too few to say which way they
// point.
const MinScreen = 3

// Name returns "norm-clip:max=<bound>", or "norm-clip:max=median",
// followed by ",partial=true" if Partial is set and ",screen=true" if
// Screen is.
func (r NormClip) Name() string {
	name := "norm-clip:max=" + formatFloat(r.Max)
	if r.Max == 0 {
		name = "norm-clip:max=median"
	}
	if r.Partial {
		name += ",partial=true"
	}
	if r.Screen {
		name += ",screen=true"
	}
	return name
}

// Aggregate writes the clipped weighted mean of cs to dst. The report
// gives the bound, each contribution's scale factor and who was clipped.
func (r NormClip) Aggregate(dst []float32, cs []Contribution) (Report, error) {
	if !(r.Max >= 0) || math.IsInf(r.Max, 1) {
		return Report{Rule: r.Name()}, fmt.Errorf("%w: norm-clip bound %g is not a non-negative finite number", ErrInvalid, r.Max)
	}
	p, err := prepare(r.Name(), dst, cs)
	if err != nil {
		return p.rep, err
	}
	norms := make([]float64, len(p.cs))
	for i, at := range p.pos {
		norms[i] = p.rep.Norms[at]
	}
	bound := r.Max
	if bound == 0 {
		bound = median64(norms)
	}
	p.rep.Bound = bound
	p.rep.Scales = make([]float64, len(cs))
	coef := make([]float64, len(p.cs))
	var total float64
	for i, at := range p.pos {
		s := 1.0
		if norms[i] > bound {
			s = bound / norms[i]
			p.rep.Clipped = append(p.rep.Clipped, cs[at].Peer)
		}
		p.rep.Scales[at] = s
		coef[i] = p.cs[i].Weight * s
		total += p.cs[i].Weight
	}
	kept := p.cs
	if r.Screen && len(p.cs) >= MinScreen {
		keep := screen(dst, p.cs, coef)
		kept, coef, total = nil, coef[:0:0], 0
		for i, ok := range keep {
			if !ok {
				at := p.pos[i]
				p.rep.Screened = append(p.rep.Screened, cs[at].Peer)
				p.rep.Scales[at] = 0
				continue
			}
			kept = append(kept, p.cs[i])
			coef = append(coef, p.cs[i].Weight*p.rep.Scales[p.pos[i]])
			total += p.cs[i].Weight
		}
		if len(kept) == 0 {
			clear(dst)
			return p.rep, nil
		}
	}
	if r.Partial {
		partialSum(dst, kept, coef)
		return p.rep, nil
	}
	weightedSum(dst, kept, coef, total)
	return p.rep, nil
}

// screen reports which of the contributions cs, scaled by coef, point
// the way the others do together: keep[i] is whether x_i·(S − coef_i·x_i)
// > 0, where S = Σ_k coef_k·x_k is the clipped sum of all. S is taken as
// weightedSum takes it (float64 in contribution order, rounded once to
// float32, here into sum, which is scratch of S's length), and each inner
// product over x_i's own coordinates in the lane order of sumSquares,
// with every product rounded to float64 before it is added: the same
// bits on every machine. A sign-flipped copy of an honest update points
// against the honest majority's sum and is left out however its norm
// was clipped; a contribution with no coordinate in common with the
// others has a zero product and is left out too.
func screen(sum []float32, cs []Contribution, coef []float64) []bool {
	weightedSum(sum, cs, coef, 1)
	keep := make([]bool, len(cs))
	forEachItem(len(cs), stored(cs), func(i int) {
		u := coef[i]
		var l lanes
		if s := cs[i].Sparse; s != nil {
			for k, j := range s.Index {
				x := float64(s.Value[k])
				o := float64(sum[j]) - float64(u*x)
				l[j&7] = float64(x*o) + l[j&7]
			}
		} else {
			for j, v := range cs[i].Dense {
				x := float64(v)
				o := float64(sum[j]) - float64(u*x)
				l[j&7] = float64(x*o) + l[j&7]
			}
		}
		keep[i] = l.sum() > 0
	})
	return keep
}

// meanBlock is the number of coordinates whose float64 sums are kept at
// once by weightedSum (32 KiB).
const meanBlock = 4096

// weightedSum sets dst[j] = float32((Σ_i coef[i]·x_ij) / denom). The sum
// is taken in float64 in contribution order, starting from +0, with each
// product rounded to float64 before it is added; the quotient is rounded
// once to float32 (+0 for -0). A sparse contribution adds only its listed entries: the
// zeros it skips would leave the sum unchanged, so sparse and dense forms
// of an update give identical bits.
func weightedSum(dst []float32, cs []Contribution, coef []float64, denom float64) {
	forBlocks(len(dst), meanBlock, len(cs),
		func() []float64 { return make([]float64, meanBlock) },
		func(acc []float64, lo, hi int) {
			acc = acc[:hi-lo]
			clear(acc)
			for i := range cs {
				u := coef[i]
				if s := cs[i].Sparse; s != nil {
					k := sparseFrom(s.Index, lo)
					for ; k < len(s.Index) && int(s.Index[k]) < hi; k++ {
						j := int(s.Index[k]) - lo
						acc[j] = float64(u*float64(s.Value[k])) + acc[j]
					}
					continue
				}
				x := cs[i].Dense[lo:hi]
				acc := acc[:len(x)]
				for j, v := range x {
					acc[j] = float64(u*float64(v)) + acc[j]
				}
			}
			out := dst[lo:hi]
			for j, a := range acc {
				if a == 0 {
					out[j] = 0 // skips the division where sparse updates leave gaps
					continue
				}
				out[j] = round32(a / denom)
			}
		})
}

// partialSum sets dst[j] = float32((Σ_{i∋j} coef[i]·x_ij) / Σ_{i∋j} w_i),
// the sums over the contributions that hold coordinate j (every dense
// one, the sparse ones that list j), in contribution order from +0 with
// each product rounded to float64; a coordinate with a zero sum (none
// holds it, or their values cancel) is +0. The weights are the
// contributions' own, whatever coef holds, so that a clipped
// contribution still counts its samples in the denominator.
func partialSum(dst []float32, cs []Contribution, coef []float64) {
	forBlocks(len(dst), meanBlock, len(cs),
		func() []float64 { return make([]float64, 2*meanBlock) },
		func(buf []float64, lo, hi int) {
			acc, wsum := buf[:hi-lo], buf[meanBlock:meanBlock+hi-lo]
			clear(acc)
			clear(wsum)
			for i := range cs {
				u, w := coef[i], cs[i].Weight
				if s := cs[i].Sparse; s != nil {
					k := sparseFrom(s.Index, lo)
					for ; k < len(s.Index) && int(s.Index[k]) < hi; k++ {
						j := int(s.Index[k]) - lo
						acc[j] = float64(u*float64(s.Value[k])) + acc[j]
						wsum[j] += w
					}
					continue
				}
				x := cs[i].Dense[lo:hi]
				for j, v := range x {
					acc[j] = float64(u*float64(v)) + acc[j]
					wsum[j] += w
				}
			}
			out := dst[lo:hi]
			for j, a := range acc {
				if a == 0 {
					out[j] = 0
					continue
				}
				out[j] = round32(a / wsum[j])
			}
		})
}
