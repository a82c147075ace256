package codec

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"fp32", "fp32"},
		{"fp16", "fp16"},
		{"bf16", "bf16"},
		{"int8", "int8:block=256"},
		{"int8:block=64", "int8:block=64"},
		{"sign", "sign:chunk=256"},
		{"topk", "topk:chunk=4096,k=64,values=fp16"},
		{"topk:values=2bit,k=3,chunk=8", "topk:chunk=8,k=3,values=2bit"},
		{"dct-topk", "dct-topk:chunk=64,k=8,values=fp16"},
		{"dct-topk:chunk=1024,k=1024,values=int8", "dct-topk:chunk=1024,k=1024,values=int8"},
	} {
		c, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if c.String() != tc.want {
			t.Errorf("Parse(%q) = %s, want %s", tc.in, c, tc.want)
		}
		again, err := Parse(c.String())
		if err != nil || again.String() != c.String() || again.Name() != c.Name() {
			t.Errorf("Parse(%q) does not round-trip: %v", c, err)
		}
	}
	for _, bad := range []string{
		"", "fp64", "fp32:block=1", "int8:", "int8:block", "int8:block=0",
		"int8:block=1048577", "int8:chunk=4", "int8:block=-1", "int8:block=x",
		"sign:chunk=0", "topk:k=0", "topk:chunk=8,k=9", "topk:chunk=1,k=1",
		"topk:values=fp32", "topk:k=3,k=3", "dct-topk:chunk=1025,k=8",
		"dct-topk:chunk=4", "topk:chunk=8,k=2,", "TOPK",
	} {
		if c, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %s, want an error", bad, c)
		}
	}
}

// exactFeedback lists the codecs whose residual' + decoded == x exactly.
func exactFeedback(c *codec) bool {
	switch c.id {
	case idSign, idDCTTopK, idBlockSign:
		return false
	case idTopK:
		return c.values != val2Bit
	}
	return true
}

// TestRoundTrip encodes random updates with every codec and checks
// EncodedLen, the decoded shapes, the codec's error bound, the error-feedback identity
// and that encoding delta with a residual equals encoding delta+residual
// without one.
func TestRoundTrip(t *testing.T) {
	for _, spec := range testSpecs {
		t.Run(spec, func(t *testing.T) {
			c := mustParse(t, spec)
			for seed := range uint64(4) {
				rng := rand.New(rand.NewPCG(seed, 7))
				delta, res := randUpdate(rng, seed%2 == 0)
				xs := sumInput(delta, res)
				res2 := cloneResidual(res)
				b, err := c.Encode(delta, res2)
				if err != nil {
					t.Fatal(err)
				}
				if n, err := EncodedLen(c, specsOf(delta)); err != nil || n != int64(len(b)) {
					t.Fatalf("seed %d: EncodedLen = %d (%v), the encoding has %d bytes", seed, n, err, len(b))
				}
				again, err := c.Encode(delta, cloneResidual(res))
				if err != nil || !bytes.Equal(again, b) {
					t.Fatal("encoding the same input twice gave different bytes")
				}
				plain, err := c.Encode(asTensors(delta, xs), nil)
				if err != nil || !bytes.Equal(plain, b) {
					t.Fatal("Encode(delta, residual) differs from Encode(delta+residual, nil)")
				}
				out, err := c.Decode(b, Limits{Expect: specsOf(delta)})
				if err != nil {
					t.Fatal(err)
				}
				if len(out) != len(delta) {
					t.Fatalf("decoded %d tensors, want %d", len(out), len(delta))
				}
				for i := range out {
					if out[i].Name != delta[i].Name || !slices.Equal(out[i].Shape, delta[i].Shape) || len(out[i].Data) != len(delta[i].Data) {
						t.Fatalf("tensor %d: decoded %s %v, want %s %v", i, out[i].Name, out[i].Shape, delta[i].Name, delta[i].Shape)
					}
					for j, y := range out[i].Data {
						if y != y || math.IsInf(float64(y), 0) {
							t.Fatalf("tensor %d element %d decodes to %g", i, j, y)
						}
					}
				}
				checkBound(t, c, b, delta, xs, out)
				if res2 != nil {
					checkFeedback(t, c, xs, out, res2)
				}
			}
		})
	}
}

