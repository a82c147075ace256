package gemm

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// A kernel describes one register-blocked micro-kernel and the cache
// blocking that suits it. The driver below is shared by every kernel.
type kernel struct {
	name   string // what Kernel reports when this kernel is active
	mr, nr int    // register tile: mr rows by nr columns of C
	mc, kc int    // cache blocks: mc rows of A by kc steps of k; mc is a multiple of mr

	// micro computes one full mr×nr tile of C from packed panels:
	// a holds k steps of mr values of op(A) ([p][mr]), b holds k steps of
	// nr values of op(B) ([p][nr]). For every element, it starts from the
	// value already in c when load is true, or from +0 otherwise, and adds
	// the rounded products for p = 0..k-1 in order, then stores the sums
	// to c (row-major, leading dimension ldc). k is at least 1.
	micro func(k int, a, b, c []float32, ldc int, load bool)

	// bmax bounds, in floats, the packed copy of op(B) that one pass of the
	// driver keeps; wider products are done in column strips.
	bmax int

	// parWork is the work (m·n·k) per goroutine below which the driver
	// does not hand work to more goroutines: with the kernel's speed, it
	// should take a few times longer than waking a helper goroutine.
	parWork float64
}

// align is the alignment, in bytes, of packed buffers.
const align = 64

// blocked computes the product by packing op(B) into panels of nr columns,
// then splitting C into rectangles that goroutines take in turn. Each
// rectangle is computed by a single goroutine, which goes through k in
// blocks of kc (storing the partial sums to C between blocks) so every
// element sees its products in increasing order of p.
func blocked(kern *kernel, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	width := n
	if n > kern.bmax/k {
		width = max(kern.nr, kern.bmax/k/kern.nr*kern.nr)
	}
	for j0 := 0; j0 < n; j0 += width {
		w := min(width, n-j0)
		bs := b
		if transB {
			bs = b[j0*ldb:]
		} else {
			bs = b[j0:]
		}
		strip(kern, transA, transB, m, w, k, a, lda, bs, ldb, c[j0:], ldc, acc)
	}
}

// A job is one strip of the product, shared by the goroutines that work on it.
type job struct {
	kern           *kernel
	transA, transB bool
	m, n, k        int
	a              []float32
	lda            int
	b              []float32
	ldb            int
	c              []float32
	ldc            int
	acc            bool

	kcEff   int       // k block actually used
	mcEff   int       // row block actually used
	npanels int       // panels of nr columns of op(B)
	bp      []float32 // packed op(B), see packPanels
	bpBuf   *[]float32

	packTasks int // panel ranges of op(B) to pack
	packNext  atomic.Int64
	packDone  atomic.Int64

	mt, nt   int // C is cut into mt×nt rectangles
	taskNext atomic.Int64

	wg sync.WaitGroup
}

var jobPool = sync.Pool{New: func() any { return new(job) }}

// strip computes C = op(A)·op(B) (or C += ...) for an m×n C whose packed
// op(B) fits in kern.bmax floats (or is a single panel wide).
func strip(kern *kernel, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	j := jobPool.Get().(*job)
	j.kern = kern
	j.transA, j.transB = transA, transB
	j.m, j.n, j.k = m, n, k
	j.a, j.lda, j.b, j.ldb, j.c, j.ldc, j.acc = a, lda, b, ldb, c, ldc, acc

	mr, nr := kern.mr, kern.nr
	j.kcEff = ceilDiv(k, ceilDiv(k, kern.kc))
	j.npanels = ceilDiv(n, nr)
	j.bpBuf = getBuf(j.npanels * nr * k)
	j.bp = *j.bpBuf

	// Decide how many goroutines to use and how to cut C.
	rowTiles := ceilDiv(m, mr)
	work := float64(m) * float64(n) * float64(k)
	workers := 1
	if w := work / kern.parWork; w >= 2 {
		workers = int(min(w, float64(runtime.GOMAXPROCS(0))))
	}
	if workers == 1 {
		j.mt, j.nt = 1, 1
		j.packTasks = 1
	} else {
		// Prefer cutting rows: every rectangle then packs rows of op(A)
		// that no other one packs. Keep at least four row tiles per
		// rectangle so a panel of op(B) is reused from L1, use a
		// multiple of workers rectangles so that they share out evenly
		// when all goroutines run, and cut columns too only when there
		// are not enough rows.
		j.mt = min(3*workers, max(1, rowTiles/4))
		j.nt = 1
		if j.mt >= workers {
			j.mt -= j.mt % workers
		} else {
			j.nt = min(j.npanels, ceilDiv(3*workers, j.mt))
		}
		workers = min(workers, j.mt*j.nt)
		j.packTasks = min(j.npanels, 2*workers)
	}
	rows := ceilDiv(m, j.mt)
	j.mcEff = min(kern.mc, ceilDiv(rows, mr)*mr)
	// Balance row blocks: same count of blocks, as even as tiles allow.
	if nb := ceilDiv(rows, j.mcEff); nb > 1 {
		j.mcEff = ceilDiv(ceilDiv(rows, nb), mr) * mr
	}
	j.packNext.Store(0)
	j.packDone.Store(0)
	j.taskNext.Store(0)

	if workers > 1 {
		dispatch(j, workers-1)
	}
	j.run()
	j.wg.Wait()

	putBuf(j.bpBuf)
	*j = job{}
	jobPool.Put(j)
}

