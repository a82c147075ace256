package codec

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// wire builds encodings by hand; every method returns a new slice, so a
// prefix can be shared between cases.
type wire []byte

func (w wire) u8(v ...byte) wire { return append(w[:len(w):len(w)], v...) }
func (w wire) u16(v uint16) wire {
	return binary.LittleEndian.AppendUint16(w[:len(w):len(w)], v)
}
func (w wire) u32(v uint32) wire {
	return binary.LittleEndian.AppendUint32(w[:len(w):len(w)], v)
}
func (w wire) f32(v float32) wire { return w.u32(math.Float32bits(v)) }
func (w wire) tensor(name string, dims ...uint32) wire {
	w = w.u16(uint16(len(name))).u8([]byte(name)...).u8(byte(len(dims)))
	for _, d := range dims {
		w = w.u32(d)
	}
	return w
}

// record packs a topk record: indices of ib bits, then codes of vb bits.
func packRecord(ib, vb uint, idx []uint64, codes []uint64) []byte {
	n := (len(idx)*int(ib+vb) + 7) / 8
	buf := make([]byte, n)
	w := bitWriter{b: buf}
	for _, v := range idx {
		w.put(v, ib)
	}
	for _, v := range codes {
		w.put(v, vb)
	}
	w.flush()
	return buf
}

