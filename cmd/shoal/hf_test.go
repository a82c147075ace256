package main

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
)

// hfTensor is a tensor of a test file written as Hugging Face would.
type hfTensor struct {
	name  string
	dtype string // F32 or BF16
	shape []int
	data  []float32
}

// writeHF writes a safetensors file of ts in their dtypes, metadata
// {"format": "pt"} only.
func writeHF(t *testing.T, path string, ts []hfTensor) {
	t.Helper()
	hdr := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var data []byte
	for _, x := range ts {
		begin := len(data)
		for _, v := range x.data {
			if x.dtype == "BF16" {
				data = binary.LittleEndian.AppendUint16(data, uint16(math.Float32bits(v)>>16))
			} else {
				data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
			}
		}
		hdr[x.name] = map[string]any{"dtype": x.dtype, "shape": x.shape, "data_offsets": []int{begin, len(data)}}
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	b = append(append(b, h...), data...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestImportHuggingFaceLayout imports a GPT-2 as Hugging Face writes it
// (BF16 values, no "transformer." prefix, the attention mask buffers, a
// tied lm_head.weight, its shape in a config.json beside the file) and
// gets the checkpoint that the same values under shoal's names give; an
// untied lm_head is refused; export --hf writes what imports again.
func TestImportHuggingFaceLayout(t *testing.T) {
	cfg, _ := gradient.Preset("gpt-tiny")
	m, err := gradient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var shoalNames, hf []hfTensor
	var wte []float32
	for _, p := range m.Params() {
		v := make([]float32, len(p.Data))
		for i, x := range p.Data {
			v[i] = math.Float32frombits(math.Float32bits(x) &^ 0xffff) // BF16 exactly
		}
		shoalNames = append(shoalNames, hfTensor{p.Name, "F32", p.Shape(), v})
		hf = append(hf, hfTensor{strings.TrimPrefix(p.Name, hfPrefix), "BF16", p.Shape(), v})
		if p.Name == hfPrefix+"wte.weight" {
			wte = v
		}
	}
	for i := range cfg.Layers {
		mask := make([]float32, cfg.Ctx*cfg.Ctx)
		hf = append(hf, hfTensor{"h." + string(rune('0'+i)) + ".attn.bias", "F32", []int{1, 1, cfg.Ctx, cfg.Ctx}, mask})
	}
	hf = append(hf, hfTensor{"lm_head.weight", "BF16", []int{cfg.Vocab, cfg.Dim}, wte})

	ref := filepath.Join(dir, "ref.safetensors")
	writeHF(t, ref, shoalNames)
	hfDir := filepath.Join(dir, "hub")
	os.MkdirAll(hfDir, 0o755)
	hfFile := filepath.Join(hfDir, "model.safetensors")
	writeHF(t, hfFile, hf)
	js, _ := json.Marshal(hfConfigOf(cfg))
	if err := os.WriteFile(filepath.Join(hfDir, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}

	store := filepath.Join(dir, "store")
	want, _, err := runCheckpoint(t, "import", ref, "--model", "gpt-tiny", "--store", store)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := runCheckpoint(t, "import", hfFile, "--store", store)
	if err != nil {
		t.Fatal(err)
	}
	s, err := checkpoint.OpenStore(store)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Resolve(strings.TrimSpace(want))
	b, _ := s.Resolve(strings.TrimSpace(got))
	ca, _ := s.Get(a)
	cb, _ := s.Get(b)
	for i := range ca.Tensors {
		if ca.Tensors[i].Name != cb.Tensors[i].Name || len(ca.Tensors[i].Data) != len(cb.Tensors[i].Data) {
			t.Fatalf("tensor %d: %s, want %s", i, cb.Tensors[i].Name, ca.Tensors[i].Name)
		}
		for j := range ca.Tensors[i].Data {
			if math.Float32bits(ca.Tensors[i].Data[j]) != math.Float32bits(cb.Tensors[i].Data[j]) {
				t.Fatalf("%s[%d]: %v, want %v", ca.Tensors[i].Name, j, cb.Tensors[i].Data[j], ca.Tensors[i].Data[j])
			}
		}
	}

	// An lm_head that is not wte.
	untied := append([]float32(nil), wte...)
	untied[3] += 1
	hf[len(hf)-1].data = untied
	writeHF(t, hfFile, hf)
	if _, _, err := runCheckpoint(t, "import", hfFile, "--store", store); err == nil || !strings.Contains(err.Error(), "lm_head.weight differs") {
		t.Fatalf("import of an untied lm_head: %v", err)
	}

	// export --hf writes the layout back, with the shape in the metadata.
	out := filepath.Join(dir, "out")
	if _, _, err := runCheckpoint(t, "export", strings.TrimSpace(want), "--hf", out, "--store", store); err != nil {
		t.Fatal(err)
	}
	back, err := readHFConfig(filepath.Join(out, "config.json"))
	if err != nil || back != cfg {
		t.Fatalf("config.json gives %+v (%v), want %+v", back, err, cfg)
	}
	f, err := os.Open(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	_, meta, err := checkpoint.ReadSafetensors(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if c, ok, err := hfConfigFromMeta(meta, "export"); !ok || err != nil || c != cfg {
		t.Fatalf("the export's metadata gives %+v (%v, %v), want %+v", c, ok, err, cfg)
	}
}

// TestShowChunks lists a checkpoint's chunk CIDs, those of its manifest.
func TestShowChunks(t *testing.T) {
	dir := t.TempDir()
	s, err := checkpoint.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := make([]float32, 600_000) // three chunks
	for i := range w {
		w[i] = float32(i)
	}
	id, err := s.Put(&checkpoint.Checkpoint{Meta: map[string]string{}, Tensors: []checkpoint.Tensor{{Name: "w", Shape: []int{len(w)}, Data: w}}})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := runCheckpoint(t, "show", id.String(), "--chunks", "--json", "--store", dir)
	if err != nil {
		t.Fatal(err)
	}
	var e checkpointEntry
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatal(err)
	}
	m, _ := s.Manifest(id)
	if len(e.ChunkIDs) != len(m.Chunks) || len(m.Chunks) < 3 {
		t.Fatalf("show listed %d chunks, the manifest %d", len(e.ChunkIDs), len(m.Chunks))
	}
	for i, c := range m.Chunks {
		if e.ChunkIDs[i] != c.String() {
			t.Fatalf("chunk %d: %s, want %s", i, e.ChunkIDs[i], c)
		}
	}
	text, _, err := runCheckpoint(t, "show", id.String(), "--chunks", "--store", dir)
	if err != nil || !strings.Contains(text, m.Chunks[2].String()) {
		t.Fatalf("show --chunks does not list chunk 2 (%v):\n%s", err, text)
	}
}
