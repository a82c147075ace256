package codec

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestDecodeSupport checks that DecodeSupport decodes what Decode does and
// lists exactly the sent elements: for topk min(k, L) per chunk, for
// block-sign the elements of the chunks the map marks, every other element
// decoding to +0; the other codecs report no sparse structure.
func TestDecodeSupport(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, spec := range testSpecs {
		c := mustParse(t, spec)
		ts, _ := randUpdate(rng, false)
		b, err := c.Encode(ts, nil)
		if err != nil {
			t.Fatal(spec, err)
		}
		want, err := c.Decode(b, Limits{})
		if err != nil {
			t.Fatal(spec, err)
		}
		got, index, sparse, err := DecodeSupport(c, b, Limits{Expect: specsOf(ts)})
		if err != nil {
			t.Fatal(spec, err)
		}
		var flat []float32
		for i := range want {
			if !slices.Equal(got[i].Data, want[i].Data) {
				t.Fatalf("%s: tensor %d differs from Decode", spec, i)
			}
			flat = append(flat, want[i].Data...)
		}
		if isSparse := c.id == idTopK || c.id == idBlockSign; sparse != isSparse || (index != nil) != isSparse {
			t.Fatalf("%s: sparse %v with %d indices", spec, sparse, len(index))
		}
		if !sparse {
			continue
		}
		held := make([]bool, len(flat))
		for i, j := range index {
			if i > 0 && j <= index[i-1] {
				t.Fatalf("%s: index %d does not follow %d", spec, j, index[i-1])
			}
			held[j] = true
		}
		for j, h := range held {
			if !h && math.Float32bits(flat[j]) != 0 {
				t.Fatalf("%s: element %d is not listed but decodes to %g", spec, j, flat[j])
			}
		}
		// Per tensor: topk holds min(k, L) elements of every chunk,
		// block-sign all or none of each chunk, m = ceil(nc/every) of them.
		off := 0
		for _, x := range ts {
			n := len(x.Data)
			sent := 0
			for base := 0; base < n; base += c.chunk {
				l := min(c.chunk, n-base)
				h := 0
				for _, v := range held[off+base : off+base+l] {
					if v {
						h++
					}
				}
				switch {
				case c.id == idTopK && h != min(c.k, l):
					t.Fatalf("%s: tensor %s chunk at %d: %d elements listed, want %d", spec, x.Name, base, h, min(c.k, l))
				case c.id == idBlockSign && h != 0 && h != l:
					t.Fatalf("%s: tensor %s chunk at %d: %d of %d elements listed", spec, x.Name, base, h, l)
				}
				if h > 0 {
					sent++
				}
			}
			if _, m := c.blockSignCounts(n); c.id == idBlockSign && sent != m {
				t.Fatalf("%s: tensor %s: %d chunks listed, want %d", spec, x.Name, sent, m)
			}
			off += n
		}
	}
}
