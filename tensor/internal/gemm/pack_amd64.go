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

// asmPack reports whether gather4 may use transpose4x8 (AVX).
var asmPack = cpu.HasAVX2()

// gather4 writes the four rows r0..r3 (of equal length) as columns 0..3 of
// dst, whose rows are stride apart. When r0..r3 are rows of one matrix (ld
// apart, as packStrided passes them), whole blocks of eight steps go
// through transpose4x8.
func gather4(dst []float32, stride int, r0, r1, r2, r3 []float32, ld int) {
	n := len(r0)
	done := 0
	if asmPack && n >= 8 && ld > 0 {
		blocks := n / 8
		// Bounds for the assembly: the last value of row 3 it reads
		// and the last value of dst it writes.
		_ = r3[8*blocks-1]
		_ = dst[(8*blocks-1)*stride+3]
		transpose4x8(&dst[0], stride, &r0[0], ld, blocks)
		done = 8 * blocks
		if done == n {
			return
		}
	}
	gather4Go(dst[done*stride:], stride, r0[done:], r1[done:n], r2[done:n], r3[done:n])
}

// transpose2x8 is transpose4x8 for two rows; see pack_amd64.s. It reads
// src[0:ld+8*blocks] and writes dst[0:(8*blocks-1)*stride+2].
//
//go:noescape
func transpose2x8(dst *float32, stride int, src *float32, ld int, blocks int)

// gather2 is gather4 for two rows.
func gather2(dst []float32, stride int, r0, r1 []float32, ld int) {
	n := len(r0)
	done := 0
	if asmPack && n >= 8 && ld > 0 {
		blocks := n / 8
		_ = r1[8*blocks-1]
		_ = dst[(8*blocks-1)*stride+1]
		transpose2x8(&dst[0], stride, &r0[0], ld, blocks)
		done = 8 * blocks
		if done == n {
			return
		}
	}
	gather2Go(dst[done*stride:], stride, r0[done:], r1[done:n])
}
