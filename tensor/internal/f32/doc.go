// Package f32 provides float32 elementary functions (Exp, Log, Tanh,
// Sigmoid) whose results are bit-for-bit identical on every machine and
// CPU architecture.
//
// The functions are written in pure Go and use only float32 additions,
// subtractions, multiplications, divisions and comparisons, which IEEE 754
// defines to be correctly rounded, plus integer manipulation of the exponent
// bits. They never call the math package's Exp, Log or Tanh, some of which
// are implemented in architecture-specific assembly with different rounding.
//
// The Go specification allows a compiler to fuse x*y + z into a single
// fused multiply-add, which rounds once instead of twice and so changes the
// result on architectures that have such an instruction (arm64, ppc64le,
// s390x, riscv64, and amd64 at GOAMD64=v3). An explicit conversion forbids
// the fusion, so every product that feeds an addition or subtraction in
// this package is written as
//
//	float32(a*b) + c
//
// Keep that form when changing the code. The golden-value tests catch a
// change in any output bit when run on such an architecture; the compiled
// code can also be checked directly, for example (no output means no fused
// instruction):
//
//	GOARCH=arm64 go test -c -o f32.arm64 .
//	go tool objdump -s 'internal/f32\.' f32.arm64 | grep -E 'FN?M(ADD|SUB)'
//
// Accuracy: the largest distance, in ulps, between a result and float64
// math rounded to float32, over all 2^32 inputs (see TestAccuracyExhaustive):
//
//	Exp      1 ulp
//	Log      1 ulp
//	Tanh     1 ulp
//	Sigmoid  2 ulp
//
// Results that are NaN are NaN on every platform, but their sign and
// payload bits are not specified. Each function's comment states its
// special-value behaviour.
package f32
