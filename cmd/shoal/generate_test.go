package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

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

// storeModel stores the model cfg describes, initialised from its seed,
// in a new checkpoint store at dir, and returns its CID.
func storeModel(t *testing.T, cfg gradient.ModelConfig, dir string) cid.Cid {
	t.Helper()
	m, err := gradient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(cfg)
	c := &checkpoint.Checkpoint{Meta: map[string]string{checkpoint.MetaConfig: string(js)}}
	for _, p := range m.Params() {
		c.Tensors = append(c.Tensors, checkpoint.Tensor{Name: p.Name, Shape: p.Shape(), Data: p.Data})
	}
	s, err := checkpoint.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.Put(c)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestGenerate samples from a checkpoint in a store and from its
// safetensors export: the same seed gives the same text, past the
// model's context too; another seed another; speed goes to stderr.
func TestGenerate(t *testing.T) {
	cfg := gradient.ModelConfig{Arch: "gpt", Vocab: 256, Ctx: 16, Dim: 32, Layers: 2, Heads: 4, Seed: 3}
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	id := storeModel(t, cfg, store)
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

// TestQuantizeCheckpoint quantises a stored checkpoint to 8 and 4 bits:
// generating from the quantised checkpoint gives the text generate
// --quant gives on the float32 one, the checkpoint is smaller by the
// codes' ratio, and exports and merges refuse it.
func TestQuantizeCheckpoint(t *testing.T) {
	cfg := gradient.ModelConfig{Arch: "gpt", Vocab: 256, Ctx: 16, Dim: 64, Layers: 2, Heads: 4, Seed: 3}
	store := filepath.Join(t.TempDir(), "store")
	id := storeModel(t, cfg, store)
	for _, q := range []string{"int8", "int4"} {
		out, stderr, err := runCheckpoint(t, "quantize", id.String(), "--quant", q, "--store", store)
		if err != nil {
			t.Fatalf("quantize --quant %s: %v\n%s", q, err, stderr)
		}
		qid := strings.TrimSpace(out)
		t.Logf("%s: %s", q, strings.TrimSpace(stderr))
		args := []string{"--store", store, "--prompt", "ab", "--tokens", "40", "--seed", "5"}
		want, _, err := runGenerateCmd(t, append([]string{id.String(), "--quant", q}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := runGenerateCmd(t, append([]string{qid}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: the quantised checkpoint writes %q, generate --quant %q", q, got, want)
		}
		if _, _, err := runGenerateCmd(t, append([]string{qid, "--quant", map[string]string{"int8": "int4", "int4": "int8"}[q]}, args...)...); err == nil {
			t.Errorf("%s: generated with the other quantisation", q)
		}
		if _, _, err := runCheckpoint(t, "export", qid, "--out", filepath.Join(t.TempDir(), "x.safetensors"), "--store", store); err == nil || !strings.Contains(err.Error(), "quantised") {
			t.Errorf("%s: export of a quantised checkpoint: %v", q, err)
		}
		if _, _, err := runCheckpoint(t, "merge", qid, id.String(), "--store", store); err == nil || !strings.Contains(err.Error(), "quantised") {
			t.Errorf("%s: merge of a quantised checkpoint: %v", q, err)
		}
		if _, _, err := runCheckpoint(t, "quantize", qid, "--store", store); err == nil {
			t.Errorf("%s: quantised twice", q)
		}
	}
	if _, _, err := runCheckpoint(t, "quantize", id.String(), "--quant", "int2", "--store", store); err == nil {
		t.Error("--quant int2 accepted")
	}
}
