package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-network/shoal/node/daemon"
	"github.com/shoal-network/shoal/tracker/dashboard"
)

// TestDistillRound runs a round that distils a teacher into a smaller
// model, as separate OS processes on 127.0.0.1: the teacher is gpt-tiny
// trained with shoal train and imported into the tracker's store, the
// round's model a one-block gpt of half its width. The workers fetch the
// teacher on joining, the round's replicas agree (no dispute), and the
// held-out loss falls.
func TestDistillRound(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: runs several processes for half a minute")
	}
	dir := t.TempDir()
	e := &e2e{t: t, dir: dir, bin: buildShoal(t, dir, "")}
	defer e.stopAll()

	teacher := filepath.Join(dir, "teacher.safetensors")
	if out, err := exec.Command(e.bin, "train", "--model", "gpt-tiny", "--steps", "100", "--out", teacher).CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	tdir := filepath.Join(dir, "tracker")
	teacherID := e.importInto(teacher, filepath.Join(tdir, "tracker", "checkpoints"))
	specPath, _ := e.roundSpec(tdir, [][2]string{
		{"dim: 128 ", "dim: 64 "},
		{"layers: 2 ", "layers: 1 "},
		{"inner_steps: 50 ", "inner_steps: 20 "},
		{"warmup: 100 ", "warmup: 10 "},
		{"target_samples: 3200 ", "target_samples: 640 "},
		{"verification_rate: 0.05 ", "verification_rate: 1 "},
		{"deadline: 2m ", "deadline: 30s "},
		{"codec: topk:chunk=4096,k=64,values=2bit ", "codec: int8 "},
	}, fmt.Sprintf("teacher:\n  checkpoint: %s\n", teacherID))
	_, dash, invite := e.startTracker(tdir, specPath, "--min-members", "2")
	var nodes []*proc
	for i := 1; i <= 2; i++ {
		p, _ := e.join(fmt.Sprintf("node%d", i), e.bin, invite)
		nodes = append(nodes, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var s dashboard.Snapshot
	err := daemon.WaitFor(ctx, 300*time.Millisecond, func() bool {
		s, _ = getSnapshot(dash)
		var evals int
		for _, p := range s.Loss {
			if p.Eval > 0 {
				evals++
			}
		}
		return evals >= 3
	})
	if err != nil {
		t.Fatalf("the distillation round did not measure three heads: %v\n%s", err, e.tails(12))
	}
	var first, last float64
	for _, p := range s.Loss {
		if p.Eval > 0 {
			if first == 0 {
				first = p.Eval
			}
			last = p.Eval
		}
	}
	t.Logf("held-out loss of the student: %.4f after the first step, %.4f after step %d", first, last, s.Step)
	if !(last < first) {
		t.Errorf("the held-out loss went from %.4f to %.4f", first, last)
	}
	for _, st := range s.Steps {
		if st.Disputes > 0 {
			t.Errorf("step %d: %d disputes between honest replicas of a distilled unit", st.Step, st.Disputes)
		}
	}
	for _, p := range nodes {
		if !strings.Contains(strings.Join(p.lines(), "\n"), "fetching checkpoint "+teacherID) {
			t.Errorf("%s did not fetch the teacher", p.name)
		}
	}
}
