package engine_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/node/engine/enginetest"
	"github.com/shoal-network/shoal/tracker/wire"
)

// TestFineTuneFromBase starts a round from a base checkpoint that holds
// parameters only, as `shoal checkpoint import` stores a published model:
// its genesis is the base, training starts from the base's parameters,
// and the first outer step starts the optimizer's momenta at zero, giving
// what a base with zero momenta gives. A checkpoint that holds some
// optimizer state but not all is refused.
func TestFineTuneFromBase(t *testing.T) {
	spec, train := testSpec(), trainText()
	store := enginetest.NewMemStore()
	e0, err := engine.NewModelEngine(spec, train, store)
	if err != nil {
		t.Fatal(err)
	}
	full, err := e0.Genesis() // parameters and zero momenta
	if err != nil {
		t.Fatal(err)
	}
	c, err := store.Checkpoint(full)
	if err != nil {
		t.Fatal(err)
	}
	params := &checkpoint.Checkpoint{Meta: c.Meta}
	for _, tt := range c.Tensors {
		if !checkpoint.IsState(tt.Name) {
			params.Tensors = append(params.Tensors, tt)
		}
	}
	base, err := store.PutCheckpoint(params)
	if err != nil {
		t.Fatal(err)
	}

	step := func(from string) string {
		t.Helper()
		s := *spec
		s.InitCheckpoint = base
		if from == "full" {
			s.InitCheckpoint = full
		}
		e, err := engine.NewModelEngine(&s, train, store)
		if err != nil {
			t.Fatal(err)
		}
		g, err := e.Genesis()
		if err != nil || !g.Equals(s.InitCheckpoint) {
			t.Fatalf("genesis %s (%v), want the base %s", g, err, s.InitCheckpoint)
		}
		r := e.Run(node.TrainJob{Step: 0, Base: g, Unit: 0})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		inc := []wire.Included{{Peer: "p", Unit: 0, Payload: r.Update.Payload, Weight: r.Update.Samples}}
		a := e.Run(node.ApplyJob{Step: 0, Base: g, Included: inc})
		if a.Err != nil {
			t.Fatal(a.Err)
		}
		// The round IDs differ (the spec names its base), so compare the
		// tensors of the results, not their IDs.
		out, err := store.Checkpoint(a.Result)
		if err != nil {
			t.Fatal(err)
		}
		sum := r.Update.Raw.String()
		for _, tt := range out.Tensors {
			sum += " " + tt.Name + fmt.Sprint(tt.Data)
		}
		return sum
	}
	if got, want := step("base"), step("full"); got != want {
		t.Fatalf("from the parameters only:\n%s\nfrom parameters and zero momenta:\n%s", got, want)
	}

	// Some state but not all: refused.
	partial := &checkpoint.Checkpoint{Meta: c.Meta, Tensors: slices.Clone(params.Tensors)}
	for _, tt := range c.Tensors {
		if checkpoint.IsState(tt.Name) {
			partial.Tensors = append(partial.Tensors, tt)
			break
		}
	}
	bad, err := store.PutCheckpoint(partial)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := engine.NewModelEngine(spec, train, store)
	r := e.Run(node.TrainJob{Step: 0, Base: bad, Unit: 0})
	if r.Err != nil {
		t.Fatal(r.Err) // training needs the parameters only
	}
	inc := []wire.Included{{Peer: "p", Unit: 0, Payload: r.Update.Payload, Weight: r.Update.Samples}}
	if a := e.Run(node.ApplyJob{Step: 0, Base: bad, Included: inc}); a.Err == nil {
		t.Fatal("a checkpoint with some of its momenta missing was applied to")
	}
}