func specsOf(ts []Tensor) []TensorSpec {
	s := make([]TensorSpec, len(ts))
	for i, t := range ts {
		s[i] = TensorSpec{t.Name, t.Shape}
	}
	return s
}

// checkFeedback checks residual' + y against x: exactly, or up to one
// rounding of x - y.
func checkFeedback(t *testing.T, c *codec, xs [][]float32, out []Tensor, res [][]float32) {
	t.Helper()
	exact := exactFeedback(c)
	for i := range xs {
		for j, x := range xs[i] {
			y, r := out[i].Data[j], res[i][j]
			if math.Float32bits(r) != math.Float32bits(x-y) {
				t.Fatalf("tensor %d element %d: residual %g, want x-y = %g", i, j, r, x-y)
			}
			got := float64(r) + float64(y) // exact in float64 for these magnitudes
			if exact && got != float64(x) {
				t.Fatalf("tensor %d element %d: residual' + y = %g, want x = %g (y = %g)", i, j, got, x, y)
			}
			if !exact && math.Abs(got-float64(x)) > 0x1p-24*math.Abs(float64(x)-float64(y)) {
				t.Fatalf("tensor %d element %d: residual' + y = %g, x = %g: more than one rounding apart", i, j, got, x)
			}
		}
	}
}

// checkBound checks the documented per-element error bound of c.
func checkBound(t *testing.T, c *codec, b []byte, delta []Tensor, xs [][]float32, out []Tensor) {
	t.Helper()
	fail := func(i, j int, x, y float32, why string) {
		t.Helper()
		t.Fatalf("tensor %d element %d: x = %g (%#x), y = %g (%#x): %s", i, j, x, math.Float32bits(x), y, math.Float32bits(y), why)
	}
	switch c.id {
	case idFP32:
		for i := range xs {
			for j, x := range xs[i] {
				if y := out[i].Data[j]; math.Float32bits(y) != math.Float32bits(x) {
					fail(i, j, x, y, "fp32 is not bit-exact")
				}
			}
		}
	case idFP16:
		for i := range xs {
			for j, x := range xs[i] {
				y := out[i].Data[j]
				if !fp16Within(x, y) {
					fail(i, j, x, y, "fp16 bound")
				}
			}
		}
	case idBF16:
		for i := range xs {
			for j, x := range xs[i] {
				y := out[i].Data[j]
				a, e := math.Abs(float64(x)), math.Abs(float64(y)-float64(x))
				if a >= 0x1p-126 && e > 0x1p-8*a || a < 0x1p-126 && e > 0x1p-134 || signbit(x) != signbit(y) {
					fail(i, j, x, y, "bf16 bound")
				}
			}
		}
	case idInt8:
		for i := range xs {
			for base := 0; base < len(xs[i]); base += c.chunk {
				blk := xs[i][base:min(base+c.chunk, len(xs[i]))]
				var amax float64
				for _, x := range blk {
					amax = max(amax, math.Abs(float64(x)))
				}
				s := amax / 127
				for j, x := range blk {
					y := out[i].Data[base+j]
					e := math.Abs(float64(y) - float64(x))
					if s < 0x1p-126 && y != 0 || s >= 0x1p-126 && e > (0.5+0x1p-16)*s*(1+0x1p-23) {
						fail(i, base+j, x, y, "int8 bound")
					}
				}
			}
		}
	case idSign:
		for i := range xs {
			for base := 0; base < len(xs[i]); base += c.chunk {
				blk := xs[i][base:min(base+c.chunk, len(xs[i]))]
				var sum float64
				for _, x := range blk {
					sum += math.Abs(float64(x))
				}
				s := float32(sum / float64(len(blk)))
				for j, x := range blk {
					y := out[i].Data[base+j]
					if float32(math.Abs(float64(y))) != s || signbit(x) != signbit(y) {
						fail(i, base+j, x, y, "sign: want ±mean|x| with the sign of x")
					}
				}
			}
		}
	case idBlockSign:
		// A reference selection: scales as for sign, the m chunks of
		// largest L·s², ties to the lower chunk, by a plain sort.
		for i := range xs {
			type cand struct {
				ci   int
				s    float32
				gain float64
			}
			var cs []cand
			for base := 0; base < len(xs[i]); base += c.chunk {
				blk := xs[i][base:min(base+c.chunk, len(xs[i]))]
				var sum float64
				for _, x := range blk {
					sum += math.Abs(float64(x))
				}
				s := float32(sum / float64(len(blk)))
				cs = append(cs, cand{base / c.chunk, s, float64(s) * float64(s) * float64(len(blk))})
			}
			m := (len(cs) + c.k - 1) / c.k
			sorted := slices.Clone(cs)
			slices.SortStableFunc(sorted, func(a, b cand) int {
				if a.gain > b.gain {
					return -1
				}
				if a.gain < b.gain {
					return 1
				}
				return 0
			})
			sent := make([]bool, len(cs))
			for _, cd := range sorted[:m] {
				sent[cd.ci] = true
			}
			for _, cd := range cs {
				base := cd.ci * c.chunk
				for j, x := range xs[i][base:min(base+c.chunk, len(xs[i]))] {
					y := out[i].Data[base+j]
					switch {
					case !sent[cd.ci] && math.Float32bits(y) != 0:
						fail(i, base+j, x, y, "unsent chunk does not decode to +0")
					case sent[cd.ci] && (float32(math.Abs(float64(y))) != cd.s || signbit(x) != signbit(y)):
						fail(i, base+j, x, y, "block-sign: want ±mean|x| with the sign of x in a chunk of largest gain")
					}
				}
			}
		}
	case idTopK:
		for _, rc := range records(t, c, b, delta) {
			x := xs[rc.tensor][rc.base : rc.base+rc.n]
			y := out[rc.tensor].Data[rc.base : rc.base+rc.n]
			if want := refTop(x, min(c.k, rc.n)); !slices.Equal(rc.sel, want) {
				t.Fatalf("tensor %d chunk at %d: sent %v, want the top-k %v", rc.tensor, rc.base, rc.sel, want)
			}
			sent := make([]bool, rc.n)
			for _, j := range rc.sel {
				sent[j] = true
			}
			for j := range x {
				if !sent[j] && math.Float32bits(y[j]) != 0 {
					fail(rc.tensor, rc.base+j, x[j], y[j], "unsent element does not decode to +0")
				}
			}
			checkValues(t, c, rc, x, func(k int) float64 { return float64(x[k]) }, func(i int) {
				j := rc.sel[i]
				if y[j] != rc.yv[i] {
					fail(rc.tensor, rc.base+int(j), x[j], y[j], "decoded element differs from the record")
				}
			})
		}
	case idDCTTopK:
		for _, rc := range records(t, c, b, delta) {
			x := xs[rc.tensor][rc.base : rc.base+rc.n]
			y := out[rc.tensor].Data[rc.base : rc.base+rc.n]
			ref := refDCT(x)
			var norm2 float64
			for _, v := range x {
				norm2 += float64(v) * float64(v)
			}
			// The selection is made on float32 coefficients: it matches the
			// float64 one except between nearly equal magnitudes.
			want := refTop(f32s(ref), min(c.k, rc.n))
			if !slices.Equal(rc.sel, want) {
				for i := range want {
					a, b := math.Abs(ref[rc.sel[i]]), math.Abs(ref[want[i]])
					if math.Abs(a-b) > 1e-5*math.Sqrt(norm2)+1e-30 {
						t.Fatalf("tensor %d chunk at %d: sent %v, want the top-k %v", rc.tensor, rc.base, rc.sel, want)
					}
				}
			}
			checkValues(t, c, rc, x, func(k int) float64 { return ref[k] }, func(int) {})
			// Orthonormality: ||x - y||² = Σ unsent c² + Σ sent (c - ĉ)².
			var errY, errC float64
			for i := range x {
				d := float64(x[i]) - float64(y[i])
				errY += d * d
			}
			sent := make([]bool, rc.n)
			for i, k := range rc.sel {
				sent[k] = true
				d := ref[k] - float64(rc.yv[i])
				errC += d * d
			}
			for k, v := range ref {
				if !sent[k] {
					errC += v * v
				}
			}
			if math.Abs(math.Sqrt(errY)-math.Sqrt(errC)) > 1e-5*math.Sqrt(norm2)+1e-30 {
				t.Fatalf("tensor %d chunk at %d: ||x-y|| = %g, coefficient error %g (||x|| = %g)", rc.tensor, rc.base, math.Sqrt(errY), math.Sqrt(errC), math.Sqrt(norm2))
			}
		}
	}
}

