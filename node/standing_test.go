package node

import (
	"testing"
	"time"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker/wire"
)

// TestNodeKeepsOwnHead: a node that applied a step itself keeps the
// checkpoint it computed when the tracker finalises another (a quorum of
// liars), whether the Final comes before or after its own result, and
// when the next step opens from the other checkpoint: it fetches nothing
// and reports the mismatch. A node that did not compute the step still
// takes the Final's checkpoint.
func TestNodeKeepsOwnHead(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	g := content.Sum([]byte("C0"))
	payload := content.Sum([]byte("peer-b's update"))
	mine, poisoned := content.Sum([]byte("C1")), content.Sum([]byte("poisoned C1"))
	for _, finalFirst := range []bool{false, true} {
		n, s := testNode(t)
		round := s.ID()
		recv := func(m wire.Msg) Ready {
			t.Helper()
			if err := n.Receive(now, trackerID, m); err != nil {
				t.Fatal(err)
			}
			return n.Ready()
		}
		final := &wire.Final{Round: round, Step: 0, Base: g, Checkpoint: poisoned, Providers: []string{"sybil"}}
		recv(&wire.Open{Round: round, Step: 0, Base: g, Members: []string{"peer-b"}, Units: 1})
		recv(&wire.Close{Round: round, Step: 0, Base: g, Included: []wire.Included{{Peer: "peer-b", Unit: 0, Payload: payload, Weight: 20}}})
		n.Fetched(now, payload, true)
		r := n.Ready()
		if len(r.Jobs) != 1 {
			t.Fatalf("with the payload here the node started %+v, want the step's ApplyJob", r.Jobs)
		}
		var seen []Ready
		if finalFirst {
			seen = append(seen, recv(final))
		}
		n.Done(now, Result{Job: r.Jobs[0], Result: mine})
		seen = append(seen, n.Ready())
		if !finalFirst {
			seen = append(seen, recv(final))
		}
		seen = append(seen, recv(&wire.Open{Round: round, Step: 1, Base: poisoned, Members: []string{"me"}, Units: 1}))
		mismatches := 0
		for _, r := range seen {
			for _, f := range r.Fetches {
				if f.CID.Equals(poisoned) {
					t.Errorf("final first %v: the node fetches the finalised %s it did not compute", finalFirst, poisoned)
				}
			}
			for _, j := range r.Jobs {
				if _, ok := j.(TrainJob); ok {
					t.Errorf("final first %v: the node trains from the other checkpoint", finalFirst)
				}
			}
			for _, e := range r.Events {
				if e.Kind == wire.EventMismatch {
					mismatches++
				}
			}
		}
		if step, head := n.Head(); step != 1 || !head.Equals(mine) {
			t.Errorf("final first %v: the node is at C_%d = %s, want its own C_1 = %s", finalFirst, step, head, mine)
		}
		if mismatches != 1 {
			t.Errorf("final first %v: %d mismatch events, want 1", finalFirst, mismatches)
		}
	}
	// A node catching up, that computed nothing, takes the Final's word.
	n, s := testNode(t)
	if err := n.Receive(now, trackerID, &wire.Final{Round: s.ID(), Step: 0, Base: g, Checkpoint: poisoned, Providers: []string{"peer-b"}}); err != nil {
		t.Fatal(err)
	}
	r := n.Ready()
	if len(r.Fetches) != 1 || !r.Fetches[0].CID.Equals(poisoned) {
		t.Errorf("a node that did not compute step 0 fetches %+v, want the Final's checkpoint", r.Fetches)
	}
}
