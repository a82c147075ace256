package tensor

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// BenchmarkMatMul measures square products through the tensor API, the
// path the models use, in GFLOP/s with one thread and with two.
func BenchmarkMatMul(b *testing.B) {
	for _, n := range []int{128, 512, 1024} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("n=%d/threads=%d", n, threads), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 2))
				x := FromSlice(randSlice(r, n*n, 1), n, n)
				y := FromSlice(randSlice(r, n*n, 1), n, n)
				z := New(n, n)
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
				for b.Loop() {
					MatMul(z, x, y, false, false, false)
				}
				flops := 2 * float64(n) * float64(n) * float64(n) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
