package engine_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/node/engine"
	"github.com/shoal-network/shoal/node/engine/enginetest"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// coreRig is node cores with model engines over one store (which stands
// for the fetches between them): the tracker's messages are fed by hand.
type coreRig struct {
	t       *testing.T
	spec    *round.Spec
	store   *enginetest.MemStore
	base    cid.Cid
	now     time.Time
	nodes   map[string]*node.Node
	engines map[string]*engine.ModelEngine
	fetches map[string][]node.Fetch // fetches asked for and not answered
	verdict map[string]*wire.Verdict
	jobs    map[string][]node.Job // jobs run, in order
}

func newCoreRig(t *testing.T, peers ...string) *coreRig {
	t.Helper()
	g := &coreRig{t: t, spec: testSpec(), store: enginetest.NewMemStore(), now: time.Unix(1_800_000_000, 0),
		nodes: map[string]*node.Node{}, engines: map[string]*engine.ModelEngine{}, fetches: map[string][]node.Fetch{},
		verdict: map[string]*wire.Verdict{}, jobs: map[string][]node.Job{}}
	for _, p := range peers {
		e, err := engine.NewModelEngine(g.spec, trainText(), g.store)
		if err != nil {
			t.Fatal(err)
		}
		g.engines[p] = e
		if !g.base.Defined() {
			if g.base, err = e.Genesis(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Step 0 deals unit 0 to peer-h (replica 0) and peer-l (replica 1);
	// later steps deal nothing.
	assign := func(o *wire.Open) []round.Assignment {
		if o.Step != 0 {
			return nil
		}
		return []round.Assignment{{Unit: 0, Peer: "peer-h"}, {Unit: 0, Peer: "peer-l", Replica: 1}}
	}
	for _, p := range peers {
		n, err := node.New(node.Config{ID: p, Role: wire.RoleWorker, Spec: g.spec, Genesis: g.base, Assignments: assign,
			Present: func(id cid.Cid) bool {
				return g.store.HasBlob(id) || g.store.HasCheckpoint(id) || id.Equals(content.Sum([]byte("C1")))
			}})
		if err != nil {
			t.Fatal(err)
		}
		g.nodes[p] = n
	}
	return g
}

// deliver hands a message from a peer to every other node, and runs
// what follows until nothing is left to do.
func (g *coreRig) deliver(from string, m wire.Msg) {
	g.t.Helper()
	for p, n := range g.nodes {
		if p != from {
			if err := n.Receive(g.now, from, m); err != nil {
				g.t.Fatalf("%s refused %s from %s: %v", p, m.Kind(), from, err)
			}
		}
	}
	g.settle()
}

func (g *coreRig) settle() {
	g.t.Helper()
	for more := true; more; {
		more = false
		for _, p := range slices.Sorted(func(yield func(string) bool) {
			for p := range g.nodes {
				if !yield(p) {
					return
				}
			}
		}) {
			r := g.nodes[p].Ready()
			g.fetches[p] = append(g.fetches[p], r.Fetches...)
			for _, j := range r.Jobs {
				more = true
				g.jobs[p] = append(g.jobs[p], j)
				g.nodes[p].Done(g.now, g.engines[p].Run(j))
			}
			for _, m := range r.Publish {
				switch m := m.(type) {
				case *wire.Update:
					more = true
					g.deliver(p, m)
				case *wire.Verdict:
					g.verdict[p] = m
				}
			}
		}
	}
}

// answer answers the fetches asked for: ok for what the store holds.
func (g *coreRig) answer() {
	for p, fs := range g.fetches {
		g.fetches[p] = nil
		for _, f := range fs {
			g.nodes[p].Fetched(g.now, f.CID, g.store.HasBlob(f.CID) || g.store.HasCheckpoint(f.CID))
		}
	}
	g.settle()
}

// disputeRig runs step 0 (peer-l going wrong at inner step 2), then
// between (if not nil), and opens step 1 with a Check of unit 0 by the
// checker. The checker's core goes first (its name sorts first).
func disputeRig(t *testing.T, between func(*coreRig)) *coreRig {
	g := newCoreRig(t, "checker", "peer-h", "peer-l")
	g.engines["peer-l"].Deviate(2)
	members := []string{"checker", "peer-h", "peer-l"}
	g.deliver(g.spec.Trackers[0], &wire.Open{Round: g.spec.ID(), Step: 0, Base: g.base, Members: members, Units: 1})
	if between != nil {
		between(g)
	}
	c1 := content.Sum([]byte("C1"))
	g.deliver(g.spec.Trackers[0], &wire.Open{Round: g.spec.ID(), Step: 1, Base: c1, Members: members, Units: 1,
		Checks: []wire.Check{{Step: 0, Unit: 0, Base: g.base, Checker: "checker", Peers: []string{"peer-h", "peer-l"}}}})
	return g
}

// TestCheckerBisectsThroughTheCore: a checker core gets the traces, then
// asks for the state the bisection needs (the liar serves nothing); the honest disputant's core
// materialises it on seeing the Check; the checker's verdict names the
// liar after one recomputed inner step.
func TestCheckerBisectsThroughTheCore(t *testing.T) {
	g := disputeRig(t, func(g *coreRig) { g.nodes["peer-l"].Leave() }) // the liar serves nothing
	if g.verdict["checker"] != nil {
		t.Fatalf("a verdict before the state came: %+v", g.verdict["checker"])
	}
	var served []node.Job
	for _, j := range g.jobs["peer-h"] {
		if _, ok := j.(node.StateJob); ok {
			served = append(served, j)
		}
	}
	if len(served) != 1 {
		t.Fatalf("the honest disputant ran %d StateJobs, want 1", len(served))
	}
	before := g.engines["checker"].InnerSteps()
	g.answer() // the state is in the store now
	v := g.verdict["checker"]
	if v == nil || !v.Checked || !slices.Equal(v.Bad, []string{"peer-l"}) {
		t.Fatalf("verdict %+v, want peer-l bad", v)
	}
	if steps := g.engines["checker"].InnerSteps() - before; steps != 1 {
		t.Errorf("the checker took %d inner steps, want 1", steps)
	}
}

// TestCheckerFallsBackWithoutState: when no disputant serves the state,
// the checker recomputes every inner step once the step deadline passed.
func TestCheckerFallsBackWithoutState(t *testing.T) {
	g := disputeRig(t, func(g *coreRig) {
		g.nodes["peer-h"].Leave() // no disputant serves the state
		g.nodes["peer-l"].Leave()
	})
	g.now = g.now.Add(time.Second)
	g.answer()
	if g.verdict["checker"] != nil {
		t.Fatalf("a verdict without the state: %+v", g.verdict["checker"])
	}
	before := g.engines["checker"].InnerSteps()
	g.now = g.now.Add(g.spec.Deadline)
	g.nodes["checker"].Tick(g.now)
	g.settle()
	v := g.verdict["checker"]
	if v == nil || !slices.Equal(v.Bad, []string{"peer-l"}) {
		t.Fatalf("verdict %+v, want peer-l bad", v)
	}
	if steps := g.engines["checker"].InnerSteps() - before; steps != uint64(g.spec.InnerSteps) {
		t.Errorf("the checker took %d inner steps, want %d", steps, g.spec.InnerSteps)
	}
}
