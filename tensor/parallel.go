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
	w := runtime.GOMAXPROCS(0)
	if minPerWorker < 1 {
		minPerWorker = 1
	}
	w = min(w, n/minPerWorker)
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