func TestDecodeRejects(t *testing.T) {
	fp32 := wire{1, idFP32}
	topk := func(chunk, k uint32, values byte) wire {
		return wire{1, idTopK}.u32(chunk).u32(k).u8(values)
	}
	h16 := func(f float32) uint64 { return uint64(Float32ToFloat16(f)) }
	// topk:chunk=8,k=3,values=fp16 over one tensor "a" of 11 elements:
	// a full chunk of 8 (3 entries) and a partial one of 3 (3 entries).
	t8 := topk(8, 3, valFP16).u32(1).tensor("a", 11)
	okRec := packRecord(3, 16, []uint64{1, 4, 7}, []uint64{h16(1), h16(-2), h16(3)})
	okTail := packRecord(3, 16, []uint64{0, 1, 2}, []uint64{h16(1), h16(1), h16(1)})
	i8 := topk(8, 2, valInt8).u32(1).tensor("a", 8)
	b2 := topk(8, 2, val2Bit).u32(1).tensor("a", 8)
	dct := wire{1, idDCTTopK}.u32(4).u32(2).u8(valFP16).u32(1).tensor("a", 6)

	for _, tc := range []struct {
		name, spec string
		b          []byte
		lim        Limits
		field      string
	}{
		{"empty", "fp32", nil, Limits{}, "version"},
		{"version", "fp32", wire{2, idFP32}.u32(0), Limits{}, "version"},
		{"unknown codec", "fp32", wire{1, 9}.u32(0), Limits{}, "codec"},
		{"other codec", "fp16", fp32.u32(0), Limits{}, "codec"},
		{"other params", "topk:chunk=8,k=2,values=fp16", t8.u8(okRec...).u8(okTail...), Limits{}, "params"},
		{"k > chunk", "topk:chunk=8,k=3,values=fp16", topk(8, 9, valFP16).u32(0), Limits{}, "params.k"},
		{"k = 0", "topk:chunk=8,k=3,values=fp16", topk(8, 0, valFP16).u32(0), Limits{}, "params.k"},
		{"chunk 1", "topk:chunk=8,k=3,values=fp16", topk(1, 1, valFP16).u32(0), Limits{}, "params.chunk"},
		{"huge chunk", "topk:chunk=8,k=3,values=fp16", topk(1<<21, 1, valFP16).u32(0), Limits{}, "params.chunk"},
		{"values", "topk:chunk=8,k=3,values=fp16", topk(8, 3, 4).u32(0), Limits{}, "params.values"},
		{"int8 block 0", "int8", wire{1, idInt8}.u32(0).u32(0), Limits{}, "params.chunk"},
		{"dct chunk", "dct-topk", wire{1, idDCTTopK}.u32(2048).u32(8).u8(1).u32(0), Limits{}, "params.chunk"},
		{"params truncated", "topk:chunk=8,k=3,values=fp16", wire{1, idTopK}.u32(8), Limits{}, "params"},
		{"count truncated", "fp32", fp32.u8(0, 0), Limits{}, "count"},
		{"too many tensors", "fp32", fp32.u32(5), Limits{MaxTensors: 4}, "count"},
		{"count beyond input", "fp32", fp32.u32(1000), Limits{}, "count"},
		{"count vs expect", "fp32", fp32.u32(0), Limits{Expect: []TensorSpec{{"a", nil}}}, "count"},
		{"name truncated", "fp32", fp32.u32(1).u16(10).u8('a', 'b', 'c', 'd'), Limits{}, "tensor[0].name"},
		{"empty name", "fp32", fp32.u32(1).tensor("").u32(0), Limits{}, "tensor[0].name"},
		{"invalid utf8", "fp32", fp32.u32(1).tensor("\xfe").u32(0), Limits{}, "tensor[0].name"},
		{"name too long", "fp32", fp32.u32(1).tensor(strings.Repeat("x", 1025)).u32(0), Limits{}, "tensor[0].name"},
		{"names out of order", "fp32", fp32.u32(2).tensor("b").tensor("a").u32(0).u32(0), Limits{}, "tensor[1].name"},
		{"duplicate names", "fp32", fp32.u32(2).tensor("a").tensor("a").u32(0).u32(0), Limits{}, "tensor[1].name"},
		{"rank", "fp32", fp32.u32(1).tensor("a", 1, 1, 1, 1, 1, 1, 1, 1, 1).u32(0), Limits{}, "tensor[0].rank"},
		{"rank truncated", "fp32", fp32.u32(2).tensor("a").u16(2).u8('b', 'c'), Limits{}, "tensor[1].rank"},
		{"shape truncated", "fp32", fp32.u32(1).u16(1).u8('a', 2).u32(1).u8(0, 0), Limits{}, "tensor[0].shape"},
		{"shape overflow", "fp32", fp32.u32(1).tensor("a", 1<<31, 1<<31, 1<<31), Limits{MaxElements: 1 << 62}, "tensor[0].shape"},
		{"too many elements", "fp32", fp32.u32(1).tensor("a", 5000, 5000).u32(0), Limits{}, "elements"},
		{"elements summed", "fp32", fp32.u32(2).tensor("a", 6).tensor("b", 6).u32(0), Limits{MaxElements: 10}, "elements"},
		{"expect name", "fp32", fp32.u32(1).tensor("a", 1).f32(1), Limits{Expect: []TensorSpec{{"b", []int{1}}}}, "tensor[0].name"},
		{"expect shape", "fp32", fp32.u32(1).tensor("a", 1).f32(1), Limits{Expect: []TensorSpec{{"a", []int{1, 1}}}}, "tensor[0].shape"},
		{"body truncated", "fp32", fp32.u32(1).tensor("a", 2).f32(1), Limits{}, "length"},
		{"trailing byte", "fp32", fp32.u32(1).tensor("a", 1).f32(1).u8(0), Limits{}, "length"},
		{"huge shape, tiny input", "fp32", fp32.u32(1).tensor("a", 1<<31), Limits{MaxElements: 1 << 40}, "length"},
		{"fp32 NaN", "fp32", fp32.u32(1).tensor("a", 2).f32(1).u32(0x7fc00000), Limits{}, "tensor[0].value"},
		{"fp32 2^64", "fp32", fp32.u32(1).tensor("a", 1).f32(-0x1p64), Limits{}, "tensor[0].value"},
		{"fp16 inf", "fp16", wire{1, idFP16}.u32(1).tensor("a", 1).u16(0x7c00), Limits{}, "tensor[0].value"},
		{"bf16 2^64", "bf16", wire{1, idBF16}.u32(1).tensor("a", 1).u16(0x5f80), Limits{}, "tensor[0].value"},
		{"int8 NaN scale", "int8:block=2", wire{1, idInt8}.u32(2).u32(1).tensor("a", 2).u32(0x7fc00000).u8(127, 0), Limits{}, "tensor[0].scale"},
		{"int8 negative scale", "int8:block=2", wire{1, idInt8}.u32(2).u32(1).tensor("a", 2).f32(-1).u8(127, 0), Limits{}, "tensor[0].scale"},
		{"int8 -0 scale", "int8:block=2", wire{1, idInt8}.u32(2).u32(1).tensor("a", 2).u32(0x80000000).u8(0, 0), Limits{}, "tensor[0].scale"},
		{"int8 subnormal scale", "int8:block=2", wire{1, idInt8}.u32(2).u32(1).tensor("a", 2).f32(0x1p-130).u8(127, 0), Limits{}, "tensor[0].scale"},
		{"int8 huge scale", "int8:block=2", wire{1, idInt8}.u32(2).u32(1).tensor("a", 2).f32(0x1p100).u8(127, 0), Limits{}, "tensor[0].scale"},
		{"int8 -128", "int8:block=2", wire{1, idInt8}.u32(2).u32(1).tensor("a", 2).f32(1).u8(127, 0x80), Limits{}, "tensor[0].value"},
		{"int8 not 127", "int8:block=2", wire{1, idInt8}.u32(2).u32(1).tensor("a", 2).f32(1).u8(126, 3), Limits{}, "tensor[0].value"},
		{"int8 zero scale", "int8:block=2", wire{1, idInt8}.u32(2).u32(1).tensor("a", 2).f32(0).u8(0, 1), Limits{}, "tensor[0].value"},
		{"sign -0", "sign:chunk=4", wire{1, idSign}.u32(4).u32(1).tensor("a", 3).u32(0x80000000).u8(0), Limits{}, "tensor[0].scale"},
		{"sign inf", "sign:chunk=4", wire{1, idSign}.u32(4).u32(1).tensor("a", 3).u32(0x7f800000).u8(0), Limits{}, "tensor[0].scale"},
		{"sign padding", "sign:chunk=4", wire{1, idSign}.u32(4).u32(1).tensor("a", 3).f32(1).u8(0x08), Limits{}, "tensor[0].padding"},
		{"topk ok", "topk:chunk=8,k=3,values=fp16", t8.u8(okRec...).u8(okTail...), Limits{}, ""},
		{"topk index >= chunk length", "topk:chunk=8,k=3,values=fp16", t8.u8(okRec...).u8(packRecord(3, 16, []uint64{0, 1, 3}, []uint64{1, 1, 1})...), Limits{}, "tensor[0].index"},
		{"topk duplicate index", "topk:chunk=8,k=3,values=fp16", t8.u8(packRecord(3, 16, []uint64{1, 1, 7}, []uint64{1, 1, 1})...).u8(okTail...), Limits{}, "tensor[0].index"},
		{"topk decreasing index", "topk:chunk=8,k=3,values=fp16", t8.u8(packRecord(3, 16, []uint64{5, 2, 7}, []uint64{1, 1, 1})...).u8(okTail...), Limits{}, "tensor[0].index"},
		{"topk fp16 NaN", "topk:chunk=8,k=3,values=fp16", t8.u8(packRecord(3, 16, []uint64{1, 2, 7}, []uint64{1, 0x7e00, 1})...).u8(okTail...), Limits{}, "tensor[0].value"},
		{"topk padding", "topk:chunk=8,k=3,values=fp16", t8.u8(okRec[:7]...).u8(okRec[7] | 0x80).u8(okTail...), Limits{}, "tensor[0].padding"},
		{"topk truncated", "topk:chunk=8,k=3,values=fp16", t8.u8(okRec...).u8(okTail[:6]...), Limits{}, "length"},
		{"topk int8 ok", "topk:chunk=8,k=2,values=int8", i8.f32(0.5).u8(packRecord(3, 8, []uint64{2, 6}, []uint64{127, 0x81})...), Limits{}, ""},
		{"topk int8 -128", "topk:chunk=8,k=2,values=int8", i8.f32(0.5).u8(packRecord(3, 8, []uint64{2, 6}, []uint64{127, 0x80})...), Limits{}, "tensor[0].value"},
		{"topk int8 scale", "topk:chunk=8,k=2,values=int8", i8.f32(float32(math.Inf(1))).u8(packRecord(3, 8, []uint64{2, 6}, []uint64{127, 1})...), Limits{}, "tensor[0].scale"},
		{"topk 2bit ok", "topk:chunk=8,k=2,values=2bit", b2.f32(1).f32(2).u8(packRecord(3, 2, []uint64{2, 6}, []uint64{3, 0})...), Limits{}, ""},
		{"topk 2bit lo > hi", "topk:chunk=8,k=2,values=2bit", b2.f32(2).f32(1).u8(packRecord(3, 2, []uint64{2, 6}, []uint64{3, 0})...), Limits{}, "tensor[0].scale"},
		{"topk 2bit NaN", "topk:chunk=8,k=2,values=2bit", b2.f32(0).u32(0x7fc00000).u8(packRecord(3, 2, []uint64{2, 6}, []uint64{3, 0})...), Limits{}, "tensor[0].scale"},
		{"dct ok", "dct-topk:chunk=4,k=2,values=fp16", dct.u8(packRecord(2, 16, []uint64{0, 3}, []uint64{h16(1), h16(2)})...).u8(packRecord(2, 16, []uint64{0, 1}, []uint64{h16(1), h16(-1)})...), Limits{}, ""},
		{"dct index", "dct-topk:chunk=4,k=2,values=fp16", dct.u8(packRecord(2, 16, []uint64{0, 3}, []uint64{h16(1), h16(2)})...).u8(packRecord(2, 16, []uint64{0, 2}, []uint64{h16(1), h16(-1)})...), Limits{}, "tensor[0].index"},
	} {
		c := mustParse(t, tc.spec)
		_, err := c.Decode(tc.b, tc.lim)
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.field != "" && err == nil:
			t.Errorf("%s: decoded, want an error in %s", tc.name, tc.field)
		case tc.field != "" && formatField(err) != tc.field:
			t.Errorf("%s: %v, want an error in %s", tc.name, err, tc.field)
		case tc.field != "" && !strings.HasPrefix(err.Error(), "codec "+c.Name()+": "+tc.field+": "):
			t.Errorf("%s: message %q does not name the codec and field", tc.name, err)
		}
	}
}

