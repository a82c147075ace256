package main

import (
	"context"
	"fmt"
	"os"
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
	out, err := exec.Command(e.bin, "checkpoint", "import", teacher, "--store", filepath.Join(tdir, "tracker", "checkpoints")).Output()
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	teacherID := strings.TrimSpace(string(out))

	tmpl, err := exec.Command(e.bin, "round", "init", "--data-dir", tdir).Output()
	if err != nil {
		t.Fatalf("round init: %v", err)
	}
	spec := string(tmpl)
	for _, r := range [][2]string{
		{"dim: 128 ", "dim: 64 "},
		{"layers: 2 ", "layers: 1 "},
		{"inner_steps: 50 ", "inner_steps: 20 "},
		{"warmup: 100 ", "warmup: 10 "},
		{"target_samples: 3200 ", "target_samples: 640 "},
		{"verification_rate: 0.05 ", "verification_rate: 1 "},
		{"deadline: 2m ", "deadline: 30s "},
		{"codec: topk:chunk=4096,k=64,values=fp16 ", "codec: int8 "},
	} {
		if !strings.Contains(spec, r[0]) {
			t.Fatalf("the template has no %q", r[0])
		}
		spec = strings.Replace(spec, r[0], r[1], 1)
	}
	spec += fmt.Sprintf("teacher:\n  checkpoint: %s\n", teacherID)
	specPath := filepath.Join(dir, "round.yaml")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}

	tr := e.start("tracker", e.bin, nil, "round", "start", "--loopback", "--data-dir", tdir, "--dashboard-addr", "127.0.0.1:0",
		"--min-members", "2", "--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t)), specPath)
	dash := tr.find(t, reDashboard, 60*time.Second)
	var invite string
	for end := time.Now().Add(10 * time.Second); invite == "" && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		invite = strings.TrimSpace(tr.out.String())
	}
	var nodes []*proc
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("node%d", i)
		p := e.start(name, e.bin, nil, "node", "join", "--loopback", "--cpus", "1", "--data-dir", filepath.Join(dir, name),
			"--status-addr", "127.0.0.1:0", invite)
		p.find(t, reStatus, time.Minute)
		nodes = append(nodes, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var s dashboard.Snapshot
	err = daemon.WaitFor(ctx, 300*time.Millisecond, func() bool {
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
		var tails strings.Builder
		for _, p := range e.procs {
			fmt.Fprintf(&tails, "%s stderr tail:\n%s\n", p.name, tailLines(p.lines(), 12))
		}
		t.Fatalf("the distillation round did not measure three heads: %v\n%s", err, tails.String())
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
