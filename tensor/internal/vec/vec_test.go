package vec

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shoal-network/shoal/tensor/internal/f32"
)

var seedFlag = flag.Uint64("vec.seed", 1, "base seed of the random tests")

// lengths covers empty slices, tails of every size around one and two
// vectors, the four-vector unrolled loops and long slices.
var lengths = []int{0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 23, 24, 31, 32, 33, 39, 40, 63, 64, 65, 1000, 4099}

// trialLengths is lengths three times over, for three draws of each.
func trialLengths() []int {
	var l []int
	for range 3 {
		l = append(l, lengths...)
	}
	return l
}

func bits(f float32) uint32 { return math.Float32bits(f) }

func isNaN(f float32) bool { return f != f }

// same reports whether a and b have the same bits; two NaNs are the same
// unless strict, which also compares their sign and payload.
func same(a, b float32, strict bool) bool {
	if !strict && isNaN(a) && isNaN(b) {
		return true
	}
	return bits(a) == bits(b)
}

func fromBits(b uint32) float32 { return math.Float32frombits(b) }

// Bit patterns of the branch boundaries of f32.Exp and f32.Tanh, and
// extreme values.
var boundaries = []uint32{
	0x42ac0000, // 86: end of the fast path of Exp
	0x42b17217, // overflow threshold of Exp
	0x42aeac50, // 87.33654: e^-x = 2^-126
	0x42cff1b4, // 103.97208: |underflow threshold| of Exp
	0x42b00000, // 88: k = 127
	0x3f200000, // 0.625: end of the polynomial of Tanh
	0x41120000, // 9.125: saturation of Tanh
	0x41100000, // 9
	0x39800000, // 2^-12
	0x3f317218, // ln2
	0x3eb17218, // ln2/2
	0x3f800000, // 1
	0x00000001, // smallest subnormal
	0x007fffff, // largest subnormal
	0x00800000, // smallest normal
	0x7f7fffff, // largest finite
	0x7f800000, // +Inf
}

// specials returns the boundaries, both signs, four ulps either side, and
// zeros, infinities and NaNs with several payloads.
func specials() []float32 {
	var s []float32
	for _, b := range boundaries {
		for d := -4; d <= 4; d++ {
			v := int64(b) + int64(d)
			if v < 0 || v > 0x7fffffff {
				continue
			}
			s = append(s, fromBits(uint32(v)), fromBits(uint32(v)|0x80000000))
		}
	}
	for _, b := range []uint32{0, 0x80000000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fffffff, 0xffffffff, 0x7fa00000} {
		s = append(s, fromBits(b))
	}
	return s
}

// geluBoundaries returns inputs of GELU around those whose tanh argument
// sqrt(2/pi)*(x + 0.044715*x^3) crosses 0.625 and 9.125, and around where
// x^3 and x^2 overflow.
func geluBoundaries() []float32 {
	u := func(v float32) float32 {
		x3 := float32(float32(v*v) * v)
		return float32(geluC * (v + float32(geluK*x3)))
	}
	var s []float32
	// u is increasing; bisect on the bit patterns of positive x.
	for _, target := range []float32{0.625, 9.125, float32(math.Inf(1))} {
		lo, hi := uint32(0), uint32(0x7f800000)
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			if u(fromBits(mid)) < target {
				lo = mid
			} else {
				hi = mid
			}
		}
		for d := -6; d <= 6; d++ {
			v := uint32(int64(hi) + int64(d))
			s = append(s, fromBits(v), fromBits(v|0x80000000))
		}
	}
	for _, v := range []float32{1.8446743e19, 1.8446744e19, 6.981463e12, 6.9814636e12} {
		s = append(s, v, -v)
	}
	return s
}

// Value distributions.
const (
	distSmall   = iota // uniform in [-1, 1)
	distWide           // uniform in [-120, 120)
	distLog            // ± 2^u, u uniform in [-40, 40)
	distBits           // uniform bit patterns
	distSpecial        // boundary and special values
	distMixed          // a mixture of all the above, element by element
	nDist
)

var specialValues = append(specials(), geluBoundaries()...)

