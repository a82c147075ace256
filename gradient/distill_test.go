package gradient

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/tensor"
)

// distillPair returns a small student and a wider, deeper teacher with a
// longer context, whose weights are scaled up so that its predictions are
// far from uniform and there is something to learn from them.
func distillPair(t *testing.T) (student, teacher Model) {
	t.Helper()
	s, err := New(ModelConfig{Arch: "gpt", Vocab: 11, Ctx: 5, Dim: 8, Layers: 1, Heads: 2, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	te, err := New(ModelConfig{Arch: "gpt", Vocab: 11, Ctx: 8, Dim: 16, Layers: 2, Heads: 4, Seed: 8})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range te.Params() {
		if p.Dims() >= 2 {
			for i := range p.Data {
				p.Data[i] *= 10
			}
		}
	}
	return s, te
}

func mustDistill(t *testing.T, student, teacher Model, cfg DistillConfig) Model {
	t.Helper()
	m, err := Distill(student, teacher, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// trainLosses trains m for n steps on random batches (the same for every
// call) and returns the losses' bits and the parameters' hash.
func trainLosses(m Model, n, batch int) ([]uint32, string) {
	cfg := m.Config()
	tr := NewTrainer(m, DefaultAdamW(), Schedule{Peak: 1e-2, Warmup: 2, Total: n, MinFrac: 0.1})
	r := rand.New(rand.NewPCG(21, 22))
	var losses []uint32
	for s := 0; s < n; s++ {
		st := tr.Step(randomTokens(r, batch, cfg.Ctx, cfg.Vocab), batch)
		losses = append(losses, math.Float32bits(st.Loss))
	}
	return losses, paramHash(m)
}

// TestDistillDeterministic: two students distilled from one teacher, one
// with GOMAXPROCS 1 and one with 2, take the same steps bit for bit; the
// teacher is not changed.
func TestDistillDeterministic(t *testing.T) {
	var losses [2][]uint32
	var hashes [2]string
	var teacherHash string
	for i, procs := range []int{1, 2} {
		s, te := distillPair(t)
		teacherHash = paramHash(te)
		prev := runtime.GOMAXPROCS(procs)
		losses[i], hashes[i] = trainLosses(mustDistill(t, s, te, DistillConfig{Temperature: 2, Mix: 0.5}), 12, 3)
		runtime.GOMAXPROCS(prev)
		if paramHash(te) != teacherHash {
			t.Fatal("distillation changed the teacher")
		}
	}
	for s := range losses[0] {
		if losses[0][s] != losses[1][s] {
			t.Fatalf("step %d: loss %#x, then %#x", s, losses[0][s], losses[1][s])
		}
	}
	if hashes[0] != hashes[1] {
		t.Errorf("students differ after 12 steps: %s, %s", hashes[0], hashes[1])
	}
}

// TestDistillMixOne: with Mix 1 the distilled model trains exactly as the
// student alone.
func TestDistillMixOne(t *testing.T) {
	s, te := distillPair(t)
	got, gotHash := trainLosses(mustDistill(t, s, te, DistillConfig{Temperature: 3, Mix: 1}), 8, 3)
	plain, _ := distillPair(t)
	want, wantHash := trainLosses(plain, 8, 3)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("step %d: loss %#x with Mix 1, %#x alone", i, got[i], want[i])
		}
	}
	if gotHash != wantHash {
		t.Errorf("parameters after 8 steps: %s with Mix 1, %s alone", gotHash, wantHash)
	}
}

// TestDistillLossMix: the loss is Mix·CE + (1-Mix)·T²·KL, with CE the
// student's own loss and T²·KL the loss with Mix 0, to the bit.
func TestDistillLossMix(t *testing.T) {
	s, te := distillPair(t)
	r := rand.New(rand.NewPCG(3, 4))
	tok := randomTokens(r, 4, 5, 11)
	tp := tensor.NewInferenceTape()
	ce := s.Loss(tp, tok, 4).Item()
	kl := mustDistill(t, s, te, DistillConfig{Temperature: 2, Mix: 0}).Loss(tp, tok, 4).Item()
	got := mustDistill(t, s, te, DistillConfig{Temperature: 2, Mix: 0.25}).Loss(tp, tok, 4).Item()
	if want := float32(0.25*ce) + float32(0.75*kl); got != want || !(kl > 0.1) {
		t.Errorf("loss %g, want 0.25·%g + 0.75·%g = %g", got, ce, kl, want)
	}
}

// TestDistillGradients compares the gradient of the mixed loss with
// respect to every parameter of the student with central finite
// differences, with the tolerance and the scaled-up weights of
// TestModelGradients.
func TestDistillGradients(t *testing.T) {
	s, te := distillPair(t)
	r := rand.New(rand.NewPCG(5, 6))
	for _, p := range s.Params() {
		for i := range p.Data {
			if p.Dims() >= 2 {
				p.Data[i] = float32(r.NormFloat64() * 0.5)
			} else {
				p.Data[i] += float32(r.NormFloat64() * 0.1)
			}
		}
	}
	m := mustDistill(t, s, te, DistillConfig{Temperature: 2, Mix: 0.3})
	const batch = 2
	tok := randomTokens(r, batch, 5, 11)
	tp := tensor.NewTape()
	ZeroGrads(m)
	tp.Backward(m.Loss(tp, tok, batch))
	loss := func() float64 { return float64(m.Loss(tensor.NewInferenceTape(), tok, batch).Item()) }
	const h, abs, rel = 1e-2, 1e-4, 2e-2
	for _, p := range m.Params() {
		for i := range p.Data {
			old := p.Data[i]
			p.Data[i] = old + h
			lp := loss()
			p.Data[i] = old - h
			lm := loss()
			p.Data[i] = old
			num := (lp - lm) / (2 * h)
			if got := float64(p.Grad[i]); math.Abs(got-num) > abs+rel*math.Abs(num) {
				t.Fatalf("d loss/d %s[%d] = %g, finite difference %g", p.Name, i, got, num)
			}
		}
	}
}

// TestDistillLowersKL: pure distillation brings the student's predictions
// close to the teacher's, on batches it was not trained on.
func TestDistillLowersKL(t *testing.T) {
	s, te := distillPair(t)
	m := mustDistill(t, s, te, DistillConfig{Temperature: 1, Mix: 0})
	r := rand.New(rand.NewPCG(9, 10))
	held := [][]int32{randomTokens(r, 8, 5, 11), randomTokens(r, 8, 5, 11)}
	before := Evaluate(m, held, 8)
	tr := NewTrainer(m, DefaultAdamW(), Schedule{Peak: 1e-2, Warmup: 5, Total: 150, MinFrac: 0.1})
	for range 150 {
		tr.Step(randomTokens(r, 8, 5, 11), 8)
	}
	after := Evaluate(m, held, 8)
	t.Logf("held-out KL(teacher || student): %.4f before, %.4f after", before, after)
	if !(after < before/3) {
		t.Errorf("held-out KL %g after 150 steps, from %g: want a third of it or less", after, before)
	}
}

func TestDistillErrors(t *testing.T) {
	s, te := distillPair(t)
	otherVocab, _ := New(ModelConfig{Arch: "gpt", Vocab: 12, Ctx: 8, Dim: 8, Layers: 1, Heads: 2})
	shortCtx, _ := New(ModelConfig{Arch: "gpt", Vocab: 11, Ctx: 4, Dim: 8, Layers: 1, Heads: 2})
	mlp, _ := New(smallConfigs()["mlp"])
	ok := DistillConfig{Temperature: 2, Mix: 0.5}
	for _, c := range []struct {
		student, teacher Model
		cfg              DistillConfig
		want             string
	}{
		{s, otherVocab, ok, "vocabulary has 12 tokens, the student's 11"},
		{s, shortCtx, ok, "context of 4 tokens is shorter than the student's 5"},
		{mlp, te, ok, "student's architecture is mlp"},
		{s, mlp, ok, "teacher's architecture is mlp"},
		{s, te, DistillConfig{Temperature: 0, Mix: 0.5}, "temperature must be in (0, 100], got 0"},
		{s, te, DistillConfig{Temperature: float32(math.NaN()), Mix: 0.5}, "temperature"},
		{s, te, DistillConfig{Temperature: 101, Mix: 0.5}, "temperature"},
		{s, te, DistillConfig{Temperature: 2, Mix: -0.1}, "mix must be in [0, 1], got -0.1"},
		{s, te, DistillConfig{Temperature: 2, Mix: 1.5}, "mix"},
		{s, te, DistillConfig{Temperature: 2, Mix: float32(math.NaN())}, "mix"},
	} {
		_, err := Distill(c.student, c.teacher, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want it to mention %q", c.cfg, err, c.want)
		}
	}
	if _, err := Distill(s, shortCtx, DistillConfig{Temperature: 100, Mix: 0}); err == nil {
		t.Error("a teacher of shorter context accepted")
	}
	if _, err := Distill(shortCtx, s, DistillConfig{Temperature: 100, Mix: 0}); err != nil {
		t.Errorf("a teacher of longer context: %v", err)
	}
}

// TestGoldenDistillation trains a small teacher on the built-in task, then
// a smaller student of shorter context against it, and compares a hash of
// the student's parameters with a golden value that every kernel path and
// architecture must reproduce, as TestGoldenTraining does for plain
// training.
func TestGoldenDistillation(t *testing.T) {
	te, err := New(ModelConfig{Arch: "gpt", Vocab: 256, Ctx: 32, Dim: 32, Layers: 2, Heads: 4, Seed: 30})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ModelConfig{Arch: "gpt", Vocab: 256, Ctx: 16, Dim: 16, Layers: 1, Heads: 2, Seed: 31})
	if err != nil {
		t.Fatal(err)
	}
	train, _ := data.Builtin().Corpus(1<<20, 0)
	const batch, steps = 4, 10
	run := func(m Model, ctx int) {
		tr := NewTrainer(m, DefaultAdamW(), Schedule{Peak: 6e-3, Warmup: 2, Total: steps, MinFrac: 0.1})
		tok := make([]int32, batch*(ctx+1))
		for s := 0; s < steps; s++ {
			data.Sample(tok, train, 30, 0, uint64(s), batch, ctx)
			tr.Step(tok, batch)
		}
	}
	run(te, 32)
	run(mustDistill(t, s, te, DistillConfig{Temperature: 2, Mix: 0.5}), 16)
	got := paramHash(s)
	if want := golden(t, "golden-distill.txt", got); got != want {
		t.Errorf("student after 10 distillation steps hashes to %s, golden %s (kernels %s)", got, want, tensor.KernelPath())
	}
}

// TestDistillStepMemory: after its first step, a distillation step
// allocates about what a plain step does (the parallel loops' closures):
// the teacher's activations come from its tape's pool, which Loss resets
// rather than replaces. Its logits alone would take 16 KiB a step.
func TestDistillStepMemory(t *testing.T) {
	s, _ := New(ModelConfig{Arch: "gpt", Vocab: 64, Ctx: 16, Dim: 16, Layers: 1, Heads: 2, Seed: 1})
	te, _ := New(ModelConfig{Arch: "gpt", Vocab: 64, Ctx: 16, Dim: 32, Layers: 2, Heads: 4, Seed: 2})
	perStep := func(m Model) uint64 {
		tr := NewTrainer(m, DefaultAdamW(), Schedule{Peak: 1e-3, Total: 10})
		tok := randomTokens(rand.New(rand.NewPCG(1, 2)), 4, 16, 64)
		tr.Step(tok, 4)
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		for range 5 {
			tr.Step(tok, 4)
		}
		runtime.ReadMemStats(&b)
		return (b.TotalAlloc - a.TotalAlloc) / 5
	}
	plain := perStep(s)
	distilled := perStep(mustDistill(t, s, te, DistillConfig{Temperature: 2, Mix: 0.5}))
	t.Logf("bytes allocated per step: %d plain, %d distilled", plain, distilled)
	if distilled > plain+4<<10 {
		t.Errorf("a distillation step allocates %d bytes, a plain one %d: the teacher's tape is not reused", distilled, plain)
	}
}
