package aggregate

import (
	"runtime"
	"sync"
)

// grain is the least work (coordinates, or values of contributions) worth a
// goroutine of its own. Splitting never changes a result: every coordinate
// and every per-contribution reduction is computed start to finish by one
// goroutine in a fixed order. It is a variable so tests can force splits on
// small inputs.
var grain = 1 << 16

// workers returns how many goroutines to use for work units of total size
// work split into at most parts pieces.
func workers(parts, work int) int {
	w := min(runtime.GOMAXPROCS(0), parts, work/max(grain, 1))
	return max(w, 1)
}

// forRanges splits [0, n) into contiguous ranges, one per goroutine, and
// runs f on each; work is the total amount of work, which decides how many
// goroutines are worth starting.
func forRanges(n, work int, f func(lo, hi int)) {
	if n <= 0 {
		return
	}
	w := workers(n, work)
	if w == 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for i := range w {
		lo, hi := i*n/w, (i+1)*n/w
		wg.Go(func() { f(lo, hi) })
	}
	wg.Wait()
}

// forEachItem runs f(i) for every i in [0, n), spreading the items over
// goroutines when work is large enough.
func forEachItem(n, work int, f func(i int)) {
	forRanges(n, work, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			f(i)
		}
	})
}

// forBlocks splits the coordinates [0, n) among goroutines and, within each
// goroutine's range, calls f on consecutive blocks of at most size
// coordinates. Each goroutine first calls setup to get the scratch state it
// passes to f. perCoord is the work per coordinate (the number of
// contributions).
func forBlocks[S any](n, size, perCoord int, setup func() S, f func(s S, lo, hi int)) {
	forRanges(n, n*max(perCoord, 1), func(lo, hi int) {
		s := setup()
		for b := lo; b < hi; b += size {
			f(s, b, min(b+size, hi))
		}
	})
}

// sparseFrom returns the position of the first index >= lo.
func sparseFrom(index []uint32, lo int) int {
	i, j := 0, len(index)
	for i < j {
		h := int(uint(i+j) >> 1)
		if int64(index[h]) < int64(lo) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i
}
