package tensor

import (
	"runtime"
	"sync"
)

// parallelFor runs f over [0, n) split into contiguous ranges, one per
// worker, on up to GOMAXPROCS goroutines. Every index is handled by exactly
// one call, so results written per index do not depend on the split.
// Work below minPerWorker indices per worker runs on the calling goroutine.
func parallelFor(n, minPerWorker int, f func(lo, hi int)) {
	w := workers(n, minPerWorker)
	if w <= 1 {
		if n > 0 {
			f(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < w; i++ {
		lo, hi := i*n/w, (i+1)*n/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// workers returns the number of goroutines parallelFor uses for n indices
// and minPerWorker.
func workers(n, minPerWorker int) int {
	if minPerWorker < 1 {
		minPerWorker = 1
	}
	return max(min(runtime.GOMAXPROCS(0), n/minPerWorker), 1)
}

// parallelWorkers runs f(i, lo, hi) for worker i < w over the i-th of w
// contiguous ranges of [0, n), on w goroutines (the caller's alone when w
// is 1), so that f can use per-worker scratch.
func parallelWorkers(n, w int, f func(worker, lo, hi int)) {
	if w <= 1 {
		if n > 0 {
			f(0, 0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < w; i++ {
		lo, hi := i*n/w, (i+1)*n/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i, lo, hi)
		}()
	}
	wg.Wait()
}
