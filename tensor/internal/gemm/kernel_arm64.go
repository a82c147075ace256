//go:build arm64 && !noasm

package gemm

// kern8x12 is the NEON micro-kernel; see kernel_arm64.s. It accesses
// a[0:8*k], b[0:12*k] and the 8×12 tile of c with leading dimension ldc.
//
//go:noescape
func kern8x12(k int, a, b, c *float32, ldc int, load bool)

// neonKernel uses kern8x12: 24 accumulators of four lanes, three vectors
// of op(B) and two broadcasts fill the 32 vector registers but two. With
// kc = 512 a panel of op(B) (24 KiB) stays in L1 while the block of op(A)
// (mc×kc, 256 KiB) stays in L2.
var neonKernel = kernel{
	name: "neon",
	mr:   8, nr: 12,
	mc: 128, kc: 512,
	bmax: 4 << 20,
	// About 20 µs of work on a core that does 25 GFLOP/s.
	parWork: 2.5e5,
	micro:   microNEON,
}

func microNEON(k int, a, b, c []float32, ldc int, load bool) {
	// Bounds checks for the assembly, which does none.
	_ = a[8*k-1]
	_ = b[12*k-1]
	_ = c[7*ldc+11]
	kern8x12(k, &a[0], &b[0], &c[0], ldc, load)
}

// asmKernels lists the assembly kernels: NEON is part of every arm64 CPU.
var asmKernels = []*kernel{&neonKernel}

// asmKernel is the fastest assembly kernel.
var asmKernel = &neonKernel

// active is the kernel that Sgemm uses.
var active = &neonKernel

// HasAsm reports whether Sgemm uses an assembly micro-kernel: always, on
// arm64.
func HasAsm() bool { return true }
