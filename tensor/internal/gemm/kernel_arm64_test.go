//go:build arm64 && !noasm

package gemm

import "testing"

// TestKernelSelection checks that Sgemm uses the NEON kernel.
func TestKernelSelection(t *testing.T) {
	if active != &neonKernel || Kernel() != "neon" || !HasAsm() {
		t.Fatalf("Kernel() = %q, HasAsm() = %v; want the NEON kernel", Kernel(), HasAsm())
	}
}
