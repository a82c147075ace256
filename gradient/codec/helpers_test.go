package codec

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// testSpecs covers every codec and value encoding, with chunk sizes that
// leave partial chunks in the test shapes.
var testSpecs = []string{
	"fp32",
	"fp16",
	"bf16",
	"int8:block=256",
	"int8:block=7",
	"int8:block=1",
	"sign:chunk=256",
	"sign:chunk=13",
	"sign:chunk=1",
	"topk:chunk=64,k=5,values=fp16",
	"topk:chunk=64,k=5,values=int8",
	"topk:chunk=64,k=5,values=2bit",
	"topk:chunk=4096,k=64,values=fp16",
	"topk:chunk=2,k=2,values=int8",
	"topk:chunk=3,k=1,values=2bit",
	"topk:chunk=1000,k=1000,values=2bit",
	"dct-topk:chunk=16,k=3,values=fp16",
	"dct-topk:chunk=64,k=8,values=int8",
	"dct-topk:chunk=64,k=8,values=2bit",
	"dct-topk:chunk=7,k=7,values=fp16",
	"dct-topk:chunk=2,k=1,values=int8",
	"block-sign:chunk=256,every=4",
	"block-sign:chunk=13,every=3",
	"block-sign:chunk=1,every=2",
	"block-sign:chunk=64,every=1",
}

// testShapes are odd on purpose: a scalar, size 1, an empty tensor, sizes
// that are not multiples of any chunk.
var testShapes = []struct {
	name  string
	shape []int
}{
	{"a.scalar", nil},
	{"b.one", []int{1}},
	{"c.empty", []int{3, 0}},
	{"d.weight", []int{3, 5}},
	{"e.long", []int{4097}},
	{"f.matrix", []int{2, 2051}},
	{"g.bias", []int{67}},
	{"h.cube", []int{1, 1, 300}},
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func mustParse(t testing.TB, spec string) *codec {
	t.Helper()
	c, err := Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*codec)
}

// randValues fills v with normal values of a random order of magnitude and
// sprinkles in zeros, negative zeros, float32 subnormals and outliers.
func randValues(rng *rand.Rand, v []float32) {
	scale := math.Pow(10, -6+9*rng.Float64())
	for j := range v {
		v[j] = float32(rng.NormFloat64() * scale)
		switch rng.IntN(64) {
		case 0:
			v[j] = 0
		case 1:
			v[j] = float32(math.Copysign(0, -1))
		case 2:
			v[j] = math.Float32frombits(uint32(rng.IntN(1 << 23)))
		case 3:
			v[j] = float32(rng.NormFloat64() * 1e-30)
		case 4:
			v[j] = float32(rng.NormFloat64() * scale * 100)
		}
	}
}

// randUpdate returns a delta over testShapes and a residual (nil for
// withResidual false).
func randUpdate(rng *rand.Rand, withResidual bool) ([]Tensor, [][]float32) {
	var ts []Tensor
	var rs [][]float32
	for _, s := range testShapes {
		t := Tensor{Name: s.name, Shape: slices.Clone(s.shape), Data: make([]float32, numel(s.shape))}
		randValues(rng, t.Data)
		ts = append(ts, t)
		if withResidual {
			r := make([]float32, len(t.Data))
			randValues(rng, r)
			rs = append(rs, r)
		}
	}
	return ts, rs
}

// sumInput returns delta+residual, the values Encode encodes.
func sumInput(ts []Tensor, rs [][]float32) [][]float32 {
	xs := make([][]float32, len(ts))
	for i, t := range ts {
		xs[i] = slices.Clone(t.Data)
		if rs != nil {
			for j := range xs[i] {
				xs[i][j] += rs[i][j]
			}
		}
	}
	return xs
}

func cloneResidual(rs [][]float32) [][]float32 {
	if rs == nil {
		return nil
	}
	out := make([][]float32, len(rs))
	for i := range rs {
		out[i] = slices.Clone(rs[i])
	}
	return out
}

func asTensors(ts []Tensor, xs [][]float32) []Tensor {
	out := make([]Tensor, len(ts))
	for i, t := range ts {
		out[i] = Tensor{Name: t.Name, Shape: t.Shape, Data: xs[i]}
	}
	return out
}

// record is one topk or dct-topk record as sent.
type record struct {
	tensor, base, n int
	sel             []int32
	yv              []float32
}

// records parses the records of a topk or dct-topk encoding of ts.
func records(t testing.TB, c *codec, b []byte, ts []Tensor) []record {
	t.Helper()
	off := 2 + c.paramsLen() + 4
	for _, x := range ts {
		off += 2 + len(x.Name) + 1 + 4*len(x.Shape)
	}
	d := c.newDecoder(1 << 30)
	var out []record
	for i, x := range ts {
		n := len(x.Data)
		for base := 0; base < n; base += c.chunk {
			m := min(c.chunk, n-base)
			kk := min(c.k, m)
			rl := c.recordLen(kk)
			if f, msg := c.getRecord(d, b[off:off+rl], m, kk); msg != "" {
				t.Fatalf("record: %s: %s", f, msg)
			}
			off += rl
			out = append(out, record{i, base, m, slices.Clone(d.sel[:kk]), slices.Clone(d.yv[:kk])})
		}
	}
	if off != len(b) {
		t.Fatalf("records end at %d of %d bytes", off, len(b))
	}
	return out
}

// refTop is a sort-based reference for top: the indices of the kk largest
// |v|, ties to the lower index, in increasing order.
func refTop(v []float32, kk int) []int32 {
	idx := make([]int32, len(v))
	for j := range idx {
		idx[j] = int32(j)
	}
	slices.SortStableFunc(idx, func(a, b int32) int {
		x, y := math.Abs(float64(v[a])), math.Abs(float64(v[b]))
		switch {
		case x > y:
			return -1
		case x < y:
			return 1
		}
		return 0
	})
	idx = idx[:min(kk, len(v))]
	slices.Sort(idx)
	return idx
}

// refDCT is the orthonormal DCT-II of x in float64 with the standard
// library's cosine.
func refDCT(x []float32) []float64 {
	n := len(x)
	c := make([]float64, n)
	for k := range c {
		s := math.Sqrt(2 / float64(n))
		if k == 0 {
			s = math.Sqrt(1 / float64(n))
		}
		var sum float64
		for i, v := range x {
			sum += float64(v) * math.Cos(math.Pi*float64((2*i+1)*k)/float64(2*n))
		}
		c[k] = s * sum
	}
	return c
}

func signbit(f float32) bool { return math.Float32bits(f)>>31 != 0 }
