package gradient

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/tensor"
)

func smallConfigs() map[string]ModelConfig {
	return map[string]ModelConfig{
		"gpt": {Arch: "gpt", Vocab: 11, Ctx: 5, Dim: 8, Layers: 2, Heads: 2, Seed: 7},
		"mlp": {Arch: "mlp", Vocab: 11, Ctx: 5, Dim: 4, Layers: 2, Hidden: 8, Window: 3, Seed: 7},
		"gpt-lora": {Arch: "gpt", Vocab: 11, Ctx: 5, Dim: 8, Layers: 2, Heads: 2, Seed: 7,
			Adapter: &AdapterConfig{Rank: 3, Alpha: 3, Targets: AdapterTargets}},
	}
}

func randomTokens(r *rand.Rand, batch, ctx, vocab int) []int32 {
	tok := make([]int32, batch*(ctx+1))
	for i := range tok {
		tok[i] = int32(r.IntN(vocab))
	}
	return tok
}

// TestModelGradients compares every parameter gradient of the full models
// with central finite differences of the loss.
//
// The parameters are first scaled up (weights ~N(0, 0.5)) so that the loss
// is far from flat and gradients are of order 1e-2..1. The loss is a
// float32 of order 2 (rounding error ~2e-7); with h = 1e-2 that is ~1e-5 in
// the difference quotient, and the truncation error is O(h²). We allow
// 1e-4 + 2e-2·|numeric|: an order above those, and tight enough to catch a
// wrong term in any backward formula.
func TestModelGradients(t *testing.T) {
	for name, cfg := range smallConfigs() {
		t.Run(name, func(t *testing.T) {
			const seed = 5
			m, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(seed, 1))
			for _, p := range m.Params() {
				std := 0.5
				if strings.Contains(p.Name, ".lora_") {
					// An adapter's product of two such matrices would
					// bend the loss so that h's truncation error passes
					// the tolerance.
					std = 0.15
				}
				for i := range p.Data {
					if p.Dims() >= 2 {
						p.Data[i] = float32(r.NormFloat64() * std)
					} else {
						p.Data[i] += float32(r.NormFloat64() * 0.1)
					}
				}
			}
			batch := 3
			tok := randomTokens(r, batch, cfg.Ctx, cfg.Vocab)
			tp := tensor.NewTape()
			ZeroGrads(m)
			tp.Backward(m.Loss(tp, tok, batch))
			loss := func() float64 {
				itp := tensor.NewInferenceTape()
				return float64(m.Loss(itp, tok, batch).Item())
			}
			const h, abs, rel = 1e-2, 1e-4, 2e-2
			checked := 0
			for _, p := range m.Params() {
				for i := range p.Data {
					old := p.Data[i]
					p.Data[i] = old + h
					lp := loss()
					p.Data[i] = old - h
					lm := loss()
					p.Data[i] = old
					num := (lp - lm) / (2 * h)
					got := float64(p.Grad[i])
					if math.Abs(got-num) > abs+rel*math.Abs(num) {
						t.Fatalf("seed %d %s: d loss/d %s[%d] = %g, finite difference %g", seed, name, p.Name, i, got, num)
					}
					checked++
				}
			}
			t.Logf("%s: %d parameters checked", name, checked)
		})
	}
}

