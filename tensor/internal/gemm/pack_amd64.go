//go:build amd64 && !noasm

package gemm

import "github.com/shoal-network/shoal/tensor/internal/cpu"

// transpose4x8 writes columns 8b..8b+7 of four rows of src (ld apart) as
// steps 8b..8b+7 of four columns of dst (stride apart), for b < blocks; see
// pack_amd64.s. It reads src[0:3*ld+8*blocks] and writes
// dst[0:(8*blocks-1)*stride+4].
//
//go:noescape
func transpose4x8(dst *float32, stride int, src *float32, ld int, blocks int)

// transpose2x8 is transpose4x8 for two rows; see pack_amd64.s. It reads
// src[0:ld+8*blocks] and writes dst[0:(8*blocks-1)*stride+2].
//
//go:noescape
func transpose2x8(dst *float32, stride int, src *float32, ld int, blocks int)

// asmPack reports whether the gathers may use the transpositions (AVX).
var asmPack = cpu.HasAVX2()

// gather4 writes the first n values of four rows of src (ld apart) as
// columns 0..3 of dst, whose rows are stride apart: whole blocks of eight
// steps with transpose4x8, the rest in Go.
func gather4(dst []float32, stride int, src []float32, ld, n int) {
	if done := transposeBlocks(transpose4x8, 4, dst, stride, src, ld, n); done < n {
		gather4Go(dst[done*stride:], stride, src[done:], ld, n-done)
	}
}

// gather2 is gather4 for two rows, with transpose2x8.
func gather2(dst []float32, stride int, src []float32, ld, n int) {
	if done := transposeBlocks(transpose2x8, 2, dst, stride, src, ld, n); done < n {
		gather2Go(dst[done*stride:], stride, src[done:], ld, n-done)
	}
}

// transposeBlocks runs transpose, which moves rows rows, on the whole
// blocks of eight among the first n steps, after checking the bounds the
// assembly does not, and returns how many steps it did.
func transposeBlocks(transpose func(dst *float32, stride int, src *float32, ld int, blocks int), rows int, dst []float32, stride int, src []float32, ld, n int) int {
	if !asmPack || n < 8 {
		return 0
	}
	blocks := n / 8
	_ = src[(rows-1)*ld+8*blocks-1]
	_ = dst[(8*blocks-1)*stride+rows-1]
	transpose(&dst[0], stride, &src[0], ld, blocks)
	return 8 * blocks
}
