// Package vec provides element-wise kernels and reductions over float32
// slices whose results are bit-for-bit identical on every machine, with an
// AVX2 implementation on amd64.
//
// Contract:
//
//   - Every function is defined by a pure-Go reference loop, shown in its
//     doc comment and written out in ref.go. On amd64 with AVX2 (and an
//     operating system that saves the YMM registers) assembly computes the
//     same loop eight lanes at a time, with the same IEEE 754 operations in
//     the same order: VADDPS, VSUBPS, VMULPS, VDIVPS and VSQRTPS round
//     exactly as the scalar operations do, and no fused multiply-add is
//     used. Under the build tag noasm, on other architectures and on CPUs
//     without AVX2 the reference loops run. HasAsm reports which is in use.
//   - Exp, ExpSub, Tanh and GELU compute exactly f32.Exp and f32.Tanh per
//     element, special cases included: every branch of the scalar code that
//     some lane of a vector takes is computed for the vector, and the lanes
//     are blended. The last len%8 elements go through the same code with a
//     masked load (zeros in the other lanes) and a masked store; the other
//     functions leave them to the reference loop.
//   - Sum and Dot keep the lane order of the scalar definition: eight lane
//     accumulators, which is one vector accumulator, combined as
//     ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)), then the tail in index order.
//     Each lane is a chain of dependent additions, so they run at most at
//     eight elements per latency of a vector addition (two to four cycles,
//     depending on the CPU); more accumulators would be faster but would
//     round differently.
//   - Results go into a destination and inputs are never modified. A
//     destination may be the same slice as an input where a function says
//     so, but must not otherwise overlap one. Slices of different lengths
//     are programmer errors and panic with a constant message.
//   - Results that are NaN are NaN in every implementation; as in package
//     f32, their sign and payload bits are not specified.
//
// The package imports only the standard library and f32.
package vec
