package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
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
