package gradient

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/tensor"
)

// TestQuantMatrix: every weight comes back within half a step of its
// group's scale, and a product with a vector equals a float64 product
// with the dequantised weights, for 8 and 4 bits, an odd number of
// columns and a last group shorter than the others.
func TestQuantMatrix(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	const rows, cols = 7, 45
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	w[5*cols+3] = 0 // and a row of zeros
	for k := range cols {
		w[2*cols+k] = 0
	}
	x := make([]float32, cols)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for _, bits := range []int{8, 4} {
		m := quantize(rows, cols, func(i, k int) float32 { return w[i*cols+k] }, Quant{Bits: bits, Group: 16})
		deq := make([]float32, cols)
		for i := range rows {
			m.row(deq, i)
			for k := range cols {
				s := m.scale[i*m.groups+k/16]
				if d := math.Abs(float64(deq[k] - w[i*cols+k])); d > float64(s)/2*(1+1e-6) {
					t.Fatalf("int%d: w[%d,%d] = %v comes back as %v, more than half of the scale %v away", bits, i, k, w[i*cols+k], deq[k], s)
				}
			}
		}
		got := make([]float32, rows)
		m.mulVec(got, x)
		for i := range rows {
			m.row(deq, i)
			var ref float64
			for k := range cols {
				ref += float64(deq[k]) * float64(x[k])
			}
			if math.Abs(float64(got[i])-ref) > 1e-4*(1+math.Abs(ref)) {
				t.Fatalf("int%d: row %d: %v, float64 reference %v", bits, i, got[i], ref)
			}
		}
		if got[2] != 0 {
			t.Errorf("int%d: a row of zeros gives %v", bits, got[2])
		}
		want := int64(rows*3*4) + map[int]int64{8: rows * cols, 4: rows * ((cols + 1) / 2)}[bits]
		if b := m.bytes(); b != want {
			t.Errorf("int%d: %d bytes, want %d", bits, b, want)
		}
	}
}

// trainedTiny returns gpt-tiny trained for 300 steps on the built-in
// task, and held-out sequences of its context.
func trainedTiny(t *testing.T) (Model, [][]int32) {
	t.Helper()
	cfg, _ := Preset("gpt-tiny")
	cfg.Seed = 5
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const batch, steps = 16, 300
	tr := NewTrainer(m, DefaultAdamW(), Schedule{Peak: 6e-3, Warmup: 30, Total: steps, MinFrac: 0.1})
	train, eval := data.Builtin().Corpus(1<<20, 1<<16)
	tok := make([]int32, batch*(cfg.Ctx+1))
	for s := range steps {
		data.Sample(tok, train, 5, 0, uint64(s), batch, cfg.Ctx)
		tr.Step(tok, batch)
	}
	var seqs [][]int32
	for _, b := range data.EvalBatches(eval, 1, cfg.Ctx, 8) {
		seqs = append(seqs, b[:cfg.Ctx+1])
	}
	return m, seqs
}

// TestQuantLoss: on held-out text a trained model's loss with 8-bit
// weights is within 2% of its float32 loss, with 4-bit weights within
// 10%, and the weights take at least 3.5 and 6 times less memory.
func TestQuantLoss(t *testing.T) {
	if tensor.KernelPath() == "go" {
		// Training the model takes minutes in the pure-Go kernels; the
		// quality of quantisation does not depend on them, and what
		// does, the same bits, TestGoldenQuantGeneration checks here.
		t.Skip("quantisation's loss is measured with the assembly kernels")
	}
	m, seqs := trainedTiny(t)
	loss := func(q Quant) (float64, int64) {
		g, err := NewQuantGenerator(m, q)
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for _, s := range seqs {
			l, err := g.Loss(s)
			if err != nil {
				t.Fatal(err)
			}
			sum += l
		}
		return sum / float64(len(seqs)), g.WeightBytes()
	}
	base, baseBytes := loss(Quant{})
	t.Logf("fp32: held-out %.4f nats/token, weights %d bytes", base, baseBytes)
	for _, c := range []struct {
		q          Quant
		gap, ratio float64
	}{{Quant{Bits: 8, Group: 64}, 0.02, 3.5}, {Quant{Bits: 4, Group: 64}, 0.10, 6}} {
		l, b := loss(c.q)
		t.Logf("%s: held-out %.4f nats/token (%+.2f%%), weights %d bytes (%.2fx less)", c.q, l, 100*(l/base-1), b, float64(baseBytes)/float64(b))
		if l > base*(1+c.gap) {
			t.Errorf("%s: loss %.4f, more than %.0f%% above fp32's %.4f", c.q, l, 100*c.gap, base)
		}
		// The matrices alone: the vectors (biases, norms, positions)
		// stay float32.
		if r := float64(matrixBytes(t, m, Quant{})) / float64(matrixBytes(t, m, c.q)); r < c.ratio {
			t.Errorf("%s: weight matrices %.2fx smaller, want at least %.1fx", c.q, r, c.ratio)
		}
	}
	if base > 1.6 {
		t.Fatalf("the model did not learn (held-out %.4f): the comparison means little", base)
	}
}

