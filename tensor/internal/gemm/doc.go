// Package gemm computes single-precision matrix products with a fixed,
// documented rounding order, so that every path (assembly or pure Go, any
// GOMAXPROCS, any blocking) produces the same bits.
//
// The contract of Sgemm, for every output element C[i,j]:
//
//	s := float32(0)         // or C[i,j] when acc is true
//	for p := 0; p < k; p++ {
//		s = fma.FMA32(opA[i,p], opB[p,j], s) // fused: one rounding
//	}
//	C[i,j] = s
//
// Each step is an IEEE 754 fused multiply-add in binary32: the product and
// the sum computed exactly and rounded once, to nearest even. That is what
// the FMA instructions of amd64 (VFMADD231PS) and arm64 (FMLA, FMADD) do,
// so they give the same bits as fma.FMA32, the exact pure-Go version; and a
// NaN result is always the canonical quiet NaN 0x7fc00000, whatever the
// payloads of the NaNs that produced it. Inputs are never written.
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
// accumulators; otherwise, with AVX2 and FMA3 (and an OS that saves the YMM
// registers), a 6×16 tile in twelve YMM accumulators. Both update the tile
// with VFMADD231PS and make NaNs canonical before storing it. On arm64 it
// is an 8×12 tile in 24 NEON accumulators, updated with FMLA. Under the
// build tag noasm, on other architectures, or on older x86 CPUs, a pure-Go
// 3×3 kernel is used: on arm64 the compiler turns its multiply-adds into
// fused FMADDS instructions, and elsewhere it calls fma.FMA32, which is
// exact but several times slower.
// Each kernel packs panels of its own mr and nr, and all of them give the
// same bits. Kernel names the one that Sgemm runs, and HasAsm reports
// whether it is assembly.
package gemm
