package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	out, err := exec.Command(e.bin, "checkpoint", "import", base, "--store", filepath.Join(tdir, "tracker", "checkpoints")).Output()
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	baseID := strings.TrimSpace(string(out))

	tmpl, err := exec.Command(e.bin, "round", "init", "--data-dir", tdir).Output()
	if err != nil {
		t.Fatalf("round init: %v", err)
	}
	spec := string(tmpl)
	for _, r := range [][2]string{
		{"# init_checkpoint: bafk...", "init_checkpoint: " + baseID},
		{"inner_steps: 50 ", "inner_steps: 5 "},
		{"warmup: 100 ", "warmup: 0 "},
		{"target_samples: 3200 ", "target_samples: 160 "},
		{"deadline: 2m ", "deadline: 30s "},
		{"codec: topk:chunk=4096,k=64,values=fp16 ", "codec: int8 "},
	} {
		if !strings.Contains(spec, r[0]) {
			t.Fatalf("the template has no %q", r[0])
		}
		spec = strings.Replace(spec, r[0], r[1], 1)
	}
	specPath := filepath.Join(dir, "round.yaml")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}

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

	tr := e.start("tracker", e.bin, nil, "round", "start", "--loopback", "--data-dir", tdir, "--dashboard-addr", "127.0.0.1:0",
		"--min-members", "2", "--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t)), specPath)
	dash := tr.find(t, reDashboard, 60*time.Second)
	var invite string
	for end := time.Now().Add(10 * time.Second); invite == "" && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		invite = strings.TrimSpace(tr.out.String())
	}
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("node%d", i)
		p := e.start(name, e.bin, nil, "node", "join", "--loopback", "--cpus", "1", "--data-dir", filepath.Join(dir, name),
			"--status-addr", "127.0.0.1:0", invite)
		p.find(t, reStatus, time.Minute)
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
		var tails strings.Builder
		for _, p := range e.procs {
			fmt.Fprintf(&tails, "%s stderr tail:\n%s\n", p.name, tailLines(p.lines(), 12))
		}
		t.Fatalf("the round did not report its start's held-out loss and two steps: %v\n%s", err, tails.String())
	}
	t.Logf("imported model's held-out loss %.6f; the round's first %.6f", want, got)
	if math.Abs(got-want) > 1e-9*want {
		t.Errorf("the round starts at held-out loss %v, the imported model has %v", got, want)
	}
}
