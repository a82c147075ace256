package vec

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchSizes are a softmax or activation row (4096) and a large parameter
// tensor (1M elements, beyond the caches).
var benchSizes = []int{4096, 1 << 20}

func benchData(n int, lo, hi float32, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 5))
	x := make([]float32, n)
	for i := range x {
		x[i] = lo + float32((hi-lo)*r.Float32())
	}
	return x
}

// benchImpls runs one sub-benchmark per implementation and size.
// impl=vec is the exported function (the assembly when HasAsm), impl=go
// the reference loop. Each reports elements per second in Melem/s and
// sets the bytes read and written per element for MB/s.
func benchImpls(b *testing.B, bytesPerElem int, impls map[string]func(n int) func()) {
	for _, name := range []string{"vec", "go"} {
		f, ok := impls[name]
		if !ok {
			continue
		}
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("impl=%s/n=%d", name, n), func(b *testing.B) {
				run := f(n)
				b.SetBytes(int64(bytesPerElem * n))
				for b.Loop() {
					run()
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Melem/s")
			})
		}
	}
}

var sinkF float32

func unary(f func(dst, x []float32), lo, hi float32) func(n int) func() {
	return func(n int) func() {
		x := benchData(n, lo, hi, 1)
		dst := make([]float32, n)
		return func() { f(dst, x) }
	}
}

func BenchmarkExp(b *testing.B) {
	benchImpls(b, 8, map[string]func(int) func(){
		"vec": unary(Exp, -20, 5), "go": unary(expGo, -20, 5),
	})
}

func BenchmarkExpSub(b *testing.B) {
	sub := func(f func(dst, x []float32, m float32)) func(dst, x []float32) {
		return func(dst, x []float32) { f(dst, x, 5) }
	}
	benchImpls(b, 8, map[string]func(int) func(){
		"vec": unary(sub(ExpSub), -15, 5), "go": unary(sub(expSubGo), -15, 5),
	})
}

func BenchmarkTanh(b *testing.B) {
	benchImpls(b, 8, map[string]func(int) func(){
		"vec": unary(Tanh, -4, 4), "go": unary(tanhGo, -4, 4),
	})
}

func BenchmarkGELU(b *testing.B) {
	gelu := func(f func(dst, th, x []float32)) func(n int) func() {
		return func(n int) func() {
			x := benchData(n, -4, 4, 1)
			dst, th := make([]float32, n), make([]float32, n)
			return func() { f(dst, th, x) }
		}
	}
	benchImpls(b, 12, map[string]func(int) func(){"vec": gelu(GELU), "go": gelu(geluGo)})
}

func binary(f func(dst, x, y []float32)) func(n int) func() {
	return func(n int) func() {
		x, y := benchData(n, -1, 1, 1), benchData(n, -1, 1, 2)
		dst := make([]float32, n)
		return func() { f(dst, x, y) }
	}
}

func BenchmarkAdd(b *testing.B) {
	benchImpls(b, 12, map[string]func(int) func(){"vec": binary(Add), "go": binary(addGo)})
}

func BenchmarkMul(b *testing.B) {
	benchImpls(b, 12, map[string]func(int) func(){"vec": binary(Mul), "go": binary(mulGo)})
}

func BenchmarkAccumulate(b *testing.B) {
	benchImpls(b, 12, map[string]func(int) func(){
		"vec": unary(Accumulate, -1, 1), "go": unary(accumulateGo, -1, 1),
	})
}

func withScalar(f func(dst, x []float32, s float32)) func(dst, x []float32) {
	return func(dst, x []float32) { f(dst, x, 0.5) }
}

func BenchmarkAddScaled(b *testing.B) {
	benchImpls(b, 12, map[string]func(int) func(){
		"vec": unary(withScalar(AddScaled), -1, 1), "go": unary(withScalar(addScaledGo), -1, 1),
	})
}

func BenchmarkScale(b *testing.B) {
	benchImpls(b, 8, map[string]func(int) func(){
		"vec": unary(withScalar(Scale), -1, 1), "go": unary(withScalar(scaleGo), -1, 1),
	})
}

func BenchmarkDivScalar(b *testing.B) {
	benchImpls(b, 8, map[string]func(int) func(){
		"vec": unary(withScalar(DivScalar), -1, 1), "go": unary(withScalar(divScalarGo), -1, 1),
	})
}

func reduce(f func(x []float32) float32) func(n int) func() {
	return func(n int) func() {
		x := benchData(n, -1, 1, 1)
		return func() { sinkF += f(x) }
	}
}

func BenchmarkSum(b *testing.B) {
	benchImpls(b, 4, map[string]func(int) func(){"vec": reduce(Sum), "go": reduce(sumGo)})
}

func BenchmarkDot(b *testing.B) {
	dot := func(f func(x, y []float32) float32) func(n int) func() {
		return func(n int) func() {
			x, y := benchData(n, -1, 1, 1), benchData(n, -1, 1, 2)
			return func() { sinkF += f(x, y) }
		}
	}
	benchImpls(b, 8, map[string]func(int) func(){"vec": dot(Dot), "go": dot(dotGo)})
}

func BenchmarkMax(b *testing.B) {
	benchImpls(b, 4, map[string]func(int) func(){
		"vec": reduce(Max), "go": reduce(func(x []float32) float32 { return maxGo(x[0], x[1:]) }),
	})
}

func BenchmarkAdamW(b *testing.B) {
	adam := func(f func(w, g, m, v []float32, gscale, b1, b2, c1, c2, lr, decay, eps float32)) func(n int) func() {
		return func(n int) func() {
			w, g, m := benchData(n, -1, 1, 1), benchData(n, -1, 1, 2), benchData(n, -0.1, 0.1, 3)
			v := benchData(n, 0, 0.01, 4)
			return func() { f(w, g, m, v, 0.9, 0.9, 0.95, 0.5, 0.3, 1e-4, 1e-5, 1e-8) }
		}
	}
	// Reads w, g, m, v and writes w, m, v.
	benchImpls(b, 28, map[string]func(int) func(){"vec": adam(AdamW), "go": adam(adamWGo)})
}
