package gradient

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/shoal-network/shoal/tensor"
)

// TestGPT100mShape checks the large preset's sizes and its exact parameter
// count from the configuration alone, without allocating the model.
func TestGPT100mShape(t *testing.T) {
	cfg, err := Preset("gpt-100m")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Arch != "gpt" || cfg.Vocab != 256 || cfg.Dim != 768 || cfg.Heads != 12 || cfg.Ctx != 1024 {
		t.Fatalf("gpt-100m is %+v, want GPT-2 small's shape at byte level", cfg)
	}
	n, err := CountParams(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const want = 100_214_784
	if n != want || n < 100_000_000 {
		t.Errorf("gpt-100m has %d parameters, want %d (at least 10⁸)", n, want)
	}
	// The closed form of the package doc: 12d²+13d per block, (vocab+ctx)·d+2d besides.
	d := cfg.Dim
	if f := cfg.Layers*(12*d*d+13*d) + (cfg.Vocab+cfg.Ctx)*d + 2*d; f != n {
		t.Errorf("closed form gives %d, Shapes %d", f, n)
	}
	// One block fewer would not reach 10⁸.
	fewer := cfg
	fewer.Layers--
	if m, _ := CountParams(fewer); m >= 100_000_000 {
		t.Errorf("%d layers already give %d parameters", fewer.Layers, m)
	}
	shapes, _ := Shapes(cfg)
	mlp := 0
	for _, s := range shapes {
		if s.Name == "transformer.h.0.mlp.c_fc.weight" {
			mlp = s.Shape[1]
		}
	}
	if mlp != 4*d {
		t.Errorf("MLP hidden width %d, want 4d = %d", mlp, 4*d)
	}
}

func TestCountParamsMatchesNew(t *testing.T) {
	for name, cfg := range smallConfigs() {
		m, _ := New(cfg)
		n, err := CountParams(cfg)
		if err != nil || n != NumParams(m) {
			t.Errorf("%s: CountParams %d (%v), NumParams %d", name, n, err, NumParams(m))
		}
	}
	if _, err := CountParams(ModelConfig{Arch: "gpt"}); err == nil {
		t.Error("CountParams of an invalid configuration")
	}
}

// TestGPT100mTrainStep builds gpt-100m and takes one training step at batch
// 1 (about 2.3 GB and tens of seconds of two cores), so it runs only when
// SHOAL_TEST_LARGE is set.
func TestGPT100mTrainStep(t *testing.T) {
	if os.Getenv("SHOAL_TEST_LARGE") == "" {
		t.Skip("set SHOAL_TEST_LARGE=1 to train gpt-100m for a step")
	}
	cfg, _ := Preset("gpt-100m")
	cfg.Seed = 1
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTrainer(m, DefaultAdamW(), Schedule{Peak: 1e-4, Warmup: 0, Total: 10, MinFrac: 0.1})
	tok := make([]int32, cfg.Ctx+1)
	for i := range tok {
		tok[i] = int32(i*7) % 256
	}
	st := tr.Step(tok, 1)
	// At initialisation the logits are near zero: the loss is near ln 256.
	if l := float64(st.Loss); math.IsNaN(l) || math.Abs(l-math.Log(256)) > 0.5 {
		t.Errorf("first loss %g, want about ln 256 = %.3f", l, math.Log(256))
	}
	if !(st.GradNorm > 0) || math.IsInf(float64(st.GradNorm), 0) {
		t.Errorf("gradient norm %g", st.GradNorm)
	}
}

// TestEvaluateMatchesTraining: the forward pass on an inference tape,
// which frees values as it goes, gives the loss of the recording tape's
// bit for bit.
func TestEvaluateMatchesTraining(t *testing.T) {
	for name, cfg := range smallConfigs() {
		m, _ := New(cfg)
		tok := randomTokens(rand.New(rand.NewPCG(9, 9)), 3, cfg.Ctx, cfg.Vocab)
		tp := tensor.NewTape()
		want := m.Loss(tp, tok, 3).Item()
		if got := Evaluate(m, [][]int32{tok, tok}, 3); math.Float32bits(float32(got)) != math.Float32bits(want) {
			t.Errorf("%s: Evaluate gives %g, a recording tape %g", name, got, want)
		}
	}
}

// TestTrainerRestart: a restarted trainer continues exactly as a new one
// would from the same parameters.
func TestTrainerRestart(t *testing.T) {
	cfg := smallConfigs()["gpt"]
	sched := Schedule{Peak: 1e-2, Warmup: 2, Total: 10, MinFrac: 0.1}
	r := rand.New(rand.NewPCG(4, 4))
	tok := randomTokens(r, 2, cfg.Ctx, cfg.Vocab)
	a, _ := New(cfg)
	b, _ := New(cfg)
	used := NewTrainer(a, DefaultAdamW(), sched)
	for range 3 {
		used.Step(tok, 2)
	}
	// b takes a's parameters, then both train from there: a restarted, b new.
	for i, p := range b.Params() {
		copy(p.Data, a.Params()[i].Data)
	}
	used.Restart()
	fresh := NewTrainer(b, DefaultAdamW(), sched)
	for range 3 {
		used.Step(tok, 2)
		fresh.Step(tok, 2)
	}
	if paramHash(a) != paramHash(b) {
		t.Error("a restarted trainer and a new one disagree")
	}
	if used.Steps() != 3 || used.Optimizer().Steps() != 3 {
		t.Errorf("after a restart and 3 steps: trainer at %d, AdamW at %d", used.Steps(), used.Optimizer().Steps())
	}
}

// TestGPT2Shape: gpt2-124m has the parameter count of the published GPT-2
// small (tied head), and shoal's tensors carry its names and shapes.
func TestGPT2Shape(t *testing.T) {
	cfg, err := Preset("gpt2-124m")
	if err != nil {
		t.Fatal(err)
	}
	n, err := CountParams(cfg)
	if err != nil || n != 124_439_808 {
		t.Fatalf("gpt2-124m has %d parameters (%v), GPT-2 small 124,439,808", n, err)
	}
	shapes, _ := Shapes(cfg)
	want := map[string][]int{"transformer.wte.weight": {50257, 768}, "transformer.wpe.weight": {1024, 768},
		"transformer.h.11.attn.c_attn.weight": {768, 2304}, "transformer.h.0.mlp.c_proj.weight": {3072, 768}}
	for _, s := range shapes {
		if w, ok := want[s.Name]; ok {
			if fmt.Sprint(w) != fmt.Sprint(s.Shape) {
				t.Errorf("%s is %v, GPT-2's %v", s.Name, s.Shape, w)
			}
			delete(want, s.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("tensors missing: %v", want)
	}
}
