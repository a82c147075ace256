//go:build !arm64

package gemm

import (
	"math"

	"github.com/shoal-network/shoal/tensor/internal/fma"
)

// fusedFmadd reports whether fmaFast is the hardware's fused multiply-add.
const fusedFmadd = false

// This build cannot count on the compiler to emit a fused instruction
// (amd64's base instruction set has none, and with GOAMD64=v3 a multiply
// that takes a memory operand is not fused), so fmadd computes in
// software: the fast path of fma.FMA32 inline (fmaFast: the float64 sum,
// correct whenever any of its 28 low mantissa bits is set, which is almost
// always), and fma.FMA32 itself otherwise (fmaSlow), which also covers
// every NaN and infinity.

// fmaSlow is fma.FMA32, for when fmaFast reports false.
func fmaSlow(x, y, z float32) float32 { return fma.FMA32(x, y, z) }

// fmaFast returns float32(s) for s = x*y + z computed in float64, and
// whether that is the correctly rounded fused result: when one of s's 28
// low mantissa bits is set (see package fma, step 5 of its method), or when
// the product is zero, so that s = z + ±0 is exact (zeros are common in
// the matrices of a network: masked attention, padding, sparse
// gradients). Otherwise, and for every NaN or infinite product, it reports
// false. A NaN result may carry any payload; callers make NaNs canonical.
func fmaFast(x, y, z float32) (float32, bool) {
	p := float64(float64(x) * float64(y))
	s := p + float64(z)
	return float32(s), math.Float64bits(s)&(1<<28-1) != 0 || p == 0
}
