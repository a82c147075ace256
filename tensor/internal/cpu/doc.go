// Package cpu tells which x86-64 vector extensions the CPU and the
// operating system support, for the assembly kernels of packages gemm and
// vec. It asks once, when the program starts (CPUID and XGETBV).
//
// In builds without assembly (other architectures, or the build tag
// noasm) every feature reads as absent.
package cpu
