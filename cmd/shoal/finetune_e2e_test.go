package main

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/node/daemon"
	"github.com/shoal-network/shoal/tracker/round"
)

// TestFineTuneRound trains a model with shoal train, imports it into the
// tracker's store and runs a round that starts from it (init_checkpoint),
// as separate OS processes on 127.0.0.1: the round's first held-out loss,
// that of its starting checkpoint, equals the imported model's measured
// in this process, and the round goes on from there.
func TestFineTuneRound(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: runs several processes for half a minute or more")
	}
	dir := t.TempDir()
	e := &e2e{t: t, dir: dir, bin: buildShoal(t, dir, "")}
	defer e.stopAll()

	base := filepath.Join(dir, "base.safetensors")
	if out, err := exec.Command(e.bin, "train", "--model", "gpt-tiny", "--steps", "40", "--out", base).CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	tdir := filepath.Join(dir, "tracker")
	baseID := e.importInto(base, filepath.Join(tdir, "tracker", "checkpoints"))

	specPath, spec := e.roundSpec(tdir, [][2]string{
		{"# init_checkpoint: bafk...", "init_checkpoint: " + baseID},
		{"inner_steps: 50 ", "inner_steps: 5 "},
		{"warmup: 100 ", "warmup: 0 "},
		{"target_samples: 3200 ", "target_samples: 160 "},
		{"deadline: 2m ", "deadline: 30s "},
		{"codec: topk:chunk=4096,k=64,values=2bit ", "codec: int8 "},
	}, "")

	// The imported model's held-out loss, measured here as the round's
	// observer measures a head.
	parsed, err := round.Parse([]byte(spec), specPath)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.OpenStore(filepath.Join(dir, "mine"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := daemon.NewStore(ck, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCheckpoint(t, "import", base, "--store", ck.Dir()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Checkpoints().Header(parsed.InitCheckpoint); err != nil {
		t.Fatalf("the base imported here has another ID than in the tracker's store: %v", err)
	}
	_, eval, _ := daemon.BuiltinData()
	evaluate, err := daemon.Evaluator(parsed, st, eval, 16)
	if err != nil {
		t.Fatal(err)
	}
	want, err := evaluate(parsed.InitCheckpoint)
	if err != nil {
		t.Fatal(err)
	}

	_, dash, invite := e.startTracker(tdir, specPath, "--min-members", "2")
	for i := 1; i <= 2; i++ {
		e.join(fmt.Sprintf("node%d", i), e.bin, invite)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var got float64
	err = daemon.WaitFor(ctx, 300*time.Millisecond, func() bool {
		s, err := getSnapshot(dash)
		if err != nil || s.StartEval == 0 || s.Step < 2 {
			return false
		}
		got = s.StartEval
		return true
	})
	if err != nil {
		t.Fatalf("the round did not report its start's held-out loss and two steps: %v\n%s", err, e.tails(12))
	}
	t.Logf("imported model's held-out loss %.6f; the round's first %.6f", want, got)
	if math.Abs(got-want) > 1e-9*want {
		t.Errorf("the round starts at held-out loss %v, the imported model has %v", got, want)
	}
}
