package gemm

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

var seedFlag = flag.Uint64("gemm.seed", 1, "base seed of the random gemm tests")

type sgemmFunc func(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool)

type impl struct {
	name string
	f    sgemmFunc
}

// impls lists every implementation available in this build: Sgemm, and
// the whole of Sgemm restricted to each kernel the CPU can run (the active
// one included, so that each kernel is named in failures).
func impls() []impl {
	list := []impl{{"Sgemm(" + Kernel() + ")", Sgemm}}
	for _, kern := range asmKernels {
		list = append(list, impl{kern.name, withSgemmKernel(kern)})
	}
	if HasAsm() {
		list = append(list, impl{"go", sgemmGo})
	}
	return list
}

// withSgemmKernel is Sgemm running kern, tiny products and argument checks
// included.
func withSgemmKernel(kern *kernel) sgemmFunc {
	return func(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
		sgemm(kern, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
	}
}

// allImpls is impls plus the driver forced onto each kernel even for tiny
// problems, which Sgemm would hand to its unpacked path.
func allImpls() []impl {
	list := impls()
	list = append(list, impl{"blocked-go", withKernel(&goKernel)})
	for _, kern := range asmKernels {
		list = append(list, impl{"blocked-" + kern.name, withKernel(kern)})
	}
	return list
}

// withKernel runs the driver with kern whatever the problem size (no small
// path), so that tests can use kernels with tiny blocks.
func withKernel(kern *kernel) sgemmFunc {
	return func(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
		if m == 0 || n == 0 || k == 0 {
			sgemm(kern, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
			return
		}
		blocked(kern, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
	}
}

// Value distributions.
const (
	valUniform = iota // uniform in [-1, 1)
	valSpecial        // signed zeros, denormals, huge and tiny values mixed in
	nVal
)

type problem struct {
	seed           uint64
	transA, transB bool
	m, n, k        int
	lda, ldb, ldc  int
	acc            bool
	vals           int
}

func (p problem) String() string {
	return fmt.Sprintf("seed=%d transA=%v transB=%v m=%d n=%d k=%d lda=%d ldb=%d ldc=%d acc=%v vals=%d",
		p.seed, p.transA, p.transB, p.m, p.n, p.k, p.lda, p.ldb, p.ldc, p.acc, p.vals)
}

// newProblem draws the layout of an m×n×k problem from seed.
func newProblem(seed uint64, m, n, k int) problem {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	p := problem{seed: seed, m: m, n: n, k: k}
	p.acc = r.IntN(2) == 1
	p.vals = r.IntN(nVal)
	pad := func() int {
		if r.IntN(2) == 0 {
			return 0
		}
		return 1 + r.IntN(9)
	}
	p.lda, p.ldb, p.ldc = k+pad(), n+pad(), n+pad()
	return p.withTrans(r.IntN(2) == 1, r.IntN(2) == 1)
}

// withTrans returns p with the given transposes, keeping the padding of its
// leading dimensions.
func (p problem) withTrans(transA, transB bool) problem {
	padA, padB := p.lda-p.cols(p.transA, p.m, p.k), p.ldb-p.cols(!p.transB, p.n, p.k)
	p.transA, p.transB = transA, transB
	p.lda = p.cols(transA, p.m, p.k) + padA
	p.ldb = p.cols(!transB, p.n, p.k) + padB
	return p
}

// cols returns the stored width of a matrix that is rows×cols, or cols×rows
// when trans.
func (problem) cols(trans bool, rows, cols int) int {
	if trans {
		return rows
	}
	return cols
}

const (
	sentinelBits = 0x7fc0dead
	guardLen     = 7
)

var sentinel = math.Float32frombits(sentinelBits)

func randValue(r *rand.Rand, vals int) float32 {
	if vals == valSpecial {
		switch r.IntN(10) {
		case 0:
			return 0
		case 1:
			return float32(math.Copysign(0, -1))
		case 2: // denormal
			return math.Float32frombits(uint32(r.IntN(1<<23)) | uint32(r.IntN(2))<<31)
		case 3: // tiny normal: products underflow
			return float32(r.Float64()*2-1) * 1e-37
		case 4: // huge: products overflow, sums may become NaN
			return float32(r.Float64()*2-1) * 3e37
		case 5:
			return float32(r.IntN(5) - 2)
		case 6: // NaN, any payload and sign: results must be canonical
			return math.Float32frombits(0x7f800001 + uint32(r.IntN(1<<23-1)) | uint32(r.IntN(2))<<31)
		case 7:
			return float32(math.Inf(1 - 2*r.IntN(2)))
		}
	}
	return float32(r.Float64()*2 - 1)
}

// data is the memory of one problem: A and B, and C with guard values
// before, after and between its rows.
type data struct {
	a, b, c []float32
	cOff    int // index of C[0,0] in c
}

func (p problem) data() data {
	r := rand.New(rand.NewPCG(p.seed, 1))
	rowsA, colsA := p.m, p.k
	if p.transA {
		rowsA, colsA = p.k, p.m
	}
	rowsB, colsB := p.k, p.n
	if p.transB {
		rowsB, colsB = p.n, p.k
	}
	fill := func(rows, cols, ld int) []float32 {
		if rows == 0 || cols == 0 {
			return nil
		}
		s := make([]float32, (rows-1)*ld+cols)
		for i := range s {
			if i%ld < cols {
				s[i] = randValue(r, p.vals)
			} else {
				s[i] = sentinel
			}
		}
		return s
	}
	d := data{a: fill(rowsA, colsA, p.lda), b: fill(rowsB, colsB, p.ldb)}
	d.cOff = guardLen
	size := 0
	if p.m > 0 {
		size = (p.m-1)*p.ldc + p.n
	}
	d.c = make([]float32, guardLen+size+guardLen)
	for i := range d.c {
		d.c[i] = sentinel
	}
	for i := 0; i < p.m; i++ {
		for j := 0; j < p.n; j++ {
			if p.acc {
				d.c[d.cOff+i*p.ldc+j] = randValue(r, p.vals)
			} else {
				// Must be ignored: NaN would show if it were read.
				d.c[d.cOff+i*p.ldc+j] = math.Float32frombits(0x7fa00001 + uint32(j))
			}
		}
	}
	return d
}

func (p problem) call(f sgemmFunc, d data) {
	c := d.c[d.cOff : len(d.c)-guardLen]
	f(p.transA, p.transB, p.m, p.n, p.k, d.a, p.lda, d.b, p.ldb, c, p.ldc, p.acc)
}

// where describes index idx of the C buffer.
func (p problem) where(d data, idx int) string {
	off := idx - d.cOff
	if off < 0 || idx >= len(d.c)-guardLen {
		return fmt.Sprintf("guard element %d outside C", idx)
	}
	i, j := off/p.ldc, off%p.ldc
	if j >= p.n {
		return fmt.Sprintf("padding C[%d, %d] (ldc=%d)", i, j, p.ldc)
	}
	return fmt.Sprintf("C[%d, %d]", i, j)
}

// refCache holds Ref's result for problems that several tests or
// implementations share, so the slow reference runs once per problem.
var refCache sync.Map

// refData returns the data of p after Ref ran on it. The result must not
// be modified.
func (p problem) refData() data {
	if d, ok := refCache.Load(p); ok {
		return d.(data)
	}
	d := p.data()
	p.call(Ref, d)
	if p.m*p.n*p.k >= 100_000 {
		refCache.Store(p, d)
	}
	return d
}

// check runs f on p and compares every bit of C (guards included) with Ref,
// and A and B with their values before the call.
func check(t *testing.T, name string, f sgemmFunc, p problem) bool {
	t.Helper()
	want := p.refData()
	got := p.data()
	p.call(f, got)
	for i := range got.c {
		if g, w := math.Float32bits(got.c[i]), math.Float32bits(want.c[i]); g != w {
			t.Errorf("%s: %v: %s = %#08x (%g), want %#08x (%g)", name, p, p.where(got, i), g, got.c[i], w, want.c[i])
			return false
		}
	}
	for _, in := range []struct {
		name      string
		got, want []float32
	}{{"A", got.a, want.a}, {"B", got.b, want.b}} {
		for i := range in.got {
			if math.Float32bits(in.got[i]) != math.Float32bits(in.want[i]) {
				t.Errorf("%s: %v: %s[%d] was modified", name, p, in.name, i)
				return false
			}
		}
	}
	return true
}

// Sizes around tiles (3, 6, 12, 16, 32), blocks (120, 144, 256) and small odd ones.
var edgeSizes = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 15, 16, 17, 23, 24, 25, 31, 32, 33, 63, 64, 65, 127, 128, 129, 143, 145, 257}

func TestSgemmSmallExhaustive(t *testing.T) {
	seed := *seedFlag
	for _, im := range allImpls() {
		for m := 1; m <= 9; m++ {
			for n := 1; n <= 9; n++ {
				for k := 0; k <= 9; k++ {
					for tr := 0; tr < 8; tr++ {
						seed++
						p := newProblem(seed, m, n, k).withTrans(tr&1 != 0, tr&2 != 0)
						p.acc = tr&4 != 0
						if !check(t, im.name, im.f, p) {
							return
						}
					}
				}
			}
		}
	}
}

func TestSgemmRandom(t *testing.T) {
	trials := 1000
	if testing.Short() {
		trials = 200
	}
	for ii, im := range allImpls() {
		for trial := 0; trial < trials; trial++ {
			seed := *seedFlag*1_000_003 + uint64(ii*trials+trial)
			r := rand.New(rand.NewPCG(seed, 7))
			dim := func() int {
				if r.IntN(3) == 0 {
					return 1 + r.IntN(40)
				}
				return edgeSizes[r.IntN(len(edgeSizes))]
			}
			m, n, k := dim(), dim(), dim()
			// Keep the reference affordable.
			for m*n*k > 3_000_000 {
				m, k = max(1, m/2), max(1, k*2/3)
			}
			if !check(t, im.name, im.f, newProblem(seed, m, n, k)) {
				return
			}
		}
	}
}

// largeProblems reach several k blocks, row blocks and parallel tasks.
func largeProblems(seed uint64) []problem {
	shapes := [][3]int{
		{300, 517, 211},
		{257, 129, 513},
		{1000, 20, 300},
		{7, 1500, 301},
		{150, 150, 600},
		{61, 77, 1030},
	}
	var ps []problem
	for i, s := range shapes {
		for tr := 0; tr < 4; tr++ {
			if testing.Short() && (i+tr)%2 == 1 {
				// Half the problems (for emulated runs): each shape
				// with two of the layouts, every layout with three
				// of the shapes.
				continue
			}
			p := newProblem(seed+uint64(4*i+tr), s[0], s[1], s[2])
			ps = append(ps, p.withTrans(tr&1 != 0, tr&2 != 0))
		}
	}
	return ps
}

func TestSgemmLarge(t *testing.T) {
	for _, im := range impls() {
		for _, p := range largeProblems(*seedFlag * 7919) {
			if !check(t, im.name, im.f, p) {
				return
			}
		}
	}
}

// TestSgemmBlocks runs every kernel with tiny cache blocks and a tiny limit
// on packed op(B), so that small problems cross every block boundary.
func TestSgemmBlocks(t *testing.T) {
	kernels := append([]*kernel{&goKernel}, asmKernels...)
	seed := *seedFlag * 104729
	for _, base := range kernels {
		for _, blk := range [][3]int{{1, 1, 1}, {1, 2, 3}, {2, 3, 64}, {3, 7, 100}, {5, 16, 500}} {
			kern := *base
			kern.mc = blk[0] * kern.mr
			kern.kc = blk[1]
			kern.bmax = blk[2] * kern.nr
			name := fmt.Sprintf("%dx%d/mc=%d,kc=%d,bmax=%d", kern.mr, kern.nr, kern.mc, kern.kc, kern.bmax)
			f := withKernel(&kern)
			for trial := 0; trial < 40; trial++ {
				seed++
				r := rand.New(rand.NewPCG(seed, 3))
				m, n, k := 1+r.IntN(40), 1+r.IntN(70), r.IntN(40)
				if !check(t, name, f, newProblem(seed, m, n, k)) {
					return
				}
			}
		}
	}
}

func TestSgemmGOMAXPROCS(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	list := impls()
	// Small blocks: many k blocks, row blocks and column strips in parallel.
	for _, base := range append([]*kernel{&goKernel}, asmKernels...) {
		kern := *base
		kern.mc, kern.kc, kern.bmax = 2*kern.mr, 37, 20000
		list = append(list, impl{fmt.Sprintf("%dx%d/small-blocks", kern.mr, kern.nr), withKernel(&kern)})
	}
	for _, im := range list {
		for _, p := range largeProblems(*seedFlag*31 + 5) {
			var first []float32
			for _, procs := range []int{1, 2, 4} {
				runtime.GOMAXPROCS(procs)
				d := p.data()
				p.call(im.f, d)
				if first == nil {
					first = d.c
					want := p.refData()
					for i := range want.c {
						if math.Float32bits(want.c[i]) != math.Float32bits(d.c[i]) {
							t.Fatalf("%s: GOMAXPROCS=%d: %v: %s differs from Ref", im.name, procs, p, p.where(d, i))
						}
					}
					continue
				}
				for i := range first {
					if math.Float32bits(first[i]) != math.Float32bits(d.c[i]) {
						t.Fatalf("%s: GOMAXPROCS=%d: %v: %s differs from GOMAXPROCS=1", im.name, procs, p, p.where(d, i))
					}
				}
			}
		}
	}
}

// TestSgemmConcurrent runs products from several goroutines at once, so
// that they share the helper goroutines and the pooled buffers.
func TestSgemmConcurrent(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	for _, im := range impls() {
		problems := largeProblems(*seedFlag*131 + 17)[:8]
		var wg sync.WaitGroup
		errs := make(chan string, 4*len(problems))
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range problems {
					p := problems[(i+2*g)%len(problems)]
					want := p.refData()
					got := p.data()
					p.call(im.f, got)
					for idx := range got.c {
						if math.Float32bits(got.c[idx]) != math.Float32bits(want.c[idx]) {
							errs <- fmt.Sprintf("%s: goroutine %d: %v: %s differs from Ref", im.name, g, p, p.where(got, idx))
							break
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	}
}

// TestSgemmZeroSizes checks that empty products leave C alone, and that
// k == 0 sets C to +0 unless acc.
func TestSgemmZeroSizes(t *testing.T) {
	for _, im := range impls() {
		for _, s := range [][3]int{{0, 0, 0}, {0, 5, 3}, {5, 0, 3}, {4, 5, 0}, {17, 33, 0}, {0, 0, 7}} {
			for _, acc := range []bool{false, true} {
				p := newProblem(*seedFlag, s[0], s[1], s[2])
				p.acc = acc
				check(t, im.name, im.f, p)
			}
		}
		// Minimal slices: nil A and B are fine when k == 0.
		c := []float32{1, 2, 3, 4, 5, 6}
		im.f(false, false, 2, 3, 0, nil, 0, nil, 3, c, 3, false)
		for i, v := range c {
			if math.Float32bits(v) != 0 {
				t.Errorf("%s: k=0: c[%d] = %g, want +0", im.name, i, v)
			}
		}
	}
}

func TestSgemmSignedZero(t *testing.T) {
	// 0 + (-0) = +0: the sum must start from +0, not from the first product.
	negZero := float32(math.Copysign(0, -1))
	for _, im := range impls() {
		for _, n := range []int{1, 16, 40, 100} {
			a := make([]float32, n*n)
			b := make([]float32, n*n)
			for i := range a {
				a[i] = negZero
				b[i] = 1
			}
			c := make([]float32, n*n)
			im.f(false, false, n, n, n, a, n, b, n, c, n, false)
			for i, v := range c {
				if math.Float32bits(v) != 0 {
					t.Fatalf("%s: n=%d: c[%d] has bits %#08x, want +0", im.name, n, i, math.Float32bits(v))
				}
			}
		}
	}
}

func TestSgemmPanics(t *testing.T) {
	a := make([]float32, 12)
	b := make([]float32, 12)
	c := make([]float32, 12)
	cases := []struct {
		name string
		want string
		call func(f sgemmFunc)
	}{
		{"negative m", errNegDim, func(f sgemmFunc) { f(false, false, -1, 2, 2, a, 2, b, 2, c, 2, false) }},
		{"negative k", errNegDim, func(f sgemmFunc) { f(false, false, 2, 2, -1, a, 2, b, 2, c, 2, false) }},
		{"lda", errLda, func(f sgemmFunc) { f(false, false, 2, 2, 3, a, 2, b, 2, c, 2, false) }},
		{"lda transA", errLda, func(f sgemmFunc) { f(true, false, 3, 2, 2, a, 2, b, 2, c, 2, false) }},
		{"ldb", errLdb, func(f sgemmFunc) { f(false, false, 2, 3, 2, a, 2, b, 2, c, 3, false) }},
		{"ldb transB", errLdb, func(f sgemmFunc) { f(false, true, 2, 2, 3, a, 3, b, 2, c, 2, false) }},
		{"ldc", errLdc, func(f sgemmFunc) { f(false, false, 2, 3, 2, a, 2, b, 3, c, 2, false) }},
		{"short a", errShortA, func(f sgemmFunc) { f(false, false, 4, 2, 4, a, 4, b, 2, c, 2, false) }},
		{"short a transA", errShortA, func(f sgemmFunc) { f(true, false, 4, 2, 4, a, 4, b, 2, c, 2, false) }},
		{"short b", errShortB, func(f sgemmFunc) { f(false, false, 2, 4, 4, a, 4, b, 4, c, 4, false) }},
		{"short b transB", errShortB, func(f sgemmFunc) { f(false, true, 2, 4, 4, a, 4, b, 4, c, 4, false) }},
		{"short c", errShortC, func(f sgemmFunc) { f(false, false, 4, 4, 2, a, 2, b, 4, c, 4, false) }},
		{"short c k=0", errShortC, func(f sgemmFunc) { f(false, false, 4, 4, 0, nil, 0, nil, 4, c, 4, false) }},
		{"short c padded ldc", errShortC, func(f sgemmFunc) { f(false, false, 2, 2, 2, a, 2, b, 2, c, 11, false) }},
	}
	for _, im := range impls() {
		for _, tc := range cases {
			func() {
				defer func() {
					r := recover()
					if s, ok := r.(string); !ok || s != tc.want {
						t.Errorf("%s: %s: panic %v, want %q", im.name, tc.name, r, tc.want)
					}
				}()
				tc.call(im.f)
			}()
		}
	}
}

func TestSgemmAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are not meaningful here")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, im := range impls() {
		for _, procs := range []int{1, 2} {
			runtime.GOMAXPROCS(procs)
			for _, n := range []int{64, 200} {
				a := make([]float32, n*n)
				b := make([]float32, n*n)
				c := make([]float32, n*n)
				im.f(false, false, n, n, n, a, n, b, n, c, n, false) // warm the pools
				allocs := testing.AllocsPerRun(20, func() {
					im.f(false, true, n, n, n, a, n, b, n, c, n, true)
				})
				if allocs > 0.5 {
					t.Errorf("%s: GOMAXPROCS=%d n=%d: %v allocations per call", im.name, procs, n, allocs)
				}
			}
		}
	}
}

func TestHasAsm(t *testing.T) {
	t.Logf("HasAsm() = %v, GOARCH = %s", HasAsm(), runtime.GOARCH)
	t.Logf("Kernel() = %q, assembly kernels available: %d", Kernel(), len(asmKernels))
	if HasAsm() != (asmKernel != nil && active == asmKernel) {
		t.Fatal("HasAsm disagrees with the active kernel")
	}
	if Kernel() != active.name || HasAsm() != (Kernel() != "go") {
		t.Fatalf("Kernel() = %q disagrees with the active kernel", Kernel())
	}
	if len(asmKernels) > 0 && asmKernels[0] != asmKernel {
		t.Fatal("asmKernel is not the first of asmKernels")
	}
}