// run does packing tasks, waits until op(B) is packed, then computes
// rectangles of C until none is left.
func (j *job) run() {
	for {
		t := int(j.packNext.Add(1) - 1)
		if t >= j.packTasks {
			break
		}
		q0 := t * j.npanels / j.packTasks
		q1 := (t + 1) * j.npanels / j.packTasks
		j.packPanels(q0, q1)
		j.packDone.Add(1)
	}
	for int(j.packDone.Load()) < j.packTasks {
		runtime.Gosched()
	}

	tasks := j.mt * j.nt
	if int(j.taskNext.Load()) >= tasks {
		return
	}
	ws := getWorkspace(j.kern)
	mr := j.kern.mr
	rowTiles := ceilDiv(j.m, mr)
	for {
		t := int(j.taskNext.Add(1) - 1)
		if t >= tasks {
			break
		}
		ti, tj := t/j.nt, t%j.nt
		i0 := ti * rowTiles / j.mt * mr
		i1 := min(j.m, (ti+1)*rowTiles/j.mt*mr)
		q0 := tj * j.npanels / j.nt
		q1 := (tj + 1) * j.npanels / j.nt
		if i0 < i1 && q0 < q1 {
			j.compute(ws, i0, i1, q0, q1)
		}
	}
	putWorkspace(ws)
}

// packPanels packs panels q0..q1-1 of op(B) for every block of k. The block
// of k starting at pc, of length kb, is stored at bp[npanels*nr*pc:], panel
// q of it at offset q*kb*nr, as kb rows of nr values, zero past column n.
func (j *job) packPanels(q0, q1 int) {
	nr := j.kern.nr
	for pc := 0; pc < j.k; pc += j.kcEff {
		kb := min(j.kcEff, j.k-pc)
		base := j.npanels * nr * pc
		for q := q0; q < q1; q++ {
			col := q * nr
			w := min(nr, j.n-col)
			dst := j.bp[base+q*kb*nr : base+(q+1)*kb*nr]
			if j.transB {
				// op(B)[p,j] = b[j*ldb+p]: gather w rows of b.
				packStrided(dst, nr, j.b[col*j.ldb+pc:], j.ldb, w, kb)
			} else {
				// op(B)[p,j] = b[p*ldb+j]: copy w values per step.
				packContig(dst, nr, j.b[pc*j.ldb+col:], j.ldb, w, kb)
			}
		}
	}
}

// compute does rows i0..i1-1 of C for the columns of panels q0..q1-1.
func (j *job) compute(ws *workspace, i0, i1, q0, q1 int) {
	kern := j.kern
	mr, nr := kern.mr, kern.nr
	micro := kern.micro
	ldc := j.ldc
	c := j.c
	for pc := 0; pc < j.k; pc += j.kcEff {
		kb := min(j.kcEff, j.k-pc)
		load := j.acc || pc > 0
		bblock := j.bp[j.npanels*nr*pc:]
		for ic := i0; ic < i1; ic += j.mcEff {
			mb := min(j.mcEff, i1-ic)
			ap := ws.ap[:ceilDiv(mb, mr)*mr*kb]
			if j.transA {
				// op(A)[i,p] = a[p*lda+i]: copy up to mr values per step.
				for r := 0; r < mb; r += mr {
					h := min(mr, mb-r)
					packContig(ap[r*kb:(r+mr)*kb], mr, j.a[pc*j.lda+ic+r:], j.lda, h, kb)
				}
			} else {
				// op(A)[i,p] = a[i*lda+p]: gather up to mr rows of a.
				for r := 0; r < mb; r += mr {
					h := min(mr, mb-r)
					packStrided(ap[r*kb:(r+mr)*kb], mr, j.a[(ic+r)*j.lda+pc:], j.lda, h, kb)
				}
			}
			for q := q0; q < q1; q++ {
				col := q * nr
				w := min(nr, j.n-col)
				bpanel := bblock[q*kb*nr : (q+1)*kb*nr]
				for r := 0; r < mb; r += mr {
					h := min(mr, mb-r)
					apanel := ap[r*kb : (r+mr)*kb]
					ci := (ic+r)*ldc + col
					if h == mr && w == nr {
						micro(kb, apanel, bpanel, c[ci:], ldc, load)
						continue
					}
					// Edge tile: run the kernel on a scratch tile and
					// copy back only the valid part. Padded rows and
					// columns of the panels are zero and only reach
					// scratch elements that are dropped.
					tmp := ws.tmp[:mr*nr]
					if load {
						for i := 0; i < h; i++ {
							copy(tmp[i*nr:i*nr+w], c[ci+i*ldc:ci+i*ldc+w])
						}
					}
					micro(kb, apanel, bpanel, tmp, nr, load)
					for i := 0; i < h; i++ {
						copy(c[ci+i*ldc:ci+i*ldc+w], tmp[i*nr:i*nr+w])
					}
				}
			}
		}
	}
}

