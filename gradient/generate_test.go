package gradient

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/shoal-network/shoal/tensor"
)

// TestGeneratorMatchesForward feeds a sequence through the cached
// decoder and checks each position's logits against the batched forward
// pass of training.
func TestGeneratorMatchesForward(t *testing.T) {
	cfg := ModelConfig{Arch: "gpt", Vocab: 37, Ctx: 12, Dim: 16, Layers: 2, Heads: 4, Seed: 5}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGenerator(m)
	if err != nil {
		t.Fatal(err)
	}
	tokens := make([]int32, cfg.Ctx)
	for i := range tokens {
		tokens[i] = int32((i*7 + 3) % cfg.Vocab)
	}
	tp := tensor.NewTape()
	in := tp.Int32s(cfg.Ctx)
	copy(in, tokens)
	full := m.(*gpt).logits(tp, in, 1).Data
	for pos, tok := range tokens {
		got, err := g.Next(tok)
		if err != nil {
			t.Fatal(err)
		}
		want := full[pos*cfg.Vocab : (pos+1)*cfg.Vocab]
		for i := range got {
			if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("position %d, logit %d: %v, the forward pass %v", pos, i, got[i], want[i])
			}
		}
	}
	if _, err := g.Next(0); err != ErrContextFull {
		t.Fatalf("past the context: %v, want ErrContextFull", err)
	}
}

// TestSamplerDeterministic: the same seed gives the same tokens; greedy
// takes the argmax; top-k 1 is greedy; bad settings are refused.
func TestSamplerDeterministic(t *testing.T) {
	logits := []float32{0.1, 2, -1, 1.9, 0.5, 3, 3}
	draw := func(temp float64, k int, p float64, seed uint64) []int32 {
		s, err := NewSampler(temp, k, p, seed)
		if err != nil {
			t.Fatal(err)
		}
		var out []int32
		for range 50 {
			out = append(out, s.Sample(logits))
		}
		return out
	}
	a, b := draw(0.8, 0, 0.9, 1), draw(0.8, 0, 0.9, 1)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed drew different tokens")
	}
	if slices.Equal(a, draw(0.8, 0, 0.9, 2)) {
		t.Error("another seed drew the same 50 tokens")
	}
	for _, tok := range draw(0, 0, 0, 1) {
		if tok != 5 {
			t.Fatalf("greedy drew %d, want 5 (the first of the largest)", tok)
		}
	}
	for _, tok := range draw(1, 2, 0, 3) {
		if tok != 5 && tok != 6 {
			t.Fatalf("top-k 2 drew %d", tok)
		}
	}
	for _, bad := range [][3]float64{{-1, 0, 0}, {1, -1, 0}, {1, 0, 1.5}, {math.NaN(), 0, 0}} {
		if _, err := NewSampler(bad[0], int(bad[1]), bad[2], 1); err == nil {
			t.Errorf("NewSampler%v accepted", bad)
		}
	}
}

// TestGoldenGeneration samples 64 tokens from gpt-tiny's initialisation
// with a fixed seed and compares the tokens and a hash of every logit
// with golden values: the same on every kernel path and architecture
// (make test-arm64 runs it on arm64 under qemu), so a seed names a text.
func TestGoldenGeneration(t *testing.T) {
	cfg, _ := Preset("gpt-tiny")
	cfg.Seed = 9
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := NewGenerator(m)
	got := sampleHash(t, g, 64)
	if want := golden(t, "golden-generate.txt", got); got != want {
		t.Errorf("generation changed (kernels %s):\ngot  %s\nwant %s", tensor.KernelPath(), got, want)
	}
}

// sampleHash generates n tokens after 'T' (temperature 0.9, top-k 40,
// top-p 0.95, seed 7) and returns the SHA-256 of every logit and the
// tokens.
func sampleHash(t *testing.T, g *Generator, n int) string {
	t.Helper()
	s, _ := NewSampler(0.9, 40, 0.95, 7)
	h := sha256.New()
	var out []int32
	tok := int32('T')
	for range n {
		logits, err := g.Next(tok)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range logits {
			binary.Write(h, binary.LittleEndian, math.Float32bits(v))
		}
		tok = s.Sample(logits)
		out = append(out, tok)
	}
	return fmt.Sprintf("%x %v", h.Sum(nil), out)
}
