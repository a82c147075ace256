package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
)

func runGenerateCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newCmdGenerate(&factory{Out: &out, Err: &errb})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errb.String(), err
}

// TestGenerate samples from a checkpoint in a store and from its
// safetensors export: the same seed gives the same text, past the
// model's context too; another seed another; speed goes to stderr.
func TestGenerate(t *testing.T) {
	cfg := gradient.ModelConfig{Arch: "gpt", Vocab: 256, Ctx: 16, Dim: 32, Layers: 2, Heads: 4, Seed: 3}
	m, err := gradient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(cfg)
	c := &checkpoint.Checkpoint{Meta: map[string]string{checkpoint.MetaConfig: string(js)}}
	for _, p := range m.Params() {
		c.Tensors = append(c.Tensors, checkpoint.Tensor{Name: p.Name, Shape: p.Shape(), Data: p.Data})
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	s, err := checkpoint.OpenStore(store)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.Put(c)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{id.String(), "--store", store, "--prompt", "Hello", "--tokens", "40", "--seed", "5"}
	a, stderr, err := runGenerateCmd(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a, "Hello") || len(a) != len("Hello")+40+1 {
		t.Fatalf("output %q: want the prompt, 40 bytes and a newline", a)
	}
	if !strings.Contains(stderr, "tokens/s") {
		t.Errorf("no speed on stderr: %q", stderr)
	}
	b, _, _ := runGenerateCmd(t, args...)
	if a != b {
		t.Fatalf("the same seed gave %q and %q", a, b)
	}
	other, _, _ := runGenerateCmd(t, id.String(), "--store", store, "--prompt", "Hello", "--tokens", "40", "--seed", "6")
	if other == a {
		t.Error("another seed gave the same 40 tokens")
	}
	// The same model from a safetensors file.
	file := filepath.Join(dir, "m.safetensors")
	if _, _, err := runCheckpoint(t, "export", id.String(), "--out", file, "--store", store); err != nil {
		t.Fatal(err)
	}
	fromFile, _, err := runGenerateCmd(t, file, "--prompt", "Hello", "--tokens", "40", "--seed", "5")
	if err != nil || fromFile != a {
		t.Fatalf("from the file: %q (%v), from the store %q", fromFile, err, a)
	}
	// Quantised weights: the same text for the same seed, and the
	// weights' memory on stderr.
	for _, q := range []string{"int8", "int4"} {
		qa, qerr, err := runGenerateCmd(t, append(args, "--quant", q)...)
		if err != nil {
			t.Fatalf("--quant %s: %v", q, err)
		}
		qb, _, _ := runGenerateCmd(t, append(args, "--quant", q)...)
		if qa != qb || !strings.HasPrefix(qa, "Hello") || !strings.Contains(qerr, "weights: "+q) {
			t.Errorf("--quant %s: %q then %q; stderr %q", q, qa, qb, qerr)
		}
	}
	ev, _, err := runGenerateCmd(t, id.String(), "--store", store, "--eval", "3", "--quant", "int8")
	if err != nil || !strings.Contains(ev, "held-out loss") || !strings.Contains(ev, "over 3 sequences of 16 tokens, int8 weights") {
		t.Errorf("--eval 3: %q, %v", ev, err)
	}
	for _, bad := range [][]string{{id.String(), "--store", store, "--tokens", "0"}, {id.String(), "--store", store, "--top-p", "2"}, {"nothing-here", "--store", store},
		{id.String(), "--store", store, "--quant", "int3"}, {id.String(), "--store", store, "--eval", "-1"}} {
		if _, _, err := runGenerateCmd(t, bad...); err == nil {
			t.Errorf("generate %v succeeded", bad)
		}
	}
}
