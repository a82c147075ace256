package gradient

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/tensor"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata/")

// TestGoldenTraining trains gpt-tiny for 20 steps on the built-in task and
// compares a hash of the parameters with a golden value. The same value
// must come out of every kernel path (AVX2 assembly, pure Go with -tags
// noasm), every GOMAXPROCS and every architecture (make test-arm64 runs
// this test on arm64 under qemu): that is what lets peers agree on
// checkpoints by comparing hashes.
func TestGoldenTraining(t *testing.T) {
	cfg, _ := Preset("gpt-tiny")
	cfg.Seed = 20
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const batch, steps = 8, 20
	tr := NewTrainer(m, DefaultAdamW(), Schedule{Peak: 6e-3, Warmup: 5, Total: steps, MinFrac: 0.1})
	train, _ := data.Builtin().Corpus(1<<20, 0)
	tok := make([]int32, batch*(cfg.Ctx+1))
	for s := 0; s < steps; s++ {
		data.Sample(tok, train, 20, 0, uint64(s), batch, cfg.Ctx)
		tr.Step(tok, batch)
	}
	got := paramHash(m)
	if want := golden(t, "golden-gpt-tiny-20-steps.txt", got); got != want {
		t.Errorf("parameters after 20 steps hash to %s, golden %s (kernels %s)", got, want, tensor.KernelPath())
	}
}

// golden returns the content of testdata/name (trimmed), which -rewrite
// first sets to got.
func golden(t *testing.T, name, got string) string {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *rewrite {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./gradient -run %s -rewrite to create it)", err, t.Name())
	}
	return strings.TrimSpace(string(want))
}