func value(r *rand.Rand, dist int) float32 {
	switch dist {
	case distSmall:
		return float32(float64(r.Float64()*2) - 1)
	case distWide:
		return float32(float64(r.Float64()*240) - 120)
	case distLog:
		v := float32(math.Exp2(float64(r.Float64()*80) - 40))
		if r.IntN(2) == 0 {
			v = -v
		}
		return v
	case distBits:
		return fromBits(r.Uint32())
	case distSpecial:
		return specialValues[r.IntN(len(specialValues))]
	default:
		return value(r, r.IntN(distMixed))
	}
}

func values(r *rand.Rand, n, dist int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = value(r, dist)
	}
	return x
}

// scalars for the s arguments.
func scalar(r *rand.Rand, dist int) float32 {
	switch r.IntN(8) {
	case 0:
		return 0
	case 1:
		return 1
	case 2:
		return -0.5
	}
	return value(r, dist)
}

const guardBits = 0x7fa1b2c3 // a NaN that no kernel produces

// guarded returns a slice of n elements inside a buffer with guard
// elements either side; the guard length also varies the alignment.
func guarded(r *rand.Rand, init []float32, n int) (s, buf []float32) {
	g := 1 + r.IntN(9)
	buf = make([]float32, n+2*g)
	for i := range buf {
		buf[i] = fromBits(guardBits)
	}
	s = buf[g : g+n : g+n]
	copy(s, init)
	return s, buf
}

func checkGuards(t *testing.T, ctx string, s, buf []float32) {
	t.Helper()
	g := (len(buf) - len(s)) / 2
	for i, v := range buf {
		if (i < g || i >= g+len(s)) && bits(v) != guardBits {
			t.Fatalf("%s: wrote outside dst at %d", ctx, i-g)
		}
	}
}

// kernel describes an element-wise function with nin inputs and nout
// outputs. Outputs that accumulate start from random values. want computes
// the outputs of element i by the scalar definition.
type kernel struct {
	name   string
	nin    int
	nout   int
	acc    bool
	strict bool // NaN results must have the same bits
	// alias lists the inputs that may be passed as output 0 too.
	alias []int
	want  func(out, in []float32, s float32) // one element
	impls []kimpl
}

type kimpl struct {
	name string
	f    func(out, in [][]float32, s float32)
}

