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
}

// Name returns "norm-clip:max=<bound>", or "norm-clip:max=median",
// followed by ",partial=true" if Partial is set.
func (r NormClip) Name() string {
	name := "norm-clip:max=" + formatFloat(r.Max)
	if r.Max == 0 {
		name = "norm-clip:max=median"
	}
	if r.Partial {
		name += ",partial=true"
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
	if r.Partial {
		partialSum(dst, p.cs, coef)
		return p.rep, nil
	}
	weightedSum(dst, p.cs, coef, total)
	return p.rep, nil
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