func f32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func fp16Within(x, y float32) bool {
	a, e := math.Abs(float64(x)), math.Abs(float64(y)-float64(x))
	switch {
	case a >= 65520:
		return math.Abs(float64(y)) == 65504 && signbit(x) == signbit(y)
	case a >= 0x1p-14:
		return e <= 0x1p-11*a && signbit(x) == signbit(y)
	}
	return e <= 0x1p-25
}

// checkValues checks the quantised values of a record against the exact
// ones (val(k) for entry index k); each calls back for extra checks.
func checkValues(t *testing.T, c *codec, rc record, x []float32, val func(int) float64, each func(i int)) {
	t.Helper()
	var amax, sum float64
	for _, k := range rc.sel {
		a := math.Abs(float64(float32(val(int(k)))))
		amax = max(amax, a)
		sum += a
	}
	for i, k := range rc.sel {
		v, y := val(int(k)), rc.yv[i]
		e := math.Abs(float64(y) - v)
		ok := true
		switch c.values {
		case valFP16:
			ok = fp16Within(float32(v), y) || c.id == idDCTTopK && e <= 0x1p-11*math.Abs(v)+1e-6*amax
		case valInt8:
			s := amax / 127
			slack := 0.0
			if c.id == idDCTTopK {
				slack = 1e-6 * amax // the float32 coefficients differ slightly from the reference
			}
			ok = s < 0x1p-126 && y == 0 || s >= 0x1p-126 && e <= (0.5+0x1p-16)*s*(1+0x1p-23)+slack
		case val2Bit:
			// Two magnitudes at most, the sign of the value, and larger values
			// never get the lower level. For topk, entries at or above the
			// mean magnitude get the high level and the others the low one.
			tol := 0.0
			if c.id == idDCTTopK {
				tol = 1e-5 * amax // float32 coefficients against the float64 reference
			}
			if c.id == idTopK {
				ok = signbit(y) == signbit(float32(v))
			} else if math.Abs(v) > tol && y != 0 {
				ok = signbit(y) == (v < 0)
			}
			lo, hi := math.Inf(1), 0.0
			for _, w := range rc.yv {
				lo, hi = min(lo, math.Abs(float64(w))), max(hi, math.Abs(float64(w)))
			}
			a, ay := math.Abs(v), math.Abs(float64(y))
			for i2, k2 := range rc.sel {
				ay2 := math.Abs(float64(rc.yv[i2]))
				ok = ok && (ay2 == lo || ay2 == hi)
				if math.Abs(val(int(k2))) > a+tol {
					ok = ok && ay2 >= ay
				}
			}
			if c.id == idTopK {
				m := sum / float64(len(rc.sel))
				ok = ok && ((a >= m) == (ay == hi) || lo == hi)
			}
		}
		if !ok {
			t.Fatalf("tensor %d chunk at %d entry %d: value %g quantised to %g", rc.tensor, rc.base, k, v, y)
		}
		each(i)
	}
}

