package gemm

import "github.com/shoal-network/shoal/tensor/internal/fma"

// Ref is the reference Sgemm: the naive triple loop that defines the bits
// every other path must reproduce, each step an exact fused multiply-add
// (fma.FMA32: one rounding, canonical NaNs). See Sgemm for the arguments.
func Ref(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			if acc {
				s = c[i*ldc+j]
			}
			for p := 0; p < k; p++ {
				var x, y float32
				if transA {
					x = a[p*lda+i]
				} else {
					x = a[i*lda+p]
				}
				if transB {
					y = b[j*ldb+p]
				} else {
					y = b[p*ldb+j]
				}
				s = fma.FMA32(x, y, s)
			}
			c[i*ldc+j] = s
		}
	}
}
