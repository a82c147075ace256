package gemm

// Packing copies a block of op(A) or op(B) into panels that the micro-kernels
// read sequentially: kb steps of `stride` values each (stride is mr for A,
// nr for B). Values past the edge of the matrix are set to zero.

// packContig fills dst[p*stride+t] = src[p*ld+t] for p < kb, t < w, with
// zeros for w <= t < stride. Each step reads w consecutive values.
func packContig(dst []float32, stride int, src []float32, ld, w, kb int) {
	dst = dst[:kb*stride]
	if kb == 0 {
		return
	}
	src = src[:(kb-1)*ld+w]
	if w == stride {
		switch stride {
		case 32:
			for p := 0; p < kb; p++ {
				*(*[32]float32)(dst[p*32:]) = [32]float32(src[p*ld:])
			}
			return
		case 16:
			for p := 0; p < kb; p++ {
				*(*[16]float32)(dst[p*16:]) = [16]float32(src[p*ld:])
			}
			return
		case 12:
			for p := 0; p < kb; p++ {
				*(*[12]float32)(dst[p*12:]) = [12]float32(src[p*ld:])
			}
			return
		case 6:
			for p := 0; p < kb; p++ {
				*(*[6]float32)(dst[p*6:]) = [6]float32(src[p*ld:])
			}
			return
		case 3:
			for p := 0; p < kb; p++ {
				*(*[3]float32)(dst[p*3:]) = [3]float32(src[p*ld:])
			}
			return
		}
	}
	for p := 0; p < kb; p++ {
		d := dst[p*stride : (p+1)*stride]
		copy(d, src[p*ld:p*ld+w])
		clear(d[w:])
	}
}

// packStrided fills dst[p*stride+t] = src[t*ld+p] for p < kb, t < h, with
// zeros for h <= t < stride. Each of the h source rows is read sequentially.
func packStrided(dst []float32, stride int, src []float32, ld, h, kb int) {
	dst = dst[:kb*stride]
	if kb == 0 {
		return
	}
	src = src[:(h-1)*ld+kb]
	t := 0
	for ; t+4 <= h; t += 4 {
		gather4(dst[t:], stride, src[t*ld:], ld, kb)
	}
	for ; t+2 <= h; t += 2 {
		gather2(dst[t:], stride, src[t*ld:], ld, kb)
	}
	for ; t < h; t++ {
		row := src[t*ld : t*ld+kb]
		for p, x := range row {
			dst[p*stride+t] = x
		}
	}
	if h < stride {
		for p := 0; p < kb; p++ {
			clear(dst[p*stride+h : (p+1)*stride])
		}
	}
}

// gather4Go writes the first n values of four rows of src (ld apart) as
// columns 0..3 of dst, whose rows are stride apart.
func gather4Go(dst []float32, stride int, src []float32, ld, n int) {
	r0, r1, r2, r3 := src[:n], src[ld:ld+n], src[2*ld:2*ld+n], src[3*ld:3*ld+n]
	for p := 0; p < n; p++ {
		d := (*[4]float32)(dst[p*stride:])
		d[0], d[1], d[2], d[3] = r0[p], r1[p], r2[p], r3[p]
	}
}

// gather2Go is gather4Go for two rows.
func gather2Go(dst []float32, stride int, src []float32, ld, n int) {
	r0, r1 := src[:n], src[ld:ld+n]
	for p := 0; p < n; p++ {
		d := (*[2]float32)(dst[p*stride:])
		d[0], d[1] = r0[p], r1[p]
	}
}
