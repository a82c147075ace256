//go:build !amd64 || noasm

package vec

// useAsm is whether the exported functions call the assembly; there is
// none in this build, and the functions below are never called.
const useAsm = false

const errNoAsm = "vec: no assembly in this build"

func expAVX2(dst, x []float32)                      { panic(errNoAsm) }
func expSubAVX2(dst, x []float32, m float32)        { panic(errNoAsm) }
func tanhAVX2(dst, x []float32)                     { panic(errNoAsm) }
func geluAVX2(dst, th, x []float32)                 { panic(errNoAsm) }
func addAVX2(dst, x, y []float32)                   { panic(errNoAsm) }
func mulAVX2(dst, x, y []float32)                   { panic(errNoAsm) }
func accumulateAVX2(dst, x []float32)               { panic(errNoAsm) }
func addScaledAVX2(dst, x []float32, s float32)     { panic(errNoAsm) }
func scaleAVX2(dst, x []float32, s float32)         { panic(errNoAsm) }
func divScalarAVX2(dst, x []float32, s float32)     { panic(errNoAsm) }
func sumAVX2(x []float32) float32                   { panic(errNoAsm) }
func dotAVX2(x, y []float32) float32                { panic(errNoAsm) }
func maxAVX2(x []float32) (m float32, ok bool)      { panic(errNoAsm) }
func adamWAVX2(w, g, m, v []float32, p *adamParams) { panic(errNoAsm) }
