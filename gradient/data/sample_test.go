package data

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// testText is deterministic text with many distinct windows.
func testText(n int) []byte { return Builtin().Generate(99, n) }

func TestSample(t *testing.T) {
	tests := []struct {
		n, batch, ctx int
	}{
		{1000, 4, 16},
		{65, 16, 64},    // exactly one possible window
		{100, 3, 1},     // minimal context
		{20000, 16, 64}, // the usual shape
	}
	for _, tt := range tests {
		data := testText(tt.n)
		w := tt.ctx + 1
		for _, seed := range []uint64{0, 1, 0xdeadbeef} {
			for step := uint64(0); step < 5; step++ {
				dst := make([]int32, tt.batch*w)
				Sample(dst, data, seed, 3, step, tt.batch, tt.ctx)
				for b := range tt.batch {
					off := sampleOffset(seed, 3, step, b, tt.n-tt.ctx)
					if off < 0 || off+w > tt.n {
						t.Fatalf("seed %d step %d: window %d at %d out of range for %d bytes", seed, step, b, off, tt.n)
					}
					for j := range w {
						if dst[b*w+j] != int32(data[off+j]) {
							t.Fatalf("seed %d step %d: window %d token %d = %d, want data[%d] = %d", seed, step, b, j, dst[b*w+j], off+j, data[off+j])
						}
					}
				}
				again := make([]int32, len(dst))
				Sample(again, bytes.Clone(data), seed, 3, step, tt.batch, tt.ctx)
				if fmt.Sprint(again) != fmt.Sprint(dst) {
					t.Fatalf("seed %d step %d: Sample is not deterministic", seed, step)
				}
			}
		}
	}
}

func TestSampleVaries(t *testing.T) {
	data := testText(1 << 16)
	const batch, ctx = 8, 32
	seen := map[string]string{}
	for _, seed := range []uint64{0, 1, 2} {
		for _, stream := range []uint64{0, 1, 2} {
			for _, step := range []uint64{0, 1, 2, 1 << 40} {
				dst := make([]int32, batch*(ctx+1))
				Sample(dst, data, seed, stream, step, batch, ctx)
				key := fmt.Sprint(dst)
				id := fmt.Sprintf("seed %d stream %d step %d", seed, stream, step)
				if prev, ok := seen[key]; ok {
					t.Errorf("%s and %s sampled the same batch", prev, id)
				}
				seen[key] = id
				// Windows within a batch are distinct too.
				offs := map[int]bool{}
				for b := range batch {
					offs[sampleOffset(seed, stream, step, b, len(data)-ctx)] = true
				}
				if len(offs) < batch-1 {
					t.Errorf("%s: only %d distinct offsets in a batch of %d", id, len(offs), batch)
				}
			}
		}
	}
	// Swapping stream and step must not give the same batch.
	if sampleOffset(7, 1, 2, 0, 1<<30) == sampleOffset(7, 2, 1, 0, 1<<30) {
		t.Errorf("stream and step are interchangeable")
	}
}

func TestSampleCoverage(t *testing.T) {
	// Offsets cover the whole range roughly uniformly.
	const starts, draws = 100, 100000
	var hist [starts]int
	for step := range uint64(draws / 10) {
		for b := range 10 {
			hist[sampleOffset(42, 0, step, b, starts)]++
		}
	}
	for off, n := range hist {
		if n < draws/starts*8/10 || n > draws/starts*12/10 {
			t.Errorf("seed 42: offset %d drawn %d times, want about %d", off, n, draws/starts)
		}
	}
}

func TestSamplePanics(t *testing.T) {
	data := testText(100)
	tests := []struct {
		name       string
		dst        int
		data       []byte
		batch, ctx int
		want       string
	}{
		{"short dst", 10, data, 2, 8, "len(dst) = 10, want batch*(ctx+1) = 18"},
		{"long dst", 19, data, 2, 8, "len(dst) = 19"},
		{"short data", 18, data[:8], 2, 8, "8 bytes of data is shorter than a window of 9 tokens"},
		{"zero batch", 0, data, 0, 8, "must be positive"},
		{"zero ctx", 2, data, 2, 0, "must be positive"},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), tt.want) {
					t.Errorf("%s: panic %v, want one mentioning %q", tt.name, r, tt.want)
				}
			}()
			Sample(make([]int32, tt.dst), tt.data, 1, 0, 0, tt.batch, tt.ctx)
		}()
	}
}

