package gemm

// Panic messages for programmer errors. They are constants so that callers
// and tests can match them exactly.
const (
	errNegDim = "gemm: negative dimension"
	errLda    = "gemm: lda too small"
	errLdb    = "gemm: ldb too small"
	errLdc    = "gemm: ldc too small"
	errShortA = "gemm: a is too short"
	errShortB = "gemm: b is too short"
	errShortC = "gemm: c is too short"
)

// Sgemm computes C = op(A)·op(B), or C += op(A)·op(B) when acc is true.
//
// C is m×n, row-major with leading dimension ldc. op(A) is m×k: A is stored
// m×k row-major with leading dimension lda, or, when transA is true, k×m (so
// op(A)[i,p] = a[p*lda+i]). op(B) is k×n: B is stored k×n with leading
// dimension ldb, or, when transB is true, n×k (op(B)[p,j] = b[j*ldb+p]).
//
// Every element of C gets exactly the bits that Ref computes (see the
// package documentation), whatever the CPU features, GOMAXPROCS or problem
// size. When k is 0, C is set to zero (left unchanged when acc is true).
//
// Each leading dimension must be at least the number of columns of the
// matrix as stored, and each slice must reach the last element used;
// otherwise Sgemm panics. C must not overlap A or B. A and B are not written.
func Sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	sgemm(active, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
}

// Kernel names the micro-kernel that Sgemm uses: "avx512", "avx2" or
// "neon" (assembly, see HasAsm) or "go". All give the same bits.
func Kernel() string { return active.name }

// sgemmGo is Sgemm restricted to the pure-Go micro-kernel. It is what Sgemm
// runs when the assembly kernel is unavailable; tests call it directly so
// that both paths are checked on machines that have the assembly.
func sgemmGo(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	sgemm(&goKernel, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
}

// checkMatrix panics unless a rows×cols matrix stored row-major with leading
// dimension ld fits in a slice of length l.
func checkMatrix(rows, cols, ld, l int, errLd, errShort string) {
	if ld < cols {
		panic(errLd)
	}
	// l >= (rows-1)*ld + cols, written so that it cannot overflow.
	if rows > 0 && cols > 0 && (l < cols || (l-cols)/ld < rows-1) {
		panic(errShort)
	}
}

func sgemm(kern *kernel, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	if m < 0 || n < 0 || k < 0 {
		panic(errNegDim)
	}
	if transA {
		checkMatrix(k, m, lda, len(a), errLda, errShortA)
	} else {
		checkMatrix(m, k, lda, len(a), errLda, errShortA)
	}
	if transB {
		checkMatrix(n, k, ldb, len(b), errLdb, errShortB)
	} else {
		checkMatrix(k, n, ldb, len(b), errLdb, errShortB)
	}
	checkMatrix(m, n, ldc, len(c), errLdc, errShortC)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if !acc {
			for i := 0; i < m; i++ {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	if float64(m)*float64(n)*float64(k) <= smallWork {
		small(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
		return
	}
	blocked(kern, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
}

// smallWork is the largest m·n·k handled by small, which needs no packing.
const smallWork = 6 * 6 * 6

// small computes tiny products directly. For each row i of C it starts from
// zero (or C) and adds the products of op(A)[i,p] with row p of op(B), for
// p in increasing order, so each element sees its products in the same
// order as Ref.
func small(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	for i := 0; i < m; i++ {
		crow := c[i*ldc : i*ldc+n]
		if !acc {
			clear(crow)
		}
		for p := 0; p < k; p++ {
			var x float32
			if transA {
				x = a[p*lda+i]
			} else {
				x = a[i*lda+p]
			}
			if transB {
				for j := range crow {
					crow[j] = fmadd(x, b[j*ldb+p], crow[j])
				}
			} else {
				brow := b[p*ldb : p*ldb+n]
				for j, y := range brow {
					crow[j] = fmadd(x, y, crow[j])
				}
			}
		}
		for j, v := range crow {
			crow[j] = canon(v)
		}
	}
}
