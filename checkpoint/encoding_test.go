package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// gpt2Specs lists the parameters of a GPT-2 with Hugging Face's names, as
// shoal's gpt model has them (head tied to wte).
func gpt2Specs(vocab, ctx, d, layers int) []TensorSpec {
	s := []TensorSpec{
		{"transformer.wte.weight", []int{vocab, d}},
		{"transformer.wpe.weight", []int{ctx, d}},
		{"transformer.ln_f.weight", []int{d}},
		{"transformer.ln_f.bias", []int{d}},
	}
	for i := range layers {
		p := fmt.Sprintf("transformer.h.%d.", i)
		s = append(s,
			TensorSpec{p + "ln_1.weight", []int{d}}, TensorSpec{p + "ln_1.bias", []int{d}},
			TensorSpec{p + "attn.c_attn.weight", []int{d, 3 * d}}, TensorSpec{p + "attn.c_attn.bias", []int{3 * d}},
			TensorSpec{p + "attn.c_proj.weight", []int{d, d}}, TensorSpec{p + "attn.c_proj.bias", []int{d}},
			TensorSpec{p + "ln_2.weight", []int{d}}, TensorSpec{p + "ln_2.bias", []int{d}},
			TensorSpec{p + "mlp.c_fc.weight", []int{d, 4 * d}}, TensorSpec{p + "mlp.c_fc.bias", []int{4 * d}},
			TensorSpec{p + "mlp.c_proj.weight", []int{4 * d, d}}, TensorSpec{p + "mlp.c_proj.bias", []int{d}},
		)
	}
	return s
}

// testCheckpoint returns a GPT-2 checkpoint with momentum buffers, filled
// from seed. Its values are exact in float32 and reproducible.
func testCheckpoint(seed uint64, vocab, ctx, d, layers int) *Checkpoint {
	r := rand.New(rand.NewPCG(seed, 1))
	c := &Checkpoint{Meta: map[string]string{
		MetaConfig: fmt.Sprintf(`{"arch":"gpt","vocab":%d,"ctx":%d,"dim":%d,"layers":%d,"heads":2,"seed":%d}`, vocab, ctx, d, layers, seed),
		MetaModel:  "gpt-test",
		MetaRound:  "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
		MetaStep:   "42",
	}}
	for _, s := range gpt2Specs(vocab, ctx, d, layers) {
		n := 1
		for _, x := range s.Shape {
			n *= x
		}
		p := Tensor{Name: s.Name, Shape: s.Shape, Data: make([]float32, n)}
		m := Tensor{Name: MomentumName(s.Name), Shape: s.Shape, Data: make([]float32, n)}
		for i := range p.Data {
			p.Data[i] = float32(int32(r.Uint32()>>8)-1<<23) / (1 << 28)
			m.Data[i] = float32(int32(r.Uint32()>>12)-1<<19) / (1 << 30)
		}
		c.Tensors = append(c.Tensors, p, m)
	}
	return c
}

func oddCheckpoint() *Checkpoint {
	nan := math.Float32frombits(0x7fc01234)
	return &Checkpoint{
		Meta: map[string]string{"é": "ü", "config": `{"a":1}`, "empty": ""},
		Tensors: []Tensor{
			{Name: "z", Shape: []int{3}, Data: []float32{1, float32(math.Copysign(0, -1)), nan}},
			{Name: "a", Shape: []int{}, Data: []float32{2.5}},
			{Name: "empty", Shape: []int{0, 5}, Data: nil},
			{Name: "m", Shape: []int{1, 1, 1, 1, 1, 1, 1, 2}, Data: []float32{float32(math.Inf(-1)), math.SmallestNonzeroFloat32}},
		},
	}
}

func marshal(t testing.TB, c *Checkpoint) []byte {
	t.Helper()
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// referenceEncode is the encoding written out the slow, obvious way.
func referenceEncode(c *Checkpoint) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("SHOALCK\x01")
	keys := make([]string, 0, len(c.Meta))
	for k := range c.Meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	str := func(s string) { b.Write(le.AppendUint32(nil, uint32(len(s)))); b.WriteString(s) }
	b.Write(le.AppendUint32(nil, uint32(len(keys))))
	for _, k := range keys {
		str(k)
		str(c.Meta[k])
	}
	ts := slices.Clone(c.Tensors)
	slices.SortFunc(ts, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) })
	b.Write(le.AppendUint32(nil, uint32(len(ts))))
	for _, t := range ts {
		str(t.Name)
		b.WriteByte(1)
		b.WriteByte(byte(len(t.Shape)))
		for _, d := range t.Shape {
			b.Write(le.AppendUint64(nil, uint64(d)))
		}
	}
	for b.Len()%8 != 0 {
		b.WriteByte(0)
	}
	for _, t := range ts {
		for _, v := range t.Data {
			b.Write(le.AppendUint32(nil, math.Float32bits(v)))
		}
	}
	return b.Bytes()
}

