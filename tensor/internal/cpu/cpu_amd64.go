//go:build amd64 && !noasm

package cpu

// cpuid executes CPUID with the given leaf and subleaf.
func cpuid(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

// xgetbv0 reads extended control register XCR0. Only call it when CPUID
// reports OSXSAVE.
func xgetbv0() (eax, edx uint32)

var (
	avx2    = detectAVX2()
	fma     = avx2 && detectFMA()
	avx512f = detectAVX512F()
)

// HasAVX2 reports whether the CPU has AVX2 and the OS saves YMM registers.
func HasAVX2() bool { return avx2 }

// HasFMA reports whether the CPU has AVX2 and the FMA3 fused multiply-add
// instructions on YMM registers, and the OS saves YMM registers.
func HasFMA() bool { return fma }

// HasAVX512F reports whether the CPU has AVX-512F and the OS saves the
// opmask and ZMM registers.
func HasAVX512F() bool { return avx512f }

func detectAVX2() bool {
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

func detectAVX512F() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const osxsave = 1 << 27
	if ecx1&osxsave == 0 {
		return false
	}
	// XCR0 bits 1 (SSE), 2 (AVX), 5 (opmask), 6 (upper halves of ZMM0-15)
	// and 7 (ZMM16-31).
	if xcr0, _ := xgetbv0(); xcr0&0xe6 != 0xe6 {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const avx512f = 1 << 16
	return ebx7&avx512f != 0
}

func detectFMA() bool {
	_, _, ecx1, _ := cpuid(1, 0)
	const fma = 1 << 12
	return ecx1&fma != 0
}
