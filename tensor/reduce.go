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
// can reproduce it exactly. Package vec holds the reference loop and the
// AVX2 path, and tests one against the other.
func Sum(x []float32) float32 { return vec.Sum(x) }

// Dot returns the sum of x[i]*y[i] in the lane order of Sum, each product
// rounded to float32 before it is added.
func Dot(x, y []float32) float32 { return vec.Dot(x, y) }

// Max returns the largest element of x (NaN if any element is NaN); x must
// not be empty.
func Max(x []float32) float32 { return vec.Max(x) }
