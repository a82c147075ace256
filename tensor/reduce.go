package tensor

import "github.com/shoal-network/shoal/tensor/internal/vec"

// Sum returns the sum of x in lane order, the order every reduction in this
// package uses:
//
//	s[l] = x[l] + x[l+8] + x[l+16] + ...   for l = 0..7, over the first len(x)&^7 elements, in index order
//	t    = ((s[0]+s[1]) + (s[2]+s[3])) + ((s[4]+s[5]) + (s[6]+s[7]))
//	t    = t + x[len(x)&^7] + ... + x[len(x)-1]
//
// The order matches one eight-lane vector accumulator, so a vectorised path
// can reproduce it exactly (and does, on AVX2: package vec).
func Sum(x []float32) float32 { return vec.Sum(x) }

// sumRef is the reference loop of Sum.
func sumRef(x []float32) float32 {
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	n := len(x) &^ 7
	for i := 0; i < n; i += 8 {
		v := x[i : i+8 : i+8]
		s0 += v[0]
		s1 += v[1]
		s2 += v[2]
		s3 += v[3]
		s4 += v[4]
		s5 += v[5]
		s6 += v[6]
		s7 += v[7]
	}
	t := ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
	for _, v := range x[n:] {
		t += v
	}
	return t
}

// Dot returns the sum of x[i]*y[i] in the lane order of Sum, each product
// rounded to float32 before it is added.
func Dot(x, y []float32) float32 { return vec.Dot(x, y) }

// dotRef is the reference loop of Dot.
func dotRef(x, y []float32) float32 {
	if len(x) != len(y) {
		panic("tensor: Dot length mismatch")
	}
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	n := len(x) &^ 7
	for i := 0; i < n; i += 8 {
		a := x[i : i+8 : i+8]
		b := y[i : i+8 : i+8]
		s0 += float32(a[0] * b[0])
		s1 += float32(a[1] * b[1])
		s2 += float32(a[2] * b[2])
		s3 += float32(a[3] * b[3])
		s4 += float32(a[4] * b[4])
		s5 += float32(a[5] * b[5])
		s6 += float32(a[6] * b[6])
		s7 += float32(a[7] * b[7])
	}
	t := ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
	for i := n; i < len(x); i++ {
		t += float32(x[i] * y[i])
	}
	return t
}

// Max returns the largest element of x (NaN if any element is NaN); x must
// not be empty.
func Max(x []float32) float32 { return vec.Max(x) }

// maxRef is the reference loop of Max.
func maxRef(x []float32) float32 {
	m := x[0]
	for _, v := range x[1:] {
		if v > m || v != v {
			m = v
		}
	}
	return m
}