func TestEncodeMatchesReference(t *testing.T) {
	for _, c := range []*Checkpoint{oddCheckpoint(), testCheckpoint(1, 11, 5, 4, 2), {}} {
		got := marshal(t, c)
		if want := referenceEncode(c); !bytes.Equal(got, want) {
			t.Fatalf("encoding differs from the reference (%d vs %d bytes)", len(got), len(want))
		}
		var buf bytes.Buffer
		if err := c.Encode(&buf); err != nil || !bytes.Equal(buf.Bytes(), got) {
			t.Fatalf("Encode and MarshalBinary differ (%v)", err)
		}
	}
}

// TestFillRanges checks that any byte range of the encoding, produced on
// its own as parallel chunking does, equals that range of the whole.
func TestFillRanges(t *testing.T) {
	c := oddCheckpoint()
	c.Tensors = append(c.Tensors, testCheckpoint(2, 7, 3, 4, 1).Tensors...)
	e, err := newEncoder(c)
	if err != nil {
		t.Fatal(err)
	}
	whole := referenceEncode(c)
	seed := uint64(7)
	r := rand.New(rand.NewPCG(seed, 0))
	for range 5000 {
		off := r.IntN(len(whole) + 1)
		n := r.IntN(len(whole) - off + 1)
		dst := make([]byte, n)
		e.fill(dst, int64(off))
		if !bytes.Equal(dst, whole[off:off+n]) {
			t.Fatalf("seed %d: fill [%d, %d) differs", seed, off, off+n)
		}
	}
}