func kernels() []kernel {
	exp := func(out, in []float32, _ float32) { out[0] = f32.Exp(in[0]) }
	return []kernel{
		{name: "Exp", nin: 1, nout: 1, strict: true, alias: []int{0}, want: exp, impls: []kimpl{
			{"Exp", func(o, i [][]float32, _ float32) { Exp(o[0], i[0]) }},
			{"expGo", func(o, i [][]float32, _ float32) { expGo(o[0], i[0]) }},
		}},
		{name: "ExpSub", nin: 1, nout: 1, alias: []int{0},
			want: func(out, in []float32, s float32) { out[0] = f32.Exp(in[0] - s) },
			impls: []kimpl{
				{"ExpSub", func(o, i [][]float32, s float32) { ExpSub(o[0], i[0], s) }},
				{"expSubGo", func(o, i [][]float32, s float32) { expSubGo(o[0], i[0], s) }},
			}},
		{name: "Tanh", nin: 1, nout: 1, strict: true, alias: []int{0},
			want: func(out, in []float32, _ float32) { out[0] = f32.Tanh(in[0]) },
			impls: []kimpl{
				{"Tanh", func(o, i [][]float32, _ float32) { Tanh(o[0], i[0]) }},
				{"tanhGo", func(o, i [][]float32, _ float32) { tanhGo(o[0], i[0]) }},
			}},
		{name: "GELU", nin: 1, nout: 2, alias: []int{0},
			want: func(out, in []float32, _ float32) {
				// tensor.GELUTanh: dst = out[0], th = out[1].
				v := in[0]
				x3 := float32(float32(v*v) * v)
				th := f32.Tanh(float32(geluC * (v + float32(geluK*x3))))
				out[1] = th
				out[0] = float32(float32(0.5*v) * (1 + th))
			},
			impls: []kimpl{
				{"GELU", func(o, i [][]float32, _ float32) { GELU(o[0], o[1], i[0]) }},
				{"geluGo", func(o, i [][]float32, _ float32) { geluGo(o[0], o[1], i[0]) }},
			}},
		{name: "Add", nin: 2, nout: 1, alias: []int{0, 1},
			want: func(out, in []float32, _ float32) { out[0] = in[0] + in[1] },
			impls: []kimpl{
				{"Add", func(o, i [][]float32, _ float32) { Add(o[0], i[0], i[1]) }},
				{"addGo", func(o, i [][]float32, _ float32) { addGo(o[0], i[0], i[1]) }},
			}},
		{name: "Mul", nin: 2, nout: 1, alias: []int{0, 1},
			want: func(out, in []float32, _ float32) { out[0] = float32(in[0] * in[1]) },
			impls: []kimpl{
				{"Mul", func(o, i [][]float32, _ float32) { Mul(o[0], i[0], i[1]) }},
				{"mulGo", func(o, i [][]float32, _ float32) { mulGo(o[0], i[0], i[1]) }},
			}},
		{name: "Accumulate", nin: 1, nout: 1, acc: true,
			want: func(out, in []float32, _ float32) { out[0] += in[0] },
			impls: []kimpl{
				{"Accumulate", func(o, i [][]float32, _ float32) { Accumulate(o[0], i[0]) }},
				{"accumulateGo", func(o, i [][]float32, _ float32) { accumulateGo(o[0], i[0]) }},
			}},
		{name: "AddScaled", nin: 1, nout: 1, acc: true,
			want: func(out, in []float32, s float32) { out[0] += float32(s * in[0]) },
			impls: []kimpl{
				{"AddScaled", func(o, i [][]float32, s float32) { AddScaled(o[0], i[0], s) }},
				{"addScaledGo", func(o, i [][]float32, s float32) { addScaledGo(o[0], i[0], s) }},
			}},
		{name: "Scale", nin: 1, nout: 1, alias: []int{0},
			want: func(out, in []float32, s float32) { out[0] = float32(s * in[0]) },
			impls: []kimpl{
				{"Scale", func(o, i [][]float32, s float32) { Scale(o[0], i[0], s) }},
				{"scaleGo", func(o, i [][]float32, s float32) { scaleGo(o[0], i[0], s) }},
			}},
		{name: "DivScalar", nin: 1, nout: 1, alias: []int{0},
			want: func(out, in []float32, s float32) { out[0] = in[0] / s },
			impls: []kimpl{
				{"DivScalar", func(o, i [][]float32, s float32) { DivScalar(o[0], i[0], s) }},
				{"divScalarGo", func(o, i [][]float32, s float32) { divScalarGo(o[0], i[0], s) }},
			}},
	}
}

// TestKernels runs every implementation of every element-wise kernel on
// random and special inputs of many lengths and compares the bits of each
// element with the scalar definition.
func TestKernels(t *testing.T) {
	for _, k := range kernels() {
		t.Run(k.name, func(t *testing.T) {
			for trial, n := range trialLengths() {
				for dist := range nDist {
					seed := *seedFlag + uint64(trial*nDist+dist)
					r := rand.New(rand.NewPCG(seed, uint64(len(k.name))))
					in := make([][]float32, k.nin)
					for j := range in {
						in[j] = values(r, n, dist)
					}
					var init [][]float32
					for range k.nout {
						if k.acc {
							init = append(init, values(r, n, dist))
						} else {
							init = append(init, make([]float32, n))
						}
					}
					s := scalar(r, dist)
					if k.name == "ExpSub" && n > 0 && r.IntN(2) == 0 {
						s = Max(in[0]) // as in a softmax
					}
					want := make([][]float32, k.nout)
					for j := range want {
						want[j] = append([]float32(nil), init[j]...)
					}
					eo, ei := make([]float32, k.nout), make([]float32, k.nin)
					for i := range n {
						for j := range eo {
							eo[j] = init[j][i]
						}
						for j := range ei {
							ei[j] = in[j][i]
						}
						k.want(eo, ei, s)
						for j := range eo {
							want[j][i] = eo[j]
						}
					}
					for _, im := range k.impls {
						ctx := fmt.Sprintf("%s n=%d dist=%d s=%g seed=%d", im.name, n, dist, s, seed)
						runKernel(t, ctx, k, im, r, in, init, want, s, -1)
						for _, a := range k.alias {
							runKernel(t, ctx+fmt.Sprintf(" dst=in[%d]", a), k, im, r, in, init, want, s, a)
						}
					}
				}
			}
		})
	}
}

