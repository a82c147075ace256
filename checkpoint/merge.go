package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
)

// MergeOptions say how Merge combines checkpoints.
type MergeOptions struct {
	// Weights are the inputs' weights, one per input (nil: 1/n each for
	// an average, 1 each for task arithmetic).
	Weights []float64
	// Base, if set, makes the merge task arithmetic: base + Σ wᵢ(Aᵢ −
	// base), each input's difference from the base (its "task vector")
	// scaled and added back. Without it the merge is the weighted sum
	// Σ wᵢAᵢ.
	Base *Checkpoint
	// DropState leaves optimizer state out of the result (its
	// parameters alone); otherwise state tensors every input holds are
	// merged like the parameters, and those only some hold are dropped.
	DropState bool
}

// Merge combines checkpoints of one model into a new one: the weighted
// average of their parameters, or, with a base, task arithmetic (see
// MergeOptions). Every value is computed in float64 in the inputs' order
// (each product rounded on its own, never fused into a multiply-add) and
// rounded once to float32, so the result, and its CID, are the same on
// every platform; a checkpoint averaged with itself (weights ½ and ½) is
// itself again, bit for bit, CID and all. The inputs must hold the same parameters
// with the same shapes (and the same model configuration, if they name
// one); the result keeps the metadata on which every input (and the
// base) agrees, and drops the rest (a step or round that differs).
func Merge(inputs []*Checkpoint, o MergeOptions) (*Checkpoint, error) {
	if len(inputs) == 0 {
		return nil, errors.New("merge: no checkpoints to merge")
	}
	w := o.Weights
	if w == nil {
		w = make([]float64, len(inputs))
		for i := range w {
			w[i] = 1
			if o.Base == nil {
				w[i] = 1 / float64(len(inputs))
			}
		}
	}
	if len(w) != len(inputs) {
		return nil, fmt.Errorf("merge: %d weights for %d checkpoints", len(w), len(inputs))
	}
	for i, x := range w {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("merge: weight %d is %v", i+1, x)
		}
	}
	all := inputs
	if o.Base != nil {
		all = append([]*Checkpoint{o.Base}, inputs...)
	}
	name := func(i int) string {
		if o.Base != nil {
			if i == 0 {
				return "the base"
			}
			return fmt.Sprintf("checkpoint %d", i)
		}
		return fmt.Sprintf("checkpoint %d", i+1)
	}
	for i, c := range all {
		if q, ok := c.Meta[MetaQuant]; ok {
			return nil, fmt.Errorf("merge: %s is quantised for inference (%s): merge the float32 models, then quantise", name(i), q)
		}
	}
	first := all[0]
	if a, ok := first.Meta[MetaConfig]; ok {
		for i, c := range all[1:] {
			if b := c.Meta[MetaConfig]; !sameModel(a, b) {
				return nil, fmt.Errorf("merge: %s is a model of configuration %s, %s of %s", name(0), a, name(i+1), orNone(b))
			}
		}
	}
	// The tensors to merge: the first's parameters (and the state all
	// hold), each with the same shape in every other.
	index := make([]map[string]Tensor, len(all))
	for i, c := range all {
		index[i] = make(map[string]Tensor, len(c.Tensors))
		for _, t := range c.Tensors {
			if len(t.Data) != int(NumValues(t.Shape)) {
				return nil, fmt.Errorf("merge: %s: tensor %s has %d values for shape %v", name(i), t.Name, len(t.Data), t.Shape)
			}
			index[i][t.Name] = t
		}
	}
	for i, c := range all {
		for _, t := range c.Params() {
			for j := range all {
				u, ok := index[j][t.Name]
				if !ok {
					return nil, fmt.Errorf("merge: %s has parameter %s, %s has not", name(i), t.Name, name(j))
				}
				if !slices.Equal(u.Shape, t.Shape) {
					return nil, fmt.Errorf("merge: parameter %s is %v in %s, %v in %s", t.Name, t.Shape, name(i), u.Shape, name(j))
				}
			}
		}
	}
	out := &Checkpoint{Meta: map[string]string{}}
	if a, ok := first.Meta[MetaConfig]; ok {
		out.Meta[MetaConfig] = a // the same model in all, initialised as the first
	}
	for k, v := range first.Meta {
		agree := true
		for _, c := range all[1:] {
			if x, ok := c.Meta[k]; !ok || x != v {
				agree = false
				break
			}
		}
		if agree {
			out.Meta[k] = v
		}
	}
	for _, t := range first.Tensors {
		if IsState(t.Name) {
			if o.DropState {
				continue
			}
			held := true
			for j := range all {
				u, ok := index[j][t.Name]
				held = held && ok && slices.Equal(u.Shape, t.Shape)
			}
			if !held {
				continue
			}
		}
		srcs := make([][]float32, len(inputs))
		for i := range inputs {
			srcs[i] = index[len(all)-len(inputs)+i][t.Name].Data // after the base, if any
		}
		var base []float32
		if o.Base != nil {
			base = index[0][t.Name].Data
		}
		out.Tensors = append(out.Tensors, Tensor{Name: t.Name, Shape: slices.Clone(t.Shape), Data: mergeValues(srcs, w, base)})
	}
	return out, nil
}

