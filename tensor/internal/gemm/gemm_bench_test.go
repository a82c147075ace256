package gemm

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

func benchMatrices(n int) (a, b, c []float32) {
	r := rand.New(rand.NewPCG(uint64(n), 2))
	a = make([]float32, n*n)
	b = make([]float32, n*n)
	c = make([]float32, n*n)
	for i := range a {
		a[i] = float32(r.Float64()*2 - 1)
		b[i] = float32(r.Float64()*2 - 1)
	}
	return a, b, c
}

func gonumSgemm(n int, a, b, c []float32) {
	gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, a, n, b, n, 0, c, n)
}

// gonumTimes caches the time of one gonum Sgemm per size and thread count,
// so that the x_gonum ratios of several sub-benchmarks share one measurement.
var gonumTimes sync.Map

type gonumKey struct{ n, threads int }

// gonumTime returns the best of a few timed runs of gonum's Sgemm, running
// with the current GOMAXPROCS.
func gonumTime(n, threads int) time.Duration {
	key := gonumKey{n, threads}
	if d, ok := gonumTimes.Load(key); ok {
		return d.(time.Duration)
	}
	a, b, c := benchMatrices(n)
	gonumSgemm(n, a, b, c)
	best := time.Duration(1<<63 - 1)
	var total time.Duration
	for i := 0; i < 5 && (i == 0 || total < 500*time.Millisecond); i++ {
		start := time.Now()
		gonumSgemm(n, a, b, c)
		d := time.Since(start)
		total += d
		best = min(best, d)
	}
	gonumTimes.Store(key, best)
	return best
}

// BenchmarkSgemm times square NN products. impl=shoal is Sgemm (the
// fastest assembly kernel when HasAsm), impl=avx2 the AVX2 kernel when a
// faster one is active, impl=go the pure-Go kernel and impl=gonum gonum's
// Sgemm. The shoal and go results also report x_gonum, the speed
// relative to gonum at the same size and thread count.
func BenchmarkSgemm(b *testing.B) {
	for _, n := range []int{128, 256, 512, 1024, 2048} {
		for _, threads := range []int{1, 2} {
			type benchImpl struct {
				name string
				f    func(n int, a, b, c []float32)
			}
			list := []benchImpl{
				{"shoal", func(n int, a, b, c []float32) { Sgemm(false, false, n, n, n, a, n, b, n, c, n, false) }},
			}
			for _, kern := range asmKernels {
				if kern != active {
					list = append(list, benchImpl{kern.name, func(n int, a, b, c []float32) {
						sgemm(kern, false, false, n, n, n, a, n, b, n, c, n, false)
					}})
				}
			}
			list = append(list,
				benchImpl{"go", func(n int, a, b, c []float32) { sgemmGo(false, false, n, n, n, a, n, b, n, c, n, false) }},
				benchImpl{"gonum", gonumSgemm})
			for _, im := range list {
				name := fmt.Sprintf("n=%d/threads=%d/impl=%s", n, threads, im.name)
				b.Run(name, func(b *testing.B) {
					defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
					var ref time.Duration
					if im.name != "gonum" {
						ref = gonumTime(n, threads)
					}
					x, y, z := benchMatrices(n)
					im.f(n, x, y, z)
					for b.Loop() {
						im.f(n, x, y, z)
					}
					perOp := b.Elapsed().Seconds() / float64(b.N)
					b.ReportMetric(2*float64(n)*float64(n)*float64(n)/perOp/1e9, "GFLOP/s")
					if ref > 0 {
						b.ReportMetric(ref.Seconds()/perOp, "x_gonum")
					}
				})
			}
		}
	}
}

// BenchmarkSgemmTrans times the transposed layouts the autograd uses, with
// one thread, against NN.
func BenchmarkSgemmTrans(b *testing.B) {
	const n = 512
	for _, tr := range []struct {
		name           string
		transA, transB bool
	}{{"NN", false, false}, {"NT", false, true}, {"TN", true, false}, {"TT", true, true}} {
		for _, im := range []struct {
			name string
			f    sgemmFunc
		}{{"shoal", Sgemm}, {"go", sgemmGo}} {
			b.Run(fmt.Sprintf("n=%d/%s/impl=%s", n, tr.name, im.name), func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
				x, y, z := benchMatrices(n)
				for b.Loop() {
					im.f(tr.transA, tr.transB, n, n, n, x, n, y, n, z, n, false)
				}
				perOp := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(2*float64(n)*float64(n)*float64(n)/perOp/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkSgemmSmall times small and skinny shapes with one thread.
func BenchmarkSgemmSmall(b *testing.B) {
	for _, s := range [][3]int{{8, 8, 8}, {16, 16, 16}, {32, 32, 32}, {64, 64, 64}, {1, 1024, 1024}, {64, 1024, 16}} {
		m, n, k := s[0], s[1], s[2]
		for _, im := range []struct {
			name string
			f    sgemmFunc
		}{{"shoal", Sgemm}, {"go", sgemmGo}} {
			b.Run(fmt.Sprintf("%dx%dx%d/impl=%s", m, n, k, im.name), func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
				x := make([]float32, m*k)
				y := make([]float32, k*n)
				z := make([]float32, m*n)
				for b.Loop() {
					im.f(false, false, m, n, k, x, k, y, n, z, n, false)
				}
				perOp := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(2*float64(m)*float64(n)*float64(k)/perOp/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkMicro times each micro-kernel alone on one tile with kc = 256
// steps, its panels in L1: the ceiling that packing, blocking and the
// memory system then take from.
func BenchmarkMicro(b *testing.B) {
	for _, kern := range append(asmKernels[:len(asmKernels):len(asmKernels)], &goKernel) {
		b.Run(kern.name, func(b *testing.B) {
			const k = 256
			a := alignedFloats(kern.mr * k)
			bp := alignedFloats(kern.nr * k)
			c := alignedFloats(kern.mr * kern.nr)
			r := rand.New(rand.NewPCG(7, 8))
			for i := range a {
				a[i] = float32(r.Float64()*2 - 1)
			}
			for i := range bp {
				bp[i] = float32(r.Float64()*2 - 1)
			}
			for b.Loop() {
				kern.micro(k, a, bp, c, kern.nr, false)
			}
			b.ReportMetric(2*float64(kern.mr*kern.nr*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