// runKernel runs im on guarded copies of the inputs and outputs, with
// output 0 the same slice as input alias if alias >= 0, and checks the
// results, the guards and that the inputs are unchanged.
func runKernel(t *testing.T, ctx string, k kernel, im kimpl, r *rand.Rand, in, init, want [][]float32, s float32, alias int) {
	t.Helper()
	n := len(in[0])
	ins := make([][]float32, k.nin)
	inBufs := make([][]float32, k.nin)
	for j := range ins {
		ins[j], inBufs[j] = guarded(r, in[j], n)
	}
	outs := make([][]float32, k.nout)
	outBufs := make([][]float32, k.nout)
	for j := range outs {
		outs[j], outBufs[j] = guarded(r, init[j], n)
	}
	if alias >= 0 {
		outs[0], outBufs[0] = ins[alias], inBufs[alias]
	}
	im.f(outs, ins, s)
	for j := range outs {
		checkGuards(t, ctx, outs[j], outBufs[j])
		for i := range n {
			if !same(outs[j][i], want[j][i], k.strict) {
				t.Fatalf("%s: out[%d][%d] = %g [%#08x], want %g [%#08x]; inputs %v",
					ctx, j, i, outs[j][i], bits(outs[j][i]), want[j][i], bits(want[j][i]), column(in, i))
			}
		}
	}
	for j := range ins {
		if j == alias {
			continue
		}
		checkGuards(t, ctx, ins[j], inBufs[j])
		for i := range n {
			if bits(ins[j][i]) != bits(in[j][i]) {
				t.Fatalf("%s: input %d modified at %d", ctx, j, i)
			}
		}
	}
}

func column(in [][]float32, i int) []string {
	var c []string
	for _, s := range in {
		c = append(c, fmt.Sprintf("%g [%#08x]", s[i], bits(s[i])))
	}
	return c
}

// Definitions of the reductions, written independently of ref.go.

func sumDef(x []float32) float32 {
	var s [8]float32
	n := len(x) &^ 7
	for i := range n {
		s[i%8] += x[i]
	}
	t := ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
	for _, v := range x[n:] {
		t += v
	}
	return t
}

func dotDef(x, y []float32) float32 {
	var s [8]float32
	n := len(x) &^ 7
	for i := range n {
		s[i%8] += float32(x[i] * y[i])
	}
	t := ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
	for i := n; i < len(x); i++ {
		t += float32(x[i] * y[i])
	}
	return t
}

func maxDef(x []float32) float32 {
	m := x[0]
	for _, v := range x[1:] {
		if v > m || v != v {
			m = v
		}
	}
	return m
}

