package gemm

import (
	"math"

	"github.com/shoal-network/shoal/tensor/internal/fma"
)

// goKernel is the pure-Go micro-kernel: a 3×3 tile of C held in nine scalar
// accumulators. On amd64 the compiler has fifteen usable float registers;
// nine accumulators, three values of op(B) and three products fit.
var goKernel = kernel{
	name: "go",
	mr:   3, nr: 3,
	mc: 120, kc: 256,
	bmax: 4 << 20,
	// About 20 µs of work.
	parWork: 128 << 10,
	micro:   microGo3x3,
}

// microGo3x3 is the kernel.micro of goKernel. Each step is a fused
// multiply-add, one rounding, so the result is Ref's; NaNs are made
// canonical at the end, as the assembly kernels do. Each row of the tile
// takes fmaFast's results when all three are right, and fmaSlow otherwise
// (on arm64 fmaFast is the fused instruction and always right).
//
// The conditions on ldc inside the loop are never true (ldc >= 3, and the
// thresholds are negative); they cut the loop body into basic blocks, one
// per row of the tile. Without them the compiler's scheduler may compute
// every product of an iteration before the first addition and run out of
// registers. Each threshold differs from the previous one, so that none can
// be proved false from the ones before it.
//
//go:noinline
func microGo3x3(k int, a, b, c []float32, ldc int, load bool) {
	var c00, c01, c02, c10, c11, c12, c20, c21, c22 float32
	if load {
		r0 := c[0:3:3]
		r1 := c[ldc : ldc+3 : ldc+3]
		r2 := c[2*ldc : 2*ldc+3 : 2*ldc+3]
		c00, c01, c02 = r0[0], r0[1], r0[2]
		c10, c11, c12 = r1[0], r1[1], r1[2]
		c20, c21, c22 = r2[0], r2[1], r2[2]
	}
	a = a[:3*k]
	b = b[:3*k]
	for len(a) >= 3 && len(b) >= 3 {
		b0, b1, b2 := b[0], b[1], b[2]
		x := a[0]
		{
			r0, ok0 := fmaFast(x, b0, c00)
			r1, ok1 := fmaFast(x, b1, c01)
			r2, ok2 := fmaFast(x, b2, c02)
			if ok0 && ok1 && ok2 {
				c00, c01, c02 = r0, r1, r2
			} else {
				c00, c01, c02 = fmaSlow(x, b0, c00), fmaSlow(x, b1, c01), fmaSlow(x, b2, c02)
			}
		}
		if ldc < -2 {
			panic(errLdc)
		}
		x = a[1]
		{
			r0, ok0 := fmaFast(x, b0, c10)
			r1, ok1 := fmaFast(x, b1, c11)
			r2, ok2 := fmaFast(x, b2, c12)
			if ok0 && ok1 && ok2 {
				c10, c11, c12 = r0, r1, r2
			} else {
				c10, c11, c12 = fmaSlow(x, b0, c10), fmaSlow(x, b1, c11), fmaSlow(x, b2, c12)
			}
		}
		if ldc < -1 {
			panic(errLdc)
		}
		x = a[2]
		{
			r0, ok0 := fmaFast(x, b0, c20)
			r1, ok1 := fmaFast(x, b1, c21)
			r2, ok2 := fmaFast(x, b2, c22)
			if ok0 && ok1 && ok2 {
				c20, c21, c22 = r0, r1, r2
			} else {
				c20, c21, c22 = fmaSlow(x, b0, c20), fmaSlow(x, b1, c21), fmaSlow(x, b2, c22)
			}
		}
		a = a[3:]
		b = b[3:]
	}
	r0 := c[0:3:3]
	r1 := c[ldc : ldc+3 : ldc+3]
	r2 := c[2*ldc : 2*ldc+3 : 2*ldc+3]
	r0[0], r0[1], r0[2] = canon(c00), canon(c01), canon(c02)
	r1[0], r1[1], r1[2] = canon(c10), canon(c11), canon(c12)
	r2[0], r2[1], r2[2] = canon(c20), canon(c21), canon(c22)
}

// nan is the canonical quiet NaN, fma.NaN32Bits.
var nan = math.Float32frombits(fma.NaN32Bits)

// canon returns x, or the canonical NaN if x is a NaN.
func canon(x float32) float32 {
	if x != x {
		return nan
	}
	return x
}
