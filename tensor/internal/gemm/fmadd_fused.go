//go:build arm64

package gemm

// fusedFmadd reports whether fmaFast is the hardware's fused multiply-add.
const fusedFmadd = true

// fmaFast returns x*y + z rounded once to float32, and true: in this
// build it is always right (a NaN result may carry any payload; callers
// make NaNs canonical).
//
// On arm64 the compiler fuses a float32 multiply feeding an addition into
// one FMADDS instruction, which rounds once; TestFmadd, and the kernel
// tests against Ref, check that it did, on cases where rounding the
// product first gives other bits. (amd64 built for x86-64-v3 fuses too,
// but not when the multiply has taken a memory operand, which the kernel
// tests caught; so amd64 builds use fma.FMA32.)
func fmaFast(x, y, z float32) (float32, bool) { return x*y + z, true }

// fmaSlow is fmadd; fmaFast never asks for it in this build.
func fmaSlow(x, y, z float32) float32 { return x*y + z }
