package simulations

import (
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker/wire"
)

// linkedCluster is a round of cost-model workers with home links, units
// of a minute and 1 MiB updates, delivered every one to every node or in
// batches.
func linkedCluster(t testing.TB, peers int, seed uint64, batch bool) *Cluster {
	t.Helper()
	spec := testSpec(peers)
	spec.VerificationRate = 0.25
	spec.Deadline = 20 * time.Minute
	genesis, err := (&CostEngine{Store: NewStore(NewPool()), Spec: spec}).Genesis()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCluster(spec, seed, genesis, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Net, c.Batch, c.LazyTicks = &Network{}, batch, batch
	c.Tick = time.Second
	c.UpdateBytes, c.ResidualBytes, c.CheckpointBytes = 1<<20, 4<<20, 8<<20
	c.JobTime = func(_ string, j node.Job) time.Duration {
		if _, ok := j.(node.TrainJob); ok {
			return time.Minute
		}
		return 2 * time.Second
	}
	r := c.Rand()
	shared := NewCostShared()
	for i := range peers {
		id := peerName(i)
		if err := c.AddNode(id, wire.RoleWorker, func(st *Store) (node.Engine, error) {
			return &CostEngine{Store: st, Spec: spec, Peer: id, Shared: shared}, nil
		}); err != nil {
			t.Fatal(err)
		}
		l, class := LinkMixes["home"].Draw(r)
		c.SetLink(id, l, class)
	}
	c.SetLink(c.TrackerID(), DatacenterLink.Draw(r), "datacenter")
	c.DelayTracker(5 * time.Second) // everyone has said hello
	c.Check = Invariants(nil)
	return c
}

// TestBatchedDeliveryDecidesTheSame: delivering a step's updates in bulk
// (each node gets its partners' updates and the tracker's messages, and
// the rest become present when its downlink has taken them in) leaves
// every decision of the protocol as it is when every update is handed to
// every node: the same checkpoints are finalised, from the same updates.
// Only the timing differs, a little, and each peer still downloads every
// update.
func TestBatchedDeliveryDecidesTheSame(t *testing.T) {
	const seed, peers, steps = 11, 12, 5
	finals := map[bool][]cid.Cid{}
	download := map[bool][]float64{}
	for _, batch := range []bool{false, true} {
		c := linkedCluster(t, peers, seed, batch)
		waitSteps(t, c, steps, 6*time.Hour)
		for _, f := range c.Tracker().Finals()[:steps] {
			finals[batch] = append(finals[batch], f.Checkpoint)
		}
		for _, s := range c.Steps[1:steps] {
			// Every peer downloads at least the step's included updates.
			if s.BytesIn.P50 < float64((s.Included-1)<<20) {
				t.Errorf("seed %d, batch %v: step %d: a peer downloaded %.1f MiB, with %d updates of 1 MiB included", seed, batch, s.Step, s.BytesIn.P50/(1<<20), s.Included)
			}
			download[batch] = append(download[batch], s.BytesIn.P50)
			if s.Closed-s.Opened >= c.Spec.Deadline {
				t.Errorf("seed %d, batch %v: step %d waited for its deadline", seed, batch, s.Step)
			}
		}
		t.Logf("batch %v: %d steps in %v, %d events", batch, steps, c.Elapsed().Round(time.Second), c.Processed)
	}
	// Each peer downloads every update published (in batches, its own
	// too); delivering every update, a node that gets the Close before
	// some updates also fetches those, and may get them twice.
	for i := range download[false] {
		e, b := download[false][i], download[true][i]
		if b > e+1<<20 || b < 0.75*e {
			t.Errorf("seed %d: step %d: a peer downloaded %.1f MiB delivering every update, %.1f MiB in batches", seed, i+1, e/(1<<20), b/(1<<20))
		}
	}
	for i := range steps {
		if !finals[false][i].Equals(finals[true][i]) {
			t.Fatalf("seed %d: step %d finalised %s delivering every update, %s in batches", seed, i, finals[false][i], finals[true][i])
		}
	}
}

// TestBatchedLiarCaught: under batched delivery, replicas still see each
// other's updates and a checker the updates of the unit it settles, so
// liars of every kind are caught and excluded, and no honest peer is.
func TestBatchedLiarCaught(t *testing.T) {
	for _, b := range []Behaviour{SignFlip, PayloadLie, FreeRider, StaleReplay} {
		t.Run(string(b), func(t *testing.T) {
			const seed, peers = 4, 10
			c := linkedCluster(t, peers, seed, true)
			liar := peerName(3)
			c.hosts[liar].engine.(*CostEngine).Behaviour = b
			c.Check = Invariants(map[string]bool{liar: true})
			if err := c.RunUntil(func() bool { return c.Tracker().Excluded(liar) }, 12*time.Hour); err != nil {
				t.Fatalf("seed %d: %s not excluded (%d steps finalised): %v", seed, b, finalised(c), err)
			}
			waitSteps(t, c, finalised(c)+2, 2*time.Hour)
			for p, e := range c.Tracker().Ledger() {
				if p != liar && e.Excluded {
					t.Errorf("seed %d: honest %s excluded: %s", seed, p, e.Reason)
				}
			}
			t.Logf("seed %d: %s excluded at step %d: %s", seed, b, c.Tracker().Ledger()[liar].ExcludedAt, c.Tracker().Ledger()[liar].Reason)
		})
	}
}

// TestValidateShared: the cluster's Validate, which checks the form of a
// decoded Open, Close or Update once for every receiver, decides as
// wire.Validate does.
func TestValidateShared(t *testing.T) {
	spec := testSpec(4)
	c := linkedCluster(t, 4, 1, true)
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
				gr, gerr := c.validate(view, v.from, m)
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
	p := NewPool()
	a, b := NewStore(p), NewStore(p)
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
	ck := costCheckpoint(testSpec(1), 1, "x")
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
	if err := NewStore(NewPool()).PutChunked(cidA, &bad); err == nil {
		t.Fatal("a corrupt checkpoint was accepted")
	}
}

// TestInvariantsCatch: the checks fire, and the error names the seed,
// when an honest node holds another checkpoint than the one finalised,
// and when a node applies a step without an included update.
func TestInvariantsCatch(t *testing.T) {
	c := linkedCluster(t, 4, 9, true)
	waitSteps(t, c, 2, 2*time.Hour)
	h := c.hosts[peerName(1)]
	h.history[1] = content.Sum([]byte("not the final checkpoint"))
	h.changed = true
	c.changed = append(c.changed, h)
	err := c.RunFor(time.Second)
	if err == nil || !strings.Contains(err.Error(), "seed 9") || !strings.Contains(err.Error(), "holds C_1") {
		t.Fatalf("a wrong head went unnoticed: %v", err)
	}
	c = linkedCluster(t, 4, 10, true)
	c.checkApply(c.hosts[peerName(0)], node.ApplyJob{Step: 7, Included: []wire.Included{{Peer: "x", Payload: content.Sum([]byte("missing"))}}})
	err = c.RunFor(time.Second)
	if err == nil || !strings.Contains(err.Error(), "seed 10") || !strings.Contains(err.Error(), "without update") {
		t.Fatalf("an apply without its updates went unnoticed: %v", err)
	}
}
