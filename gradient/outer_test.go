package gradient

import (
	"math"
	"slices"
	"testing"

	"github.com/shoal-network/shoal/tensor"
)

// TestOuterRestore: an outer optimizer made afresh for every step, its
// parameters and momenta restored from the previous step's (as a node
// does from a checkpoint), computes bit for bit what one optimizer kept
// across the steps computes.
func TestOuterRestore(t *testing.T) {
	params := func() []Param {
		return []Param{{"a", tensor.NewParam(3)}, {"b", tensor.NewParam(2)}}
	}
	kept, resumed := params(), params()
	for _, ps := range [][]Param{kept, resumed} {
		copy(ps[0].Data, []float32{1, -2, 0.5})
		copy(ps[1].Data, []float32{0.25, 3})
	}
	o := NewOuter(kept, 0.7, 0.9)
	var momenta [][]float32
	for step := range 5 {
		delta := make([]float32, 5)
		for i := range delta {
			delta[i] = float32(math.Sin(float64(3*step+i))) / 3
		}
		o.Step(kept, delta)
		fresh := NewOuter(resumed, 0.7, 0.9)
		if momenta != nil {
			fresh.Restore(momenta)
		}
		fresh.Step(resumed, delta)
		momenta = nil
		for _, m := range fresh.Momenta() {
			momenta = append(momenta, slices.Clone(m))
		}
		for i := range kept {
			if !slices.Equal(kept[i].Data, resumed[i].Data) || !slices.Equal(o.Momenta()[i], momenta[i]) {
				t.Fatalf("step %d, %s: kept %v (momentum %v), resumed %v (momentum %v)", step, kept[i].Name,
					kept[i].Data, o.Momenta()[i], resumed[i].Data, momenta[i])
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Restore of momenta of another shape did not panic")
		}
	}()
	NewOuter(kept, 0.7, 0.9).Restore([][]float32{{1, 2, 3}, {4}})
}
