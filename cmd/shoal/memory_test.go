package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/tracker/round"
)

// A round whose model cannot fit in the memory of a machine is refused by
// validate, at the model's line, instead of dying when it starts.
func TestValidateRefusesModelTooBigForMemory(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(roundTestdata, "builtin-gpt-tiny.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// 64 blocks of width 8192: about 52 billion parameters, more than a
	// terabyte of weights and optimizer state.
	huge := filepath.Join(dir, "huge.yaml")
	os.WriteFile(huge, bytes.Replace(bytes.Replace(b, []byte("  dim: 128\n"), []byte("  dim: 8192\n"), 1),
		[]byte("  layers: 2\n"), []byte("  layers: 64\n"), 1), 0o644)
	stdout, _, err := execRound(t, "", "validate", huge)
	if err == nil {
		t.Fatalf("a model of 52 billion parameters was accepted:\n%s", stdout)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, huge+":4: model: ") || !strings.Contains(msg, "memory") || strings.Contains(msg, "\n") {
		t.Errorf("error %q, want one problem at %s:4: model: … memory …", msg, huge)
	}

	// --max-memory sets the limit: gpt-tiny fits the default and 1 GiB but
	// not 1 MiB.
	tiny := filepath.Join(roundTestdata, "builtin-gpt-tiny.yaml")
	for _, args := range [][]string{{"validate", tiny}, {"validate", "--max-memory", "1GiB", tiny}} {
		if _, _, err := execRound(t, "", args...); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
	_, _, err = execRound(t, "", "validate", "--max-memory", "1MiB", tiny)
	if err == nil || !strings.HasPrefix(err.Error(), tiny+":4: model: ") || !strings.Contains(err.Error(), "1.0 MiB") {
		t.Errorf("gpt-tiny in 1 MiB: %v", err)
	}
}

// round start makes the same check, with its own --max-memory, before it
// creates anything.
func TestRoundStartRefusesModelTooBigForMemory(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "tracker")
	o := &roundStartOptions{File: filepath.Join(roundTestdata, "builtin-gpt-tiny.yaml"), DataDir: dataDir}
	o.net.MaxMemory = 1 << 20
	f := &factory{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}
	err := runRoundStart(context.Background(), f, o)
	if err == nil || !strings.Contains(err.Error(), ":4: model: ") || !strings.Contains(err.Error(), "--max-memory 1.0 MiB") {
		t.Errorf("round start of gpt-tiny in 1 MiB: %v", err)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("the data directory was created: %v", err)
	}
}

func TestTrainingMemory(t *testing.T) {
	cfg, _ := gradient.Preset("gpt-tiny")
	// 437760 parameters × 28 bytes, 16 × 64 positions × (2 layers × 48 ×
	// 128 + 16 × 256), and the attention's scratch, 48 × 64².
	want := float64(437760*28 + 16*64*(2*48*128+16*256) + 48*64*64)
	if got := trainingMemory(cfg, 16); got != want {
		t.Errorf("gpt-tiny, batch 16: %v bytes, want %v", got, want)
	}
	if n, ok := physicalMemory(); ok && n < 64<<20 {
		t.Errorf("physical memory %d bytes", n)
	}
	if n, _ := memoryLimit(0); n <= 0 {
		t.Errorf("default limit %d", n)
	}
}

// A volunteer joining a round whose model does not fit its --max-memory
// is told so before its node builds anything (the model's shapes are
// computed, not its weights); a model that fits is accepted.
func TestNodeJoinRefusesModelTooBigForMemory(t *testing.T) {
	spec := parseTestSpec(t, filepath.Join(roundTestdata, "builtin-gpt-tiny.yaml"))
	if err := modelFits(spec, 1<<30); err != nil {
		t.Errorf("gpt-tiny in 1 GiB: %v", err)
	}
	err := modelFits(spec, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "--max-memory 1.0 MiB") || !strings.Contains(err.Error(), "training its model takes about") {
		t.Errorf("gpt-tiny in 1 MiB: %v, want a refusal naming --max-memory", err)
	}
	// 64 blocks of width 8192, about 52 billion parameters: refused in
	// an instant, whatever this machine's memory.
	spec.Model.Dim, spec.Model.Layers = 8192, 64
	if err := modelFits(spec, 0); err == nil || !strings.Contains(err.Error(), "memory") {
		t.Errorf("a model of 52 billion parameters: %v, want a refusal", err)
	}
	if _, err := checkpointsKept(spec, 1<<39); err == nil {
		t.Error("a 512 GiB disk cap held two checkpoints of 52 billion parameters (416 GB each)")
	}
}

func parseTestSpec(t *testing.T, path string) *round.Spec {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := round.Parse(b, path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A round whose teacher does not fit beside its model in --max-memory is
// refused once the teacher's header is known: 1.0 MiB of teacher (262,144
// parameters) is 2 MiB more to hold.
func TestTeacherFits(t *testing.T) {
	spec := parseTestSpec(t, filepath.Join(roundTestdata, "builtin-gpt-tiny.yaml"))
	s, err := checkpoint.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.Put(&checkpoint.Checkpoint{Tensors: []checkpoint.Tensor{{Name: "w", Shape: []int{512, 512}, Data: make([]float32, 512*512)}}})
	if err != nil {
		t.Fatal(err)
	}
	spec.Teacher = &round.Teacher{Checkpoint: id, Temperature: 2, Mix: 0.5}
	need := trainingMemory(engine.ModelConfig(spec), spec.Batch)
	if err := teacherFits(s, spec, int64(need)+3<<20); err != nil {
		t.Errorf("a teacher with room to spare: %v", err)
	}
	if err := teacherFits(s, spec, int64(need)+1<<20); err == nil || !strings.Contains(err.Error(), "with its teacher (262144 parameters)") {
		t.Errorf("a teacher without room: %v", err)
	}
}