func TestReductions(t *testing.T) {
	sums := []struct {
		name string
		f    func([]float32) float32
	}{{"Sum", Sum}, {"sumGo", sumGo}}
	dots := []struct {
		name string
		f    func(x, y []float32) float32
	}{{"Dot", Dot}, {"dotGo", dotGo}}
	maxes := []struct {
		name string
		f    func([]float32) float32
	}{{"Max", Max}, {"maxGo", func(x []float32) float32 { return maxGo(x[0], x[1:]) }}}
	for _, n := range lengths {
		for dist := range nDist + 2 {
			seed := *seedFlag + uint64(n*(nDist+2)+dist)
			r := rand.New(rand.NewPCG(seed, 7))
			var x, y []float32
			switch dist {
			case nDist: // values whose sums cancel and round in every lane
				x = values(r, n, distLog)
				y = values(r, n, distLog)
			case nDist + 1: // signed zeros and one other value
				x = make([]float32, n)
				for i := range x {
					x[i] = []float32{0, fromBits(0x80000000), -1, 3}[r.IntN(4)&^(r.IntN(2)*2)]
				}
				y = values(r, n, distSmall)
			default:
				x = values(r, n, dist)
				y = values(r, n, dist)
			}
			x0, y0 := append([]float32(nil), x...), append([]float32(nil), y...)
			ctx := fmt.Sprintf("n=%d dist=%d seed=%d", n, dist, seed)
			for _, f := range sums {
				if got, want := f.f(x), sumDef(x); !same(got, want, false) {
					t.Errorf("%s %s: got %g [%#08x], want %g [%#08x]", f.name, ctx, got, bits(got), want, bits(want))
				}
			}
			for _, f := range dots {
				if got, want := f.f(x, y), dotDef(x, y); !same(got, want, false) {
					t.Errorf("%s %s: got %g [%#08x], want %g [%#08x]", f.name, ctx, got, bits(got), want, bits(want))
				}
			}
			if n > 0 {
				for _, f := range maxes {
					if got, want := f.f(x), maxDef(x); !same(got, want, true) {
						t.Errorf("%s %s: got %g [%#08x], want %g [%#08x]", f.name, ctx, got, bits(got), want, bits(want))
					}
				}
			}
			for i := range x {
				if bits(x[i]) != bits(x0[i]) || bits(y[i]) != bits(y0[i]) {
					t.Fatalf("%s: input modified at %d", ctx, i)
				}
			}
		}
	}
}

// TestMaxCases checks the NaN and signed-zero rules of Max where the
// vector path must defer to the scalar scan.
func TestMaxCases(t *testing.T) {
	nz := fromBits(0x80000000)
	nan1, nan2 := fromBits(0x7fc00001), fromBits(0xffc00002)
	for _, n := range []int{1, 8, 9, 16, 17, 40} {
		for pos := range n {
			for _, c := range []struct {
				fill, at float32
			}{{-1, nan1}, {nz, 0}, {0, nz}, {-3, nz}, {-3, 0}, {-3, 5}, {5, -3}, {nan2, nan1}, {-2, float32(math.Inf(1))}, {float32(math.Inf(-1)), -2}} {
				x := make([]float32, n)
				for i := range x {
					x[i] = c.fill
				}
				x[pos] = c.at
				if n > 3 {
					x[n-1-pos/2] = nan2 // a second NaN, or a second value, later on
					if !isNaN(c.at) {
						x[n-1-pos/2] = c.fill
					}
				}
				if got, want := Max(x), maxDef(x); bits(got) != bits(want) {
					t.Errorf("Max(%v) = %g [%#08x], want %g [%#08x]", x, got, bits(got), want, bits(want))
				}
			}
		}
	}
}

