package f32

import (
	"math"
	"math/rand/v2"
	"testing"
)

// benchInputs returns n values uniform in [lo, hi).
func benchInputs(n int, lo, hi float32) []float32 {
	r := rand.New(rand.NewPCG(3, 4))
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = lo + float32((hi-lo)*r.Float32())
	}
	return xs
}

var sink float32

// benchScalar reports the time per call over 1024 inputs of the range
// typical of softmax (Exp), losses (Log) and activations (Tanh, Sigmoid).
func benchScalar(b *testing.B, f func(float32) float32, lo, hi float32) {
	xs := benchInputs(1024, lo, hi)
	var s float32
	for b.Loop() {
		for _, x := range xs {
			s += f(x)
		}
	}
	sink = s
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(xs)), "ns/call")
}

func BenchmarkExp(b *testing.B)     { benchScalar(b, Exp, -20, 5) }
func BenchmarkLog(b *testing.B)     { benchScalar(b, Log, 1e-6, 1) }
func BenchmarkTanh(b *testing.B)    { benchScalar(b, Tanh, -4, 4) }
func BenchmarkSigmoid(b *testing.B) { benchScalar(b, Sigmoid, -8, 8) }

// Baselines: the math package in float64, for comparison only.
func BenchmarkMathExp(b *testing.B) {
	benchScalar(b, func(x float32) float32 { return float32(math.Exp(float64(x))) }, -20, 5)
}

func BenchmarkMathTanh(b *testing.B) {
	benchScalar(b, func(x float32) float32 { return float32(math.Tanh(float64(x))) }, -4, 4)
}

func benchSlice(b *testing.B, to func(dst, src []float32), lo, hi float32) {
	src := benchInputs(4096, lo, hi)
	dst := make([]float32, len(src))
	b.SetBytes(int64(4 * len(src)))
	for b.Loop() {
		to(dst, src)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/elem")
}

func BenchmarkExpTo(b *testing.B)     { benchSlice(b, ExpTo, -20, 5) }
func BenchmarkLogTo(b *testing.B)     { benchSlice(b, LogTo, 1e-6, 1) }
func BenchmarkTanhTo(b *testing.B)    { benchSlice(b, TanhTo, -4, 4) }
func BenchmarkSigmoidTo(b *testing.B) { benchSlice(b, SigmoidTo, -8, 8) }
