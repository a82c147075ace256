// Package gemm computes single-precision matrix products with a fixed,
// documented rounding order, so that every path (assembly or pure Go, any
// GOMAXPROCS, any blocking) produces the same bits.
//
// The contract of Sgemm, for every output element C[i,j]:
//
//	s := float32(0)         // or C[i,j] when acc is true
//	for p := 0; p < k; p++ {
//		s = s + float32(opA[i,p]*opB[p,j]) // product rounded, then added
//	}
//	C[i,j] = s
//
// No fused multiply-add is used anywhere. Inputs are never written.
//
// # Implementation
//
// Sgemm packs op(B) into panels of nr columns and, block by block, op(A)
// into panels of mr rows, then runs a register-blocked micro-kernel on each
// mr×nr tile of C. The sum over k is done in blocks of kc steps; between
// blocks the partial sums are stored to C as float32 and loaded again, which
// leaves the sequence of roundings unchanged. Tiles at the right and bottom
// edges are computed in a scratch tile from zero-padded panels, and only
// their valid part is copied to C. Large products are shared among up to
// GOMAXPROCS goroutines, each owning whole rectangles of C, so each element
// is still summed by one goroutine in order. Tiny products skip packing.
//
// On amd64 the micro-kernel is written in assembly. With AVX-512F (and an
// OS that saves the opmask and ZMM registers) it is a 12×32 tile in 24 ZMM
// accumulators; otherwise, with AVX2 (and an OS that saves the YMM
// registers), a 6×16 tile in twelve YMM accumulators. Both update the tile
// with VMULPS then VADDPS. Elsewhere, under the build tag noasm, or on older
// CPUs, a pure-Go 3×3 kernel is used. Each kernel packs panels of its own
// mr and nr, and all of them give the same bits. Kernel names the one that
// Sgemm runs, and HasAsm reports whether it is assembly.
package gemm
