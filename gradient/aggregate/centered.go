package aggregate

import (
	"fmt"
	"math"
)

// DefaultIters is the number of centered-clipping iterations used when
// CenteredClip.Iters is 0.
const DefaultIters = 3

// maxIters bounds CenteredClip.Iters: each iteration is two passes over
// every contribution.
const maxIters = 100

// CenteredClip is centered clipping (Karimireddy, He & Jaggi, 2021),
// unweighted. From a start point v it repeats
//
//	v ← v + (1/n) Σ_i c_i·(x_i − v),   c_i = min(1, τ/‖x_i − v‖)
//
// Iters times. Aggregate starts from the coordinate-wise median of the
// contributions (as Median computes it); AggregateFrom starts from a point
// the caller gives, such as the previous step's aggregate.
type CenteredClip struct {
	// Tau is the clipping radius τ; 0 means, at each iteration, the median
	// of the distances ‖x_i − v‖ (the mean of the two middle ones for an
	// even count).
	Tau float64
	// Iters is the number of iterations, at most 100; 0 means DefaultIters.
	Iters int
}

func (r CenteredClip) iters() int {
	if r.Iters == 0 {
		return DefaultIters
	}
	return r.Iters
}

// Name returns "centered-clip:tau=<τ>,iters=<iters>", with tau=median for
// the adaptive radius.
func (r CenteredClip) Name() string {
	tau := "median"
	if r.Tau != 0 {
		tau = formatFloat(r.Tau)
	}
	return fmt.Sprintf("centered-clip:tau=%s,iters=%d", tau, r.iters())
}

// Aggregate writes the centered-clipping aggregate of cs, started from
// their coordinate-wise median, to dst.
func (r CenteredClip) Aggregate(dst []float32, cs []Contribution) (Report, error) {
	return r.AggregateFrom(dst, nil, cs)
}

// AggregateFrom writes the centered-clipping aggregate of cs to dst,
// starting from start, or from the coordinate-wise median of cs if start
// is nil; start may be dst itself. Every peer must pass the same start for
// the results to agree.
// The report gives τ, each contribution's clip factor c_i and who was
// clipped (c_i < 1), all from the last iteration.
func (r CenteredClip) AggregateFrom(dst, start []float32, cs []Contribution) (Report, error) {
	rep := Report{Rule: r.Name()}
	switch {
	case !(r.Tau >= 0) || math.IsInf(r.Tau, 1):
		return rep, fmt.Errorf("%w: centered-clip tau %g is not a non-negative finite number", ErrInvalid, r.Tau)
	case r.Iters < 0 || r.Iters > maxIters:
		return rep, fmt.Errorf("%w: centered-clip iters %d is not in [1, %d]", ErrInvalid, r.Iters, maxIters)
	}
	if start != nil {
		if len(start) != len(dst) {
			return rep, fmt.Errorf("%w: start has length %d, want %d", ErrInvalid, len(start), len(dst))
		}
		for j, v := range start {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return rep, fmt.Errorf("%w: start[%d] is %g", ErrInvalid, j, v)
			}
		}
	}
	p, err := prepare(rep.Rule, dst, cs)
	if err != nil {
		return p.rep, err
	}
	if start == nil {
		orderStats(dst, p.cs, -1)
	} else {
		copy(dst, start)
	}
	n := len(p.cs)
	dist := make([]float64, n)
	coef := make([]float64, n)
	var tau float64
	for range r.iters() {
		distances(dist, p.cs, dst)
		tau = r.Tau
		if tau == 0 {
			tau = median64(dist)
		}
		for i, d := range dist {
			coef[i] = 1
			if d > tau {
				coef[i] = tau / d
			}
		}
		centeredStep(dst, p.cs, coef)
	}
	p.rep.Bound = tau
	p.rep.Scales = make([]float64, len(cs))
	for i, at := range p.pos {
		p.rep.Scales[at] = coef[i]
		if coef[i] < 1 {
			p.rep.Clipped = append(p.rep.Clipped, cs[at].Peer)
		}
	}
	return p.rep, nil
}

