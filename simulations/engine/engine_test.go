package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/internal/testround"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/simulations"
	"github.com/shoal-network/shoal/simulations/engine"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// testTracker is the tracker of test rounds.
const testTracker = testround.Tracker

// testSpec is a small round of units units a step.
func testSpec(units int) *round.Spec { return testround.Spec(units) }

func peerName(i int) string { return fmt.Sprintf("peer-%02d", i) }

// costCluster is a round of cost-model workers with home links, units of
// a minute and 1 MiB updates, delivered in batches, the invariants
// checked.
func costCluster(t testing.TB, peers int, seed uint64) *engine.Cluster {
	t.Helper()
	spec := testSpec(peers)
	spec.VerificationRate = 0.25
	spec.Deadline = 20 * time.Minute
	genesis, err := (&simulations.CostEngine{Store: engine.NewStore(engine.NewPool()), Spec: spec}).Genesis()
	if err != nil {
		t.Fatal(err)
	}
	c, err := engine.New(engine.Config{Spec: spec, Seed: seed, Genesis: genesis,
		Net: &engine.Network{}, Batch: true, LazyTicks: true,
		Tick:        time.Second,
		UpdateBytes: 1 << 20, ResidualBytes: 4 << 20, CheckpointBytes: 8 << 20,
		JobTime: func(_ string, j node.Job) time.Duration {
			if _, ok := j.(node.TrainJob); ok {
				return time.Minute
			}
			return 2 * time.Second
		},
		Check: engine.Invariants(nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := c.Rand()
	shared := simulations.NewCostShared()
	for i := range peers {
		id := peerName(i)
		if err := c.AddNode(id, wire.RoleWorker, func(st *engine.Store) (node.Engine, error) {
			return &simulations.CostEngine{Store: st, Spec: spec, Peer: id, Shared: shared}, nil
		}); err != nil {
			t.Fatal(err)
		}
		l, class := engine.LinkMixes["home"].Draw(r)
		c.SetLink(id, l, class)
	}
	c.SetLink(c.TrackerID(), engine.DatacenterLink.Draw(r), "datacenter")
	c.DelayTracker(5 * time.Second) // everyone has said hello
	return c
}

// waitSteps runs until the tracker has finalised n steps.
func waitSteps(t *testing.T, c *engine.Cluster, n int, limit time.Duration) {
	t.Helper()
	finalised := func() int {
		if tr := c.Tracker(); tr != nil {
			return len(tr.Finals())
		}
		return -1
	}
	if err := c.RunUntil(func() bool { return finalised() >= n }, limit); err != nil {
		t.Fatalf("seed %d: waiting for %d finalised steps (have %d) at %v: %v", c.Seed(), n, finalised(), c.Elapsed(), err)
	}
}

// TestValidateShared: the cluster's Validate, which checks the form of a
// decoded Open, Close or Update once for every receiver, decides as
// wire.Validate does.
func TestValidateShared(t *testing.T) {
	spec := testSpec(4)
	c := costCluster(t, 4, 1)
	round := spec.ID()
	base := content.Sum([]byte("base"))
	payload := []byte("payload")
	good := []wire.Msg{
		&wire.Open{Round: round, Step: 3, Base: base, Members: []string{"a", "b", "c"}, Units: 4},
		&wire.Close{Round: round, Step: 3, Base: base, Included: []wire.Included{{Peer: "a", Payload: base, Weight: 1}, {Peer: "b", Payload: base, Weight: 1}}},
		&wire.Update{Round: round, Step: 3, Base: base, Raw: base, Residual: base, Payload: content.Sum(payload), Samples: 20, Size: uint64(len(payload)), Data: payload},
		&wire.Final{Round: round, Step: 2, Base: base, Checkpoint: base, Providers: []string{"a", "b"}},
	}
	bad := []wire.Msg{
		&wire.Open{Round: round, Step: 3, Base: base, Members: []string{"b", "a", "c"}, Units: 4},
		&wire.Close{Round: round, Step: 3, Base: base, Included: []wire.Included{{Peer: "b", Payload: base, Weight: 1}, {Peer: "a", Payload: base, Weight: 1}}},
		&wire.Update{Round: round, Step: 3, Base: base, Raw: base, Residual: base, Payload: base, Samples: 20, Size: uint64(len(payload)), Data: payload},
		&wire.Open{Round: content.Sum([]byte("other")), Step: 3, Base: base, Members: []string{"a", "b"}, Units: 4},
		&wire.Final{Round: round, Step: 2, Base: base, Checkpoint: base, Providers: []string{"b", "a"}},
	}
	views := []struct {
		step uint64
		from string
	}{{3, testTracker}, {1, testTracker}, {6, testTracker}, {3, "a"}, {4, "b"}}
	for _, m := range append(good, bad...) {
		for _, v := range views {
			view := &stubView{round: round, tracker: testTracker, step: v.step}
			wr, werr := wire.Validate(view, v.from, m)
			for range 2 { // the second call uses the cached form check
				gr, gerr := c.Validate(view, v.from, m)
				if gr != wr || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
					t.Errorf("%s at step %d from %s: shared %v %v, wire.Validate %v %v", m.Kind(), v.step, v.from, gr, gerr, wr, werr)
				}
			}
		}
	}
}

type stubView struct {
	round   cid.Cid
	tracker string
	step    uint64
}

func (v *stubView) Round() cid.Cid          { return v.round }
func (v *stubView) TrackerID() string       { return v.tracker }
func (v *stubView) Head() (uint64, cid.Cid) { return v.step, cid.Undef }
func (v *stubView) Excluded(string) bool    { return false }

// TestPoolSharesContent: stores on one pool hold each blob once, and the
// pool forgets a blob when the last store does.
func TestPoolSharesContent(t *testing.T) {
	p := engine.NewPool()
	a, b := engine.NewStore(p), engine.NewStore(p)
	id, _ := a.PutBlob([]byte("x"))
	if _, err := b.PutBlob([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if n, _ := p.Len(); n != 1 {
		t.Fatalf("pool holds %d blobs, want 1", n)
	}
	a.Sweep(0)
	if !b.HasBlob(id) || a.HasBlob(id) {
		t.Fatal("sweeping one store changed the other")
	}
	b.Sweep(0)
	if n, _ := p.Len(); n != 0 {
		t.Fatalf("pool holds %d blobs after every store dropped them", n)
	}
	ck := &checkpoint.Checkpoint{Meta: map[string]string{checkpoint.MetaRound: testSpec(1).ID().String(), checkpoint.MetaStep: "1"},
		Tensors: []checkpoint.Tensor{{Name: "w", Shape: []int{1}, Data: []float32{1}}}}
	cidA, err := a.PutCheckpoint(ck)
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := a.Chunked(cidA)
	if err := b.PutChunked(cidA, ch); err != nil {
		t.Fatal(err)
	}
	if _, n := p.Len(); n != 1 {
		t.Fatalf("pool holds %d checkpoints, want 1", n)
	}
	bad := *ch
	bad.Data = append([]byte(nil), ch.Data...)
	bad.Data[len(bad.Data)-1] ^= 1
	if err := engine.NewStore(engine.NewPool()).PutChunked(cidA, &bad); err == nil {
		t.Fatal("a corrupt checkpoint was accepted")
	}
}

// TestInvariantsCatch: the checks fire, and the error names the seed,
// when an honest node holds another checkpoint than the one finalised,
// and when a node applies a step without an included update.
func TestInvariantsCatch(t *testing.T) {
	c := costCluster(t, 4, 9)
	waitSteps(t, c, 2, 2*time.Hour)
	c.ForgeHead(peerName(1), 1, content.Sum([]byte("not the final checkpoint")))
	err := c.RunFor(time.Second)
	if err == nil || !strings.Contains(err.Error(), "seed 9") || !strings.Contains(err.Error(), "holds C_1") {
		t.Fatalf("a wrong head went unnoticed: %v", err)
	}
	c = costCluster(t, 4, 10)
	c.CheckApply(peerName(0), node.ApplyJob{Step: 7, Included: []wire.Included{{Peer: "x", Payload: content.Sum([]byte("missing"))}}})
	err = c.RunFor(time.Second)
	if err == nil || !strings.Contains(err.Error(), "seed 10") || !strings.Contains(err.Error(), "without update") {
		t.Fatalf("an apply without its updates went unnoticed: %v", err)
	}
}
