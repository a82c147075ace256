package simulations

import (
	"testing"
	"time"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// TestLateUpdateMatchesReference runs the real protocol and model engine
// with one worker whose units take longer than a step's deadline, in a
// round with late_weight 0.5: its unit of step 0 misses step 0's Close
// and joins step 1's. The checkpoint every node holds after step 1 must
// be the one the specification gives, computed here without the
// protocol: C_1 applies step 0's on-time units to C_0; C_2 applies to C_1
// step 1's on-time units at their samples and the slow worker's unit of
// step 0 (trained from C_0) at ⌊samples × 0.5⌋.
func TestLateUpdateMatchesReference(t *testing.T) {
	const seed, slow = 1, "peer-02"
	spec := testSpec(3)
	spec.LateWeight = 0.5
	cfg := testConfig(t, spec, seed)
	cfg.JobTime = func(id string, j node.Job) time.Duration {
		if _, ok := j.(node.TrainJob); ok {
			if id == slow {
				return spec.Deadline + spec.Deadline/2
			}
			return time.Second
		}
		return 100 * time.Millisecond
	}
	c := newCluster(t, cfg, 3, nil)
	waitSteps(t, c, 2, 10*time.Minute)
	// The slow worker applies step 1 once its training is done.
	if err := c.RunUntil(func() bool { _, ok := c.HeadOf(slow, 2); return ok }, 10*time.Minute); err != nil {
		t.Fatalf("%s never held C_2: %v", slow, err)
	}

	merges := 0
	for _, ev := range c.Events {
		if ev.Kind == wire.EventMerge && ev.Step == 1 {
			merges++
		}
	}
	if merges != 1 {
		t.Fatalf("%d merge events at step 1, want 1", merges)
	}

	// The reference: one engine per worker, each training its units in
	// the order it did (the slow worker: step 0's, then step 1's).
	eng, apply, base := referenceEngines(t, spec)
	var late []wire.Included
	for s := range uint64(2) {
		o := c.Opens[s]
		if o == nil || o.Attempt != 0 {
			t.Fatalf("step %d: Open %+v, want attempt 0", s, o)
		}
		included := late
		for _, a := range round.Assign(spec.Seed, wire.AssignStep(s, 0), o.Members, spec.UnitsPerStep(), spec.VerificationRate) {
			r := eng(a.Peer).Run(node.TrainJob{Step: s, Base: base, Unit: uint32(a.Unit), Replica: uint8(a.Replica)})
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			in := wire.Included{Peer: a.Peer, Unit: uint32(a.Unit), Payload: r.Update.Payload, Weight: r.Update.Samples}
			switch {
			case a.Peer != slow:
				included = append(included, in)
			case s == 0:
				in.Weight = uint32(float64(r.Update.Samples) * spec.LateWeight)
				late = []wire.Included{in}
			}
		}
		if s == 0 && len(late) != 1 {
			t.Fatalf("the slow worker was dealt no unit of step 0 (members %v)", o.Members)
		}
		wire.SortIncluded(included)
		r := apply.Run(node.ApplyJob{Step: s, Base: base, Included: included})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		base = r.Result
		if got := c.Tracker().Finals()[s].Checkpoint; !got.Equals(base) {
			t.Fatalf("step %d finalised %s, the specification gives %s", s, got, base)
		}
		for _, p := range c.Nodes() {
			if h, ok := c.HeadOf(p, s+1); !ok || !h.Equals(base) {
				t.Fatalf("%s holds C_%d = %v (%v), want %s", p, s+1, h, ok, base)
			}
		}
	}
}
