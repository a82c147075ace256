//go:build !amd64 || noasm

package cpu

// HasAVX2 reports whether the CPU has AVX2 and the OS saves YMM registers:
// never in this build, which has no assembly.
func HasAVX2() bool { return false }

// HasFMA reports whether the CPU has AVX2 and FMA3 and the OS saves YMM
// registers: never in this build, which has no assembly.
func HasFMA() bool { return false }

// HasAVX512F reports whether the CPU has AVX-512F and the OS saves the
// opmask and ZMM registers: never in this build, which has no assembly.
func HasAVX512F() bool { return false }
