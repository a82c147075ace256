package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
)

func export(t *testing.T, c *Checkpoint) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := ExportSafetensors(&buf, c); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestExportFormat checks an export against the safetensors
// specification, read independently of ReadSafetensors: an 8-byte
// little-endian header length, a JSON object header padded with spaces so
// the data starts 8-byte aligned, F32 entries whose data_offsets tile the
// data exactly, and the parameters (not the optimizer state) under Hugging
// Face's GPT-2 names and shapes.
func TestExportFormat(t *testing.T) {
	const vocab, ctx, d, layers = 11, 5, 8, 2
	c := testCheckpoint(7, vocab, ctx, d, layers)
	b := export(t, c)
	n := binary.LittleEndian.Uint64(b)
	if (8+n)%8 != 0 || 8+n > uint64(len(b)) {
		t.Fatalf("header length %d: data not 8-byte aligned or past the end", n)
	}
	hdr := b[8 : 8+n]
	if hdr[0] != '{' || len(bytes.TrimRight(hdr, " ")) == 0 || bytes.TrimRight(hdr, " ")[len(bytes.TrimRight(hdr, " "))-1] != '}' {
		t.Fatalf("header is not a JSON object padded with spaces: %q", hdr)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		t.Fatal(err)
	}
	var meta map[string]string
	if err := json.Unmarshal(raw["__metadata__"], &meta); err != nil {
		t.Fatal(err)
	}
	if meta["format"] != "pt" || meta["shoal.config"] != c.Meta[MetaConfig] || meta["shoal.step"] != "42" {
		t.Errorf("metadata %v", meta)
	}
	delete(raw, "__metadata__")
	type entry struct {
		DType       string  `json:"dtype"`
		Shape       []int   `json:"shape"`
		DataOffsets []int64 `json:"data_offsets"`
	}
	specs := gpt2Specs(vocab, ctx, d, layers)
	if len(raw) != len(specs) {
		t.Errorf("%d tensors, want the %d parameters", len(raw), len(specs))
	}
	var regions [][2]int64
	data := b[8+n:]
	for _, s := range specs {
		var e entry
		if err := json.Unmarshal(raw[s.Name], &e); err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if e.DType != "F32" || !slices.Equal(e.Shape, s.Shape) {
			t.Errorf("%s: %s %v, want F32 %v", s.Name, e.DType, e.Shape, s.Shape)
		}
		regions = append(regions, [2]int64{e.DataOffsets[0], e.DataOffsets[1]})
		p, _ := c.Tensor(s.Name)
		if int(e.DataOffsets[1]-e.DataOffsets[0]) != 4*len(p.Data) {
			t.Fatalf("%s: region %v for %d values", s.Name, e.DataOffsets, len(p.Data))
		}
		for i, v := range p.Data {
			if got := binary.LittleEndian.Uint32(data[e.DataOffsets[0]+4*int64(i):]); got != math.Float32bits(v) {
				t.Fatalf("%s[%d]: bits %#x, want %#x", s.Name, i, got, math.Float32bits(v))
			}
		}
	}
	sort.Slice(regions, func(i, j int) bool { return regions[i][0] < regions[j][0] })
	var pos int64
	for _, r := range regions {
		if r[0] != pos {
			t.Fatalf("regions do not tile the data: %v at %d", r, pos)
		}
		pos = r[1]
	}
	if pos != int64(len(data)) {
		t.Errorf("regions cover %d bytes, data has %d", pos, len(data))
	}
	for name := range raw {
		if IsState(name) {
			t.Errorf("optimizer state %s exported", name)
		}
	}
}

func TestImportRoundTrip(t *testing.T) {
	c := testCheckpoint(8, 11, 5, 8, 2)
	b := export(t, c)
	want := gpt2Specs(11, 5, 8, 2)
	got, err := ImportSafetensors(bytes.NewReader(b), int64(len(b)), want)
	if err != nil {
		t.Fatal(err)
	}
	params := &Checkpoint{Meta: c.Meta, Tensors: c.Params()}
	if !bytes.Equal(marshal(t, got), marshal(t, params)) {
		t.Error("imported checkpoint differs from the exported parameters")
	}
	if _, ok := got.Meta["format"]; ok {
		t.Error("the safetensors format key leaked into the checkpoint")
	}
}

func TestImportRejects(t *testing.T) {
	const vocab, ctx, d = 11, 5, 8
	want := gpt2Specs(vocab, ctx, d, 1)
	params := testCheckpoint(9, vocab, ctx, d, 1).Params()
	with := func(f func(ts []Tensor) []Tensor) []byte {
		ts := make([]Tensor, len(params))
		for i, p := range params {
			ts[i] = Tensor{Name: p.Name, Shape: slices.Clone(p.Shape), Data: slices.Clone(p.Data)}
		}
		var buf bytes.Buffer
		if err := WriteSafetensors(&buf, f(ts), map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	find := func(ts []Tensor, name string) int {
		return slices.IndexFunc(ts, func(t Tensor) bool { return t.Name == name })
	}
	cases := []struct {
		name, field string
		b           []byte
	}{
		{"missing", "transformer.ln_f.bias", with(func(ts []Tensor) []Tensor {
			return slices.Delete(ts, find(ts, "transformer.ln_f.bias"), find(ts, "transformer.ln_f.bias")+1)
		})},
		{"untied head", "lm_head.weight", with(func(ts []Tensor) []Tensor {
			return append(ts, Tensor{Name: "lm_head.weight", Shape: []int{vocab, d}, Data: make([]float32, vocab*d)})
		})},
		{"optimizer state", "optim.momentum/transformer.wte.weight", with(func(ts []Tensor) []Tensor {
			return append(ts, Tensor{Name: MomentumName("transformer.wte.weight"), Shape: []int{vocab, d}, Data: make([]float32, vocab*d)})
		})},
		{"transposed Conv1D weight", "transformer.h.0.attn.c_attn.weight.shape", with(func(ts []Tensor) []Tensor {
			ts[find(ts, "transformer.h.0.attn.c_attn.weight")].Shape = []int{3 * d, d}
			return ts
		})},
		{"NaN", "transformer.wpe.weight", with(func(ts []Tensor) []Tensor {
			ts[find(ts, "transformer.wpe.weight")].Data[3] = float32(math.NaN())
			return ts
		})},
		{"Inf", "transformer.h.0.ln_1.bias", with(func(ts []Tensor) []Tensor {
			ts[find(ts, "transformer.h.0.ln_1.bias")].Data[0] = float32(math.Inf(-1))
			return ts
		})},
		{"not safetensors", "header length", []byte("PK\x03\x04 a zip file")},
	}
	for _, c := range cases {
		_, err := ImportSafetensors(bytes.NewReader(c.b), int64(len(c.b)), want)
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Format != "safetensors" {
			t.Errorf("%s: error %v, want a safetensors FormatError", c.name, err)
			continue
		}
		if fe.Field != c.field {
			t.Errorf("%s: field %q (%v), want %q", c.name, fe.Field, err, c.field)
		}
	}
	// Every problem is reported, in name order, up to a bound.
	b := with(func(ts []Tensor) []Tensor { return ts[:2] })
	_, err := ImportSafetensors(bytes.NewReader(b), int64(len(b)), want)
	if err == nil || strings.Count(err.Error(), "missing") != maxProblems || !strings.Contains(err.Error(), "more problems") {
		t.Errorf("many missing tensors: %v", err)
	}
	if _, err := FromSafetensors(nil, nil, append(want, want[0])); err == nil {
		t.Error("an expected tensor listed twice was accepted")
	}
}