func TestCheckSize(t *testing.T) {
	tests := []struct {
		n, ctx int
		want   string
	}{
		{65, 64, ""},
		{64, 64, "data: 64 bytes of text is too small for context 64 (need at least 65 bytes)"},
		{0, 1, "data: 0 bytes of text is too small for context 1 (need at least 2 bytes)"},
		{10, 0, "data: context length must be at least 1, got 0"},
	}
	for _, tt := range tests {
		err := CheckSize(make([]byte, tt.n), tt.ctx)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("CheckSize(%d bytes, %d) = %q, want %q", tt.n, tt.ctx, got, tt.want)
		}
	}
}

func TestEvalBatches(t *testing.T) {
	tests := []struct {
		n, batch, ctx, max int
		wantBatches        int
	}{
		{10000, 4, 16, 1000, 9999 / 16 / 4}, // limited by the data
		{10000, 4, 16, 5, 5},                // limited by max
		{100, 4, 16, 10, 1},                 // fewer windows than a batch: overlapping
		{17, 2, 16, 3, 1},                   // a single possible window
		{10000, 4, 16, 0, 0},
	}
	for _, tt := range tests {
		data := testText(tt.n)
		got := EvalBatches(data, tt.batch, tt.ctx, tt.max)
		if len(got) != tt.wantBatches {
			t.Errorf("EvalBatches(%d bytes, %d, %d, %d) = %d batches, want %d", tt.n, tt.batch, tt.ctx, tt.max, len(got), tt.wantBatches)
			continue
		}
		w := tt.ctx + 1
		total := tt.wantBatches * tt.batch
		for i, b := range got {
			if len(b) != tt.batch*w {
				t.Fatalf("batch %d has %d tokens, want %d", i, len(b), tt.batch*w)
			}
			for k := range tt.batch {
				off := (i*tt.batch + k) * (tt.n - tt.ctx) / total
				for j := range w {
					if b[k*w+j] != int32(data[off+j]) {
						t.Fatalf("n=%d: batch %d window %d is not data[%d:]", tt.n, i, k, off)
					}
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(EvalBatches(bytes.Clone(data), tt.batch, tt.ctx, tt.max)) {
			t.Errorf("EvalBatches(%d bytes) is not deterministic", tt.n)
		}
	}
	// When the data limits the count, windows barely overlap: starts are
	// at least ctx-1 apart and the last window ends near the end.
	const n, batch, ctx = 10000, 4, 16
	total := len(EvalBatches(testText(n), batch, ctx, 1000)) * batch
	prev := -ctx
	for k := range total {
		off := k * (n - ctx) / total
		if off-prev < ctx-1 {
			t.Fatalf("windows %d and %d start %d apart, want at least %d", k-1, k, off-prev, ctx-1)
		}
		prev = off
	}
	if prev+ctx+1 < n-ctx {
		t.Errorf("last window at %d does not reach the end of the data", prev)
	}
}

// TestSampleTokens: windows of token IDs are drawn at the same offsets as
// windows of bytes, so a tokenizer changes what a window holds, not where
// it starts.
func TestSampleTokens(t *testing.T) {
	text := []byte(strings.Repeat("the quick brown fox jumps over the lazy dog. ", 20))
	ids := make([]int32, len(text))
	for i, c := range text {
		ids[i] = int32(c) + 1000
	}
	a, b := make([]int32, 4*17), make([]int32, 4*17)
	Sample(a, text, 7, 3, 9, 4, 16)
	Sample(b, ids, 7, 3, 9, 4, 16)
	for i := range a {
		if b[i] != a[i]+1000 {
			t.Fatalf("window value %d: %d from tokens, %d from bytes", i, b[i], a[i])
		}
	}
	if err := CheckSize(ids[:16], 16); err == nil || !strings.Contains(err.Error(), "tokens") {
		t.Fatalf("CheckSize of 16 tokens for context 16: %v", err)
	}
	eb, et := EvalBatches(text, 2, 16, 3), EvalBatches(ids, 2, 16, 3)
	if len(eb) != len(et) || et[0][5] != eb[0][5]+1000 {
		t.Fatal("EvalBatches over tokens differs from over bytes")
	}
}