// paramHash returns a SHA-256 over the parameters' names and bits.
func paramHash(m Model) string {
	h := sha256.New()
	var b [4]byte
	for _, p := range m.Params() {
		h.Write([]byte(p.Name))
		for _, v := range p.Data {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			h.Write(b[:])
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// trainSteps trains a fresh model of cfg for n steps on deterministic
// batches and returns the parameter hash.
func trainSteps(t *testing.T, cfg ModelConfig, n, batch int) string {
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTrainer(m, DefaultAdamW(), Schedule{Peak: 3e-3, Warmup: 3, Total: n, MinFrac: 0.1})
	r := rand.New(rand.NewPCG(11, 12))
	for s := 0; s < n; s++ {
		st := tr.Step(randomTokens(r, batch, cfg.Ctx, cfg.Vocab), batch)
		if math.IsNaN(float64(st.Loss)) {
			t.Fatalf("step %d: loss is NaN", s)
		}
	}
	return paramHash(m)
}

// TestDeterministicAcrossGOMAXPROCS trains gpt-tiny and mlp for 20 steps
// with GOMAXPROCS 1 and 2: the parameters must be bit-identical.
func TestDeterministicAcrossGOMAXPROCS(t *testing.T) {
	if testing.Short() {
		t.Skip("trains gpt-tiny")
	}
	for _, name := range []string{"gpt-tiny", "mlp"} {
		cfg, _ := Preset(name)
		cfg.Seed = 3
		batch := 4
		prev := runtime.GOMAXPROCS(1)
		h1 := trainSteps(t, cfg, 20, batch)
		runtime.GOMAXPROCS(2)
		h2 := trainSteps(t, cfg, 20, batch)
		runtime.GOMAXPROCS(prev)
		if h1 != h2 {
			t.Errorf("%s: parameters after 20 steps differ: GOMAXPROCS=1 %s, GOMAXPROCS=2 %s", name, h1, h2)
		}
		t.Logf("%s: %s", name, h1)
	}
}

func TestInitDeterministic(t *testing.T) {
	for name, cfg := range smallConfigs() {
		a, _ := New(cfg)
		b, _ := New(cfg)
		if paramHash(a) != paramHash(b) {
			t.Errorf("%s: two models from one config differ", name)
		}
		cfg.Seed++
		c, _ := New(cfg)
		if paramHash(a) == paramHash(c) {
			t.Errorf("%s: seed does not change the initialisation", name)
		}
	}
	// The normal generator has the right moments.
	r := newRNG(1)
	var s, s2 float64
	const n = 200000
	for i := 0; i < n; i++ {
		v := float64(r.normal())
		s += v
		s2 += v * v
	}
	if mean, vr := s/n, s2/n-(s/n)*(s/n); math.Abs(mean) > 0.01 || math.Abs(vr-1) > 0.02 {
		t.Errorf("normal: mean %g variance %g", mean, vr)
	}
}

func TestGPTLayout(t *testing.T) {
	cfg, _ := Preset("gpt-tiny")
	m, _ := New(cfg)
	want := map[string][]int{
		"transformer.wte.weight":             {256, 128},
		"transformer.wpe.weight":             {64, 128},
		"transformer.h.0.attn.c_attn.weight": {128, 384},
		"transformer.h.1.attn.c_proj.weight": {128, 128},
		"transformer.h.1.mlp.c_fc.weight":    {128, 512},
		"transformer.h.0.mlp.c_proj.weight":  {512, 128},
		"transformer.ln_f.bias":              {128},
		"transformer.h.1.ln_2.weight":        {128},
		"transformer.h.0.attn.c_attn.bias":   {384},
	}
	got := map[string][]int{}
	prev := ""
	for _, p := range m.Params() {
		if p.Name <= prev {
			t.Fatalf("parameters not in sorted order: %q after %q", p.Name, prev)
		}
		prev = p.Name
		got[p.Name] = p.Shape()
	}
	if len(got) != 2+12*2+2 {
		t.Errorf("gpt-tiny has %d parameter tensors, want 28", len(got))
	}
	for n, s := range want {
		if fmt.Sprint(got[n]) != fmt.Sprint(s) {
			t.Errorf("%s: shape %v, want %v", n, got[n], s)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []ModelConfig{
		{Arch: "rnn", Vocab: 1, Ctx: 1, Dim: 1, Layers: 1},
		{Arch: "gpt", Vocab: 256, Ctx: 64, Dim: 130, Layers: 2, Heads: 4},
		{Arch: "gpt", Vocab: 0, Ctx: 64, Dim: 128, Layers: 2, Heads: 4},
		{Arch: "mlp", Vocab: 256, Ctx: 8, Dim: 4, Layers: 1, Hidden: 8, Window: 9},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: want an error", c)
		}
	}
	for _, n := range PresetNames() {
		c, _ := Preset(n)
		if err := c.Validate(); err != nil {
			t.Errorf("preset %s: %v", n, err)
		}
	}
	if _, err := Preset("nope"); err == nil {
		t.Error("unknown preset accepted")
	}
}

func TestSchedule(t *testing.T) {
	s := Schedule{Peak: 1, Warmup: 10, Total: 110, MinFrac: 0.1}
	for _, c := range []struct {
		step int
		want float32
	}{{0, 0.1}, {9, 1}, {10, 1}, {60, 0.55}, {110, 0.1}, {500, 0.1}} {
		if got := s.LR(c.step); math.Abs(float64(got-c.want)) > 1e-6 {
			t.Errorf("LR(%d) = %g, want %g", c.step, got, c.want)
		}
	}
}

// TestAdamWReference checks AdamW against a float64 transcription of the
// algorithm.
func TestAdamWReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	p := Param{"w", tensor.NewParam(3, 4)}
	b := Param{"b", tensor.NewParam(4)}
	ps := []Param{b, p}
	ref := make([][]float64, 2)
	for i, q := range ps {
		for j := range q.Data {
			q.Data[j] = float32(r.NormFloat64())
		}
		for _, v := range q.Data {
			ref[i] = append(ref[i], float64(v))
		}
	}
	cfg := AdamWConfig{Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1, ClipNorm: 0.5}
	o := NewAdamW(ps, cfg)
	m := [][]float64{make([]float64, 4), make([]float64, 12)}
	v := [][]float64{make([]float64, 4), make([]float64, 12)}
	for step := 1; step <= 5; step++ {
		var norm float64
		for _, q := range ps {
			for j := range q.Grad {
				q.Grad[j] = float32(r.NormFloat64())
				norm += float64(q.Grad[j]) * float64(q.Grad[j])
			}
		}
		norm = math.Sqrt(norm)
		sc := math.Min(1, 0.5/norm)
		lr := 0.01
		for i, q := range ps {
			for j := range q.Data {
				g := float64(q.Grad[j]) * sc
				m[i][j] = 0.9*m[i][j] + 0.1*g
				v[i][j] = 0.99*v[i][j] + 0.01*g*g
				mh := m[i][j] / (1 - math.Pow(0.9, float64(step)))
				vh := v[i][j] / (1 - math.Pow(0.99, float64(step)))
				wd := 0.0
				if q.Dims() >= 2 {
					wd = 0.1
				}
				ref[i][j] = ref[i][j] - lr*wd*ref[i][j] - lr*mh/(math.Sqrt(vh)+1e-8)
			}
		}
		o.Step(ps, float32(lr))
		for i, q := range ps {
			for j := range q.Data {
				if math.Abs(float64(q.Data[j])-ref[i][j]) > 1e-5 {
					t.Fatalf("step %d %s[%d]: %g, reference %g", step, q.Name, j, q.Data[j], ref[i][j])
				}
			}
		}
	}
}

func TestNesterovReference(t *testing.T) {
	p := Param{"w", tensor.NewParam(2)}
	p.Data[0], p.Data[1] = 1, -2
	o := NewNesterov([]Param{p}, 0.9)
	w := []float64{1, -2}
	buf := []float64{0, 0}
	for step := 0; step < 4; step++ {
		g := []float64{0.5 - float64(step), 0.25}
		p.Grad[0], p.Grad[1] = float32(g[0]), float32(g[1])
		for j := range w {
			buf[j] = 0.9*buf[j] + g[j]
			w[j] -= 0.1 * (g[j] + 0.9*buf[j])
		}
		o.Step([]Param{p}, 0.1)
		for j := range w {
			if math.Abs(float64(p.Data[j])-w[j]) > 1e-6 {
				t.Fatalf("step %d: %v, reference %v", step, p.Data, w)
			}
		}
	}
}

// TestShapesMatchNew: Shapes lists exactly the parameters New builds,
// names and shapes, for every preset and two odd configurations.
func TestShapesMatchNew(t *testing.T) {
	var cfgs []ModelConfig
	for _, name := range PresetNames() {
		cfg, _ := Preset(name)
		if n, _ := CountParams(cfg); n > 20_000_000 && testing.Short() {
			continue // gpt-100m: New allocates 800 MB
		}
		cfgs = append(cfgs, cfg)
	}
	cfgs = append(cfgs,
		ModelConfig{Arch: "gpt", Vocab: 300, Ctx: 7, Dim: 12, Layers: 11, Heads: 3},
		ModelConfig{Arch: "mlp", Vocab: 260, Ctx: 9, Dim: 5, Layers: 3, Hidden: 7, Window: 4})
	for _, cfg := range cfgs {
		m, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		shapes, err := Shapes(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ps := m.Params()
		if len(shapes) != len(ps) {
			t.Fatalf("%+v: %d shapes, %d parameters", cfg, len(shapes), len(ps))
		}
		for i, p := range ps {
			if shapes[i].Name != p.Name || !slices.Equal(shapes[i].Shape, p.Shape()) {
				t.Errorf("%+v: shape %d is %s %v, the parameter %s %v", cfg, i, shapes[i].Name, shapes[i].Shape, p.Name, p.Shape())
			}
		}
	}
	if _, err := Shapes(ModelConfig{Arch: "gpt"}); err == nil {
		t.Error("Shapes of an invalid configuration")
	}
}
