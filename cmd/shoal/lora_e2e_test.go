package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/node/daemon"
	"github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/node/engine/enginetest"
	"github.com/shoal-network/shoal/tracker/dashboard"
	"github.com/shoal-network/shoal/tracker/round"
)

// TestLoRARound fine-tunes a model with a low-rank adapter in a round of
// separate OS processes on 127.0.0.1: the base is gpt-tiny trained on the
// built-in task, the corpus Go's own source (package strings), two honest
// workers train the adapter of its attention (rank 4) and a third lies on
// its updates. The held-out loss on the corpus falls well below the
// base's, each update is a small fraction of what the whole model's is
// with the same codec, the liar is excluded, and the round's last adapter
// folds into the base (shoal checkpoint merge-adapter) as a model of the
// base's shape.
func TestLoRARound(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: runs several processes for a minute or more")
	}
	dir := t.TempDir()
	e := &e2e{t: t, dir: dir, bin: buildShoal(t, dir, ""), fault: buildShoal(t, dir, "shoalfault")}
	defer e.stopAll()

	base := filepath.Join(dir, "base.safetensors")
	if out, err := exec.Command(e.bin, "train", "--model", "gpt-tiny", "--steps", "60", "--out", base).CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	tdir := filepath.Join(dir, "tracker")
	baseID := e.importInto(base, filepath.Join(tdir, "tracker", "checkpoints"))

	corpus := filepath.Join(dir, "corpus")
	if err := os.Mkdir(corpus, 0o755); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(runtime.GOROOT(), "src", "strings", "*.go"))
	if len(files) < 10 {
		t.Skipf("Go's source is not at %s", runtime.GOROOT())
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(corpus, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(e.bin, "dataset", "cid", corpus).Output()
	if err != nil {
		t.Fatalf("dataset cid: %v", err)
	}
	dataset := strings.TrimSpace(string(out))

	specPath, spec := e.roundSpec(tdir, [][2]string{
		{"dataset: builtin ", "dataset: " + dataset + " "},
		{"inner_steps: 50 ", "inner_steps: 10 "},
		{"lr: 0.006 ", "lr: 0.02 "},
		{"warmup: 100 ", "warmup: 10 "},
		{"target_samples: 3200 ", "target_samples: 320 "},
		{"verification_rate: 0.05 ", "verification_rate: 0.5 "},
		{"deadline: 2m ", "deadline: 30s "},
		{"codec: topk:chunk=4096,k=64,values=2bit ", "codec: int8 "},
	}, fmt.Sprintf("adapter:\n  base: %s\n  rank: 4\n  alpha: 8\n", baseID))
	parsed, err := round.Parse([]byte(spec), specPath)
	if err != nil {
		t.Fatal(err)
	}

	// What one update of the whole model takes with the same codec: an
	// engine of the round without its adapter encodes a pseudo-gradient.
	whole := *parsed
	whole.Adapter = nil
	we, err := engine.NewModelEngine(&whole, nil, enginetest.NewMemStore())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range we.Model().Params() {
		n += p.Size()
	}
	delta := make([]float32, n)
	for i := range delta {
		delta[i] = float32(i%7-3) * 1e-3
	}
	wu, err := we.Encode(delta, 0)
	if err != nil {
		t.Fatal(err)
	}

	_, dash, invite := e.startTracker(tdir, specPath, "--data", corpus, "--min-members", "2")
	e.join("node1", e.bin, invite)
	e.join("node2", e.bin, invite)
	_, liarStatus := e.join("liar", e.fault, invite, "SHOAL_FAULT=corrupt-updates")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var s dashboard.Snapshot
	var best float64
	err = daemon.WaitFor(ctx, 300*time.Millisecond, func() bool {
		var err error
		if s, err = getSnapshot(dash); err != nil || s.StartEval == 0 {
			return false
		}
		best = s.StartEval
		for _, p := range s.Loss {
			if p.Eval > 0 {
				best = min(best, p.Eval)
			}
		}
		excluded := false
		for _, p := range s.Peers {
			excluded = excluded || p.State == "excluded"
		}
		return excluded && best < 0.7*s.StartEval
	})
	if err != nil {
		t.Fatalf("by step %d the held-out loss went from %.4f to %.4f at best (want below 70%%), peers %+v: %v\n%s",
			s.Step, s.StartEval, best, s.Peers, err, e.tails(12))
	}
	t.Logf("held-out loss on Go source: the base %.4f, the adapter %.4f after %d steps", s.StartEval, best, s.Step)
	liar, _ := getNodeStatus(liarStatus)
	for _, p := range s.Peers {
		if p.State == "excluded" && p.ID != liar.Peer {
			t.Errorf("excluded %s (%s), but the liar is %s", p.ID, p.Reason, liar.Peer)
		}
		if p.ID == liar.Peer {
			t.Logf("the liar: %s (%s)", p.State, p.Reason)
		}
	}

	var bytes, updates int64
	for _, st := range s.Steps {
		bytes += st.Bytes
		updates += int64(st.Included)
	}
	if updates == 0 {
		t.Fatal("no update was included")
	}
	per := float64(bytes) / float64(updates)
	ratio := per / float64(wu.Size)
	t.Logf("an update: %.0f bytes, the whole model's %d with the same codec (%.2f%%)", per, wu.Size, 100*ratio)
	if ratio > 0.02 {
		t.Errorf("an adapter's update is %.2f%% of the whole model's, want at most 2%%", 100*ratio)
	}

	// The round's last adapter folds into the base, in the store of the
	// round's observer, which holds both.
	e.stopAll()
	head := s.Head
	tstore := filepath.Join(tdir, "observer", "checkpoints")
	merged, stderr, err := runCheckpoint(t, "merge-adapter", baseID, head, "--store", tstore)
	if err != nil {
		t.Fatalf("merge-adapter: %v\n%s", err, stderr)
	}
	merged = strings.TrimSpace(merged)
	again, _, err := runCheckpoint(t, "merge", merged, "--base", baseID, "--weights", "1", "--store", tstore)
	if err != nil || strings.TrimSpace(again) != merged {
		t.Errorf("base + 1·(merged − base) is %q (%v), not the merged %s", strings.TrimSpace(again), err, merged)
	}
	if _, _, err := runCheckpoint(t, "merge-adapter", head, head, "--store", tstore); err == nil {
		t.Error("an adapter folded into itself")
	} else {
		t.Logf("an adapter as the base: %v", err)
	}

	// The folded model measures what the adapter on its base does (not
	// bit for bit: the fold sums in float64, training in float32).
	ck, err := checkpoint.OpenStore(tstore)
	if err != nil {
		t.Fatal(err)
	}
	st, err := daemon.NewStore(ck, 0)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	evalAdapter, err := daemon.Evaluator(parsed, st, text, 4)
	if err != nil {
		t.Fatal(err)
	}
	evalWhole, err := daemon.Evaluator(&whole, st, text, 4)
	if err != nil {
		t.Fatal(err)
	}
	la, err := evalAdapter(cid.MustParse(head))
	if err != nil {
		t.Fatal(err)
	}
	lw, err := evalWhole(cid.MustParse(merged))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loss on %s: the adapter on its base %.6f, folded %.6f", filepath.Base(files[0]), la, lw)
	if math.Abs(la-lw) > 1e-4*la {
		t.Errorf("the folded model's loss %v differs from the adapter's %v", lw, la)
	}
}
