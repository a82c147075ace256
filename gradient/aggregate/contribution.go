package aggregate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Sparse is a vector of length Len that is zero except at Index[k], where
// it holds Value[k]. Index is strictly increasing and every index is below
// Len.
type Sparse struct {
	Len   int
	Index []uint32
	Value []float32
}

// Contribution is one contributor's update. Exactly one of Dense and Sparse
// holds it: Sparse when it is non-nil, Dense otherwise.
type Contribution struct {
	Peer   string    // contributor's peer ID: the primary canonical order key
	ID     string    // the update's content ID: the secondary order key
	Weight float64   // samples the update was computed on; finite and > 0
	Dense  []float32 // the full update, flattened, or
	Sparse *Sparse   // the update as a sparse vector
}

// Len returns the length of the update.
func (c *Contribution) Len() int {
	if c.Sparse != nil {
		return c.Sparse.Len
	}
	return len(c.Dense)
}

// Canonical returns a new slice holding cs sorted by (Peer, ID), comparing
// strings bytewise. Entries with equal keys keep their relative order; they
// are expected to be the same update (the ID is the content's hash), so the
// aggregate does not depend on it. The updates themselves are shared, not
// copied.
func Canonical(cs []Contribution) []Contribution {
	out := slices.Clone(cs)
	slices.SortStableFunc(out, func(a, b Contribution) int {
		if c := strings.Compare(a.Peer, b.Peer); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Errors returned by the rules. Every error about a malformed input wraps
// ErrInvalid.
var (
	ErrInvalid         = errors.New("aggregate: invalid input")
	ErrNoContributions = fmt.Errorf("%w: no contributions", ErrInvalid)
	ErrAllExcluded     = errors.New("aggregate: every contribution was excluded for non-finite values")
)

func contribErr(i int, c *Contribution, format string, args ...any) error {
	return fmt.Errorf("%w: contribution %d (peer %q): %s", ErrInvalid, i, c.Peer, fmt.Sprintf(format, args...))
}

// validate checks the shape of every contribution against the destination
// length n. It does not look at the values.
func validate(n int, cs []Contribution) error {
	if len(cs) == 0 {
		return ErrNoContributions
	}
	for i := range cs {
		c := &cs[i]
		if !(c.Weight > 0) || math.IsInf(c.Weight, 1) {
			return contribErr(i, c, "weight %g is not a positive finite number", c.Weight)
		}
		s := c.Sparse
		if s == nil {
			if len(c.Dense) != n {
				return contribErr(i, c, "length %d, want %d", len(c.Dense), n)
			}
			continue
		}
		if c.Dense != nil {
			return contribErr(i, c, "both dense and sparse")
		}
		if s.Len != n {
			return contribErr(i, c, "sparse length %d, want %d", s.Len, n)
		}
		if len(s.Index) != len(s.Value) {
			return contribErr(i, c, "sparse update has %d indices and %d values", len(s.Index), len(s.Value))
		}
		for k := 1; k < len(s.Index); k++ {
			if s.Index[k] <= s.Index[k-1] {
				return contribErr(i, c, "sparse index %d at position %d does not follow %d", s.Index[k], k, s.Index[k-1])
			}
		}
		if m := len(s.Index); m > 0 && uint64(s.Index[m-1]) >= uint64(n) {
			return contribErr(i, c, "sparse index %d out of range [0, %d)", s.Index[m-1], n)
		}
	}
	return nil
}

// prepared is a validated input: the contributions that take part, in
// input order, and the report so far.
type prepared struct {
	cs  []Contribution // finite contributions, in input order
	pos []int          // pos[i] is the input position of cs[i]
	rep Report
}

// prepare validates the input, computes every contribution's norm and
// excludes those whose values are not all finite.
func prepare(rule string, dst []float32, cs []Contribution) (prepared, error) {
	p := prepared{rep: Report{Rule: rule}}
	if err := validate(len(dst), cs); err != nil {
		return p, err
	}
	p.rep.Norms = make([]float64, len(cs))
	sumSquares(p.rep.Norms, cs)
	for i := range cs {
		ss := p.rep.Norms[i]
		// The squares of finite float32 values, summed in float64, cannot
		// overflow, so a non-finite sum means a non-finite value.
		if math.IsNaN(ss) || math.IsInf(ss, 0) {
			p.rep.Excluded = append(p.rep.Excluded, cs[i].Peer)
			continue
		}
		p.rep.Norms[i] = math.Sqrt(ss)
		p.cs = append(p.cs, cs[i])
		p.pos = append(p.pos, i)
	}
	if len(p.cs) == 0 {
		return p, ErrAllExcluded
	}
	return p, nil
}

// sumSquares sets out[i] to the sum of squares of cs[i] in float64, in the
// lane order of laneSum.
func sumSquares(out []float64, cs []Contribution) {
	forEachItem(len(cs), stored(cs), func(i int) {
		c := &cs[i]
		var l lanes
		if s := c.Sparse; s != nil {
			for k, j := range s.Index {
				v := float64(s.Value[k])
				l[j&7] = float64(v*v) + l[j&7]
			}
		} else {
			l.addSquares(c.Dense)
		}
		out[i] = l.sum()
	})
}

// stored returns the values the contributions hold: a sparse one's
// listed entries, a dense one's every element (the work of a pass over
// them).
func stored(cs []Contribution) int {
	n := 0
	for i := range cs {
		if s := cs[i].Sparse; s != nil {
			n += len(s.Index)
		} else {
			n += len(cs[i].Dense)
		}
	}
	return n
}

// lanes are the eight float64 accumulators of a reduction over a vector:
// element j is added to lane j mod 8, in index order, and the lanes are
// combined as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)). A sparse vector skips
// its zeros, which leaves every lane unchanged (a lane starts at +0 and
// never becomes -0), so it gives the same bits as its dense form.
type lanes [8]float64

func (l *lanes) addSquares(x []float32) {
	s0, s1, s2, s3, s4, s5, s6, s7 := l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7]
	n := len(x) &^ 7
	for i := 0; i < n; i += 8 {
		v := x[i : i+8 : i+8]
		a0, a1, a2, a3 := float64(v[0]), float64(v[1]), float64(v[2]), float64(v[3])
		a4, a5, a6, a7 := float64(v[4]), float64(v[5]), float64(v[6]), float64(v[7])
		s0 = float64(a0*a0) + s0
		s1 = float64(a1*a1) + s1
		s2 = float64(a2*a2) + s2
		s3 = float64(a3*a3) + s3
		s4 = float64(a4*a4) + s4
		s5 = float64(a5*a5) + s5
		s6 = float64(a6*a6) + s6
		s7 = float64(a7*a7) + s7
	}
	*l = lanes{s0, s1, s2, s3, s4, s5, s6, s7}
	for j := n; j < len(x); j++ {
		a := float64(x[j])
		l[j&7] = float64(a*a) + l[j&7]
	}
}

func (l *lanes) sum() float64 {
	return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}