// matrixBytes is the memory of a generator's weight matrices alone.
func matrixBytes(t *testing.T, m Model, q Quant) int64 {
	g, err := NewQuantGenerator(m, q)
	if err != nil {
		t.Fatal(err)
	}
	n := g.wte.bytes()
	for _, l := range g.layers {
		n += l.attn.bytes() + l.proj.bytes() + l.fc.bytes() + l.mlp.bytes()
	}
	return n
}

// TestGoldenQuantGeneration pins the logits of quantised generation, as
// TestGoldenGeneration does for float32: the same bits on every kernel
// path and architecture.
func TestGoldenQuantGeneration(t *testing.T) {
	cfg, _ := Preset("gpt-tiny")
	cfg.Seed = 9
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, q := range []Quant{{Bits: 8, Group: 64}, {Bits: 4, Group: 64}} {
		g, err := NewQuantGenerator(m, q)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, q.String()+" "+sampleHash(t, g, 48))
	}
	got := strings.Join(lines, "\n")
	if want := golden(t, "golden-generate-quant.txt", got); got != want {
		t.Errorf("quantised generation changed (kernels %s):\ngot  %s\nwant %s", tensor.KernelPath(), got, want)
	}
}

func TestParseQuant(t *testing.T) {
	for in, want := range map[string]Quant{"": {}, "fp32": {}, "int8": {8, 64}, "int4": {4, 64}} {
		if q, err := ParseQuant(in); err != nil || q != want {
			t.Errorf("ParseQuant(%q) = %v, %v", in, q, err)
		}
	}
	if _, err := ParseQuant("int3"); err == nil || !strings.Contains(err.Error(), "int8, int4") {
		t.Errorf("int3: %v", err)
	}
	cfg, _ := Preset("mlp")
	m, _ := New(cfg)
	if _, err := NewQuantGenerator(m, Quant{Bits: 8}); err == nil {
		t.Error("an mlp generates")
	}
	cfg, _ = Preset("gpt-tiny")
	m, _ = New(cfg)
	if _, err := NewQuantGenerator(m, Quant{Bits: 3}); err == nil || !strings.Contains(err.Error(), "3-bit") {
		t.Errorf("3 bits: %v", err)
	}
}

// TestQuantizedCheckpoint writes a model's quantised tensors and builds a
// generator from them: its logits are those of the generator that
// quantised the model itself, bit for bit, the codes take a quarter
// (8 bits) or an eighth (4 bits) of the matrices' float32 bytes, and
// tensors of the wrong shape or missing are refused by name.
func TestQuantizedCheckpoint(t *testing.T) {
	cfg := ModelConfig{Arch: "gpt", Vocab: 256, Ctx: 16, Dim: 96, Layers: 2, Heads: 2, Seed: 3}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, bits := range []int{8, 4} {
		q := Quant{Bits: bits, Group: DefaultQuantGroup}
		ts, err := QuantizeModel(m, q)
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]QuantTensor{}
		var stored int
		for _, x := range ts {
			byName[x.Name] = x
			stored += 4 * len(x.Data)
		}
		get := func(name string) ([]int, []float32, bool) {
			x, ok := byName[name]
			return x.Shape, x.Data, ok
		}
		fromFile, err := NewGeneratorFromQuantized(cfg, q, get)
		if err != nil {
			t.Fatal(err)
		}
		direct, err := NewQuantGenerator(m, q)
		if err != nil {
			t.Fatal(err)
		}
		for i, tok := range []int32{10, 200, 3, 3, 77, 255, 0} {
			a, err1 := fromFile.Next(tok)
			b, err2 := direct.Next(tok)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			for j := range a {
				if math.Float32bits(a[j]) != math.Float32bits(b[j]) {
					t.Fatalf("int%d: position %d logit %d: %v from the checkpoint, %v quantised here", bits, i, j, a[j], b[j])
				}
			}
		}
		full := 4 * NumParams(m)
		t.Logf("int%d: %d bytes against %d in fp32 (%.2fx)", bits, stored, full, float64(full)/float64(stored))

		drop := "transformer.h.1.mlp.c_fc.weight" + QuantScale
		bad := func(name string) ([]int, []float32, bool) {
			if name == drop {
				return nil, nil, false
			}
			return get(name)
		}
		if _, err := NewGeneratorFromQuantized(cfg, q, bad); err == nil || !strings.Contains(err.Error(), drop) {
			t.Errorf("a checkpoint without %s: %v", drop, err)
		}
		other := Quant{Bits: 12 - bits, Group: DefaultQuantGroup}
		if _, err := NewGeneratorFromQuantized(cfg, other, get); err == nil || !strings.Contains(err.Error(), QuantCodes) {
			t.Errorf("int%d codes read as int%d: %v", bits, other.Bits, err)
		}
	}
}
