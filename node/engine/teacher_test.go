package engine_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/node/engine/enginetest"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// TestTeacherRound distils a larger gpt into a smaller one in a round:
// the engine refuses to start without the teacher's checkpoint, two
// engines compute the same distilled update bit for bit, and over the same
// steps (the same tokens) the student ends with a lower held-out loss than
// the same student trained on the data alone. (The distilled student
// starts slower, pulled towards a teacher far ahead of it, and overtakes
// after about two thirds of the steps; the figures are the same on every
// machine.)
func TestTeacherRound(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a teacher and two rounds of eight steps")
	}
	train, eval := data.Builtin().Corpus(1<<18, 16<<10)
	store := enginetest.NewMemStore()

	// The teacher: twice as wide and deep, trained alone.
	tcfg := gradient.ModelConfig{Arch: "gpt", Vocab: 256, Ctx: 32, Dim: 64, Layers: 2, Heads: 4, Seed: 11}
	tm, err := gradient.New(tcfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := gradient.NewTrainer(tm, gradient.DefaultAdamW(), gradient.Schedule{Peak: 6e-3, Warmup: 20, Total: 400, MinFrac: 0.1})
	tok := make([]int32, 16*(tcfg.Ctx+1))
	for s := range 400 {
		data.Sample(tok, train, 5, 0, uint64(s), 16, tcfg.Ctx)
		tr.Step(tok, 16)
	}
	js, _ := json.Marshal(tcfg)
	tc := &checkpoint.Checkpoint{Meta: map[string]string{checkpoint.MetaConfig: string(js)}}
	for _, p := range tm.Params() {
		tc.Tensors = append(tc.Tensors, checkpoint.Tensor{Name: p.Name, Shape: p.Shape(), Data: p.Data})
	}
	teacher, err := store.PutCheckpoint(tc)
	if err != nil {
		t.Fatal(err)
	}
	batches := data.EvalBatches(eval, 8, 32, 8)

	spec := testSpec()
	spec.Model = round.Model{Arch: "gpt", Vocab: 256, Ctx: 32, Dim: 32, Layers: 1, Heads: 2, Seed: 7}
	spec.InnerSteps, spec.Batch, spec.Inner.LR, spec.Inner.Warmup = 50, 8, 1e-2, 20
	spec.Codec, spec.TargetSamples = "fp32", 2*spec.InnerSteps*8
	distilled := *spec
	distilled.Teacher = &round.Teacher{Checkpoint: teacher, Temperature: 2, Mix: 0.5}
	if err := distilled.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.NewModelEngine(&distilled, train, enginetest.NewMemStore()); !errors.Is(err, engine.ErrNoBase) {
		t.Fatalf("an engine without the teacher: %v, want ErrNoBase", err)
	}

	// run trains the round's steps, two units each, and returns the
	// held-out loss of each checkpoint and the first unit's update.
	const steps = 24
	run := func(s *round.Spec) ([]float64, *wire.Update) {
		e, err := engine.NewModelEngine(s, train, store)
		if err != nil {
			t.Fatal(err)
		}
		head, err := e.Genesis()
		if err != nil {
			t.Fatal(err)
		}
		var first *wire.Update
		var curve []float64
		for step := range uint64(steps) {
			var inc []wire.Included
			for unit := range uint32(2) {
				r := e.Run(node.TrainJob{Step: step, Base: head, Unit: unit})
				if r.Err != nil {
					t.Fatal(r.Err)
				}
				if first == nil {
					first = r.Update
				}
				inc = append(inc, wire.Included{Peer: "p", Unit: unit, Payload: r.Update.Payload, Weight: r.Update.Samples})
			}
			a := e.Run(node.ApplyJob{Step: step, Base: head, Included: inc})
			if a.Err != nil {
				t.Fatal(a.Err)
			}
			head = a.Result
			curve = append(curve, gradient.Evaluate(e.Model(), batches, 8))
		}
		return curve, first
	}
	aloneCurve, ua := run(spec)
	taughtCurve, ut := run(&distilled)
	e, err := engine.NewModelEngine(&distilled, train, store)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := e.Genesis()
	if again := e.Run(node.TrainJob{Step: 0, Base: g, Unit: 0}); again.Err != nil || !ut.Raw.Equals(again.Update.Raw) || !ut.Payload.Equals(again.Update.Payload) {
		t.Fatalf("two engines distilled the same unit to different updates (%v)", again.Err)
	}
	if ut.Raw.Equals(ua.Raw) {
		t.Fatal("the teacher changed nothing")
	}
	var table strings.Builder
	for i := range aloneCurve {
		if i%4 == 3 {
			fmt.Fprintf(&table, "\n  C_%-3d alone %.4f  distilled %.4f", i+1, aloneCurve[i], taughtCurve[i])
		}
	}
	alone, taught := aloneCurve[steps-1], taughtCurve[steps-1]
	t.Logf("held-out loss, %d steps of 2 units of 50×8 sequences of 32 bytes (the teacher: %.4f):%s", steps, gradient.Evaluate(tm, batches, 8), table.String())
	if !(taught < alone) {
		t.Errorf("the distilled student's held-out loss %.4f is not below the student's alone %.4f", taught, alone)
	}
}
