package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sample() []Tensor {
	return []Tensor{
		{Name: "b", Shape: []int{3}, Data: []float32{1, -2, float32(math.Inf(1))}},
		{Name: "a.weight", Shape: []int{2, 2}, Data: []float32{0.5, 0, -0, 7}},
		{Name: "scalar", Shape: []int{}, Data: []float32{3}},
		{Name: "empty", Shape: []int{0, 4}, Data: []float32{}},
	}
}

func encode(t *testing.T, ts []Tensor, meta map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, ts, meta); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSafetensorsFormat(t *testing.T) {
	b := encode(t, sample(), map[string]string{"format": "pt"})
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 || int(n)+8 > len(b) {
		t.Fatalf("header length %d", n)
	}
	hdr := string(b[8 : 8+n])
	want := `{"__metadata__":{"format":"pt"},"a.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[3],"data_offsets":[16,28]},"empty":{"dtype":"F32","shape":[0,4],"data_offsets":[28,28]},"scalar":{"dtype":"F32","shape":[],"data_offsets":[28,32]}}`
	if strings.TrimRight(hdr, " ") != want {
		t.Errorf("header\n got %s\nwant %s", hdr, want)
	}
	if len(b) != 8+int(n)+32 {
		t.Errorf("file is %d bytes, want %d", len(b), 8+int(n)+32)
	}
	if got := math.Float32frombits(binary.LittleEndian.Uint32(b[8+n+4*1:])); got != 0 {
		t.Errorf("a.weight[1] = %g", got)
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	b := encode(t, sample(), map[string]string{"k": "v"})
	ts, meta, err := ReadSafetensors(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if meta["k"] != "v" {
		t.Errorf("metadata %v", meta)
	}
	if !bytes.Equal(encode(t, ts, meta), b) {
		t.Error("re-encoding what was read gives other bytes")
	}
}

func TestSafetensorsMalformed(t *testing.T) {
	good := encode(t, sample(), nil)
	hdrFile := func(h string, data int) []byte {
		b := make([]byte, 8, 8+len(h)+data)
		binary.LittleEndian.PutUint64(b, uint64(len(h)))
		b = append(b, h...)
		return append(b, make([]byte, data)...)
	}
	cases := []struct {
		name, field string
		b           []byte
	}{
		{"short", "header length", good[:5]},
		{"huge header", "header length", func() []byte { b := bytes.Clone(good); binary.LittleEndian.PutUint64(b, 1<<40); return b }()},
		{"header past end", "header length", func() []byte { b := bytes.Clone(good[:40]); return b }()},
		{"not json", "header", hdrFile("[1,2]", 0)},
		{"bad utf8", "header", hdrFile("{\"\xff\":1}", 0)},
		{"dup", "x", hdrFile(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4)},
		{"dtype", "x.dtype", hdrFile(`{"x":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}`, 4)},
		{"f64", "x.dtype", hdrFile(`{"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}`, 8)},
		{"f16 size", "x.data_offsets", hdrFile(`{"x":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}}`, 8)},
		{"neg shape", "x.shape", hdrFile(`{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4)},
		{"offsets size", "x.data_offsets", hdrFile(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4)},
		{"hole", "y.data_offsets", hdrFile(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, 12)},
		{"overlap", "y.data_offsets", hdrFile(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8)},
		{"trailing data", "data", hdrFile(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 8)},
		{"unknown field", "x", hdrFile(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}`, 4)},
		{"huge shape", "x.shape", hdrFile(`{"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}`, 4)},
		{"truncated data", "data", good[:len(good)-3]},
	}
	for _, c := range cases {
		_, _, err := ReadSafetensors(bytes.NewReader(c.b), int64(len(c.b)))
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Errorf("%s: error %v, want a FormatError", c.name, err)
			continue
		}
		if fe.Field != c.field {
			t.Errorf("%s: field %q (%v), want %q", c.name, fe.Field, err, c.field)
		}
	}
}

func FuzzReadSafetensors(f *testing.F) {
	var buf bytes.Buffer
	WriteSafetensors(&buf, sample(), map[string]string{"a": "b"})
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, meta, err := ReadSafetensors(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteSafetensors(&out, ts, meta); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		ts2, _, err := ReadSafetensors(bytes.NewReader(out.Bytes()), int64(out.Len()))
		if err != nil || len(ts2) != len(ts) {
			t.Fatalf("re-read: %v", err)
		}
	})
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x")
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := WriteFileAtomic(p, 0o600, write("one")); err != nil {
		t.Fatal(err)
	}
	// A failing writer leaves the old content and no temporary file.
	err := WriteFileAtomic(p, 0o600, func(w io.Writer) error {
		io.WriteString(w, "partial")
		return errors.New("disk full")
	})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("error %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Errorf("content %q after a failed write", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d files left in the directory, want 1", len(ents))
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
}