// distances sets out[i] = ‖x_i − v‖, the square root of the float64 sum of
// squared differences in the lane order of lanes, each difference
// float64(x) − float64(v). A sparse contribution is walked over every
// coordinate, its unlisted ones as zeros, so it gives the same bits as its
// dense form.
func distances(out []float64, cs []Contribution, v []float32) {
	forEachItem(len(cs), len(cs)*len(v), func(i int) {
		var l lanes
		if s := cs[i].Sparse; s != nil {
			prev := 0
			for k, idx := range s.Index {
				j := int(idx)
				l.addDiffSquares(prev, nil, v[prev:j])
				d := float64(s.Value[k]) - float64(v[j])
				l[j&7] = float64(d*d) + l[j&7]
				prev = j + 1
			}
			l.addDiffSquares(prev, nil, v[prev:])
		} else {
			l.addDiffSquares(0, cs[i].Dense, v)
		}
		out[i] = math.Sqrt(l.sum())
	})
}

// addDiffSquares adds (x[k] − v[k])² to lane (at+k) mod 8 for every k, in
// order; a nil x stands for zeros.
func (l *lanes) addDiffSquares(at int, x, v []float32) {
	if x == nil {
		for k, b := range v {
			d := 0 - float64(b)
			l[(at+k)&7] = float64(d*d) + l[(at+k)&7]
		}
		return
	}
	x = x[:len(v)]
	if at&7 == 0 {
		s0, s1, s2, s3, s4, s5, s6, s7 := l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7]
		n := len(v) &^ 7
		for k := 0; k < n; k += 8 {
			a := x[k : k+8 : k+8]
			b := v[k : k+8 : k+8]
			d0 := float64(a[0]) - float64(b[0])
			d1 := float64(a[1]) - float64(b[1])
			d2 := float64(a[2]) - float64(b[2])
			d3 := float64(a[3]) - float64(b[3])
			d4 := float64(a[4]) - float64(b[4])
			d5 := float64(a[5]) - float64(b[5])
			d6 := float64(a[6]) - float64(b[6])
			d7 := float64(a[7]) - float64(b[7])
			s0 = float64(d0*d0) + s0
			s1 = float64(d1*d1) + s1
			s2 = float64(d2*d2) + s2
			s3 = float64(d3*d3) + s3
			s4 = float64(d4*d4) + s4
			s5 = float64(d5*d5) + s5
			s6 = float64(d6*d6) + s6
			s7 = float64(d7*d7) + s7
		}
		*l = lanes{s0, s1, s2, s3, s4, s5, s6, s7}
		x, v, at = x[n:], v[n:], n
	}
	for k, b := range v {
		d := float64(x[k]) - float64(b)
		l[(at+k)&7] = float64(d*d) + l[(at+k)&7]
	}
}

// centeredStep sets v_j ← float32(v_j + (Σ_i c_i·(x_ij − v_j)) / n) for
// every coordinate j: the sum in float64 in contribution order from +0,
// each term float64(c_i·(float64(x_ij) − float64(v_j))). Every coordinate
// reads only its own v_j, so v is updated in place. Sparse contributions
// are walked over every coordinate of the block, their unlisted ones as
// zeros.
func centeredStep(v []float32, cs []Contribution, coef []float64) {
	nf := float64(len(cs))
	forBlocks(len(v), meanBlock, len(cs),
		func() []float64 { return make([]float64, meanBlock) },
		func(acc []float64, lo, hi int) {
			acc = acc[:hi-lo]
			clear(acc)
			vb := v[lo:hi]
			for i := range cs {
				c := coef[i]
				if s := cs[i].Sparse; s != nil {
					k := sparseFrom(s.Index, lo)
					for j, b := range vb {
						var x float32
						if k < len(s.Index) && int(s.Index[k]) == lo+j {
							x = s.Value[k]
							k++
						}
						d := float64(x) - float64(b)
						acc[j] = float64(c*d) + acc[j]
					}
					continue
				}
				x := cs[i].Dense[lo:hi]
				x = x[:len(vb)]
				for j, b := range vb {
					d := float64(x[j]) - float64(b)
					acc[j] = float64(c*d) + acc[j]
				}
			}
			for j, a := range acc {
				vb[j] = round32(float64(vb[j]) + a/nf)
			}
		})
}
