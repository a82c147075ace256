package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
)

// writeHeaderOnly writes a safetensors file of a header and no data: the
// given metadata and no tensors.
func writeHeaderOnly(t *testing.T, path string, meta map[string]string) int64 {
	t.Helper()
	hdr, err := json.Marshal(map[string]any{"__metadata__": meta})
	if err != nil {
		t.Fatal(err)
	}
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return int64(len(b))
}

// A file of a few hundred bytes whose metadata describes a model of
// hundreds of megabytes is refused before anything of that size is
// allocated, naming the file and the mismatch, and nothing is stored.
func TestImportHugeModelMetadata(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	file := filepath.Join(dir, "huge.safetensors")
	// 5 blocks of width 1024: about 63 million parameters, 250 MB of
	// weights (and as much again of gradients, were the model built).
	cfg := gradient.ModelConfig{Arch: "gpt", Vocab: 256, Ctx: 64, Dim: 1024, Layers: 5, Heads: 8}
	js, _ := json.Marshal(cfg)
	size := writeHeaderOnly(t, file, map[string]string{
		"format": "pt",
		checkpoint.MetaPrefix + checkpoint.MetaConfig: string(js),
	})
	if size > 256 {
		t.Fatalf("the crafted file has %d bytes, want a tiny one", size)
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := runCheckpoint(t, "import", file, "--store", store)
	runtime.ReadMemStats(&after)

	if err == nil {
		t.Fatal("import of a header-only file succeeded")
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("import allocated %d MiB before refusing a %d-byte file", alloc>>20, size)
	}
	msg := err.Error()
	for _, want := range []string{file, "parameters", "bytes"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Errorf("the store was created on failure: %v", err)
	}
}

// The extreme sizes a configuration may have are refused as fast, and so
// is a tiny file whose header lists tensors of its own.
func TestImportHugeModelMetadataExtremes(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	huge := gradient.ModelConfig{Arch: "gpt", Vocab: 1 << 24, Ctx: 1 << 16, Dim: 1 << 16, Layers: 1024, Heads: 1}
	wide := gradient.ModelConfig{Arch: "mlp", Vocab: 1 << 24, Ctx: 1 << 16, Dim: 1 << 16, Layers: 1024, Hidden: 1 << 20, Window: 1 << 16}
	for _, cfg := range []gradient.ModelConfig{huge, wide} {
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(cfg)
		file := filepath.Join(dir, cfg.Arch+".safetensors")
		writeHeaderOnly(t, file, map[string]string{checkpoint.MetaPrefix + checkpoint.MetaConfig: string(js)})
		if _, _, err := runCheckpoint(t, "import", file, "--store", store); err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: %v", cfg.Arch, err)
		}
	}

	// One real tensor of the model, the rest missing.
	file := filepath.Join(dir, "one.safetensors")
	cfg, _ := gradient.Preset("gpt-tiny")
	cfg.Dim, cfg.Layers = 4096, 8
	js, _ := json.Marshal(cfg)
	w, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	err = checkpoint.WriteSafetensors(w, []checkpoint.Tensor{{Name: "transformer.ln_f.bias", Shape: []int{4096}, Data: make([]float32, 4096)}},
		map[string]string{checkpoint.MetaPrefix + checkpoint.MetaConfig: string(js)})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = runCheckpoint(t, "import", file, "--store", store)
	if err == nil || !strings.Contains(err.Error(), "16384 bytes of tensor data in 1 tensors") {
		t.Errorf("one tensor: %v", err)
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Errorf("the store was created on failure: %v", err)
	}
}

// modelTensors lists exactly the tensors gradient.New builds.
func TestModelTensorsMatchTheModels(t *testing.T) {
	var cfgs []gradient.ModelConfig
	for _, name := range gradient.PresetNames() {
		cfg, _ := gradient.Preset(name)
		if n, _ := gradient.CountParams(cfg); n > 20_000_000 {
			continue // building it costs most of a gigabyte; gradient's TestShapesMatchNew covers its shapes
		}
		cfgs = append(cfgs, cfg)
	}
	cfgs = append(cfgs,
		gradient.ModelConfig{Arch: "gpt", Vocab: 300, Ctx: 7, Dim: 12, Layers: 11, Heads: 3},
		gradient.ModelConfig{Arch: "mlp", Vocab: 260, Ctx: 9, Dim: 5, Layers: 3, Hidden: 7, Window: 4})
	for _, cfg := range cfgs {
		m, err := gradient.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		specs, n := modelTensors(cfg)
		ps := m.Params()
		if len(specs) != len(ps) || n != int64(gradient.NumParams(m)) {
			t.Errorf("%+v: %d tensors of %d parameters, the model has %d of %d", cfg, len(specs), n, len(ps), gradient.NumParams(m))
			continue
		}
		for i, p := range ps {
			if specs[i].Name != p.Name || !slices.Equal(specs[i].Shape, p.Shape()) {
				t.Errorf("%+v: tensor %d is %s %v, the model's %s %v", cfg, i, specs[i].Name, specs[i].Shape, p.Name, p.Shape())
			}
		}
	}
}
