package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/tracker/round"
)

// smallSpec is an mlp round fast enough for tests: 6 units of 5 inner
// steps per outer step.
func smallSpec() *round.Spec {
	s := round.Defaults()
	s.Name = "test round"
	s.Model = round.Model{Arch: "mlp", Vocab: 256, Ctx: 16, Dim: 16, Layers: 1, Hidden: 64, Window: 4, Seed: 7}
	s.Dataset = round.Dataset{Builtin: true}
	s.InnerSteps = 5
	s.Batch = 4
	s.Inner.LR = 0.01
	s.Outer = round.Nesterov{LR: 0.7, Momentum: 0.5}
	s.Codec = "int8"
	s.TargetSamples = 6 * 20
	s.Deadline = 20 * time.Second
	s.VerificationRate = 0.3
	s.Seed = 3
	s.Trackers = []string{"12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY"}
	return s
}

// TestLocalRound runs a tracker, an observer and three workers as real
// libp2p hosts on 127.0.0.1 until three steps are finalised; every node
// then holds the checkpoint the tracker finalised.
func TestLocalRound(t *testing.T) {
	train, eval, floor := BuiltinData()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	l, err := StartLocal(ctx, LocalConfig{Spec: smallSpec(), Workers: 3, Dir: t.TempDir(), Train: train, Eval: eval, Floor: floor, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(rctx) }()
	const steps = 3
	err = WaitFor(ctx, 100*time.Millisecond, func() bool { return len(l.Tracker.Finals()) >= steps })
	if err != nil {
		stop()
		<-done
		t.Fatalf("waiting for %d steps (have %d): %v", steps, len(l.Tracker.Finals()), err)
	}
	final := l.Tracker.Finals()[steps-1].Checkpoint
	err = WaitFor(ctx, 100*time.Millisecond, func() bool {
		for _, n := range append([]*Node{l.Observer}, l.Workers...) {
			st := n.Status()
			if st.Step < steps {
				return false
			}
		}
		return true
	})
	stop()
	if rerr := <-done; rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatalf("nodes did not all reach step %d: %v", steps, err)
	}
	for i, n := range append([]*Node{l.Observer}, l.Workers...) {
		s, h, err := readHead(n.cfg.DataDir, l.Spec.ID())
		if err != nil {
			t.Fatal(err)
		}
		if s == steps && !h.Equals(final) {
			t.Errorf("node %d holds C_%d = %s, the tracker finalised %s", i, s, h, final)
		}
	}
	snap := l.Tracker.Snapshot()
	if len(snap.Loss) < steps || len(snap.Peers) < 4 {
		t.Errorf("dashboard snapshot: %d loss points, %d peers", len(snap.Loss), len(snap.Peers))
	}
	t.Logf("finalised %d steps; C_%d = %s; loss points %v", len(l.Tracker.Finals()), steps, final, snap.Loss)
}

var testTimeout = 3 * time.Minute

// testLogger logs to stderr when SHOAL_TEST_LOG is set (to a level:
// debug, info, warn).
func testLogger(t *testing.T) *slog.Logger {
	lv, ok := os.LookupEnv("SHOAL_TEST_LOG")
	if !ok {
		return nil
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(lv)); err != nil {
		t.Fatalf("SHOAL_TEST_LOG=%q: %v", lv, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// TestClosedRound: a closed round admits the workers whose access token
// its tracker signed and ignores a worker without one: the refusal is in
// the tracker's events and on the dashboard, and the intruder is dealt
// nothing.
func TestClosedRound(t *testing.T) {
	train, eval, floor := BuiltinData()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	spec := smallSpec()
	spec.Admission = round.AdmissionClosed
	l, err := StartLocal(ctx, LocalConfig{Spec: spec, Workers: 2, Dir: t.TempDir(), Train: train, Eval: eval, Floor: floor, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	intruder, err := l.NewWorker("intruder", false)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- l.Run(rctx) }()
	go func() { done <- intruder.Run(rctx) }()
	err = WaitFor(ctx, 100*time.Millisecond, func() bool { return len(l.Tracker.Finals()) >= 3 })
	stop()
	for range 2 {
		if rerr := <-done; rerr != nil {
			t.Fatal(rerr)
		}
	}
	if err != nil {
		t.Fatalf("the closed round did not finalise 3 steps: %v", err)
	}
	snap := l.Tracker.Snapshot()
	id := intruder.Status().Peer
	var refused bool
	for _, p := range snap.Peers {
		if p.ID == id {
			if p.State != "refused" || !strings.Contains(p.Reason, "no valid access token") {
				t.Errorf("the intruder on the dashboard: %+v", p)
			}
			refused = true
		}
		if p.ID != id && p.State == "refused" {
			t.Errorf("a worker with a token was refused: %+v", p)
		}
	}
	if !refused {
		t.Errorf("the intruder is not on the dashboard")
	}
	var logged bool
	for _, ev := range snap.Events {
		if ev.Kind == "refused" && ev.Peer == id {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no refusal event for the intruder")
	}
	if st := intruder.Status(); st.Units != 0 {
		t.Errorf("the intruder trained %d units", st.Units)
	}
}

// TestDatasetRound: a round on a text corpus (Go's own net/http source):
// the tracker serves the dataset's shards and each worker fetches, by CID,
// only the shards its units need, keeps them on disk, and trains.
func TestDatasetRound(t *testing.T) {
	corpus, err := data.LoadText(filepath.Join(runtime.GOROOT(), "src", "net", "http"))
	if err != nil {
		t.Skipf("no Go source tree to train on: %v", err)
	}
	text := corpus.Bytes
	for len(text) < 3*data.DatasetShardSize {
		text = append(text, corpus.Bytes...) // enough text for several shards
	}
	ds, err := data.BuildDataset(text)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	spec := smallSpec()
	spec.TargetSamples = 2 * spec.InnerSteps * spec.Batch // two units a step
	spec.VerificationRate = 0
	l, err := StartLocal(ctx, LocalConfig{Spec: spec, Workers: 2, Dir: t.TempDir(), Dataset: ds, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(rctx) }()
	err = WaitFor(ctx, 100*time.Millisecond, func() bool { return len(l.Tracker.Finals()) >= 2 })
	stop()
	if rerr := <-done; rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatalf("the round did not finalise 2 steps: %v", err)
	}
	n := len(ds.Manifest.Shards)
	for i, w := range l.Workers {
		var held []int
		for k, s := range ds.Manifest.Shards {
			if _, err := os.Stat(filepath.Join(w.cfg.DataDir, "shards", s.CID.String())); err == nil {
				held = append(held, k)
			}
		}
		// Its units' shards, and perhaps the next unit's, fetched ahead.
		units := w.Status().Units
		if units == 0 {
			t.Errorf("worker %d trained nothing", i)
		}
		if len(held) == 0 || len(held) > units+1 || len(held) == n {
			t.Errorf("worker %d trained %d units and holds shards %v of %d", i, units, held, n)
		}
		t.Logf("worker %d holds shards %v of %d and trained %d units", i, held, n, w.Status().Units)
	}
	snap := l.Tracker.Snapshot()
	if first, last := snap.Loss[0].Train, snap.Loss[len(snap.Loss)-1].Train; !(last < first) {
		t.Errorf("training loss went from %.4f to %.4f", first, last)
	}
}
