package simulations

import (
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/simulations/engine"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// linkedCluster is a round of cost-model workers with home links, units
// of a minute and 1 MiB updates, delivered every one to every node or in
// batches.
func linkedCluster(t testing.TB, peers int, seed uint64, batch bool, liars map[string]Behaviour) *engine.Cluster {
	t.Helper()
	return linkedClusterWith(t, peers, seed, batch, liars, nil)
}

// linkedClusterWith is linkedCluster with a change to its spec and
// configuration.
func linkedClusterWith(t testing.TB, peers int, seed uint64, batch bool, liars map[string]Behaviour, tweak func(*round.Spec, *engine.Config)) *engine.Cluster {
	t.Helper()
	spec := testSpec(peers)
	spec.VerificationRate = 0.25
	spec.Deadline = 20 * time.Minute
	bad := map[string]bool{}
	for id := range liars {
		bad[id] = true
	}
	cfg := engine.Config{Spec: spec, Seed: seed,
		Net: &engine.Network{}, Batch: batch, LazyTicks: batch,
		Tick:        time.Second,
		UpdateBytes: 1 << 20, ResidualBytes: 4 << 20, CheckpointBytes: 8 << 20,
		JobTime: func(_ string, j node.Job) time.Duration {
			if _, ok := j.(node.TrainJob); ok {
				return time.Minute
			}
			return 2 * time.Second
		},
		Check: engine.Invariants(bad),
	}
	if tweak != nil {
		tweak(spec, &cfg)
	}
	genesis, err := (&CostEngine{Store: engine.NewStore(engine.NewPool()), Spec: spec}).Genesis()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Genesis = genesis
	c, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Rand()
	shared := NewCostShared()
	for i := range peers {
		id := peerName(i)
		if err := c.AddNode(id, wire.RoleWorker, func(st *engine.Store) (node.Engine, error) {
			return &CostEngine{Store: st, Spec: spec, Peer: id, Behaviour: liars[id], Shared: shared}, nil
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
		c := linkedCluster(t, peers, seed, batch, nil)
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
			if s.Closed-s.Opened >= c.Spec().Deadline {
				t.Errorf("seed %d, batch %v: step %d waited for its deadline", seed, batch, s.Step)
			}
		}
		t.Logf("batch %v: %d steps in %v, %d events", batch, steps, c.Elapsed().Round(time.Second), c.Processed)
	}
	// Each peer downloads every update published (in batches, its own
	// too); delivering every update, a node that gets the Close before
	// some updates also fetches those, and may get them twice. Over the
	// steps together: a checker runs an audit once it has no unit left to
	// train, so the residual an audit fetches (4 MiB here) falls into one
	// step's count or the next one's, as the timing of the two deliveries
	// differs a little.
	var e, b float64
	for i := range download[false] {
		e += download[false][i]
		b += download[true][i]
	}
	if n := float64(len(download[false])); b > e+n*(1<<20) || b < 0.75*e {
		t.Errorf("seed %d: over %d steps, a peer downloaded %.1f MiB delivering every update, %.1f MiB in batches", seed, len(download[false]), e/(1<<20), b/(1<<20))
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
			liar := peerName(3)
			c := linkedCluster(t, peers, seed, true, map[string]Behaviour{liar: b})
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

// TestBatchedLateUpdates: with quorum closing and late updates, a step
// closes without its two slowest workers, whose units join the next
// step; delivered in batches (a late update travels with the next step's
// updates) or one by one, the protocol decides the same.
func TestBatchedLateUpdates(t *testing.T) {
	const seed, peers, steps = 5, 12, 4
	slow := map[string]bool{peerName(3): true, peerName(8): true}
	finals := map[bool][]cid.Cid{}
	events := map[bool]int64{}
	for _, batch := range []bool{false, true} {
		c := linkedClusterWith(t, peers, seed, batch, nil, func(s *round.Spec, cfg *engine.Config) {
			s.Quorum, s.Grace, s.LateWeight = 0.75, 30*time.Second, 0.5
			cfg.JobTime = func(id string, j node.Job) time.Duration {
				if _, ok := j.(node.TrainJob); ok {
					if slow[id] {
						return 3 * time.Minute
					}
					return time.Minute
				}
				return 2 * time.Second
			}
		})
		waitSteps(t, c, steps, 6*time.Hour)
		merged := 0
		for _, ev := range c.Events {
			if ev.Kind == wire.EventMerge {
				merged++
			}
		}
		if merged == 0 {
			t.Fatalf("batch %v: no late update merged", batch)
		}
		late := 0
		for _, s := range c.Steps {
			late += s.Late
		}
		if late < merged {
			t.Errorf("batch %v: the steps count %d late updates, in %d merges", batch, late, merged)
		}
		for _, st := range stepTimes(c)[:steps] {
			if st.closed-st.opened >= 20*time.Minute {
				t.Errorf("batch %v: step %d waited for its deadline", batch, st.step)
			}
		}
		for _, f := range c.Tracker().Finals()[:steps] {
			finals[batch] = append(finals[batch], f.Checkpoint)
		}
		events[batch] = c.Processed
		t.Logf("batch %v: %d steps in %v, %d events", batch, steps, c.Elapsed().Round(time.Second), c.Processed)
	}
	// In batches a Close that merges late updates is present at once,
	// like any other: no node fetches them one by one.
	if events[true] >= events[false]/4 {
		t.Errorf("batched delivery took %d events, one by one %d", events[true], events[false])
	}
	for i := range steps {
		if !finals[true][i].Equals(finals[false][i]) {
			t.Fatalf("step %d: batched delivery finalised %s, one by one %s", i, finals[true][i], finals[false][i])
		}
	}
}
