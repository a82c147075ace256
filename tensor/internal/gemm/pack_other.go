//go:build !amd64 || noasm

package gemm

// gather4 writes the first n values of four rows of src (ld apart) as
// columns 0..3 of dst, whose rows are stride apart.
func gather4(dst []float32, stride int, src []float32, ld, n int) {
	gather4Go(dst, stride, src, ld, n)
}

// gather2 is gather4 for two rows.
func gather2(dst []float32, stride int, src []float32, ld, n int) {
	gather2Go(dst, stride, src, ld, n)
}
