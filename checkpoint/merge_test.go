package checkpoint

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// mergeCheckpoint returns a small checkpoint of random values: two
// parameters and a momentum buffer, at a step.
func mergeCheckpoint(seed uint64, step string) *Checkpoint {
	r := rand.New(rand.NewPCG(seed, 1))
	vals := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	return &Checkpoint{
		Meta: map[string]string{MetaConfig: `{"arch":"mlp"}`, MetaStep: step, "note": "x"},
		Tensors: []Tensor{
			{Name: "w", Shape: []int{3, 5}, Data: vals(15)},
			{Name: "b", Shape: []int{5}, Data: vals(5)},
			{Name: MomentumName("w"), Shape: []int{3, 5}, Data: vals(15)},
		},
	}
}

func mustID(t *testing.T, c *Checkpoint) string {
	t.Helper()
	id, err := ID(c)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func TestMergeWithItself(t *testing.T) {
	a := mergeCheckpoint(1, "7")
	b := mergeCheckpoint(1, "7") // the same values, another copy
	m, err := Merge([]*Checkpoint{a, b}, MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mustID(t, m), mustID(t, a); got != want {
		t.Fatalf("a checkpoint averaged with itself is %s, not itself (%s)", got, want)
	}
	// Task arithmetic with a zero weight is the base.
	c := mergeCheckpoint(2, "9")
	m, err = Merge([]*Checkpoint{c}, MergeOptions{Base: a, Weights: []float64{0}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Meta[MetaStep] != "" {
		t.Errorf("the steps differ, yet the merge keeps step %q", m.Meta[MetaStep])
	}
	for i, tn := range m.Tensors {
		for k, v := range tn.Data {
			if v != a.Tensors[i].Data[k] {
				t.Fatalf("base + 0·(c − base): %s[%d] = %v, base has %v", tn.Name, k, v, a.Tensors[i].Data[k])
			}
		}
	}
}

// TestMergeReference checks the weighted sum and task arithmetic against
// a float64 reference: every value is the reference rounded once.
func TestMergeReference(t *testing.T) {
	base := mergeCheckpoint(10, "1")
	in := []*Checkpoint{mergeCheckpoint(11, "2"), mergeCheckpoint(12, "3"), mergeCheckpoint(13, "4")}
	w := []float64{0.5, 0.3, -0.2}
	for _, tc := range []struct {
		name string
		o    MergeOptions
		ref  func(tensor, k int) float64
	}{
		{"weighted", MergeOptions{Weights: w}, func(tn, k int) float64 {
			var s float64
			for i, c := range in {
				s += w[i] * float64(c.Tensors[tn].Data[k])
			}
			return s
		}},
		{"task arithmetic", MergeOptions{Weights: w, Base: base}, func(tn, k int) float64 {
			b := float64(base.Tensors[tn].Data[k])
			s := b
			for i, c := range in {
				s += w[i] * (float64(c.Tensors[tn].Data[k]) - b)
			}
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Merge(in, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Tensors) != 3 {
				t.Fatalf("%d tensors, want the 2 parameters and the momentum", len(m.Tensors))
			}
			for tn, x := range m.Tensors {
				for k, v := range x.Data {
					want := float32(tc.ref(tn, k))
					if math.Abs(float64(v-want)) > 1e-6*math.Max(1, math.Abs(float64(want))) {
						t.Fatalf("%s[%d] = %v, the float64 reference rounded is %v", x.Name, k, v, want)
					}
				}
			}
			if m.Meta[MetaConfig] == "" || m.Meta["note"] != "x" || m.Meta[MetaStep] != "" {
				t.Errorf("metadata %v: want what the inputs agree on (config, note), not the step", m.Meta)
			}
			again, _ := Merge(in, tc.o)
			if mustID(t, again) != mustID(t, m) {
				t.Error("the same merge gave two CIDs")
			}
		})
	}
	m, err := Merge(in, MergeOptions{DropState: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tensors) != 2 {
		t.Errorf("DropState: %d tensors, want the 2 parameters", len(m.Tensors))
	}
}

func TestMergeErrors(t *testing.T) {
	a := mergeCheckpoint(1, "1")
	shape := mergeCheckpoint(2, "1")
	shape.Tensors[1] = Tensor{Name: "b", Shape: []int{6}, Data: make([]float32, 6)}
	missing := mergeCheckpoint(3, "1")
	missing.Tensors = missing.Tensors[:1]
	extra := mergeCheckpoint(4, "1")
	extra.Tensors = append(extra.Tensors, Tensor{Name: "c", Shape: []int{1}, Data: []float32{1}})
	config := mergeCheckpoint(5, "1")
	config.Meta[MetaConfig] = `{"arch":"gpt"}`
	for _, c := range []struct {
		in   []*Checkpoint
		o    MergeOptions
		want string
	}{
		{nil, MergeOptions{}, "no checkpoints"},
		{[]*Checkpoint{a, shape}, MergeOptions{}, "parameter b is [5] in checkpoint 1, [6] in checkpoint 2"},
		{[]*Checkpoint{a, missing}, MergeOptions{}, "checkpoint 1 has parameter b, checkpoint 2 has not"},
		{[]*Checkpoint{a, extra}, MergeOptions{}, "checkpoint 2 has parameter c, checkpoint 1 has not"},
		{[]*Checkpoint{a, config}, MergeOptions{}, "configuration"},
		{[]*Checkpoint{a}, MergeOptions{Base: shape}, "parameter b is [6] in the base, [5] in checkpoint 1"},
		{[]*Checkpoint{a, a}, MergeOptions{Weights: []float64{1}}, "1 weights for 2 checkpoints"},
		{[]*Checkpoint{a, a}, MergeOptions{Weights: []float64{1, math.NaN()}}, "weight 2 is NaN"},
	} {
		_, err := Merge(c.in, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want it to say %q", err, c.want)
		}
	}
}