// TestSpecialInputs covers constant, zero and extreme chunks.
func TestSpecialInputs(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	big := math.Float32frombits(maxValueBits - 1) // largest float32 below 2^64
	inputs := map[string][]float32{
		"zeros":    make([]float32, 100),
		"negzeros": slices.Repeat([]float32{negZero}, 100),
		"constant": slices.Repeat([]float32{0.25}, 100),
		"ties":     slices.Repeat([]float32{-1, 1, 0.5, -0.5}, 25),
		"huge":     slices.Repeat([]float32{big, -big, 1, big / 3}, 25),
		"tiny":     slices.Repeat([]float32{1e-45, -3e-45, 1e-40, 0}, 25),
		"mixed":    slices.Repeat([]float32{1e-40, 1e18, -7, 0}, 25),
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range inputs {
			if !yield(k) {
				return
			}
		}
	})
	for _, spec := range testSpecs {
		c := mustParse(t, spec)
		for _, name := range names {
			x := inputs[name]
			delta := []Tensor{{Name: "t", Shape: []int{len(x)}, Data: x}}
			res := [][]float32{make([]float32, len(x))}
			b, err := c.Encode(delta, res)
			if err != nil {
				t.Fatalf("%s %s: %v", spec, name, err)
			}
			out, err := c.Decode(b, Limits{})
			if err != nil {
				t.Fatalf("%s %s: %v", spec, name, err)
			}
			for j, y := range out[0].Data {
				if y != y || math.IsInf(float64(y), 0) {
					t.Fatalf("%s %s: element %d decodes to %g", spec, name, j, y)
				}
				if got := (x[j] + 0) - y; math.Float32bits(got) != math.Float32bits(res[0][j]) { // x+0: the encoded sum with a zero residual
					t.Fatalf("%s %s: element %d: residual %g, want %g", spec, name, j, res[0][j], got)
				}
			}
			if name == "ties" && c.id == idTopK && c.k < c.chunk {
				// Equal magnitudes go to the lower index.
				for _, rc := range records(t, c, b, delta) {
					if want := refTop(x[rc.base:rc.base+rc.n], min(c.k, rc.n)); !slices.Equal(rc.sel, want) {
						t.Fatalf("%s ties: sent %v, want %v", spec, rc.sel, want)
					}
				}
			}
			saturates := (c.id == idFP16 || c.id == idTopK && c.values == valFP16) && (name == "huge" || name == "mixed")
			if exactFeedback(c) && !saturates { // fp16 saturation of |x| >= 2^29 is the documented exception
				for j := range x {
					if float64(res[0][j])+float64(out[0].Data[j]) != float64(x[j]) {
						t.Fatalf("%s %s: element %d: residual' + y != x", spec, name, j)
					}
				}
			}
		}
	}
}