// A workspace holds one goroutine's packed block of op(A) and scratch tile.
type workspace struct {
	ap  []float32
	tmp []float32
	buf []float32
}

var wsPool sync.Pool

func getWorkspace(kern *kernel) *workspace {
	ws, _ := wsPool.Get().(*workspace)
	if ws == nil {
		ws = new(workspace)
	}
	need := kern.mc*kern.kc + kern.mr*kern.nr
	if len(ws.buf) < need {
		ws.buf = alignedFloats(need)
	}
	ws.ap = ws.buf[:kern.mc*kern.kc]
	ws.tmp = ws.buf[kern.mc*kern.kc : need]
	return ws
}

func putWorkspace(ws *workspace) { wsPool.Put(ws) }

var bufPool sync.Pool

// getBuf returns a pooled aligned buffer of at least n floats.
func getBuf(n int) *[]float32 {
	p, _ := bufPool.Get().(*[]float32)
	if p == nil {
		p = new([]float32)
	}
	if len(*p) < n {
		*p = alignedFloats(n)
	}
	return p
}

func putBuf(p *[]float32) { bufPool.Put(p) }

// alignedFloats allocates n floats starting on an align-byte boundary.
func alignedFloats(n int) []float32 {
	const extra = align / 4
	s := make([]float32, n+extra)
	off := int(uintptr(unsafe.Pointer(&s[0])) % align / 4)
	if off != 0 {
		off = extra - off
	}
	return s[off : off+n : off+n]
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// Helper goroutines. They are started on demand and each waits for jobs in
// its own slot. After a job a helper polls its slot for a short while
// (yielding its P all along) before it parks, because waking a parked
// goroutine on another thread costs tens of microseconds, as much as a
// whole product of 128×128 matrices. A job is only handed to helpers that
// are idle at that moment; the caller works on its own job too, so busy
// helpers never hold a product up.

// helperSpin is how long a helper polls for a new job before parking.
const helperSpin = 100 * time.Microsecond

type helper struct {
	// slot is &spinning while the helper polls, &parked while it sleeps
	// on wake, or the job it was handed.
	slot atomic.Pointer[job]
	wake chan struct{} // one token per job handed to a parked helper
}

// Markers stored in helper.slot.
var spinning, parked job

var (
	helpersMu sync.Mutex
	helpers   atomic.Pointer[[]*helper] // append-only, copied on growth
)

// dispatch offers j to up to n idle helpers.
func dispatch(j *job, n int) {
	hs := helpers.Load()
	if hs == nil || len(*hs) < n {
		hs = startHelpers(n)
	}
	for _, h := range *hs {
		if n == 0 {
			return
		}
		j.wg.Add(1)
		if h.slot.CompareAndSwap(&spinning, j) {
			n--
		} else if h.slot.CompareAndSwap(&parked, j) {
			h.wake <- struct{}{}
			n--
		} else {
			j.wg.Done()
		}
	}
}

// startHelpers makes sure at least n helpers exist.
func startHelpers(n int) *[]*helper {
	helpersMu.Lock()
	defer helpersMu.Unlock()
	var list []*helper
	if hs := helpers.Load(); hs != nil {
		list = *hs
	}
	if len(list) >= n {
		return &list
	}
	list = append([]*helper(nil), list...)
	for len(list) < n {
		h := &helper{wake: make(chan struct{}, 1)}
		h.slot.Store(&parked)
		list = append(list, h)
		go h.loop()
	}
	helpers.Store(&list)
	return &list
}

func (h *helper) loop() {
	for range h.wake {
		j := h.slot.Load()
		for j != nil {
			j.run()
			// Take new jobs before the caller of this one returns, so
			// that back-to-back products all find this helper idle.
			h.slot.Store(&spinning)
			j.wg.Done()
			j = h.poll()
		}
	}
}

// poll waits for a job for up to helperSpin. It returns nil, with the
// helper marked parked, if none came.
func (h *helper) poll() *job {
	deadline := time.Now().Add(helperSpin)
	for i := 0; ; i++ {
		if j := h.slot.Load(); j != &spinning {
			return j
		}
		if i%16 == 15 && time.Now().After(deadline) {
			if h.slot.CompareAndSwap(&spinning, &parked) {
				return nil
			}
			return h.slot.Load()
		}
		runtime.Gosched()
	}
}