func TestEncodeCanonical(t *testing.T) {
	c := testCheckpoint(3, 13, 4, 8, 2)
	want := marshal(t, c)
	r := rand.New(rand.NewPCG(3, 3))
	for range 10 {
		shuffled := &Checkpoint{Meta: c.Meta, Tensors: slices.Clone(c.Tensors)}
		r.Shuffle(len(shuffled.Tensors), func(i, j int) {
			shuffled.Tensors[i], shuffled.Tensors[j] = shuffled.Tensors[j], shuffled.Tensors[i]
		})
		if !bytes.Equal(marshal(t, shuffled), want) {
			t.Fatal("tensor order changed the encoding")
		}
	}
	// One bit anywhere changes the bytes.
	c.Tensors[5].Data[2] = math.Float32frombits(math.Float32bits(c.Tensors[5].Data[2]) ^ 1)
	if bytes.Equal(marshal(t, c), want) {
		t.Fatal("a flipped bit did not change the encoding")
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	for _, c := range []*Checkpoint{oddCheckpoint(), testCheckpoint(4, 9, 3, 4, 1)} {
		b := marshal(t, c)
		got, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(marshal(t, got), b) {
			t.Fatal("re-encoding the decoded checkpoint gives other bytes")
		}
		for _, want := range c.Tensors {
			g, ok := got.Tensor(want.Name)
			if !ok || !slices.Equal(g.Shape, want.Shape) || len(g.Data) != len(want.Data) {
				t.Fatalf("tensor %s: got %+v", want.Name, g)
			}
			for i := range want.Data {
				if math.Float32bits(g.Data[i]) != math.Float32bits(want.Data[i]) {
					t.Fatalf("tensor %s[%d]: bits %#x, want %#x", want.Name, i, math.Float32bits(g.Data[i]), math.Float32bits(want.Data[i]))
				}
			}
		}
		h, err := DecodeHeader(b[:len(b)-1])
		if err != nil || h.Size != int64(len(b)) || len(h.Tensors) != len(c.Tensors) {
			t.Fatalf("header of a prefix: %+v, %v", h, err)
		}
	}
}

func TestCheckpointHelpers(t *testing.T) {
	c := testCheckpoint(5, 7, 3, 2, 1)
	if n, ok := c.Step(); !ok || n != 42 {
		t.Errorf("Step() = %d, %v", n, ok)
	}
	for _, p := range c.Params() {
		if IsState(p.Name) {
			t.Errorf("Params returned %s", p.Name)
		}
	}
	if len(c.Params())*2 != len(c.Tensors) {
		t.Errorf("%d params of %d tensors", len(c.Params()), len(c.Tensors))
	}
	if MomentumName("x.weight") != "optim.momentum/x.weight" {
		t.Error(MomentumName("x.weight"))
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		c    Checkpoint
		want string
	}{
		{"dup", Checkpoint{Tensors: []Tensor{{Name: "a", Shape: []int{1}, Data: []float32{1}}, {Name: "a", Shape: []int{1}, Data: []float32{1}}}}, "duplicate"},
		{"shape", Checkpoint{Tensors: []Tensor{{Name: "a", Shape: []int{2}, Data: []float32{1}}}}, "does not match"},
		{"negative", Checkpoint{Tensors: []Tensor{{Name: "a", Shape: []int{-1, -1}, Data: []float32{1}}}}, "negative"},
		{"rank", Checkpoint{Tensors: []Tensor{{Name: "a", Shape: make([]int, 9)}}}, "rank"},
		{"empty name", Checkpoint{Tensors: []Tensor{{Name: "", Shape: []int{}, Data: []float32{1}}}}, "name"},
		{"utf8 name", Checkpoint{Tensors: []Tensor{{Name: "\xff", Shape: []int{}, Data: []float32{1}}}}, "name"},
		{"empty key", Checkpoint{Meta: map[string]string{"": "x"}}, "key"},
		{"utf8 value", Checkpoint{Meta: map[string]string{"k": "\xfe"}}, "UTF-8"},
	} {
		if _, err := c.c.MarshalBinary(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	good := marshal(t, &Checkpoint{Meta: map[string]string{"a": "1", "b": "2"}, Tensors: []Tensor{
		{Name: "x", Shape: []int{2}, Data: []float32{1, 2}}, {Name: "y", Shape: []int{1}, Data: []float32{3}}}})
	// Offsets in good: magic 0-8, nmeta 8, "a" 12.., tensors after.
	h, err := DecodeHeader(good)
	if err != nil {
		t.Fatal(err)
	}
	tensorsAt := bytes.Index(good, []byte("x")) - 4 - 4 // ntensor field
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name, field string
		b           []byte
	}{
		{"empty", "header", nil},
		{"magic", "magic", edit(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"version", "version", edit(func(b []byte) []byte { b[7] = 2; return b })},
		{"truncated header", "header", good[:tensorsAt+6]},
		{"meta order", "meta[1]", edit(func(b []byte) []byte { b[bytes.Index(b, []byte("b"))] = 'a'; return b })},
		{"meta empty key", "meta[0]", edit(func(b []byte) []byte {
			i := bytes.Index(b, []byte("a"))
			binary.LittleEndian.PutUint32(b[i-4:], 0)
			return b
		})},
		{"huge meta count", "nmeta", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], math.MaxUint32); return b[:12] })},
		{"large meta count", "header", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 1000); return b[:12] })},
		{"huge tensor count", "ntensor", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[tensorsAt:], math.MaxUint32); return b })},
		{"meta count too large", "meta[2]", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 3); return b })},
		{"tensor order", "tensors[1]", edit(func(b []byte) []byte { b[bytes.Index(b, []byte("y"))] = 'x'; return b })},
		{"dtype", "x.dtype", edit(func(b []byte) []byte { b[bytes.Index(b, []byte("x"))+1] = 2; return b })},
		{"rank", "x.rank", edit(func(b []byte) []byte { b[bytes.Index(b, []byte("x"))+2] = 9; return b })},
		{"huge dim", "x.shape", edit(func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[bytes.Index(b, []byte("x"))+3:], 1<<40)
			return b
		})},
		{"padding", "padding", edit(func(b []byte) []byte { b[h.DataOffset-1] = 1; return b })},
		{"short data", "data", good[:len(good)-4]},
		{"long data", "data", append(bytes.Clone(good), 0, 0, 0, 0)},
		{"dim too big for data", "data", edit(func(b []byte) []byte { b[bytes.Index(b, []byte("x"))+3] = 3; return b })},
	}
	if int64(len(good)) != h.Size {
		t.Fatalf("size %d, header says %d", len(good), h.Size)
	}
	for _, c := range cases {
		_, err := Decode(c.b)
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Format != "checkpoint" {
			t.Errorf("%s: error %v, want a checkpoint FormatError", c.name, err)
			continue
		}
		if fe.Field != c.field {
			t.Errorf("%s: field %q (%v), want %q", c.name, fe.Field, err, c.field)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(marshal(f, oddCheckpoint()))
	f.Add(marshal(f, testCheckpoint(1, 3, 2, 2, 1)))
	f.Add(marshal(f, &Checkpoint{}))
	f.Add([]byte("SHOALCK\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FormatError: %v", err)
			}
			return
		}
		// Only canonical encodings decode: re-encoding gives the input.
		out, err := c.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("decoded a non-canonical encoding:\n in %x\nout %x", b, out)
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	b := marshal(f, oddCheckpoint())
	f.Add(b)
	f.Add(b[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			return
		}
		if h.DataOffset > int64(len(b)) || h.DataOffset%8 != 0 || h.Size < h.DataOffset {
			t.Fatalf("header %+v of %d bytes", h, len(b))
		}
		// A header that decodes from a prefix decodes the same from the
		// prefix it occupies.
		h2, err := DecodeHeader(b[:h.DataOffset])
		if err != nil || h2.Size != h.Size || len(h2.Tensors) != len(h.Tensors) {
			t.Fatalf("header from its own bytes: %+v, %v", h2, err)
		}
	})
}