// mergeValues is Σ w[i]·srcs[i] or, with a base, base + Σ w[i]·(srcs[i]
// − base), value by value, in float64, rounded once.
func mergeValues(srcs [][]float32, w []float64, base []float32) []float32 {
	out := make([]float32, len(srcs[0]))
	for k := range out {
		var acc float64
		if base != nil {
			b := float64(base[k])
			acc = b
			for i, s := range srcs {
				d := float64(s[k]) - b
				acc += float64(w[i] * d)
			}
		} else {
			for i, s := range srcs {
				acc += float64(w[i] * float64(s[k]))
			}
		}
		out[k] = float32(acc)
	}
	return out
}

// sameModel reports whether two model configurations (JSON) describe the
// same model, whatever seed initialised it: fine-tunes of one base from
// different runs merge.
func sameModel(a, b string) bool {
	if a == b {
		return true
	}
	var x, y map[string]any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	delete(x, "seed")
	delete(y, "seed")
	return reflect.DeepEqual(x, y)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Adapter tensor names: a low-rank adapter of the matrix P.weight is
// P.lora_a [in, rank] and P.lora_b [rank, out] (see gradient.AdapterConfig).
const (
	adapterA = ".lora_a"
	adapterB = ".lora_b"
)

// MergeAdapter folds a low-rank adapter into its base: each matrix W
// [in, out] the adapter targets becomes W + scale·A·B, every other
// parameter stays the base's, and optimizer state is left out (the base's
// momenta belong to other weights). Each value is computed in float64,
// the rank's products in order and each rounded on its own (never a fused
// multiply-add), then rounded once to float32, so the result and its CID
// are the same on every platform. The result keeps the base's metadata.
func MergeAdapter(base, adapter *Checkpoint, scale float64) (*Checkpoint, error) {
	if math.IsNaN(scale) || math.IsInf(scale, 0) {
		return nil, fmt.Errorf("merge-adapter: scale is %v", scale)
	}
	if q, ok := base.Meta[MetaQuant]; ok {
		return nil, fmt.Errorf("merge-adapter: the base is quantised for inference (%s): fold the adapter into the float32 base, then quantise", q)
	}
	// Every parameter of the adapter is one of a pair that adapts a
	// matrix of the base.
	pairs := map[string][2]Tensor{} // stem → A, B
	for _, t := range adapter.Params() {
		if len(t.Data) != int(NumValues(t.Shape)) {
			return nil, fmt.Errorf("merge-adapter: the adapter's tensor %s has %d values for shape %v", t.Name, len(t.Data), t.Shape)
		}
		stem, isA := strings.CutSuffix(t.Name, adapterA)
		stem, isB := strings.CutSuffix(stem, adapterB)
		if !isA && !isB {
			return nil, fmt.Errorf("merge-adapter: the adapter holds %s, which is not an adapter's matrix (*%s or *%s)", t.Name, adapterA, adapterB)
		}
		p := pairs[stem]
		if isA {
			p[0] = t
		} else {
			p[1] = t
		}
		pairs[stem] = p
	}
	if len(pairs) == 0 {
		return nil, errors.New("merge-adapter: the adapter holds no adapter matrices (*.lora_a, *.lora_b)")
	}
	for stem, p := range pairs {
		w, ok := base.Tensor(stem + ".weight")
		switch {
		case p[0].Name == "" || p[1].Name == "":
			return nil, fmt.Errorf("merge-adapter: the adapter of %s.weight lacks its %s or %s", stem, adapterA, adapterB)
		case !ok:
			return nil, fmt.Errorf("merge-adapter: the adapter adapts %s.weight, which the base lacks", stem)
		}
		a, b := p[0], p[1]
		if len(w.Shape) != 2 || len(a.Shape) != 2 || len(b.Shape) != 2 || a.Shape[0] != w.Shape[0] || b.Shape[1] != w.Shape[1] || a.Shape[1] != b.Shape[0] {
			return nil, fmt.Errorf("merge-adapter: %s is %v, its adapter's A %v and B %v (want [in, rank] and [rank, out])", w.Name, w.Shape, a.Shape, b.Shape)
		}
	}
	out := &Checkpoint{Meta: maps.Clone(base.Meta)}
	for _, w := range base.Tensors {
		if IsState(w.Name) {
			continue
		}
		if len(w.Data) != int(NumValues(w.Shape)) {
			return nil, fmt.Errorf("merge-adapter: the base's tensor %s has %d values for shape %v", w.Name, len(w.Data), w.Shape)
		}
		p, ok := pairs[strings.TrimSuffix(w.Name, ".weight")]
		if !ok || !strings.HasSuffix(w.Name, ".weight") {
			out.Tensors = append(out.Tensors, Tensor{Name: w.Name, Shape: slices.Clone(w.Shape), Data: w.Data})
			continue
		}
		a, b := p[0], p[1]
		in, r, n := w.Shape[0], a.Shape[1], w.Shape[1]
		v := make([]float32, len(w.Data))
		for i := 0; i < in; i++ {
			for j := 0; j < n; j++ {
				var dot float64
				for k := 0; k < r; k++ {
					dot += float64(float64(a.Data[i*r+k]) * float64(b.Data[k*n+j]))
				}
				v[i*n+j] = float32(float64(w.Data[i*n+j]) + float64(scale*dot))
			}
		}
		out.Tensors = append(out.Tensors, Tensor{Name: w.Name, Shape: slices.Clone(w.Shape), Data: v})
	}
	return out, nil
}