// TestDecodeTruncated cuts and extends valid encodings of every codec at
// every length: each must be rejected with a FormatError.
func TestDecodeTruncated(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	ts := []Tensor{{"a", []int{3}, nil}, {"b", []int{2, 9}, nil}, {"c", nil, nil}}
	for i := range ts {
		ts[i].Data = make([]float32, numel(ts[i].Shape))
		randValues(rng, ts[i].Data)
	}
	for _, spec := range testSpecs {
		c := mustParse(t, spec)
		b, err := c.Encode(ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Decode(b, Limits{}); err != nil {
			t.Fatal(spec, err)
		}
		for n := range len(b) {
			if _, err := c.Decode(b[:n], Limits{}); err == nil || formatField(err)[0] == 'n' {
				t.Fatalf("%s: truncated to %d of %d bytes: %v", spec, n, len(b), err)
			}
		}
		if _, err := c.Decode(append(b, 0), Limits{}); formatField(err) != "length" {
			t.Fatalf("%s: trailing byte: %v", spec, err)
		}
	}
}

// TestDecodeAllocations checks that small malicious inputs declaring huge
// tensors are rejected without allocating for them.
func TestDecodeAllocations(t *testing.T) {
	fp32 := wire{1, idFP32}
	cases := []struct {
		spec string
		b    []byte
		lim  Limits
	}{
		{"fp32", fp32.u32(1).tensor("a", 1<<31).u8(0, 0, 0, 0), Limits{MaxElements: 1 << 40}},
		{"fp32", fp32.u32(1).tensor("a", 1<<20, 1<<20).u8(0, 0, 0, 0), Limits{MaxElements: 1 << 40}},
		{"fp32", fp32.u32(1<<30).tensor("a", 1), Limits{MaxTensors: 1 << 40}},
		{"topk:chunk=1048576,k=1,values=fp16", wire{1, idTopK}.u32(1<<20).u32(1).u8(1).u32(1).tensor("a", 1<<30).u8(0, 0, 0), Limits{}},
		{"topk:chunk=1048576,k=1,values=fp16", wire{1, idTopK}.u32(1<<20).u32(1).u8(1).u32(1).tensor("a", 1<<30).u8(0, 0, 0), Limits{MaxElements: 1 << 40}},
		{"sign:chunk=1048576", wire{1, idSign}.u32(1<<20).u32(1).tensor("a", 1<<31).u8(0, 0, 0), Limits{MaxElements: 1 << 40}},
	}
	for _, tc := range cases {
		if len(tc.b) > 40 {
			t.Fatalf("case of %d bytes", len(tc.b))
		}
		c := mustParse(t, tc.spec)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := c.Decode(tc.b, tc.lim)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Fatalf("%s: %x decoded", tc.spec, tc.b)
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 4096 {
			t.Errorf("%s: a %d-byte input made Decode allocate %d bytes (%v)", tc.spec, len(tc.b), d, err)
		}
	}
}

// TestDecodeExpectLimits checks that Expect alone sets the limits: a model
// larger than DefaultMaxElements decodes without explicit limits.
func TestDecodeExpectLimits(t *testing.T) {
	c := mustParse(t, "topk:chunk=1048576,k=1,values=fp16")
	n := DefaultMaxElements + 5
	delta := []Tensor{{Name: "big", Shape: []int{n}, Data: make([]float32, n)}}
	delta[0].Data[n-1] = 1
	b, err := c.Encode(delta, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode(b, Limits{}); formatField(err) != "elements" {
		t.Fatalf("default limits: %v", err)
	}
	out, err := c.Decode(b, Limits{Expect: []TensorSpec{{"big", []int{n}}}})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Data[n-1] != 1 {
		t.Fatal("wrong value")
	}
	if _, err := c.Decode(b, Limits{Expect: []TensorSpec{{"big", []int{n}}}, MaxElements: n - 1}); formatField(err) != "elements" {
		t.Fatalf("explicit limit: %v", err)
	}
}
