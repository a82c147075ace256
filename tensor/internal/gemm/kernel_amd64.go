//go:build amd64 && !noasm

package gemm

// cpuid executes CPUID with the given leaf and subleaf.
func cpuid(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

// xgetbv0 reads extended control register XCR0. Only call it when CPUID
// reports OSXSAVE.
func xgetbv0() (eax, edx uint32)

// kern6x16 is the AVX2 micro-kernel; see kernel_amd64.s. It accesses
// a[0:6*k], b[0:16*k] and the 6×16 tile of c with leading dimension ldc.
//
//go:noescape
func kern6x16(k int, a, b, c *float32, ldc int, load bool)

// hasAVX2 reports whether the CPU has AVX2 and the OS saves YMM registers.
func hasAVX2() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		osxsave = 1 << 27
		avx     = 1 << 28
	)
	if ecx1&osxsave == 0 || ecx1&avx == 0 {
		return false
	}
	// XCR0 bit 1: SSE state, bit 2: AVX (upper YMM) state.
	if xcr0, _ := xgetbv0(); xcr0&6 != 6 {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const avx2 = 1 << 5
	return ebx7&avx2 != 0
}

// avx2Kernel uses kern6x16. With kc = 256 a panel of op(B) (16 KiB) stays
// in L1 while the block of op(A) (mc×kc, 144 KiB) stays in L2.
var avx2Kernel = kernel{
	mr: 6, nr: 16,
	mc: 144, kc: 256,
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

// asmKernel is the assembly kernel, or nil when the CPU cannot run it.
var asmKernel = func() *kernel {
	if hasAVX2() {
		return &avx2Kernel
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

// HasAsm reports whether Sgemm uses the assembly micro-kernel.
func HasAsm() bool { return asmKernel != nil }
