package gemm

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

// microGo3x3 is the kernel.micro of goKernel.
//
// The conditions on ldc inside the loop are never true (ldc >= 3, and the
// thresholds are negative); they cut the loop body into basic blocks, one
// per row of the tile. Without them the compiler's scheduler computes every
// product of an iteration before the first addition and runs out of
// registers. Each threshold differs from the previous one, so that none can
// be proved false from the ones before it.
//
// Products are written float32(x*y) so that no compiler may fuse them into
// the addition.
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
	for len(a) >= 6 && len(b) >= 6 {
		b0, b1, b2 := b[0], b[1], b[2]
		x := a[0]
		c00 += float32(x * b0)
		c01 += float32(x * b1)
		c02 += float32(x * b2)
		if ldc < -4 {
			panic(errLdc)
		}
		x = a[1]
		c10 += float32(x * b0)
		c11 += float32(x * b1)
		c12 += float32(x * b2)
		if ldc < -3 {
			panic(errLdc)
		}
		x = a[2]
		c20 += float32(x * b0)
		c21 += float32(x * b1)
		c22 += float32(x * b2)
		if ldc < -2 {
			panic(errLdc)
		}
		b0, b1, b2 = b[3], b[4], b[5]
		x = a[3]
		c00 += float32(x * b0)
		c01 += float32(x * b1)
		c02 += float32(x * b2)
		if ldc < -1 {
			panic(errLdc)
		}
		x = a[4]
		c10 += float32(x * b0)
		c11 += float32(x * b1)
		c12 += float32(x * b2)
		if ldc < 0 {
			panic(errLdc)
		}
		x = a[5]
		c20 += float32(x * b0)
		c21 += float32(x * b1)
		c22 += float32(x * b2)
		a = a[6:]
		b = b[6:]
	}
	if len(a) >= 3 && len(b) >= 3 {
		b0, b1, b2 := b[0], b[1], b[2]
		x := a[0]
		c00 += float32(x * b0)
		c01 += float32(x * b1)
		c02 += float32(x * b2)
		x = a[1]
		c10 += float32(x * b0)
		c11 += float32(x * b1)
		c12 += float32(x * b2)
		x = a[2]
		c20 += float32(x * b0)
		c21 += float32(x * b1)
		c22 += float32(x * b2)
	}
	r0 := c[0:3:3]
	r1 := c[ldc : ldc+3 : ldc+3]
	r2 := c[2*ldc : 2*ldc+3 : 2*ldc+3]
	r0[0], r0[1], r0[2] = c00, c01, c02
	r1[0], r1[1], r1[2] = c10, c11, c12
	r2[0], r2[1], r2[2] = c20, c21, c22
}
