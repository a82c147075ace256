package main

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/tensor"
)

// torchPython returns the python3 that has PyTorch, or skips the test
// (fails it if SHOAL_REQUIRE_TORCH is set: make test-hf installs PyTorch
// and sets it).
func torchPython(t *testing.T) string {
	t.Helper()
	// Debian's python3-torch is for the system's python3, which another
	// python3 earlier on the PATH may hide.
	var err error
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if err = exec.Command(py, "-c", "import torch").Run(); err == nil {
			return py
		}
	}
	if err != nil {
		if os.Getenv("SHOAL_REQUIRE_TORCH") != "" {
			t.Fatalf("PyTorch is required here: %v", err)
		}
		t.Skip("no python3 with PyTorch (make test-hf installs it)")
	}
	return ""
}

// TestHuggingFaceInterop moves GPT-2 weights between shoal and an
// independent PyTorch implementation in Hugging Face's layout: a file
// PyTorch writes (F32 and BF16, no "transformer." prefix, mask buffers, a
// tied lm_head) imports, and shoal's loss on a token batch equals
// PyTorch's to 1e-5 relative; the file shoal exports loads in PyTorch
// with the same loss.
func TestHuggingFaceInterop(t *testing.T) {
	py := torchPython(t)
	script, _ := filepath.Abs(filepath.Join("..", "..", "scripts", "hf_interop.py"))
	cfg, _ := gradient.Preset("gpt-tiny")
	dir := t.TempDir()
	const rows = 4
	r := rand.New(rand.NewPCG(11, 12))
	tokens := make([]int32, rows*(cfg.Ctx+1))
	grid := make([][]int32, rows)
	for i := range tokens {
		tokens[i] = int32(r.IntN(cfg.Vocab))
	}
	for i := range grid {
		grid[i] = tokens[i*(cfg.Ctx+1) : (i+1)*(cfg.Ctx+1)]
	}
	tokFile := filepath.Join(dir, "tokens.json")
	js, _ := json.Marshal(grid)
	if err := os.WriteFile(tokFile, js, 0o644); err != nil {
		t.Fatal(err)
	}
	torchLoss := func(args ...string) float64 {
		t.Helper()
		out, err := exec.Command(py, append([]string{script}, append(args, "--tokens", tokFile)...)...).Output()
		if err != nil {
			msg := ""
			if ee, ok := err.(*exec.ExitError); ok {
				msg = string(ee.Stderr)
			}
			t.Fatalf("%s %v: %v\n%s", script, args, err, msg)
		}
		var res struct{ Loss float64 }
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("%s: %q: %v", script, out, err)
		}
		return res.Loss
	}
	shoalLoss := func(store, ref string) float64 {
		t.Helper()
		s, err := checkpoint.OpenStore(store)
		if err != nil {
			t.Fatal(err)
		}
		id, err := s.Resolve(ref)
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := gradient.New(cfg)
		for _, p := range m.Params() {
			tt, ok := c.Tensor(p.Name)
			if !ok {
				t.Fatalf("checkpoint lacks %s", p.Name)
			}
			copy(p.Data, tt.Data)
		}
		return float64(m.Loss(tensor.NewTape(), tokens, rows).Data[0])
	}
	for _, dtype := range []string{"F32", "BF16"} {
		file := filepath.Join(dir, dtype+".safetensors")
		want := torchLoss("write", file, "--dtype", dtype, "--seed", "3")
		store := filepath.Join(dir, "store-"+dtype)
		out, _, err := runCheckpoint(t, "import", file, "--model", "gpt-tiny", "--store", store)
		if err != nil {
			t.Fatalf("%s: import: %v", dtype, err)
		}
		id := strings.TrimSpace(out)
		got := shoalLoss(store, id)
		t.Logf("%s: PyTorch's loss %.7f, shoal's %.7f", dtype, want, got)
		if math.Abs(got-want) > 1e-5*want {
			t.Errorf("%s: shoal's loss %v, PyTorch's %v", dtype, got, want)
		}
		back := filepath.Join(dir, dtype+"-export.safetensors")
		if _, _, err := runCheckpoint(t, "export", id, "--out", back, "--store", store); err != nil {
			t.Fatal(err)
		}
		if again := torchLoss("loss", back); math.Abs(again-got) > 1e-5*got {
			t.Errorf("%s: PyTorch's loss of shoal's export %v, shoal's %v", dtype, again, got)
		}
	}
}