func TestAdamW(t *testing.T) {
	impls := []struct {
		name string
		f    func(w, g, m, v []float32, gscale, b1, b2, c1, c2, lr, decay, eps float32)
	}{{"AdamW", AdamW}, {"adamWGo", adamWGo}}
	for _, n := range lengths {
		for dist := range nDist {
			seed := *seedFlag + uint64(n*nDist+dist)
			r := rand.New(rand.NewPCG(seed, 11))
			w0, g := values(r, n, dist), values(r, n, dist)
			m0 := values(r, n, distSmall)
			v0 := make([]float32, n)
			for i := range v0 {
				v0[i] = float32(r.Float64() * 0.01)
			}
			if dist >= distBits {
				v0 = values(r, n, dist)
			}
			gscale, b1, b2 := float32(0.7), float32(0.9), float32(0.95)
			c1, c2 := float32(0.271), float32(0.0975)
			lr, decay, eps := float32(3e-4), float32(3e-5), float32(1e-8)
			if dist == distMixed {
				gscale, b1, b2, c1 = 1, scalar(r, dist), scalar(r, dist), scalar(r, dist)
			}
			// The definition, from gradient.(*AdamW).Step.
			w, m, v := append([]float32(nil), w0...), append([]float32(nil), m0...), append([]float32(nil), v0...)
			for j := range w {
				gj := float32(g[j] * gscale)
				m[j] = float32(b1*m[j]) + float32((1-b1)*gj)
				v[j] = float32(b2*v[j]) + float32(float32((1-b2)*gj)*gj)
				mh := m[j] / c1
				vh := v[j] / c2
				w[j] = (w[j] - float32(decay*w[j])) - float32(lr*(mh/(float32(math.Sqrt(float64(vh)))+eps)))
			}
			for _, im := range impls {
				ctx := fmt.Sprintf("%s n=%d dist=%d seed=%d", im.name, n, dist, seed)
				gw, bw := guarded(r, w0, n)
				gg, bg := guarded(r, g, n)
				gm, bm := guarded(r, m0, n)
				gv, bv := guarded(r, v0, n)
				im.f(gw, gg, gm, gv, gscale, b1, b2, c1, c2, lr, decay, eps)
				for _, p := range []struct {
					name      string
					got, want []float32
					buf       []float32
				}{{"w", gw, w, bw}, {"g", gg, g, bg}, {"m", gm, m, bm}, {"v", gv, v, bv}} {
					checkGuards(t, ctx+" "+p.name, p.got, p.buf)
					for i := range p.got {
						if !same(p.got[i], p.want[i], false) {
							t.Fatalf("%s: %s[%d] = %g [%#08x], want %g [%#08x]",
								ctx, p.name, i, p.got[i], bits(p.got[i]), p.want[i], bits(p.want[i]))
						}
					}
				}
			}
		}
	}
}

// TestPanics checks that length mismatches panic with the package's
// constant message.
func TestPanics(t *testing.T) {
	a, b := make([]float32, 9), make([]float32, 8)
	for _, c := range []struct {
		name string
		f    func()
		msg  string
	}{
		{"Exp", func() { Exp(a, b) }, errLength},
		{"ExpSub", func() { ExpSub(b, a, 0) }, errLength},
		{"Tanh", func() { Tanh(a, b) }, errLength},
		{"GELU/th", func() { GELU(a, b, a) }, errLength},
		{"GELU/dst", func() { GELU(b, a, a) }, errLength},
		{"Add", func() { Add(a, a, b) }, errLength},
		{"Mul", func() { Mul(b, a, a) }, errLength},
		{"Accumulate", func() { Accumulate(a, b) }, errLength},
		{"AddScaled", func() { AddScaled(a, b, 1) }, errLength},
		{"Scale", func() { Scale(a, b, 1) }, errLength},
		{"DivScalar", func() { DivScalar(a, b, 1) }, errLength},
		{"Dot", func() { Dot(a, b) }, errLength},
		{"AdamW", func() { AdamW(a, a, a, b, 1, 0.9, 0.95, 1, 1, 1, 0, 1e-8) }, errLength},
		{"Max", func() { Max(nil) }, "vec: Max of an empty slice"},
	} {
		func() {
			defer func() {
				if got := recover(); got != c.msg {
					t.Errorf("%s: panic %v, want %q", c.name, got, c.msg)
				}
			}()
			c.f()
		}()
	}
}

// TestAllocs checks that no function allocates, the tail buffers
// included.
func TestAllocs(t *testing.T) {
	x, y, d, e := make([]float32, 37), make([]float32, 37), make([]float32, 37), make([]float32, 37)
	for i := range x {
		x[i] = float32(i) - 18
		y[i] = 1
	}
	var sink float32
	if n := testing.AllocsPerRun(10, func() {
		Exp(d, x)
		ExpSub(d, x, 3)
		Tanh(d, x)
		GELU(d, e, x)
		Add(d, x, y)
		Mul(d, x, y)
		Accumulate(d, x)
		AddScaled(d, x, 2)
		Scale(d, x, 2)
		DivScalar(d, x, 2)
		AdamW(d, x, e, y, 1, 0.9, 0.95, 1, 1, 1e-3, 0, 1e-8)
		sink += Sum(x) + Dot(x, y) + Max(x)
	}); n != 0 {
		t.Errorf("%v allocations per run, want 0", n)
	}
	_ = sink
}

func TestHasAsm(t *testing.T) {
	t.Logf("HasAsm() = %v", HasAsm())
}