// TestEncodeRejects checks that invalid inputs are refused and leave the
// residual untouched.
func TestEncodeRejects(t *testing.T) {
	c := mustParse(t, "topk:chunk=4,k=2,values=int8")
	good := func() []Tensor {
		return []Tensor{{"a", []int{2}, []float32{1, 2}}, {"b", []int{1, 3}, []float32{3, 4, 5}}}
	}
	for name, mutate := range map[string]func([]Tensor, [][]float32) ([]Tensor, [][]float32){
		"unsorted":   func(ts []Tensor, r [][]float32) ([]Tensor, [][]float32) { ts[1].Name = "A"; return ts, r },
		"duplicate":  func(ts []Tensor, r [][]float32) ([]Tensor, [][]float32) { ts[1].Name = "a"; return ts, r },
		"empty name": func(ts []Tensor, r [][]float32) ([]Tensor, [][]float32) { ts[0].Name = ""; return ts, r },
		"bad utf8":   func(ts []Tensor, r [][]float32) ([]Tensor, [][]float32) { ts[0].Name = "\xff"; return ts, r },
		"shape":      func(ts []Tensor, r [][]float32) ([]Tensor, [][]float32) { ts[1].Shape = []int{2, 2}; return ts, r },
		"neg dim":    func(ts []Tensor, r [][]float32) ([]Tensor, [][]float32) { ts[1].Shape = []int{-1, -3}; return ts, r },
		"rank":       func(ts []Tensor, r [][]float32) ([]Tensor, [][]float32) { ts[0].Shape = make([]int, 9); return ts, r },
		"nan": func(ts []Tensor, r [][]float32) ([]Tensor, [][]float32) {
			ts[1].Data[2] = float32(math.NaN())
			return ts, r
		},
		"inf": func(ts []Tensor, r [][]float32) ([]Tensor, [][]float32) {
			ts[0].Data[0] = float32(math.Inf(-1))
			return ts, r
		},
		"2^64": func(ts []Tensor, r [][]float32) ([]Tensor, [][]float32) { ts[0].Data[0] = MaxValue; return ts, r },
		"sum 2^64": func(ts []Tensor, r [][]float32) ([]Tensor, [][]float32) {
			ts[1].Data[2] = 0x1p63
			r[1][2] = 0x1p63
			return ts, r
		},
		"residual count":  func(ts []Tensor, r [][]float32) ([]Tensor, [][]float32) { return ts, r[:1] },
		"residual length": func(ts []Tensor, r [][]float32) ([]Tensor, [][]float32) { r[1] = r[1][:2]; return ts, r },
	} {
		r := [][]float32{{0.5, 0.5}, {0.5, 0.5, 0.5}}
		ts, r := mutate(good(), r)
		before := cloneResidual(r)
		if _, err := c.Encode(ts, r); err == nil {
			t.Errorf("%s: Encode succeeded", name)
		}
		for i := range r {
			if !slices.Equal(r[i], before[i]) {
				t.Errorf("%s: residual modified on error", name)
			}
		}
	}
	if _, err := c.Encode(good(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Encode(nil, nil); err != nil {
		t.Fatal("empty update:", err)
	}
}

// TestErrorFeedbackDrift runs T steps of error feedback: the sum of the
// decoded updates must track the sum of the deltas, off by exactly the
// final residual (up to rounding), and the residual must stay bounded.
func TestErrorFeedbackDrift(t *testing.T) {
	const steps, n = 200, 4096
	for _, spec := range []string{
		"fp16", "int8:block=64", "sign:chunk=64",
		"topk:chunk=64,k=4,values=fp16", "topk:chunk=64,k=4,values=int8", "topk:chunk=64,k=4,values=2bit",
		"dct-topk:chunk=16,k=2,values=fp16", "dct-topk:chunk=16,k=2,values=int8", "dct-topk:chunk=16,k=2,values=2bit",
	} {
		c := mustParse(t, spec)
		rng := rand.New(rand.NewPCG(3, 4))
		res := [][]float32{make([]float32, n)}
		sumD := make([]float64, n)
		sumY := make([]float64, n)
		sumNoEF := make([]float64, n)
		var rounding float64
		for range steps {
			d := make([]float32, n)
			for j := range d {
				d[j] = float32(rng.NormFloat64())
				sumD[j] += float64(d[j])
			}
			delta := []Tensor{{Name: "w", Shape: []int{n}, Data: d}}
			b, err := c.Encode(delta, res)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.Decode(b, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			for j, y := range out[0].Data {
				sumY[j] += float64(y)
				rounding += 0x1p-23 * (math.Abs(float64(y)) + math.Abs(float64(res[0][j])))
			}
			b, _ = c.Encode(delta, nil)
			out, _ = c.Decode(b, Limits{})
			for j, y := range out[0].Data {
				sumNoEF[j] += float64(y)
			}
		}
		var drift, resMax, driftNoEF, gap float64
		for j := range sumD {
			drift = max(drift, math.Abs(sumY[j]-sumD[j]))
			driftNoEF = max(driftNoEF, math.Abs(sumNoEF[j]-sumD[j]))
			resMax = max(resMax, math.Abs(float64(res[0][j])))
			// Σy + r_T = Σd exactly in real arithmetic but for one rounding per step.
			gap = max(gap, math.Abs(sumY[j]+float64(res[0][j])-sumD[j]))
		}
		t.Logf("%-36s drift %8.3f (residual max %7.3f), without feedback %8.3f", spec, drift, resMax, driftNoEF)
		if gap > 1e-3 {
			t.Errorf("%s: Σy + residual differs from Σdelta by %g", spec, gap)
		}
		if resMax > 40 {
			t.Errorf("%s: residual grew to %g after %d steps", spec, resMax, steps)
		}
		if drift > resMax+1e-3 {
			t.Errorf("%s: drift %g exceeds the residual %g", spec, drift, resMax)
		}
		if c.id != idFP16 && c.id != idInt8 && driftNoEF < 2*drift {
			t.Errorf("%s: feedback did not reduce the drift (%g vs %g without)", spec, drift, driftNoEF)
		}
	}
}

func formatField(err error) string {
	var fe *FormatError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return "not a FormatError: " + err.Error()
}

// TestConcurrent uses one codec from several goroutines (run with -race):
// the lazily built DCT tables must be shared safely and give the same
// bytes.
func TestConcurrent(t *testing.T) {
	c := mustParse(t, "dct-topk:chunk=32,k=4,values=int8")
	rng := rand.New(rand.NewPCG(8, 8))
	delta, _ := randUpdate(rng, false)
	want, err := mustParse(t, c.String()).Encode(delta, nil)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			b, err := c.Encode(delta, nil)
			if err == nil && !bytes.Equal(b, want) {
				err = errors.New("concurrent encoding differs")
			}
			if err == nil {
				_, err = c.Decode(b, Limits{})
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestEncodedLenRejects(t *testing.T) {
	c := mustParse(t, "fp32")
	if _, err := EncodedLen(c, []TensorSpec{{Name: "w", Shape: []int{1 << 30, 1 << 30}}}); err == nil {
		t.Error("EncodedLen of a tensor beyond MaxTensorElements")
	}
	if _, err := EncodedLen(c, []TensorSpec{{Name: "w", Shape: []int{-1}}}); err == nil {
		t.Error("EncodedLen of a negative dimension")
	}
	if n, err := EncodedLen(c, []TensorSpec{{Name: "w", Shape: []int{3, 5}}}); err != nil || n != 2+4+2+1+1+8+60 {
		t.Errorf("fp32 [3 5]: EncodedLen %d (%v), want %d", n, err, 2+4+2+1+1+8+60)
	}
}

func TestDecayResidual(t *testing.T) {
	for _, tc := range []struct {
		decay float32
		want  []uint32 // bits of the result of {2, -0.5, 3e-45}
	}{
		{0, []uint32{math.Float32bits(2), math.Float32bits(-0.5), math.Float32bits(3e-45)}},
		{0.25, []uint32{math.Float32bits(1.5), math.Float32bits(-0.375), math.Float32bits(0.75 * 3e-45)}},
		{1, []uint32{0, 0, 0}},
	} {
		r := [][]float32{{2, -0.5}, {3e-45}}
		DecayResidual(r, tc.decay)
		got := []uint32{math.Float32bits(r[0][0]), math.Float32bits(r[0][1]), math.Float32bits(r[1][0])}
		if !slices.Equal(got, tc.want) {
			t.Errorf("decay %g: %#x, want %#x", tc.decay, got, tc.want)
		}
	}
}
