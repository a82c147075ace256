package checkpoint

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata/golden")

// goldenCheckpoint is the fixed checkpoint whose encoding and IDs are
// recorded in testdata/golden: a GPT-2 of vocab 5, context 3, width 4, one
// layer, with momentum buffers, plus odd values (NaN payload, -0, ±Inf).
func goldenCheckpoint() *Checkpoint {
	c := testCheckpoint(2024, 5, 3, 4, 1)
	c.Tensors = append(c.Tensors, oddCheckpoint().Tensors...)
	c.Meta["é"] = "ü"
	return c
}

const goldenChunk = 256

// TestGolden pins the encoding, the manifest, the IDs and the safetensors
// export of a fixed checkpoint, so that none can drift silently. Run with
// -rewrite to regenerate the files after a deliberate change of format
// (which changes every checkpoint ID: bump the version byte).
func TestGolden(t *testing.T) {
	c := goldenCheckpoint()
	enc := marshal(t, c)
	small, err := BuildSize(c, goldenChunk)
	if err != nil {
		t.Fatal(err)
	}
	man, _ := small.Manifest.MarshalBinary()
	id, err := ID(c)
	if err != nil {
		t.Fatal(err)
	}
	var st bytes.Buffer
	if err := ExportSafetensors(&st, c); err != nil {
		t.Fatal(err)
	}
	ids := fmt.Sprintf("id %s\nid-chunk-%d %s\nencoding-bytes %d\n", id, goldenChunk, small.ID, len(enc))
	files := map[string][]byte{
		"checkpoint.bin": enc,
		fmt.Sprintf("manifest-%d.bin", goldenChunk): man,
		"export.safetensors":                        st.Bytes(),
		"ids.txt":                                   []byte(ids),
	}
	dir := filepath.Join("testdata", "golden")
	if *rewrite {
		os.MkdirAll(dir, 0o755)
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, b := range files {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%v (run with -rewrite to create the golden files)", err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s differs from the golden file (%d bytes, want %d); if the format changed on purpose, bump its version and run with -rewrite", name, len(b), len(want))
		}
	}
	// The recorded encoding decodes and gives the recorded ID by itself,
	// whatever generated it.
	want, _ := os.ReadFile(filepath.Join(dir, "checkpoint.bin"))
	dc, err := Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ID(dc)
	if err != nil {
		t.Fatal(err)
	}
	recorded, _ := os.ReadFile(filepath.Join(dir, "ids.txt"))
	if !strings.Contains(string(recorded), "id "+got.String()+"\n") {
		t.Errorf("the golden encoding has ID %s, not the recorded one:\n%s", got, recorded)
	}
	if ch, err := Split(want, ChunkSize); err != nil || ch.ID != got {
		t.Errorf("Split of the golden encoding: %v, %v", ch.ID, err)
	}
}
