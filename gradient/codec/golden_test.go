package codec

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata/golden")

// goldenSpecs are the codecs whose encodings of goldenInput are pinned.
var goldenSpecs = []string{
	"fp32",
	"fp16",
	"bf16",
	"int8:block=4",
	"int8:block=256",
	"sign:chunk=4",
	"sign:chunk=256",
	"topk:chunk=8,k=3,values=fp16",
	"topk:chunk=8,k=3,values=int8",
	"topk:chunk=8,k=3,values=2bit",
	"topk:chunk=4096,k=64,values=fp16",
	"dct-topk:chunk=8,k=3,values=fp16",
	"dct-topk:chunk=8,k=3,values=int8",
	"dct-topk:chunk=8,k=3,values=2bit",
	"dct-topk:chunk=64,k=8,values=fp16",
	"block-sign:chunk=4,every=2",
	"block-sign:chunk=256,every=4",
}

// goldenValues returns n values from an integer hash, each an exact
// multiple of 2^-10 in [-2, 2), identical on every platform.
func goldenValues(seed uint32, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		h := uint32(i)*2654435761 + seed*40503
		h ^= h >> 15
		h *= 0x2c1b3c6d
		h ^= h >> 12
		out[i] = float32(int32(h)>>20) * 0x1p-10
	}
	return out
}

// goldenInput is a small update with special values: ±0, a value that
// saturates fp16, one in the fp16 subnormal range and repeated magnitudes.
func goldenInput() ([]Tensor, [][]float32) {
	bias := goldenValues(1, 5)
	bias[1] = float32(math.Copysign(0, -1))
	bias[3] = 0
	w := goldenValues(2, 21)
	w[4] = 70000
	w[9] = 1e-6
	w[12], w[13] = -0.75, 0.75
	ts := []Tensor{
		{Name: "bias", Shape: []int{5}, Data: bias},
		{Name: "scale", Shape: nil, Data: goldenValues(3, 1)},
		{Name: "weight", Shape: []int{3, 7}, Data: w},
	}
	rs := [][]float32{goldenValues(4, 5), goldenValues(5, 1), goldenValues(6, 21)}
	for _, r := range rs {
		for j := range r {
			r[j] *= 0x1p-4
		}
	}
	return ts, rs
}

func goldenPath(spec string) string {
	name := strings.NewReplacer(":", "_", ",", "_", "=", "").Replace(spec)
	return filepath.Join("testdata", "golden", name+".hex")
}

func hexLines(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		n := min(32, len(b))
		sb.WriteString(hex.EncodeToString(b[:n]))
		sb.WriteByte('\n')
		b = b[n:]
	}
	return sb.String()
}

// goldenFile renders an encoding, the residual Encode left and the decoded
// values (float32 bits, little-endian).
func goldenFile(spec string, enc []byte, res [][]float32, out []Tensor) []byte {
	f32 := func(vs ...[]float32) []byte {
		var b []byte
		for _, v := range vs {
			for _, x := range v {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
			}
		}
		return b
	}
	var dec [][]float32
	for _, t := range out {
		dec = append(dec, t.Data)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "# %s: encoding of goldenInput (%d bytes)\n%s", spec, len(enc), hexLines(enc))
	fmt.Fprintf(&sb, "# decoded values\n%s", hexLines(f32(dec...)))
	fmt.Fprintf(&sb, "# residual after Encode\n%s", hexLines(f32(res...)))
	return []byte(sb.String())
}

// TestGolden pins the wire format: run with -rewrite after a deliberate
// format change (and bump Version).
func TestGolden(t *testing.T) {
	for _, spec := range goldenSpecs {
		c := mustParse(t, spec)
		ts, rs := goldenInput()
		enc, err := c.Encode(ts, rs)
		if err != nil {
			t.Fatal(spec, err)
		}
		out, err := c.Decode(enc, Limits{})
		if err != nil {
			t.Fatal(spec, err)
		}
		got := goldenFile(spec, enc, rs, out)
		path := goldenPath(spec)
		if *rewrite {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -rewrite to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: encoding differs from %s:\ngot:\n%s\nwant:\n%s", spec, path, got, want)
		}
	}
}

// TestGoldenBasis pins the DCT basis tables bit for bit.
func TestGoldenBasis(t *testing.T) {
	h := sha256.New()
	for _, n := range []int{1, 2, 3, 5, 7, 8, 16, 63, 64, 100, 256, 1024} {
		b := make([]float32, n*n)
		basisMatrix(b, n)
		for _, v := range b {
			binary.Write(h, binary.LittleEndian, math.Float32bits(v))
		}
	}
	got := []byte(hex.EncodeToString(h.Sum(nil)) + "\n")
	path := filepath.Join("testdata", "golden", "dct-basis.sha256")
	if *rewrite {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -rewrite to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("DCT basis hash %s, want %s", got, want)
	}
}

// goldenEncodings returns the pinned encodings of the codec name, for
// seeding the fuzzers.
func goldenEncodings(t testing.TB, name string) [][]byte {
	var out [][]byte
	for _, spec := range goldenSpecs {
		if strings.SplitN(spec, ":", 2)[0] != name {
			continue
		}
		data, err := os.ReadFile(goldenPath(spec))
		if err != nil {
			t.Fatal(err)
		}
		var enc []byte
		lines := strings.Split(string(data), "\n")
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "#") {
				break
			}
			b, err := hex.DecodeString(l)
			if err != nil {
				t.Fatal(err)
			}
			enc = append(enc, b...)
		}
		out = append(out, enc)
	}
	return out
}
