package node

import (
	"testing"
	"time"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker/wire"
)

// TestNodeFollowsRedealtStep: a node that applied a step's Close and
// committed its C_1 goes back to the step's base when the tracker deals
// the step again (no quorum by the deadline after it closed): it trains
// the new attempt's units and applies and commits the new Close, rather
// than waiting at a head no quorum agreed on.
func TestNodeFollowsRedealtStep(t *testing.T) {
	n, s := testNode(t)
	now := time.Unix(1_800_000_000, 0)
	g := content.Sum([]byte("C0"))
	var c1 = content.Sum([]byte("C1"))
	runStep := func(attempt uint32, result string) *wire.Commit {
		t.Helper()
		open := &wire.Open{Round: s.ID(), Step: 0, Attempt: attempt, Base: g, Members: []string{"me"}, Units: 1}
		if err := n.Receive(now, trackerID, open); err != nil {
			t.Fatal(err)
		}
		rd := n.Ready()
		if rd.HeadStep != 0 && rd.HeadChanged {
			t.Fatalf("attempt %d: head at step %d, want back at 0", attempt, rd.HeadStep)
		}
		if len(rd.Jobs) != 1 {
			t.Fatalf("attempt %d: jobs %v, want the unit's training", attempt, rd.Jobs)
		}
		job, ok := rd.Jobs[0].(TrainJob)
		if !ok || job.Attempt != attempt {
			t.Fatalf("attempt %d: job %+v, want the unit's training", attempt, rd.Jobs[0])
		}
		payload := []byte("my update " + result)
		n.Done(now, Result{Job: job, Update: &wire.Update{Samples: 20, Raw: g, Residual: g,
			Payload: content.Sum(payload), Size: uint64(len(payload)), Data: payload}})
		n.Ready()
		cl := &wire.Close{Round: s.ID(), Step: 0, Base: g, Included: []wire.Included{{Peer: "me", Unit: 0, Payload: content.Sum(payload), Weight: 20}}}
		if err := n.Receive(now, trackerID, cl); err != nil {
			t.Fatal(err)
		}
		rd = n.Ready()
		if len(rd.Jobs) != 1 {
			t.Fatalf("attempt %d: jobs %v after the Close, want its application", attempt, rd.Jobs)
		}
		apply, ok := rd.Jobs[0].(ApplyJob)
		if !ok {
			t.Fatalf("attempt %d: job %+v after the Close, want its application", attempt, rd.Jobs[0])
		}
		n.Done(now, Result{Job: apply, Result: content.Sum([]byte(result))})
		rd = n.Ready()
		for _, m := range rd.Publish {
			if cm, ok := m.(*wire.Commit); ok {
				return cm
			}
		}
		t.Fatalf("attempt %d: no commit published (%v)", attempt, rd.Publish)
		return nil
	}
	if cm := runStep(0, "C1"); !cm.Result.Equals(c1) {
		t.Fatalf("commit %+v, want C1", cm)
	}
	if step, head := n.Head(); step != 1 || !head.Equals(c1) {
		t.Fatalf("head C_%d = %s, want C_1 = %s", step, head, c1)
	}
	cm := runStep(1, "C1'")
	if want := content.Sum([]byte("C1'")); cm.Step != 0 || !cm.Result.Equals(want) {
		t.Fatalf("commit of the step dealt again %+v, want step 0 = %s", cm, want)
	}
}
