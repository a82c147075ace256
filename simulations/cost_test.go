package simulations

import (
	"os"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/codec"
	"github.com/shoal-network/shoal/internal/testround"
	"github.com/shoal-network/shoal/tracker/round"
)

// presetSpec is the test round with a preset of the zoo as its model.
func presetSpec(t *testing.T, name, codecSpec string, innerSteps, batch int) *round.Spec {
	t.Helper()
	cfg, err := gradient.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	s := testround.Spec(4)
	s.Model = round.Model{Arch: cfg.Arch, Vocab: cfg.Vocab, Ctx: cfg.Ctx, Dim: cfg.Dim, Layers: cfg.Layers,
		Heads: cfg.Heads, Hidden: cfg.Hidden, Window: cfg.Window, Seed: 7}
	s.Codec, s.InnerSteps, s.Batch = codecSpec, innerSteps, batch
	s.TargetSamples = 4 * innerSteps * batch
	if err := s.Validate(); err != nil {
		t.Fatalf("a round of %s: %v", name, err)
	}
	return s
}

// TestCostOfGPT100m: a round of gpt-100m validates, and its cost is
// counted from its sizes alone: the exact parameter count, the operation
// count of the formula, an int8 update of a little over a byte per
// parameter and a checkpoint of a little over 8.
func TestCostOfGPT100m(t *testing.T) {
	const params = 100_214_784
	s := presetSpec(t, "gpt-100m", "int8", 20, 4)
	c, err := CostOf(s)
	if err != nil {
		t.Fatal(err)
	}
	if c.Params != params {
		t.Errorf("params %d, want %d", c.Params, params)
	}
	const d, l, ctx, v = 768, 14, 1024, 256
	token := 6*float64(l*12*d*d+v*d) + 14*float64(ctx*d*l)
	if c.TokenFLOPs != token {
		t.Errorf("token FLOPs %g, want %g", c.TokenFLOPs, token)
	}
	if want := 20*4*ctx*token + 20*adamFLOPs*params; c.UnitFLOPs != want {
		t.Errorf("unit FLOPs %g, want %g", c.UnitFLOPs, want)
	}
	// 81,920 tokens of 7.5e8 operations: about 10 minutes at speed 1.
	if c.UnitSeconds < 500 || c.UnitSeconds > 700 {
		t.Errorf("a unit takes %.0f s at speed 1, want about 614", c.UnitSeconds)
	}
	if c.UpdateBytes < params || c.UpdateBytes > params*103/100 {
		t.Errorf("int8 update of %d bytes for %d parameters", c.UpdateBytes, params)
	}
	if c.ResidualBytes != 4*params {
		t.Errorf("residual %d bytes", c.ResidualBytes)
	}
	if c.CheckpointBytes < 8*params || c.CheckpointBytes > 8*params+64<<10 {
		t.Errorf("checkpoint %d bytes", c.CheckpointBytes)
	}
	// The figure behind ReferenceFLOPS: gpt-small at 1,518 tokens/s is
	// about 110 GFLOP/s by this count.
	small, err := CostOf(presetSpec(t, "gpt-small", "fp32", 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if r := small.TokenFLOPs * 1518; r < 105e9 || r > 115e9 {
		t.Errorf("gpt-small at 1,518 tokens/s is %.3g FLOP/s by this count", r)
	}
}

// TestCostSizesExact: the update and checkpoint sizes CostOf gives equal
// those of a real encoding of a small model, for every codec family.
func TestCostSizesExact(t *testing.T) {
	for _, name := range []string{"gpt-tiny", "mlp"} {
		for _, cs := range []string{"fp32", "fp16", "int8", "sign", "topk:k=8", "dct-topk"} {
			s := presetSpec(t, name, cs, 2, 2)
			c, err := CostOf(s)
			if err != nil {
				t.Fatal(err)
			}
			m, err := gradient.New(gradient.ModelConfig{Arch: s.Model.Arch, Vocab: s.Model.Vocab, Ctx: s.Model.Ctx,
				Dim: s.Model.Dim, Layers: s.Model.Layers, Heads: s.Model.Heads, Hidden: s.Model.Hidden, Window: s.Model.Window})
			if err != nil {
				t.Fatal(err)
			}
			var delta []codec.Tensor
			ck := &checkpoint.Checkpoint{}
			for _, p := range m.Params() {
				delta = append(delta, codec.Tensor{Name: p.Name, Shape: p.Shape(), Data: p.Data})
				ck.Tensors = append(ck.Tensors, checkpoint.Tensor{Name: p.Name, Shape: p.Shape(), Data: p.Data},
					checkpoint.Tensor{Name: checkpoint.MomentumName(p.Name), Shape: p.Shape(), Data: p.Grad})
			}
			cd, _ := codec.Parse(cs)
			b, err := cd.Encode(delta, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.UpdateBytes != int64(len(b)) {
				t.Errorf("%s %s: UpdateBytes %d, an encoding has %d", name, cs, c.UpdateBytes, len(b))
			}
			enc, err := ck.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if c.CheckpointBytes != int64(len(enc)) {
				t.Errorf("%s: CheckpointBytes %d, the encoding without metadata has %d", name, c.CheckpointBytes, len(enc))
			}
			if c.Params != int64(gradient.NumParams(m)) {
				t.Errorf("%s: %d parameters, the model has %d", name, c.Params, gradient.NumParams(m))
			}
		}
	}
}

func TestCostOfRejects(t *testing.T) {
	s := testround.Spec(1)
	s.Model.Window = 99 // beyond ctx
	if _, err := CostOf(s); err == nil {
		t.Error("CostOf of an invalid model")
	}
	s = testround.Spec(1)
	s.Codec = "zip"
	if _, err := CostOf(s); err == nil {
		t.Error("CostOf with an unknown codec")
	}
}

// TestScenarioOfGPT100m: a scenario may name gpt-100m's sizes in its round
// and model it by cost, sized by CostOf; training it for real is refused
// by the scenario's own limit.
func TestScenarioOfGPT100m(t *testing.T) {
	base, err := os.ReadFile("testdata/scenarios/trace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(base), "{arch: mlp, vocab: 256, ctx: 16, dim: 16, layers: 1, hidden: 64, window: 4}",
		"{arch: gpt, vocab: 256, ctx: 1024, dim: 768, layers: 14, heads: 12}", 1)
	s, err := ParseScenario([]byte(y), "gpt-100m.yaml", os.DirFS("testdata/scenarios"))
	if err != nil {
		t.Fatalf("a cost scenario of gpt-100m: %v", err)
	}
	c, err := CostOf(s.Spec)
	if err != nil || c.Params != 100_214_784 {
		t.Fatalf("CostOf: %d parameters (%v)", c.Params, err)
	}
	real := strings.Replace(y, "training: cost", "training: real", 1)
	if _, err := ParseScenario([]byte(real), "gpt-100m.yaml", os.DirFS("testdata/scenarios")); err == nil || !strings.Contains(err.Error(), "parameters") {
		t.Errorf("training gpt-100m for real in a simulation: %v", err)
	}
}
