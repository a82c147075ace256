package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
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
