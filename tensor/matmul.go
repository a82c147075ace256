package tensor

import "github.com/shoal-network/shoal/tensor/internal/gemm"

// MatMul computes dst = op(a)·op(b), or dst += op(a)·op(b) when acc, where
// op(x) is x or, when its flag is set, x with its last two axes swapped.
// a is [..., M, K] (stored [..., K, M] when transA); b is a matrix [K, N]
// (stored [N, K] when transB) shared by every leading index of a, or a
// batch [..., K, N] with the same leading dimensions as a. dst is
// [..., M, N].
//
// Every element is the sum over p = 0..K-1, in that order, of the products
// op(a)[i,p]*op(b)[p,j] each rounded to float32 (see the gemm package); a
// batch of matrices is computed one matrix per goroutine.
func MatMul(dst, a, b *Tensor, transA, transB, acc bool) {
	MatMulData(dst.Data, dst.shape, a.Data, a.shape, b.Data, b.shape, transA, transB, acc)
}

// MatMulData is MatMul on raw buffers with explicit shapes, for callers
// (such as gradient kernels) that hold a gradient buffer and a shape.
func MatMulData(dst []float32, ds []int, a []float32, as []int, b []float32, bs []int, transA, transB, acc bool) {
	if len(as) < 2 || len(bs) < 2 || len(ds) != len(as) {
		panic("tensor: MatMul needs matrices")
	}
	ar, ac := as[len(as)-2], as[len(as)-1]
	br, bc := bs[len(bs)-2], bs[len(bs)-1]
	m, k := ar, ac
	if transA {
		m, k = ac, ar
	}
	kb, n := br, bc
	if transB {
		kb, n = bc, br
	}
	if k != kb || ds[len(ds)-2] != m || ds[len(ds)-1] != n {
		panic("tensor: MatMul shape mismatch")
	}
	batch := numel(as[:len(as)-2])
	if numel(ds[:len(ds)-2]) != batch || len(a) != numel(as) || len(b) != numel(bs) || len(dst) != numel(ds) {
		panic("tensor: MatMul shape mismatch")
	}
	lda, ldb := ac, bc
	if len(bs) == 2 {
		if !transA {
			// One product: the batch folds into the rows of a.
			gemm.Sgemm(false, transB, batch*m, n, k, a, lda, b, ldb, dst, n, acc)
			return
		}
		parallelFor(batch, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				gemm.Sgemm(true, transB, m, n, k, a[i*m*k:(i+1)*m*k], lda, b, ldb, dst[i*m*n:(i+1)*m*n], n, acc)
			}
		})
		return
	}
	if !sameShape(bs[:len(bs)-2], as[:len(as)-2]) {
		panic("tensor: MatMul batch shape mismatch")
	}
	parallelFor(batch, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			gemm.Sgemm(transA, transB, m, n, k, a[i*m*k:(i+1)*m*k], lda, b[i*k*n:(i+1)*k*n], ldb, dst[i*m*n:(i+1)*m*n], n, acc)
		}
	})
}

// KernelPath names the matrix-multiply kernel in use: "avx512" or "avx2"
// (assembly, chosen at run time from the CPU's features) or "go" (pure Go:
// the noasm build tag, other architectures, older CPUs). All give the same
// bits.
func KernelPath() string { return gemm.Kernel() }
