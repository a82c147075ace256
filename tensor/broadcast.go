package tensor

import "github.com/shoal-network/shoal/tensor/internal/vec"

// BroadcastShape returns the shape that a and b broadcast to under NumPy's
// rules (dimensions aligned from the right; a dimension of 1 stretches), and
// false when they are incompatible.
func BroadcastShape(a, b []int) ([]int, bool) {
	return broadcastShape(nil, a, b)
}

// broadcastShape is BroadcastShape appending to dst.
func broadcastShape(dst, a, b []int) ([]int, bool) {
	n := max(len(a), len(b))
	out := append(dst[:0], make([]int, n)...)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, false
		}
	}
	return out, true
}

// broadcastStrides returns, for an operand of shape s broadcast to out, the
// element stride of every output dimension in the operand (0 where the
// operand is stretched).
func broadcastStrides(s, out []int) []int {
	st := make([]int, len(out))
	stride := 1
	for i := len(out) - 1; i >= 0; i-- {
		j := len(s) - len(out) + i
		if j >= 0 && s[j] != 1 {
			st[i] = stride
		}
		if j >= 0 {
			stride *= s[j]
		}
	}
	return st
}

// isSuffix reports whether an operand of shape b broadcast to out is one
// block repeated: b, less its leading ones, equals out's trailing dimensions.
func isSuffix(b, out []int) bool {
	if len(b) > len(out) {
		return false
	}
	// Leading ones of b are free.
	k := 0
	for k < len(b) && b[k] == 1 {
		k++
	}
	return sameShape(b[k:], out[len(out)-len(b)+k:])
}

// walk calls f(i, ia, ib) for every output index i in row-major order,
// with the matching element offsets of the two operands.
func walk(out, sa, sb []int, f func(i, ia, ib int)) {
	n := numel(out)
	if n == 0 {
		return
	}
	idx := make([]int, len(out))
	ia, ib := 0, 0
	for i := 0; i < n; i++ {
		f(i, ia, ib)
		for d := len(out) - 1; d >= 0; d-- {
			idx[d]++
			ia += sa[d]
			ib += sb[d]
			if idx[d] < out[d] {
				break
			}
			ia -= sa[d] * out[d]
			ib -= sb[d] * out[d]
			idx[d] = 0
		}
	}
}

// binary applies dst = a op b with broadcasting; dst must have the
// broadcast shape. Same-shape operands and a repeated trailing block (a
// bias) take direct loops; anything else walks the strided indices.
func binary(dst, a, b *Tensor, mul bool) {
	var sh [8]int
	out, ok := broadcastShape(sh[:0], a.shape, b.shape)
	if !ok || !sameShape(out, dst.shape) {
		panic("tensor: broadcast shape mismatch")
	}
	switch {
	case sameShape(a.shape, out) && sameShape(b.shape, out):
		addOrMul(dst.Data, a.Data, b.Data, mul)
	case sameShape(a.shape, out) && isSuffix(b.shape, out) && len(b.Data) > 0:
		m := len(b.Data)
		for r := 0; r < len(dst.Data); r += m {
			addOrMul(dst.Data[r:r+m], a.Data[r:r+m], b.Data, mul)
		}
	default:
		walk(out, broadcastStrides(a.shape, out), broadcastStrides(b.shape, out), func(i, ia, ib int) {
			if mul {
				dst.Data[i] = float32(a.Data[ia] * b.Data[ib])
			} else {
				dst.Data[i] = a.Data[ia] + b.Data[ib]
			}
		})
	}
}

// addOrMul computes dst[i] = x[i] + y[i], or x[i] * y[i] when mul.
func addOrMul(dst, x, y []float32, mul bool) {
	if mul {
		vec.Mul(dst, x, y)
	} else {
		vec.Add(dst, x, y)
	}
}

// Add computes dst = a + b with broadcasting.
func Add(dst, a, b *Tensor) { binary(dst, a, b, false) }

// Mul computes dst = a * b (element-wise) with broadcasting.
func Mul(dst, a, b *Tensor) { binary(dst, a, b, true) }

// reduceInto accumulates g (of the broadcast shape out) into the gradient
// ga of an operand of shape sa: ga[ia] += term(i, ia, ib), output elements
// visited in row-major order. sb is the other operand's shape.
func reduceInto(out, sa, sb []int, term func(i, ia, ib int)) {
	walk(out, broadcastStrides(sa, out), broadcastStrides(sb, out), term)
}

// AddGrad accumulates the gradients of dst = a + b: da += reduce(dy),
// db += reduce(dy), summing over broadcast dimensions in row-major order of
// the output. da or db may be nil.
func AddGrad(da, db []float32, a, b []int, dy []float32) {
	var sh [8]int
	out, _ := broadcastShape(sh[:0], a, b)
	if da != nil {
		if sameShape(a, out) {
			Accumulate(da, dy)
		} else {
			reduceInto(out, a, b, func(i, ia, _ int) { da[ia] += dy[i] })
		}
	}
	if db != nil {
		switch {
		case sameShape(b, out):
			Accumulate(db, dy)
		case isSuffix(b, out) && len(db) > 0:
			m := len(db)
			for r := 0; r < len(dy); r += m {
				Accumulate(db, dy[r:r+m])
			}
		default:
			reduceInto(out, a, b, func(i, _, ib int) { db[ib] += dy[i] })
		}
	}
}

// MulGrad accumulates the gradients of dst = a * b: da += reduce(dy*b),
// db += reduce(dy*a). da or db may be nil.
func MulGrad(da, db []float32, a, b *Tensor, dy []float32) {
	out, _ := BroadcastShape(a.shape, b.shape)
	sa, sb := broadcastStrides(a.shape, out), broadcastStrides(b.shape, out)
	if da != nil {
		walk(out, sa, sb, func(i, ia, ib int) { da[ia] += float32(dy[i] * b.Data[ib]) })
	}
	if db != nil {
		walk(out, sa, sb, func(i, ia, ib int) { db[ib] += float32(dy[i] * a.Data[ia]) })
	}
}

// Permute writes into dst the tensor src with its axes reordered:
// dst's axis i is src's axis perm[i].
func Permute(dst, src *Tensor, perm []int) {
	if len(perm) != len(src.shape) || len(dst.shape) != len(perm) {
		panic("tensor: Permute rank mismatch")
	}
	st := permStrides(src.shape, perm)
	for i, p := range perm {
		if dst.shape[i] != src.shape[p] {
			panic("tensor: Permute shape mismatch")
		}
	}
	walk(dst.shape, st, st, func(i, is, _ int) { dst.Data[i] = src.Data[is] })
}

// PermuteGrad accumulates dsrc += the inverse permutation of ddst.
func PermuteGrad(dsrc []float32, srcShape []int, ddst []float32, perm []int) {
	out := make([]int, len(perm))
	for i, p := range perm {
		out[i] = srcShape[p]
	}
	st := permStrides(srcShape, perm)
	walk(out, st, st, func(i, is, _ int) { dsrc[is] += ddst[i] })
}

// permStrides returns, for each axis of the permuted tensor, the element
// stride in the source.
func permStrides(shape, perm []int) []int {
	strides := make([]int, len(shape))
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		strides[i] = s
		s *= shape[i]
	}
	seen := make([]bool, len(perm))
	out := make([]int, len(perm))
	for i, p := range perm {
		if p < 0 || p >= len(perm) || seen[p] {
			panic("tensor: Permute invalid permutation")
		}
		seen[p] = true
		out[i] = strides[p]
	}
	return out
}
