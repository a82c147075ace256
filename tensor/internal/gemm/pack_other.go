//go:build !amd64 || noasm

package gemm

// gather4 writes the four rows r0..r3 (of equal length) as columns 0..3 of
// dst, whose rows are stride apart.
func gather4(dst []float32, stride int, r0, r1, r2, r3 []float32, ld int) {
	gather4Go(dst, stride, r0, r1, r2, r3)
}

// gather2 is gather4 for two rows.
func gather2(dst []float32, stride int, r0, r1 []float32, ld int) {
	gather2Go(dst, stride, r0, r1)
}
