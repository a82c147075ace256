//go:build amd64 && !noasm

package vec

import "github.com/shoal-network/shoal/tensor/internal/cpu"

// useAsm is whether the exported functions call the assembly.
var useAsm = cpu.HasAVX2()

// The AVX2 kernels of vec_amd64.s. They check nothing: the other slices
// must be at least as long as x (for adamWAVX2, as w). expAVX2,
// expSubAVX2, tanhAVX2 and geluAVX2 process all len(x) elements, the last
// len(x)%8 with masked loads and stores; the others process len(x)/8
// vectors of eight elements and ignore the remainder, which the exported
// functions handle.

//go:noescape
func expAVX2(dst, x []float32)

//go:noescape
func expSubAVX2(dst, x []float32, m float32)

//go:noescape
func tanhAVX2(dst, x []float32)

//go:noescape
func geluAVX2(dst, th, x []float32)

//go:noescape
func addAVX2(dst, x, y []float32)

//go:noescape
func mulAVX2(dst, x, y []float32)

//go:noescape
func accumulateAVX2(dst, x []float32)

//go:noescape
func addScaledAVX2(dst, x []float32, s float32)

//go:noescape
func scaleAVX2(dst, x []float32, s float32)

//go:noescape
func divScalarAVX2(dst, x []float32, s float32)

//go:noescape
func sumAVX2(x []float32) float32

//go:noescape
func dotAVX2(x, y []float32) float32

// maxAVX2 returns the maximum of x and true, or false if x holds a NaN or
// its maximum is zero.
//
//go:noescape
func maxAVX2(x []float32) (m float32, ok bool)

//go:noescape
func adamWAVX2(w, g, m, v []float32, p *adamParams)
