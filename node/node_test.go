package node

import (
	"testing"
	"time"

	"github.com/shoal-network/shoal/tracker"
)

const trackerID = "12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY"

func testNode(t *testing.T) (*Node, *tracker.Spec) {
	t.Helper()
	s := tracker.Defaults()
	s.Model = tracker.Model{Arch: "mlp", Vocab: 256, Ctx: 16, Dim: 16, Layers: 1, Hidden: 64, Window: 4, Seed: 7}
	s.Dataset = tracker.Dataset{Builtin: true}
	s.InnerSteps, s.Batch = 5, 4
	s.Inner.LR = 0.01
	s.TargetSamples = 40
	s.Deadline = time.Minute
	s.VerificationRate = 0
	s.Trackers = []string{trackerID}
	n, err := New(Config{ID: "me", Role: tracker.RoleWorker, Spec: s, Genesis: tracker.SumCID([]byte("C0"))})
	if err != nil {
		t.Fatal(err)
	}
	return n, s
}

// TestNodeRefusesWhatItShould: the node core refuses messages a hostile
// or confused peer might send, and spends no work on them.
func TestNodeRefusesWhatItShould(t *testing.T) {
	n, s := testNode(t)
	now := time.Unix(1_800_000_000, 0)
	g := tracker.SumCID([]byte("C0"))
	round := s.ID()
	open := &tracker.Open{Round: round, Step: 0, Base: g, Members: []string{"me", "peer-b"}, Units: 2}
	if err := n.Receive(now, "peer-b", open); err == nil {
		t.Fatal("an Open from a peer that is not the tracker was accepted")
	}
	other := *open
	other.Round = tracker.SumCID([]byte("another round"))
	if err := n.Receive(now, trackerID, &other); err == nil {
		t.Fatal("an Open for another round was accepted")
	}
	if r := n.Ready(); len(r.Jobs) != 0 {
		t.Fatalf("refused messages started work: %+v", r.Jobs)
	}
	if err := n.Receive(now, trackerID, open); err != nil {
		t.Fatal(err)
	}
	r := n.Ready()
	if len(r.Jobs) != 1 {
		t.Fatalf("the Open started %d jobs, want my unit's training", len(r.Jobs))
	}
	mine := r.Jobs[0].(TrainJob)
	// An update for my unit, claimed by the other peer, is ignored.
	payload := []byte("not really an update")
	u := &tracker.Update{Round: round, Step: 0, Base: g, Unit: mine.Unit, Samples: 20, Raw: g, Residual: g,
		Payload: tracker.SumCID(payload), Size: uint64(len(payload)), Data: payload}
	if err := n.Receive(now, "peer-b", u); err != nil {
		t.Fatal(err)
	}
	if n.seen[0][u.Payload].u != nil {
		t.Fatal("an update for a unit not dealt to its sender was recorded")
	}
	// A malformed message is rejected by Validate before anything else.
	bad := *u
	bad.Samples = 0
	if err := n.Receive(now, "peer-b", &bad); err == nil {
		t.Fatal("a malformed update was accepted")
	}
	// After Leave nothing is done.
	n.Leave()
	n.Tick(now.Add(time.Hour))
	if r := n.Ready(); !r.Empty() {
		t.Fatalf("a node that left still acts: %+v", r)
	}
}
