//go:build amd64 && !noasm

package gemm

import "github.com/shoal-network/shoal/tensor/internal/cpu"

// kern6x16 is the AVX2 micro-kernel; see kernel_amd64.s. It accesses
// a[0:6*k], b[0:16*k] and the 6×16 tile of c with leading dimension ldc.
//
//go:noescape
func kern6x16(k int, a, b, c *float32, ldc int, load bool)

// kern12x32 is the AVX-512 micro-kernel; see kernel512_amd64.s. It accesses
// a[0:12*k], b[0:32*k] and the 12×32 tile of c with leading dimension ldc.
//
//go:noescape
func kern12x32(k int, a, b, c *float32, ldc int, load bool)

// avx512Kernel uses kern12x32. The block of op(A) (mc×kc, 288 KiB) stays
// in L2; kc = 512 halves the loads and stores of C against 256, which
// measured faster at n = 1024 and 2048 on a Zen 4 core although a panel of
// op(B) (64 KiB) then exceeds its L1.
var avx512Kernel = kernel{
	name: "avx512",
	mr:   12, nr: 32,
	mc: 144, kc: 512,
	bmax: 4 << 20,
	// About 20 µs of work.
	parWork: 2.5e6,
	micro:   microAVX512,
}

func microAVX512(k int, a, b, c []float32, ldc int, load bool) {
	// Bounds checks for the assembly, which does none.
	_ = a[12*k-1]
	_ = b[32*k-1]
	_ = c[11*ldc+31]
	kern12x32(k, &a[0], &b[0], &c[0], ldc, load)
}

// avx2Kernel uses kern6x16. With kc = 512 a panel of op(B) (32 KiB) fills
// L1 while the block of op(A) (mc×kc, 288 KiB) stays in L2.
var avx2Kernel = kernel{
	name: "avx2",
	mr:   6, nr: 16,
	mc: 144, kc: 512,
	bmax: 4 << 20,
	// About 20 µs of work: 128×128×128 stays on one goroutine.
	parWork: 1.25e6,
	micro:   microAVX2,
}

func microAVX2(k int, a, b, c []float32, ldc int, load bool) {
	// Bounds checks for the assembly, which does none.
	_ = a[6*k-1]
	_ = b[16*k-1]
	_ = c[5*ldc+15]
	kern6x16(k, &a[0], &b[0], &c[0], ldc, load)
}

// asmKernels lists the assembly kernels that the CPU can run, fastest
// first.
var asmKernels = func() []*kernel {
	var list []*kernel
	if cpu.HasAVX512F() {
		list = append(list, &avx512Kernel)
	}
	if cpu.HasFMA() {
		list = append(list, &avx2Kernel)
	}
	return list
}()

// asmKernel is the fastest assembly kernel, or nil when the CPU can run
// none.
var asmKernel = func() *kernel {
	if len(asmKernels) > 0 {
		return asmKernels[0]
	}
	return nil
}()

// active is the kernel that Sgemm uses.
var active = func() *kernel {
	if asmKernel != nil {
		return asmKernel
	}
	return &goKernel
}()

// HasAsm reports whether Sgemm uses an assembly micro-kernel.
func HasAsm() bool { return asmKernel != nil }
