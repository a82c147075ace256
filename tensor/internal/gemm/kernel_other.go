//go:build (!amd64 && !arm64) || noasm

package gemm

// asmKernels lists the assembly kernels; there are none in this build.
var asmKernels []*kernel

// asmKernel is the assembly kernel; there is none in this build.
var asmKernel *kernel

// active is the kernel that Sgemm uses.
var active = &goKernel

// HasAsm reports whether Sgemm uses the assembly micro-kernel.
func HasAsm() bool { return false }
