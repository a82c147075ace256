package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// smallBPE makes a vocabulary of the 256 byte symbols and the merges
// given, in rank order, each merge's result getting the next ID.
func smallBPE(t *testing.T, merges ...string) (*BPE, map[string]int32) {
	t.Helper()
	vocab := map[string]int32{}
	for b := range 256 {
		vocab[string(byteRune[b])] = int32(b)
	}
	var mf strings.Builder
	mf.WriteString("#version: 0.2\n")
	for _, m := range merges {
		a, b, _ := strings.Cut(m, " ")
		vocab[a+b] = int32(len(vocab))
		mf.WriteString(m + "\n")
	}
	js, _ := json.Marshal(vocab)
	bpe, err := Load(bytes.NewReader(js), strings.NewReader(mf.String()))
	if err != nil {
		t.Fatal(err)
	}
	return bpe, vocab
}

func TestWords(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"it's 'LL", []string{"it", "'s", " '", "LL"}},
		{"a  b", []string{"a", " ", " b"}},
		{"x\n\n y", []string{"x", "\n\n", " y"}},
		{"end  ", []string{"end", "  "}},
		{"\nz", []string{"\n", "z"}},
		{"12,345.6!!", []string{"12", ",", "345", ".", "6", "!!"}},
		{" !? ok", []string{" !?", " ok"}},
		{"café東京", []string{"café東京"}},
		{"\xff\xfeab", []string{"\xff\xfe", "ab"}},
	} {
		var got []string
		for _, w := range Words([]byte(c.in)) {
			got = append(got, string(w))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Words(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEncode(t *testing.T) {
	g := string(byteRune[' ']) // GPT-2 spells a space "Ġ"
	bpe, vocab := smallBPE(t, "h e", "l l", "he ll", "hell o", g+" w", g+"w o", g+"wo r")
	got := bpe.Encode([]byte("hello world hello"))
	want := []int32{vocab["hello"], vocab[g+"wor"], 'l', 'd', ' ', vocab["hello"]}
	// " hello": the space merges with nothing ("Ġ h" is no merge), so it
	// stays a symbol of its own before "hello".
	if !slices.Equal(got, want) {
		t.Fatalf("Encode = %v, want %v", got, want)
	}
	if back, err := bpe.Decode(got); err != nil || string(back) != "hello world hello" {
		t.Fatalf("Decode = %q, %v", back, err)
	}
	if _, err := bpe.Decode([]int32{int32(len(vocab))}); err == nil {
		t.Error("Decode took an ID outside the vocabulary")
	}
	// Every text round-trips, invalid UTF-8 included.
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		b := make([]byte, r.IntN(64))
		for i := range b {
			b[i] = byte(r.IntN(256))
			if r.IntN(3) == 0 {
				b[i] = "hello wrd \n'"[r.IntN(12)]
			}
		}
		back, err := bpe.Decode(bpe.Encode(b))
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("%q comes back as %q (%v)", b, back, err)
		}
	}
}

func TestLoadRefuses(t *testing.T) {
	vocab := map[string]int32{}
	for b := range 256 {
		vocab[string(byteRune[b])] = int32(b)
	}
	js := func(v map[string]int32) string { b, _ := json.Marshal(v); return string(b) }
	dup := map[string]int32{"zz": 1}
	for k, v := range vocab {
		dup[k] = v
	}
	short := map[string]int32{"a": 0}
	for _, c := range []struct{ name, enc, merges, want string }{
		{"not json", "{", "", "encoder.json"},
		{"missing byte", js(short), "", "no entry for byte"},
		{"duplicate id", js(dup), "", "is given to both"},
		{"merge result missing", js(vocab), "a b\n", `makes "ab"`},
		{"bad merge line", js(vocab), "abc\n", "not two symbols"},
	} {
		_, err := Load(strings.NewReader(c.enc), strings.NewReader(c.merges))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// TestIDCanonical: the same vocabulary, however its file is laid out,
// has the same ID; another vocabulary another.
func TestIDCanonical(t *testing.T) {
	a, _ := smallBPE(t, "h e")
	b, _ := smallBPE(t, "h e")
	c, _ := smallBPE(t, "l l")
	if !a.ID().Equals(b.ID()) || a.ID().Equals(c.ID()) {
		t.Fatalf("IDs %s %s %s", a.ID(), b.ID(), c.ID())
	}
	if fmt.Sprint(a.VocabSize()) != "257" {
		t.Fatalf("vocab size %d", a.VocabSize())
	}
}

// TestUnmarshal: the canonical encoding reads back to a tokenizer with
// the same ID that encodes alike; damaged encodings are refused.
func TestUnmarshal(t *testing.T) {
	g := string(byteRune[' '])
	a, _ := smallBPE(t, "h e", "l l", "he ll", g+" w")
	b := a.Marshal()
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !back.ID().Equals(a.ID()) || !slices.Equal(back.Encode([]byte("hell well")), a.Encode([]byte("hell well"))) {
		t.Fatal("the tokenizer read back differs")
	}
	for i := 0; i < len(b); i += 97 {
		bad := slices.Clone(b)
		bad[i] ^= 0x41
		if got, err := Unmarshal(bad); err == nil && !got.ID().Equals(content.ID(bad)) {
			t.Fatalf("byte %d flipped: read back a tokenizer that does not encode to its bytes", i)
		}
	}
	for _, n := range []int{0, 5, len(b) - 1} {
		if _, err := Unmarshal(b[:n]); err == nil {
			t.Errorf("a truncation to %d bytes was accepted", n)
		}
	}
}
