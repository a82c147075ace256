package checkpoint

import (
	"strings"
	"testing"
)

func adapterPair() (base, adapter *Checkpoint) {
	base = &Checkpoint{Meta: map[string]string{MetaConfig: `{"arch":"gpt"}`}, Tensors: []Tensor{
		{Name: "h.0.attn.weight", Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}},
		{Name: "h.0.attn.bias", Shape: []int{3}, Data: []float32{7, 8, 9}},
		{Name: MomentumName("h.0.attn.bias"), Shape: []int{3}, Data: []float32{1, 1, 1}},
		{Name: "h.0.mlp.weight", Shape: []int{3, 2}, Data: []float32{1, 1, 1, 1, 1, 1}},
	}}
	adapter = &Checkpoint{Tensors: []Tensor{
		{Name: "h.0.attn.lora_a", Shape: []int{2, 2}, Data: []float32{1, 0, 2, -1}},
		{Name: "h.0.attn.lora_b", Shape: []int{2, 3}, Data: []float32{0.5, 0, 1, 0, 0.25, -2}},
	}}
	return base, adapter
}

// TestMergeAdapter folds a rank-2 adapter into one matrix and checks every
// value against the product worked by hand (the values are exact in
// float32), and that the rest of the base passes through without its
// optimizer state.
func TestMergeAdapter(t *testing.T) {
	base, adapter := adapterPair()
	got, err := MergeAdapter(base, adapter, 2)
	if err != nil {
		t.Fatal(err)
	}
	// A·B = [[0.5, 0, 1], [1, -0.25, 4]]; W + 2·A·B:
	want := []float32{2, 2, 5, 6, 4.5, 14}
	w, _ := got.Tensor("h.0.attn.weight")
	for i := range want {
		if w.Data[i] != want[i] {
			t.Fatalf("folded weight %v, want %v", w.Data, want)
		}
	}
	if len(got.Tensors) != 3 {
		t.Fatalf("%d tensors, want the base's 3 parameters (no state)", len(got.Tensors))
	}
	if m, _ := got.Tensor("h.0.mlp.weight"); m.Data[0] != 1 {
		t.Fatalf("an untargeted matrix changed: %v", m.Data)
	}
	if got.Meta[MetaConfig] != base.Meta[MetaConfig] {
		t.Fatalf("metadata %v, want the base's", got.Meta)
	}
	if base.Tensors[0].Data[0] != 1 {
		t.Fatal("the base was modified")
	}

	// Folding and then taking the difference from the base back, as task
	// arithmetic with weight 1, gives the fold again, bit for bit.
	again, err := Merge([]*Checkpoint{got}, MergeOptions{Base: base, DropState: true})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := got.MarshalBinary()
	b, _ := again.MarshalBinary()
	if string(a) != string(b) {
		t.Fatal("base + 1·(fold − base) is not the fold")
	}
}

func TestMergeAdapterErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(base, adapter *Checkpoint)
		want string
	}{
		{"half a pair", func(_, a *Checkpoint) { a.Tensors = a.Tensors[:1] }, "lacks its"},
		{"not an adapter", func(_, a *Checkpoint) { a.Tensors[0].Name = "h.0.attn.weight" }, "not an adapter's matrix"},
		{"no such matrix", func(_, a *Checkpoint) { a.Tensors[0].Name, a.Tensors[1].Name = "h.9.x.lora_a", "h.9.x.lora_b" }, "which the base lacks"},
		{"rank mismatch", func(_, a *Checkpoint) { a.Tensors[1].Shape, a.Tensors[1].Data = []int{1, 3}, a.Tensors[1].Data[:3] }, "want [in, rank] and [rank, out]"},
		{"empty", func(_, a *Checkpoint) { a.Tensors = nil }, "no adapter matrices"},
		{"short data", func(_, a *Checkpoint) { a.Tensors[0].Data = a.Tensors[0].Data[:3] }, "has 3 values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, adapter := adapterPair()
			tc.edit(base, adapter)
			_, err := MergeAdapter(base, adapter, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}
