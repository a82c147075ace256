package codec

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
)

// fuzzLimits bound what the fuzzed decoders may accept.
var fuzzLimits = Limits{MaxTensors: 16, MaxElements: 1 << 16}

var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

// heapAllocated is the cumulative number of bytes allocated on the heap;
// large allocations count at once, small ones per span.
func heapAllocated() uint64 {
	metrics.Read(allocSample)
	return allocSample[0].Value.Uint64()
}

func FuzzDecodeFP32(f *testing.F)      { fuzzDecode(f, "fp32") }
func FuzzDecodeFP16(f *testing.F)      { fuzzDecode(f, "fp16") }
func FuzzDecodeBF16(f *testing.F)      { fuzzDecode(f, "bf16") }
func FuzzDecodeInt8(f *testing.F)      { fuzzDecode(f, "int8") }
func FuzzDecodeSign(f *testing.F)      { fuzzDecode(f, "sign") }
func FuzzDecodeTopK(f *testing.F)      { fuzzDecode(f, "topk") }
func FuzzDecodeDCTTopK(f *testing.F)   { fuzzDecode(f, "dct-topk") }
func FuzzDecodeBlockSign(f *testing.F) { fuzzDecode(f, "block-sign") }

// fuzzDecode decodes arbitrary bytes with a codec of the given name (the
// parameters the input's header declares if it is such a codec). It checks
// that Decode never panics, reports only *FormatError, allocates within the
// limits, returns finite values in declared shapes, and that what decodes
// re-encodes: to the same bytes for fp32, fp16, bf16 and sign, to the same
// values for topk with fp16 or 2bit values, and to something that decodes
// for the others.
func fuzzDecode(f *testing.F, name string) {
	for _, b := range goldenEncodings(f, name) {
		f.Add(b)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for _, spec := range testSpecs {
		if strings.SplitN(spec, ":", 2)[0] != name {
			continue
		}
		c := mustParse(f, spec)
		for range 2 {
			var ts []Tensor
			for i, shape := range [][]int{{1 + rng.IntN(9)}, {2, 1 + rng.IntN(40)}, nil} {
				t := Tensor{Name: string(rune('a' + i)), Shape: shape, Data: make([]float32, numel(shape))}
				randValues(rng, t.Data)
				ts = append(ts, t)
			}
			b, err := c.Encode(ts, nil)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	def := mustParse(f, name)
	f.Fuzz(func(t *testing.T, b []byte) {
		c := def
		if h, err := Inspect(b); err == nil && h.Name() == name {
			c = h.(*codec)
		}
		before := heapAllocated()
		ts, err := c.Decode(b, fuzzLimits)
		allocated := heapAllocated() - before
		if bound := uint64(4*fuzzLimits.MaxElements + 64*len(b) + 1<<18); allocated > bound {
			// The counter also sees the fuzzing engine's own allocations:
			// measure again before failing.
			before = heapAllocated()
			c.Decode(b, fuzzLimits)
			if allocated = min(allocated, heapAllocated()-before); allocated > bound {
				t.Fatalf("Decode of %d bytes allocated %d bytes (bound %d)", len(b), allocated, bound)
			}
		}
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FormatError: %v", err)
			}
			return
		}
		total := 0
		reencodable := true
		for _, x := range ts {
			if numel(x.Shape) != len(x.Data) {
				t.Fatalf("tensor %q: shape %v, %d values", x.Name, x.Shape, len(x.Data))
			}
			total += len(x.Data)
			for _, v := range x.Data {
				if v != v || math.IsInf(float64(v), 0) {
					t.Fatalf("tensor %q decodes to %g", x.Name, v)
				}
				reencodable = reencodable && absBits(v) < maxValueBits
			}
		}
		if len(ts) > fuzzLimits.MaxTensors || total > fuzzLimits.MaxElements {
			t.Fatalf("decoded %d tensors, %d elements: beyond the limits", len(ts), total)
		}
		if !reencodable {
			return
		}
		b2, err := c.Encode(ts, nil)
		if err != nil {
			t.Fatalf("decoded update does not re-encode: %v", err)
		}
		switch {
		case c.id == idFP32 || c.id == idFP16 || c.id == idBF16 || c.id == idSign:
			if !bytes.Equal(b, b2) {
				t.Fatalf("re-encoding differs:\n%x\n%x", b, b2)
			}
			return
		}
		ts2, err := c.Decode(b2, fuzzLimits)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if c.id == idTopK && c.values != valInt8 {
			for i := range ts {
				if !slices.Equal(ts[i].Data, ts2[i].Data) {
					t.Fatalf("tensor %q: re-encoding decodes to other values", ts[i].Name)
				}
			}
		}
	})
}
