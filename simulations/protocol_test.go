package simulations

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-network/shoal/internal/testround"
	nodeengine "github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/node/engine/enginetest"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/data"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/simulations/engine"
	"github.com/shoal-network/shoal/tracker"
	"github.com/shoal-network/shoal/tracker/boltstore"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// testTracker is the tracker of test rounds.
const testTracker = testround.Tracker

// testSpec is the shared small round (testround.Spec) of units units a
// step.
func testSpec(units int) *round.Spec { return testround.Spec(units) }

var (
	corpusOnce        sync.Once
	trainText, evText []byte
)

func corpus() (train, eval []byte) {
	corpusOnce.Do(func() { trainText, evText = data.Builtin().Corpus(1<<20, 16<<10) })
	return trainText, evText
}

func modelEngine(spec *round.Spec) func(*engine.Store) (node.Engine, error) {
	return func(st *engine.Store) (node.Engine, error) {
		train, _ := corpus()
		return nodeengine.NewModelEngine(spec, train, st)
	}
}

func genesisOf(t testing.TB, spec *round.Spec) cid.Cid {
	train, _ := corpus()
	e, err := nodeengine.NewModelEngine(spec, train, enginetest.NewMemStore())
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.Genesis()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func peerName(i int) string { return fmt.Sprintf("peer-%02d", i) }

// testConfig is the engine configuration of a test round of spec.
func testConfig(t testing.TB, spec *round.Spec, seed uint64) engine.Config {
	return engine.Config{Spec: spec, Seed: seed, Genesis: genesisOf(t, spec)}
}

// newCluster makes a cluster of workers running the model engine, those
// named in liars lying as it says, with the standard invariant checks
// (liars exempt).
func newCluster(t testing.TB, cfg engine.Config, workers int, liars map[string]Behaviour) *engine.Cluster {
	t.Helper()
	bad := map[string]bool{}
	for id := range liars {
		bad[id] = true
	}
	cfg.Check = engine.Invariants(bad)
	c, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range workers {
		id := peerName(i)
		if b, ok := liars[id]; ok {
			addAdversary(t, c, id, b)
		} else if err := c.AddNode(id, wire.RoleWorker, modelEngine(cfg.Spec)); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// waitSteps runs until the tracker has finalised n steps.
func waitSteps(t *testing.T, c *engine.Cluster, n int, limit time.Duration) {
	t.Helper()
	if err := c.RunUntil(func() bool { return finalised(c) >= n }, limit); err != nil {
		t.Fatalf("seed %d: waiting for %d finalised steps (have %d) at %v: %v", c.Seed(), n, finalised(c), c.Elapsed(), err)
	}
}

// referenceEngines returns, for a computation without the protocol, an
// engine per peer (made on first use, so that each trains with its own
// residual), one to apply steps, all on one store, and the genesis.
func referenceEngines(t *testing.T, spec *round.Spec) (func(peer string) *nodeengine.ModelEngine, *nodeengine.ModelEngine, cid.Cid) {
	t.Helper()
	train, _ := corpus()
	shared := enginetest.NewMemStore()
	engines := map[string]*nodeengine.ModelEngine{}
	engine := func(p string) *nodeengine.ModelEngine {
		if engines[p] == nil {
			e, err := nodeengine.NewModelEngine(spec, train, shared)
			if err != nil {
				t.Fatal(err)
			}
			engines[p] = e
		}
		return engines[p]
	}
	apply, err := nodeengine.NewModelEngine(spec, train, shared)
	if err != nil {
		t.Fatal(err)
	}
	base, err := apply.Genesis()
	if err != nil {
		t.Fatal(err)
	}
	return engine, apply, base
}

// reference computes the round's first steps in one process, without the
// protocol: every member of a step (as its Open named them) trains its
// units (in unit order, with its own engine and so its own residual), the
// step includes one update per unit (replica 0's), aggregated by the rule,
// and applies the outer step.
func reference(t *testing.T, spec *round.Spec, opens map[uint64]*wire.Open, steps int) []cid.Cid {
	t.Helper()
	engine, apply, base := referenceEngines(t, spec)
	var heads []cid.Cid
	for s := range uint64(steps) {
		o := opens[s]
		if o == nil {
			t.Fatalf("no Open recorded for step %d", s)
		}
		members := o.Members
		as := round.Assign(spec.Seed, wire.AssignStep(s, o.Attempt), members, spec.UnitsPerStep(), spec.VerificationRate)
		var included []wire.Included
		for _, p := range members {
			for _, a := range as {
				if a.Peer != p {
					continue
				}
				r := engine(p).Run(node.TrainJob{Step: s, Attempt: o.Attempt, Base: base, Unit: uint32(a.Unit), Replica: uint8(a.Replica)})
				if r.Err != nil {
					t.Fatal(r.Err)
				}
				if a.Replica == 0 {
					included = append(included, wire.Included{Peer: p, Unit: uint32(a.Unit), Payload: r.Update.Payload, Weight: r.Update.Samples})
				}
			}
		}
		wire.SortIncluded(included)
		r := apply.Run(node.ApplyJob{Step: s, Base: base, Included: included})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		base = r.Result
		heads = append(heads, base)
	}
	return heads
}

// TestHonestPeersAgreeWithReference: 8 honest workers train 10 outer
// steps; after every step every worker holds the checkpoint the tracker
// finalised, and it is the one a single-process computation gives.
func TestHonestPeersAgreeWithReference(t *testing.T) {
	const seed, workers, steps = 1, 8, 10
	spec := testSpec(8)
	spec.VerificationRate = 0.25
	c := newCluster(t, testConfig(t, spec, seed), workers, nil)
	waitSteps(t, c, steps, 10*time.Minute)

	members := c.Nodes()
	want := reference(t, spec, c.Opens, steps)
	finals := c.Tracker().Finals()
	for s := range steps {
		got := finals[s].Checkpoint
		if !got.Equals(want[s]) {
			t.Fatalf("seed %d: step %d finalised %s, the reference computes %s", seed, s, got, want[s])
		}
		for _, p := range members {
			h, ok := c.HeadOf(p, uint64(s+1))
			if !ok || !h.Equals(got) {
				t.Fatalf("seed %d: %s held C_%d = %v (%v), want %s", seed, p, s+1, h, ok, got)
			}
		}
	}
	for p, e := range c.Tracker().Ledger() {
		if e.Excluded {
			t.Errorf("seed %d: honest %s excluded: %s", seed, p, e.Reason)
		}
	}
	// With everyone up, no step waits for its deadline.
	for _, d := range stepTimes(c) {
		if d.closed-d.opened >= spec.Deadline {
			t.Errorf("seed %d: step %d took its whole deadline (%v)", seed, d.step, d.closed-d.opened)
		}
	}
}

type stepTime struct {
	step           uint64
	opened, closed time.Duration // of the step's last attempt
}

// stepTimes returns when each step was last opened and when it closed.
func stepTimes(c *engine.Cluster) []stepTime {
	var out []stepTime
	for _, ev := range c.Events {
		switch ev.Kind {
		case wire.EventOpen:
			if n := len(out); n > 0 && out[n-1].step == ev.Step {
				out[n-1].opened = ev.At
			} else {
				out = append(out, stepTime{step: ev.Step, opened: ev.At})
			}
		case wire.EventClose:
			if n := len(out); n > 0 && out[n-1].step == ev.Step {
				out[n-1].closed = ev.At
			}
		}
	}
	return out
}

// lossOf evaluates a checkpoint held by a node.
func lossOf(t *testing.T, spec *round.Spec, st nodeengine.Store, id cid.Cid) float64 {
	t.Helper()
	ck, err := st.Checkpoint(id)
	if err != nil {
		t.Fatal(err)
	}
	m, err := gradient.New(nodeengine.ModelConfig(spec))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		tt, ok := ck.Tensor(p.Name)
		if !ok {
			t.Fatalf("checkpoint lacks %s", p.Name)
		}
		copy(p.Data, tt.Data)
	}
	_, eval := corpus()
	return gradient.Evaluate(m, data.EvalBatches(eval, 8, spec.Model.Ctx, 8), 8)
}

func TestTranscriptSmoke(t *testing.T) {
	spec := testSpec(4)
	var lines []string
	cfg := testConfig(t, spec, 5)
	cfg.Trace = func(s string) { lines = append(lines, s) }
	c := newCluster(t, cfg, 3, nil)
	defer func() {
		if t.Failed() {
			t.Log("\n" + strings.Join(lines, "\n"))
		}
	}()
	waitSteps(t, c, 2, 5*time.Minute)
	if testing.Verbose() {
		t.Log("\n" + strings.Join(lines, "\n"))
	}
	_ = slices.Clone(lines)
}

// addAdversary adds a worker that lies as b says.
func addAdversary(t testing.TB, c *engine.Cluster, id string, b Behaviour) {
	t.Helper()
	err := c.AddNode(id, wire.RoleWorker, func(st *engine.Store) (node.Engine, error) {
		train, _ := corpus()
		e, err := nodeengine.NewModelEngine(c.Spec(), train, st)
		if err != nil {
			return nil, err
		}
		return &Adversary{Inner: e, Behaviour: b}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// firstReplicated returns the first step in which peer computes a copy of
// a replicated unit, assuming every member stays.
func firstReplicated(spec *round.Spec, members []string, peer string, steps int) int {
	for s := range uint64(steps) {
		as := round.Assign(spec.Seed, wire.AssignStep(s, 0), members, spec.UnitsPerStep(), spec.VerificationRate)
		for _, a := range as {
			if a.Peer != peer {
				continue
			}
			for _, b := range as {
				if b.Unit == a.Unit && b.Peer != a.Peer {
					return int(s)
				}
			}
		}
	}
	return -1
}

// TestLiarCaught: a worker that lies about a replicated unit is caught by
// its partner (a different raw hash, or a payload that does not follow
// from its residual), a third peer's computation settles the dispute, and
// the liar is excluded in the step after its first replicated unit; no
// honest worker is ever excluded and the honest peers keep agreeing.
func TestLiarCaught(t *testing.T) {
	for _, b := range []Behaviour{LyingReplica, PayloadLie} {
		t.Run(string(b), func(t *testing.T) {
			const seed, steps = 2, 8
			spec := testSpec(8)
			spec.VerificationRate = 0.25
			const liar = "peer-03"
			var trained []uint64 // steps in which the liar was given units
			cfg := testConfig(t, spec, seed)
			cfg.Trace = func(line string) {
				var step uint64
				if _, err := fmt.Sscanf(line[strings.Index(line, "s ")+2:], liar+" train step %d", &step); err == nil {
					trained = append(trained, step)
				}
			}
			c := newCluster(t, cfg, 8, map[string]Behaviour{liar: b})
			first := firstReplicated(spec, c.Nodes(), liar, steps)
			if first < 0 || first+2 > steps {
				t.Fatalf("seed %d: the liar's first replicated unit is in step %d: pick another seed", seed, first)
			}
			waitSteps(t, c, steps, 20*time.Minute)
			led := c.Tracker().Ledger()
			e := led[liar]
			if !e.Excluded {
				t.Fatalf("seed %d: the liar was not excluded in %d steps (first replicated in step %d); ledger %+v", seed, steps, first, e)
			}
			// A raw mismatch is disputed when step `first` closes and
			// checked in the next step. A payload is judged by the partner
			// after the close, so the dispute reaches the tracker in step
			// first+1, the check is dealt in first+2, and the checker's
			// verdict (queued behind its own unit) may land in first+3.
			bound := first + 1
			if b == PayloadLie {
				bound = first + 3
			}
			if e.ExcludedAt > uint64(bound) {
				t.Errorf("seed %d: excluded at step %d, want by %d", seed, e.ExcludedAt, bound)
			}
			t.Logf("seed %d: %s: first replicated in step %d, excluded at step %d: %s", seed, b, first, e.ExcludedAt, e.Reason)
			for p, e := range led {
				if p != liar && e.Excluded {
					t.Errorf("seed %d: honest %s excluded: %s", seed, p, e.Reason)
				}
			}
			// Once excluded, the liar is dealt nothing.
			if len(trained) == 0 {
				t.Fatalf("seed %d: the liar never trained", seed)
			}
			if last := trained[len(trained)-1]; last > e.ExcludedAt {
				t.Errorf("seed %d: excluded at step %d but given a unit in step %d", seed, e.ExcludedAt, last)
			}
			n := c.Node("peer-00")
			step, _ := n.Head()
			if step < steps {
				t.Errorf("seed %d: peer-00 is at step %d", seed, step)
			}
		})
	}
}

// TestByzantineRobust: 2 of 8 workers send −10× their pseudo-gradient, and
// nothing verifies them; under the median the loss still falls as in an
// honest round, while the mean is dragged off course.
func TestByzantineRobust(t *testing.T) {
	const seed, steps = 3, 8
	run := func(rule string, byz int) float64 {
		spec := testSpec(8)
		spec.Aggregation = rule
		liars := map[string]Behaviour{}
		for i := range byz {
			liars[peerName(i)] = SignFlip
		}
		c := newCluster(t, testConfig(t, spec, seed), 8, liars)
		waitSteps(t, c, steps, 20*time.Minute)
		f := c.Tracker().Finals()
		return lossOf(t, spec, c.Store("peer-07"), f[len(f)-1].Checkpoint)
	}
	initial := func() float64 {
		spec := testSpec(8)
		st := enginetest.NewMemStore()
		train, _ := corpus()
		e, _ := nodeengine.NewModelEngine(spec, train, st)
		g, _ := e.Genesis()
		return lossOf(t, spec, st, g)
	}()
	honest := run("median", 0)
	robust := run("median", 2)
	mean := run("mean", 2)
	t.Logf("seed %d: loss at start %.4f; after %d steps: honest median %.4f, 2/8 byzantine median %.4f, 2/8 byzantine mean %.4f", seed, initial, steps, honest, robust, mean)
	if !(robust < initial-0.5*(initial-honest)) {
		t.Errorf("seed %d: under the median with 2/8 byzantine the loss went %.4f → %.4f; honest reaches %.4f", seed, initial, robust, honest)
	}
}

// TestChurn: workers that crash mid-step do not hold the step past its
// deadline; they come back, fetch the head and train again; a newcomer
// joins mid-round the same way.
func TestChurn(t *testing.T) {
	const seed = 4
	spec := testSpec(8)
	spec.VerificationRate = 0.25
	c := newCluster(t, testConfig(t, spec, seed), 8, nil)
	waitSteps(t, c, 2, 10*time.Minute)
	// Crash two workers just after step 2 opens: their units never come.
	if err := c.RunUntil(func() bool { s, p := c.Tracker().Step(); return s == 2 && p == tracker.PhaseOpen }, time.Minute); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	c.Kill("peer-01")
	c.Kill("peer-02")
	waitSteps(t, c, 3, 10*time.Minute)
	steps := stepTimes(c)
	if d := steps[2].closed - steps[2].opened; d > spec.Deadline+time.Second {
		t.Fatalf("seed %d: step 2 closed %v after it opened; the deadline is %v", seed, d, spec.Deadline)
	}
	waitSteps(t, c, 5, 10*time.Minute)
	if err := c.Restart("peer-01"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddNode("peer-new", wire.RoleWorker, modelEngine(spec)); err != nil {
		t.Fatal(err)
	}
	joinedAt := finalised(c)
	waitSteps(t, c, joinedAt+3, 10*time.Minute)
	finals := c.Tracker().Finals()
	last := uint64(len(finals))
	for _, p := range []string{"peer-01", "peer-new", "peer-00"} {
		h, ok := c.HeadOf(p, last)
		if !ok || !h.Equals(finals[last-1].Checkpoint) {
			t.Errorf("seed %d: %s does not hold the head C_%d after rejoining", seed, p, last)
		}
	}
	// The rejoined peers contribute again.
	led := c.Tracker().Ledger()
	if led["peer-new"].Units == 0 {
		t.Errorf("seed %d: the newcomer contributed nothing: %+v", seed, led["peer-new"])
	}
	if !c.Has("peer-02") || c.Alive("peer-02") {
		t.Errorf("peer-02 should still be down")
	}
}

// TestPartitionHeals: three workers are cut off for several steps; the
// majority side goes on, the minority cannot finalise anything, and after
// the partition heals everyone converges on the one head.
func TestPartitionHeals(t *testing.T) {
	const seed = 5
	spec := testSpec(8)
	c := newCluster(t, testConfig(t, spec, seed), 8, nil)
	waitSteps(t, c, 2, 10*time.Minute)
	c.Partition(map[string]int{"peer-05": 1, "peer-06": 1, "peer-07": 1})
	waitSteps(t, c, 5, 10*time.Minute)
	c.Heal()
	waitSteps(t, c, 8, 10*time.Minute)
	// Let the last Final reach everyone.
	if err := c.RunFor(2 * time.Second); err != nil && !engine.IsTimeout(err) {
		t.Fatal(err)
	}
	finals := c.Tracker().Finals()
	last := uint64(len(finals))
	for _, p := range c.Nodes() {
		step, head := c.Node(p).Head()
		if step < last || !mustHead(c, p, last).Equals(finals[last-1].Checkpoint) {
			t.Errorf("seed %d: %s is at C_%d = %s; the round is at C_%d = %s", seed, p, step, head, last, finals[last-1].Checkpoint)
		}
	}
}

func mustHead(c *engine.Cluster, p string, step uint64) cid.Cid {
	h, _ := c.HeadOf(p, step)
	return h
}

// TestTrackerRestart: the tracker is killed at several points of the
// round (collecting updates, collecting commits) and restarted from its
// database (bbolt, closed and reopened); no finalised step is lost or finalised twice, and the round
// goes on to the same checkpoints as a round without crashes.
func TestTrackerRestart(t *testing.T) {
	const seed, steps = 6, 6
	spec := testSpec(8)
	spec.VerificationRate = 0.25
	dbPath := filepath.Join(t.TempDir(), "tracker.db")
	db, err := boltstore.OpenBolt(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := testConfig(t, spec, seed)
	cfg.Storage = db
	c := newCluster(t, cfg, 8, nil)
	for _, phase := range []tracker.Phase{tracker.PhaseOpen, tracker.PhaseClosed, tracker.PhaseOpen, tracker.PhaseClosed} {
		if err := c.RunUntil(func() bool { _, p := c.Tracker().Step(); return p == phase && c.Elapsed() > 0 }, 5*time.Minute); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		before := len(c.Tracker().Finals())
		c.KillTracker()
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.RunFor(5 * time.Second); err != nil && !engine.IsTimeout(err) {
			t.Fatal(err)
		}
		if db, err = boltstore.OpenBolt(dbPath); err != nil {
			t.Fatal(err)
		}
		if err := c.RestartTrackerFrom(db); err != nil {
			t.Fatal(err)
		}
		if got := len(c.Tracker().Finals()); got != before {
			t.Fatalf("seed %d: %d finalised steps before the crash, %d after", seed, before, got)
		}
		// Move on a little so the next crash is in another step.
		if err := c.RunFor(1500 * time.Millisecond); err != nil && !engine.IsTimeout(err) {
			t.Fatal(err)
		}
	}
	waitSteps(t, c, steps, 20*time.Minute)
	finalEvents := map[uint64]int{}
	for _, ev := range c.Events {
		if ev.Kind == wire.EventFinal {
			finalEvents[ev.Step]++
		}
	}
	for s, n := range finalEvents {
		if n != 1 {
			t.Errorf("seed %d: step %d finalised %d times", seed, s, n)
		}
	}
	// Given the members each step was dealt to, the checkpoints are those
	// of an undisturbed computation.
	want := reference(t, spec, c.Opens, steps)
	for s, f := range c.Tracker().Finals()[:steps] {
		if !f.Checkpoint.Equals(want[s]) {
			t.Errorf("seed %d: step %d finalised %s, an undisturbed round gives %s", seed, s, f.Checkpoint, want[s])
		}
	}
}
