//go:build amd64 && !noasm

package gemm

import (
	"testing"

	"github.com/shoal-network/shoal/tensor/internal/cpu"
)

// TestKernelSelection checks that the fastest kernel the CPU supports is
// the one Sgemm uses, and that the AVX2 kernel remains available as the
// fallback.
func TestKernelSelection(t *testing.T) {
	t.Logf("AVX-512F: %v, AVX2 and FMA: %v, Kernel() = %q", cpu.HasAVX512F(), cpu.HasFMA(), Kernel())
	switch {
	case cpu.HasAVX512F():
		if active != &avx512Kernel || Kernel() != "avx512" {
			t.Fatalf("CPU has AVX-512F, but Kernel() = %q", Kernel())
		}
	case cpu.HasFMA():
		if active != &avx2Kernel || Kernel() != "avx2" {
			t.Fatalf("CPU has AVX2 and FMA, but Kernel() = %q", Kernel())
		}
	default:
		if active != &goKernel || Kernel() != "go" {
			t.Fatalf("CPU has no AVX2 and FMA, but Kernel() = %q", Kernel())
		}
	}
	if cpu.HasAVX512F() && cpu.HasFMA() && (len(asmKernels) != 2 || asmKernels[1] != &avx2Kernel) {
		t.Fatal("the AVX2 kernel is missing from asmKernels")
	}
}
