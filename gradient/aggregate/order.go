package aggregate

import (
	"fmt"
	"math"
	"slices"
)

// Median is the coordinate-wise median of the contributions, unweighted:
// per coordinate, the middle value for an odd count, and for an even count
// the mean of the two middle values, computed in float64 and rounded once.
type Median struct{}

// Name returns "median".
func (Median) Name() string { return "median" }

// Aggregate writes the coordinate-wise median of cs to dst.
func (r Median) Aggregate(dst []float32, cs []Contribution) (Report, error) {
	p, err := prepare(r.Name(), dst, cs)
	if err != nil {
		return p.rep, err
	}
	orderStats(dst, p.cs, -1)
	return p.rep, nil
}

// TrimmedMean is the coordinate-wise trimmed mean, unweighted: per
// coordinate, of n values the ⌊Trim·n⌋ largest and the ⌊Trim·n⌋ smallest
// are dropped and the rest averaged.
type TrimmedMean struct {
	Trim float64 // fraction trimmed from each end, in [0, 0.5)
}

// Name returns "trimmed-mean:trim=<Trim>".
func (r TrimmedMean) Name() string { return "trimmed-mean:trim=" + formatFloat(r.Trim) }

// Aggregate writes the coordinate-wise trimmed mean of cs to dst.
func (r TrimmedMean) Aggregate(dst []float32, cs []Contribution) (Report, error) {
	if !(r.Trim >= 0 && r.Trim < 0.5) {
		return Report{Rule: r.Name()}, fmt.Errorf("%w: trim %g is not in [0, 0.5)", ErrInvalid, r.Trim)
	}
	p, err := prepare(r.Name(), dst, cs)
	if err != nil {
		return p.rep, err
	}
	orderStats(dst, p.cs, trimCount(r.Trim, len(p.cs)))
	return p.rep, nil
}

// trimCount returns ⌊trim·n⌋, computed as ⌊trim·n + 1e-9⌋ so that a trim
// written in decimal (0.3 of 10) is not cut short by binary rounding, and
// capped so that at least one value remains.
func trimCount(trim float64, n int) int {
	k := int(math.Floor(trim*float64(n) + 1e-9))
	return min(k, (n-1)/2)
}

// orderBlock returns how many coordinates orderStats handles at once for
// n contributions: about 32 KiB of keys, so that the rows a comparator
// reads stay in the first-level cache.
func orderBlock(n int) int {
	return min(max(8192/n, 64), 2048)
}

// orderStats writes, per coordinate, the median of the contributions'
// values (trim < 0) or their mean after dropping the trim smallest and trim
// largest. The values of a coordinate are sorted by a total order on their
// bits (numeric order, with -0 before +0), so the sorted sequence is the
// same bits whatever the order of the contributions. The median of an even
// count is the float64 mean of the two middle values; the kept values of a
// trimmed mean are summed in float64 in ascending order, starting from +0,
// then divided by their count. Either is rounded once to float32, and a
// zero result is written as +0. No value may be NaN.
//
// The sort is a sorting network (see sortingNetwork) applied to a block of
// coordinates at once: the block's values are held contributor-major, so
// every comparator is a branch-free pass over two contiguous rows.
func orderStats(dst []float32, cs []Contribution, trim int) {
	n := len(cs)
	size := orderBlock(n)
	lo, hi := trim, n-trim // the sorted positions wanted
	if trim < 0 {
		lo, hi = (n-1)/2, n/2+1
	}
	want := make([]bool, n)
	for p := lo; p < hi; p++ {
		want[p] = true
	}
	net := sortingNetwork(n, want)
	type scratch struct {
		keys []int32
		acc  []float64
	}
	forBlocks(len(dst), size, n,
		func() scratch { return scratch{make([]int32, size*n), make([]float64, size)} },
		func(s scratch, b, e int) {
			w := e - b
			gatherKeys(s.keys, size, cs, b, e)
			applyNetwork(s.keys, size, w, net)
			out := dst[b:e]
			if trim < 0 {
				upper := s.keys[(n/2)*size : (n/2)*size+w]
				if n%2 == 1 {
					for j, k := range upper {
						out[j] = plusZero(fromKey(k))
					}
					return
				}
				lower := s.keys[(n/2-1)*size : (n/2-1)*size+w]
				for j, k := range upper {
					out[j] = round32((float64(fromKey(lower[j])) + float64(fromKey(k))) / 2)
				}
				return
			}
			acc := s.acc[:w]
			clear(acc)
			for p := lo; p < hi; p++ {
				row := s.keys[p*size : p*size+w]
				for j, k := range row {
					acc[j] += float64(fromKey(k))
				}
			}
			count := float64(hi - lo)
			for j, a := range acc {
				out[j] = round32(a / count)
			}
		})
}

// key maps a float32 to an int32 whose order is the numeric order of the
// floats, with -0 just below +0 (and NaNs beyond ±Inf).
func key(f float32) int32 {
	b := int32(math.Float32bits(f))
	return b ^ (b >> 31 & 0x7fffffff)
}

// fromKey inverts key.
func fromKey(k int32) float32 {
	return math.Float32frombits(uint32(k ^ (k >> 31 & 0x7fffffff)))
}

// gatherKeys writes the keys of coordinates [lo, hi) of the contributions
// into keys, contributor-major: keys[i*stride + j-lo] for contribution i.
func gatherKeys(keys []int32, stride int, cs []Contribution, lo, hi int) {
	for i := range cs {
		row := keys[i*stride : i*stride+hi-lo]
		if s := cs[i].Sparse; s != nil {
			clear(row) // key(+0) == 0
			k := sparseFrom(s.Index, lo)
			for ; k < len(s.Index) && int(s.Index[k]) < hi; k++ {
				row[int(s.Index[k])-lo] = key(s.Value[k])
			}
			continue
		}
		x := cs[i].Dense[lo:hi]
		row = row[:len(x)]
		for j, v := range x {
			row[j] = key(v)
		}
	}
}

// plusZero returns f, or +0 if f is -0.
func plusZero(f float32) float32 {
	if f == 0 {
		return 0
	}
	return f
}

// round32 rounds x to float32, giving +0 where that would be -0 (a tiny
// negative x rounds to -0).
func round32(x float64) float32 { return plusZero(float32(x)) }

// median64 returns the median of finite values: the middle one, or the mean
// of the two middle ones for an even count.
func median64(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}
