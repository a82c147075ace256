package engine_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/node/engine/enginetest"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// TestAdapterRound trains a low-rank adapter of a base checkpoint: the
// engine refuses to start without the base, updates and checkpoints hold
// the adapter's matrices alone, two engines compute the same update bit for
// bit (so replicas can be checked), a wrong one is judged bad, and the
// adapter fresh from its seed measures exactly the base's loss.
func TestAdapterRound(t *testing.T) {
	spec, train := testSpec(), trainText()
	spec.Model = round.Model{Arch: "gpt", Vocab: 256, Ctx: 16, Dim: 32, Layers: 2, Heads: 2, Seed: 7}
	spec.Codec = "fp32"
	store := enginetest.NewMemStore()
	full, err := engine.NewModelEngine(spec, train, store)
	if err != nil {
		t.Fatal(err)
	}
	base, err := full.Genesis()
	if err != nil {
		t.Fatal(err)
	}

	s := *spec
	s.Adapter = &round.Adapter{Base: base, Rank: 1, Alpha: 2, Targets: slices.Clone(round.AdapterTargets)}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(round.AdapterTargets, gradient.AdapterTargets) {
		t.Fatalf("the spec's adapter targets %v are not the models' %v", round.AdapterTargets, gradient.AdapterTargets)
	}
	if _, err := engine.NewModelEngine(&s, train, enginetest.NewMemStore()); !errors.Is(err, engine.ErrNoBase) {
		t.Fatalf("an engine without the base: %v, want ErrNoBase", err)
	}
	a, err := engine.NewModelEngine(&s, train, store)
	if err != nil {
		t.Fatal(err)
	}
	b, err := engine.NewModelEngine(&s, train, store)
	if err != nil {
		t.Fatal(err)
	}
	g, err := a.Genesis()
	if err != nil {
		t.Fatal(err)
	}
	gc, err := store.Checkpoint(g)
	if err != nil {
		t.Fatal(err)
	}
	var adapterParams int
	for _, tt := range gc.Tensors {
		if !strings.Contains(tt.Name, ".lora_") {
			t.Fatalf("the adapter's genesis holds %s", tt.Name)
		}
		if !strings.HasPrefix(tt.Name, "shoal.") { // a parameter, not its momentum
			adapterParams += len(tt.Data)
		}
	}
	if n := gradient.NumParams(full.Model()); adapterParams*10 > n {
		t.Fatalf("the adapter has %d parameters, the model %d", adapterParams, n)
	}

	// Fresh from its seed (B = 0), the adapter computes what its base does.
	batches := data.EvalBatches(train[:8<<10], 4, spec.Model.Ctx, 2)
	fresh, err := engine.NewModel(&s, store)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := gradient.Evaluate(fresh, batches, 4), gradient.Evaluate(full.Model(), batches, 4); got != want {
		t.Fatalf("a fresh adapter's loss %v, its base's %v", got, want)
	}

	ra := a.Run(node.TrainJob{Step: 0, Base: g, Unit: 1})
	rb := b.Run(node.TrainJob{Step: 0, Base: g, Unit: 1})
	if ra.Err != nil || rb.Err != nil {
		t.Fatal(ra.Err, rb.Err)
	}
	if !ra.Update.Payload.Equals(rb.Update.Payload) || !ra.Update.Raw.Equals(rb.Update.Raw) {
		t.Fatal("two engines trained the same adapter unit to different updates")
	}
	if want := 4 * adapterParams; int(ra.Update.Size) > want+4096 {
		t.Fatalf("an fp32 update of %d bytes, want about %d (the adapter's alone)", ra.Update.Size, want)
	}
	v := b.Run(node.VerifyJob{Step: 0, Base: g, Unit: 1, Updates: []node.Claim{{Peer: "honest", Update: ra.Update}}})
	if v.Err != nil || len(v.Verdict.Bad) != 0 {
		t.Fatalf("an honest adapter update judged: %v %v", v.Verdict, v.Err)
	}
	b.Deviate(2)
	rl := b.Run(node.TrainJob{Step: 0, Base: g, Unit: 1})
	b.Deviate(0)
	v = a.Run(node.VerifyJob{Step: 0, Base: g, Unit: 1, Updates: []node.Claim{{Peer: "liar", Update: rl.Update}}})
	if v.Err != nil || !slices.Equal(v.Verdict.Bad, []string{"liar"}) {
		t.Fatalf("a wrong adapter update judged: %v %v", v.Verdict, v.Err)
	}

	inc := []wire.Included{{Peer: "p", Unit: 1, Payload: ra.Update.Payload, Weight: ra.Update.Samples}}
	ap := a.Run(node.ApplyJob{Step: 0, Base: g, Included: inc})
	bp := b.Run(node.ApplyJob{Step: 0, Base: g, Included: inc})
	if ap.Err != nil || bp.Err != nil || !ap.Result.Equals(bp.Result) {
		t.Fatalf("applying the step: %v %v, %s and %s", ap.Err, bp.Err, ap.Result, bp.Result)
	}
	c1, err := store.Checkpoint(ap.Result)
	if err != nil {
		t.Fatal(err)
	}
	if len(c1.Tensors) != len(gc.Tensors) {
		t.Fatalf("C_1 holds %d tensors, the adapter's genesis %d", len(c1.Tensors), len(gc.Tensors))
	}
}
