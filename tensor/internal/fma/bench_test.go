package fma

import (
	"math"
	"math/rand/v2"
	"testing"
)

// benchInputs returns n operands of the size a training kernel sees.
func benchInputs(n int) (a, b, c []float32) {
	r := rand.New(rand.NewPCG(3, 4))
	a, b, c = make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range a {
		a[i] = float32(2*r.Float32()) - 1
		b[i] = float32(2*r.Float32()) - 1
		c[i] = float32(2*r.Float32()) - 1
	}
	return a, b, c
}

var sink float32

// benchChain reports the time per operation of s = f(a[i], b[i], s): one
// dependent chain, as in a dot product's accumulator.
func benchChain(bn *testing.B, f func(a, b, c float32) float32) {
	a, b, _ := benchInputs(1024)
	var s float32
	for bn.Loop() {
		for i := range a {
			s = f(a[i], b[i], s)
		}
	}
	sink = s
	bn.ReportMetric(float64(bn.Elapsed().Nanoseconds())/float64(bn.N*len(a)), "ns/fma")
}

// benchIndep reports the time per operation of d[i] = f(a[i], b[i], c[i]):
// independent operations, as across a kernel's many accumulators.
func benchIndep(bn *testing.B, f func(a, b, c float32) float32) {
	a, b, c := benchInputs(1024)
	d := make([]float32, len(a))
	for bn.Loop() {
		for i := range a {
			d[i] = f(a[i], b[i], c[i])
		}
	}
	sink = d[0]
	bn.ReportMetric(float64(bn.Elapsed().Nanoseconds())/float64(bn.N*len(a)), "ns/fma")
}

// mulAdd is the unfused operation of today's kernels, rounded twice.
func mulAdd(a, b, c float32) float32 { return float32(a*b) + c }

// mathFMA rounds to float64, then to float32: fast, and wrong in rare cases.
func mathFMA(a, b, c float32) float32 {
	return float32(math.FMA(float64(a), float64(b), float64(c)))
}

func BenchmarkChainFMA32(b *testing.B)   { benchChain(b, FMA32) }
func BenchmarkChainMulAdd(b *testing.B)  { benchChain(b, mulAdd) }
func BenchmarkChainMathFMA(b *testing.B) { benchChain(b, mathFMA) }
func BenchmarkIndepFMA32(b *testing.B)   { benchIndep(b, FMA32) }
func BenchmarkIndepMulAdd(b *testing.B)  { benchIndep(b, mulAdd) }
func BenchmarkIndepMathFMA(b *testing.B) { benchIndep(b, mathFMA) }
