package f32

import (
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
)

// ulpDist returns the number of float32 values between a and b, counting
// +0 and -0 as the same value. It returns 0 if both are NaN and a huge
// distance if exactly one is.
func ulpDist(a, b float32) uint64 {
	if a != a || b != b {
		if a != a && b != b {
			return 0
		}
		return math.MaxUint64
	}
	oa, ob := ordered(a), ordered(b)
	if oa > ob {
		return uint64(oa - ob)
	}
	return uint64(ob - oa)
}

// ordered maps float32 bit patterns to integers that sort like the values.
func ordered(f float32) int64 {
	b := math.Float32bits(f)
	if b>>31 != 0 {
		return -int64(b & 0x7fffffff)
	}
	return int64(b)
}

// fracErr returns |got - want| in units of the ulp of want rounded to
// float32 (the ulp of the smallest subnormal below 2^-126).
func fracErr(got float32, want float64) float64 {
	w := float32(want)
	if math.IsInf(float64(w), 0) || got != got {
		if float64(got) == float64(w) || (got != got && want != want) {
			return 0
		}
		return math.Inf(1)
	}
	e := math.Ilogb(math.Abs(float64(w)))
	if w == 0 || e < -126 {
		e = -126
	}
	return math.Abs(float64(got)-want) / math.Ldexp(1, e-23)
}

// Reference functions in float64.
func refExp(x float32) float64  { return math.Exp(float64(x)) }
func refLog(x float32) float64  { return math.Log(float64(x)) }
func refTanh(x float32) float64 { return math.Tanh(float64(x)) }
func refSigmoid(x float32) float64 {
	v := float64(x)
	if v >= 0 {
		return 1 / (1 + math.Exp(-v))
	}
	e := math.Exp(v)
	return e / (1 + e)
}

type fn struct {
	name  string
	f     func(float32) float32
	ref   func(float32) float64
	bound uint64  // documented bound in ulps
	lo    float32 // sweep range: every 97th bit pattern of [lo, hi]
	hi    float32
}

var funcs = []fn{
	{"Exp", Exp, refExp, 1, -105, 89},
	{"Log", Log, refLog, 1, 0, float32(math.Inf(1))},
	{"Tanh", Tanh, refTanh, 1, -10, 10},
	{"Sigmoid", Sigmoid, refSigmoid, 2, -105, 20},
}

// errStats accumulates the worst errors seen.
type errStats struct {
	maxUlp    uint64
	maxFrac   float64
	worstUlp  float32
	worstFrac float32
	n         int
}

func (s *errStats) add(f fn, x float32) {
	got := f.f(x)
	want := f.ref(x)
	d := ulpDist(got, float32(want))
	if d > s.maxUlp || s.n == 0 {
		s.maxUlp, s.worstUlp = d, x
	}
	if e := fracErr(got, want); e > s.maxFrac {
		s.maxFrac, s.worstFrac = e, x
	}
	s.n++
}

func (s *errStats) merge(o errStats) {
	if o.maxUlp > s.maxUlp || s.n == 0 {
		s.maxUlp, s.worstUlp = o.maxUlp, o.worstUlp
	}
	if o.maxFrac > s.maxFrac {
		s.maxFrac, s.worstFrac = o.maxFrac, o.worstFrac
	}
	s.n += o.n
}

// sweepBits checks the bit patterns first, first+step, ... <= last, split
// over all CPUs.
func sweepBits(f fn, first, last, step uint64) errStats {
	workers := runtime.GOMAXPROCS(0)
	n := (last-first)/step + 1
	res := make([]errStats, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var s errStats
			for i := uint64(w); i < n; i += uint64(workers) {
				s.add(f, math.Float32frombits(uint32(first+i*step)))
			}
			res[w] = s
		})
	}
	wg.Wait()
	var s errStats
	for _, r := range res {
		s.merge(r)
	}
	return s
}

// sweep checks every step-th bit pattern of [f.lo, f.hi], both signs.
func sweep(f fn, step uint64) errStats {
	var s errStats
	if f.hi > 0 {
		s.merge(sweepBits(f, 0, uint64(math.Float32bits(f.hi)), step))
	}
	if f.lo < 0 {
		s.merge(sweepBits(f, 0x80000000, uint64(math.Float32bits(f.lo)), step))
	}
	return s
}

func TestAccuracySweep(t *testing.T) {
	step := uint64(97)
	if testing.Short() {
		step = 9973
	}
	for _, f := range funcs {
		t.Run(f.name, func(t *testing.T) {
			s := sweep(f, step)
			// Random samples of the same range, uniform in value.
			r := rand.New(rand.NewPCG(1, 2))
			lo, hi := float64(f.lo), math.Min(float64(f.hi), 100)
			for range 200000 {
				s.add(f, float32(lo+float64((hi-lo)*r.Float64())))
			}
			t.Logf("%s: %d inputs, max error %d ulp (at x=%g, %#08x), %.3f ulp vs float64 (at x=%g)",
				f.name, s.n, s.maxUlp, s.worstUlp, math.Float32bits(s.worstUlp), s.maxFrac, s.worstFrac)
			if s.maxUlp > f.bound {
				t.Errorf("%s(%g) is %d ulp from the reference; documented bound %d",
					f.name, s.worstUlp, s.maxUlp, f.bound)
			}
		})
	}
}

// TestAccuracyExhaustive checks every float32 input. It takes about six
// minutes on two cores and runs only when F32_EXHAUSTIVE=1:
//
//	F32_EXHAUSTIVE=1 go test -run Exhaustive -v -timeout 30m .
func TestAccuracyExhaustive(t *testing.T) {
	if os.Getenv("F32_EXHAUSTIVE") != "1" {
		t.Skip("set F32_EXHAUSTIVE=1 to check all 2^32 inputs")
	}
	for _, f := range funcs {
		t.Run(f.name, func(t *testing.T) {
			var s errStats
			s.merge(sweepBits(f, 0, 0x7fffffff, 1))
			s.merge(sweepBits(f, 0x80000000, 0xffffffff, 1))
			t.Logf("%s: all %d inputs, max error %d ulp (at x=%g, %#08x), %.3f ulp vs float64 (at x=%g)",
				f.name, s.n, s.maxUlp, s.worstUlp, math.Float32bits(s.worstUlp), s.maxFrac, s.worstFrac)
			if s.maxUlp > f.bound {
				t.Errorf("%s(%g) is %d ulp from the reference; documented bound %d",
					f.name, s.worstUlp, s.maxUlp, f.bound)
			}
		})
	}
}
