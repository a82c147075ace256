package node

import (
	"slices"
	"strings"

	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

const trackerID = "12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY"

func testNode(t *testing.T) (*Node, *round.Spec) {
	t.Helper()
	s := round.Defaults()
	s.Model = round.Model{Arch: "mlp", Vocab: 256, Ctx: 16, Dim: 16, Layers: 1, Hidden: 64, Window: 4, Seed: 7}
	s.Dataset = round.Dataset{Builtin: true}
	s.InnerSteps, s.Batch = 5, 4
	s.Inner.LR = 0.01
	s.TargetSamples = 40
	s.Deadline = time.Minute
	s.VerificationRate = 0
	s.Trackers = []string{trackerID}
	n, err := New(Config{ID: "me", Role: wire.RoleWorker, Spec: s, Genesis: content.Sum([]byte("C0"))})
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
	g := content.Sum([]byte("C0"))
	round := s.ID()
	open := &wire.Open{Round: round, Step: 0, Base: g, Members: []string{"me", "peer-b"}, Units: 2}
	if err := n.Receive(now, "peer-b", open); err == nil {
		t.Fatal("an Open from a peer that is not the tracker was accepted")
	}
	other := *open
	other.Round = content.Sum([]byte("another round"))
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
	// An update for my unit, claimed by the other peer, is refused
	// (Validate ignores it: the Open did not deal it that copy).
	payload := []byte("not really an update")
	u := &wire.Update{Round: round, Step: 0, Base: g, Unit: mine.Unit, Samples: 20, Raw: g, Residual: g,
		Payload: content.Sum(payload), Size: uint64(len(payload)), Data: payload}
	if err := n.Receive(now, "peer-b", u); err == nil {
		t.Fatal("an update for a unit not dealt to its sender was accepted")
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

// TestLaggingNodeKeepsItsUnits: a node still fetching the updates of
// step 0 when step 1 opens catches up by fetching C_1, and then trains
// the unit it was dealt in step 1 instead of dropping it (which left the
// tracker waiting for that unit until the step's deadline).
func TestLaggingNodeKeepsItsUnits(t *testing.T) {
	n, s := testNode(t)
	now := time.Unix(1_800_000_000, 0)
	g := content.Sum([]byte("C0"))
	round := s.ID()
	step := func(m wire.Msg) Ready {
		t.Helper()
		if err := n.Receive(now, trackerID, m); err != nil {
			t.Fatal(err)
		}
		return n.Ready()
	}
	step(&wire.Open{Round: round, Step: 0, Base: g, Members: []string{"peer-b"}, Units: 1})
	payload := content.Sum([]byte("peer-b's update"))
	r := step(&wire.Close{Round: round, Step: 0, Base: g, Included: []wire.Included{{Peer: "peer-b", Unit: 0, Payload: payload, Weight: 20}}})
	if len(r.Fetches) != 1 || !r.Fetches[0].CID.Equals(payload) {
		t.Fatalf("the Close fetched %+v, want the included payload", r.Fetches)
	}
	c1 := content.Sum([]byte("C1"))
	r = step(&wire.Open{Round: round, Step: 1, Base: c1, Members: []string{"me"}, Units: 1})
	if len(r.Jobs) != 0 || len(r.Fetches) != 1 || !r.Fetches[0].CID.Equals(c1) || r.Fetches[0].Kind != FetchCheckpoint {
		t.Fatalf("behind at step 0, the Open of step 1 gave jobs %+v and fetches %+v, want the fetch of C_1 alone", r.Jobs, r.Fetches)
	}
	n.Fetched(now, c1, true)
	r = n.Ready()
	if step, head := n.Head(); step != 1 || !head.Equals(c1) {
		t.Fatalf("after fetching C_1 the head is C_%d = %s", step, head)
	}
	if len(r.Jobs) != 1 {
		t.Fatalf("after catching up the node started %+v, want the training of its unit of step 1", r.Jobs)
	}
	if j, ok := r.Jobs[0].(TrainJob); !ok || j.Step != 1 || j.Unit != 0 || !j.Base.Equals(c1) {
		t.Fatalf("after catching up the node started %+v, want unit 0 of step 1 from C_1", r.Jobs[0])
	}
}

// TestResendOnlyToARestartedTracker: an Open seen again in the same
// tracker epoch (republished for a newcomer) makes the worker send
// nothing; seen again in a later epoch (the tracker restarted and may
// have lost it) it sends its update again.
func TestResendOnlyToARestartedTracker(t *testing.T) {
	n, s := testNode(t)
	now := time.Unix(1_800_000_000, 0)
	g := content.Sum([]byte("C0"))
	open := &wire.Open{Round: s.ID(), Step: 0, Base: g, Members: []string{"me"}, Units: 1}
	if err := n.Receive(now, trackerID, open); err != nil {
		t.Fatal(err)
	}
	job := n.Ready().Jobs[0].(TrainJob)
	payload := []byte("my update")
	n.Done(now, Result{Job: job, Update: &wire.Update{Samples: 20, Raw: g, Residual: g,
		Payload: content.Sum(payload), Size: uint64(len(payload)), Data: payload}})
	if r := n.Ready(); len(r.Publish) != 1 || r.Publish[0].Kind() != wire.KindUpdate {
		t.Fatalf("the trained unit published %v, want its update", r.Publish)
	}
	again := *open
	if err := n.Receive(now, trackerID, &again); err != nil {
		t.Fatal(err)
	}
	if r := n.Ready(); len(r.Publish) != 0 {
		t.Fatalf("a republished Open of the same epoch made the node publish %v", r.Publish)
	}
	again.Epoch = 1
	if err := n.Receive(now, trackerID, &again); err != nil {
		t.Fatal(err)
	}
	if r := n.Ready(); len(r.Publish) != 1 || r.Publish[0].Kind() != wire.KindUpdate {
		t.Fatalf("the Open of a restarted tracker made the node publish %v, want its update again", r.Publish)
	}
	if err := n.Receive(now, trackerID, &again); err != nil {
		t.Fatal(err)
	}
	if r := n.Ready(); len(r.Publish) != 0 {
		t.Fatalf("a second Open of epoch 1 made the node publish %v", r.Publish)
	}
}

// TestNodeLearnsExclusions: the peers an Open lists as excluded are no
// longer heard (but for their Hellos): their commits name no provider and
// their updates are not recorded. The latest Open's list is the one that
// counts, and a node that finds itself on it says so.
func TestNodeLearnsExclusions(t *testing.T) {
	n, s := testNode(t)
	now := time.Unix(1_800_000_000, 0)
	g := content.Sum([]byte("C0"))
	round := s.ID()
	receive := func(from string, m wire.Msg) error {
		t.Helper()
		err := n.Receive(now, from, m)
		n.Ready()
		return err
	}
	c1 := content.Sum([]byte("C1"))
	commit := &wire.Commit{Round: round, Step: 0, Base: g, Result: c1}
	if err := receive("liar", commit); err != nil {
		t.Fatalf("a commit from a peer in good standing was refused: %v", err)
	}
	if !slices.Contains(n.providers[c1], "liar") {
		t.Fatal("a commit from a peer in good standing did not make it a provider")
	}
	open := &wire.Open{Round: round, Step: 0, Attempt: 1, Base: g, Members: []string{"me", "peer-b"}, Units: 2, Excluded: []string{"cheat", "liar"}}
	if err := receive(trackerID, open); err != nil {
		t.Fatal(err)
	}
	if !n.Excluded("liar") || !n.Excluded("cheat") || n.Excluded("peer-b") {
		t.Fatalf("after an Open excluding cheat and liar: Excluded(liar) %v, Excluded(cheat) %v, Excluded(peer-b) %v",
			n.Excluded("liar"), n.Excluded("cheat"), n.Excluded("peer-b"))
	}
	c1b := content.Sum([]byte("C1 of another"))
	if err := receive("cheat", &wire.Commit{Round: round, Step: 0, Base: g, Result: c1b}); err == nil {
		t.Fatal("a commit from an excluded peer was accepted")
	}
	if len(n.providers[c1b]) != 0 {
		t.Fatal("a commit from an excluded peer made it a provider")
	}
	payload := []byte("an update")
	u := &wire.Update{Round: round, Step: 1, Base: c1, Unit: 0, Samples: 20, Raw: g, Residual: g,
		Payload: content.Sum(payload), Size: uint64(len(payload)), Data: payload}
	if err := receive("liar", u); err == nil {
		t.Fatal("an update from an excluded peer was accepted")
	}
	if _, seen := n.seen[1][u.Payload]; seen {
		t.Fatal("an update from an excluded peer was recorded")
	}
	if err := receive("liar", &wire.Hello{Round: round, Role: wire.RoleWorker, Time: 1}); err != nil {
		t.Fatalf("a Hello from an excluded peer was refused: %v", err)
	}
	// A stale Open (an earlier attempt) says nothing new; the next one does.
	if err := receive(trackerID, &wire.Open{Round: round, Step: 0, Base: g, Members: []string{"me"}, Units: 1}); err != nil {
		t.Fatal(err)
	}
	if !n.Excluded("liar") {
		t.Fatal("a stale Open without the list made the node forget the exclusions")
	}
	next := &wire.Open{Round: round, Step: 0, Attempt: 2, Base: g, Members: []string{"peer-b"}, Units: 1, Excluded: []string{"liar", "me"}}
	if err := n.Receive(now, trackerID, next); err != nil {
		t.Fatal(err)
	}
	r := n.Ready()
	if n.Excluded("cheat") || !n.Excluded("liar") {
		t.Fatal("the latest Open's list does not replace the earlier one")
	}
	if !slices.ContainsFunc(r.Events, func(e Event) bool { return e.Kind == "excluded" }) {
		t.Fatalf("a node that learns it is excluded says nothing: %+v", r.Events)
	}
}

// TestGenesisMissing: a node whose store lacks the genesis the round
// names (a fine-tuning round's base) fetches it first, trains nothing
// until it is there, and then reports it as its head.
func TestGenesisMissing(t *testing.T) {
	_, s := testNode(t)
	base := content.Sum([]byte("an imported base"))
	n, err := New(Config{ID: "me", Role: wire.RoleWorker, Spec: s, Genesis: base, GenesisMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	r := n.Ready()
	if len(r.Fetches) != 1 || !r.Fetches[0].CID.Equals(base) || r.Fetches[0].Kind != FetchCheckpoint {
		t.Fatalf("a node without its genesis asked for %+v, want the genesis checkpoint", r.Fetches)
	}
	if err := n.Receive(now, trackerID, &wire.Open{Round: s.ID(), Step: 0, Base: base, Members: []string{"me"}, Units: 1}); err != nil {
		t.Fatal(err)
	}
	if r = n.Ready(); len(r.Jobs) != 0 {
		t.Fatalf("the node started %+v before it held the genesis", r.Jobs)
	}
	n.Fetched(now, base, true)
	r = n.Ready()
	if !r.HeadChanged || !r.Head.Equals(base) || r.HeadStep != 0 {
		t.Fatalf("after the fetch the head is C_%d = %s (changed %v), want the genesis", r.HeadStep, r.Head, r.HeadChanged)
	}
	if len(r.Jobs) != 1 {
		t.Fatalf("after the fetch the node started %+v, want its unit", r.Jobs)
	}
}

// TestCredit: a node is credited with a unit's samples once another
// replica's update of the unit names the same raw pseudo-gradient, and
// not for a replica that disagrees.
func TestCredit(t *testing.T) {
	_, s := testNode(t)
	s.VerificationRate = 1 // every unit on two peers
	g := content.Sum([]byte("C0"))
	n, err := New(Config{ID: "me", Role: wire.RoleWorker, Spec: s, Genesis: g})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	o := &wire.Open{Round: s.ID(), Step: 0, Base: g, Members: []string{"me", "peer-b"}, Units: 2}
	if err := n.Receive(now, trackerID, o); err != nil {
		t.Fatal(err)
	}
	r := n.Ready()
	var mine []TrainJob
	for _, j := range r.Jobs {
		if tj, ok := j.(TrainJob); ok {
			mine = append(mine, tj)
		}
	}
	if len(mine) == 0 {
		t.Fatal("the deal gave this node no unit")
	}
	j := mine[0]
	raw := content.Sum([]byte("raw"))
	n.Done(now, Result{Job: j, Update: &wire.Update{Samples: 20, Loss: 1, Raw: raw, Residual: content.Sum([]byte("res")), Payload: content.Sum([]byte("p-me")), Size: 4}})
	if n.Credit() != 0 {
		t.Fatalf("credited %d before any replica confirmed", n.Credit())
	}
	partner := func(raw cid.Cid, payload string) *wire.Update {
		return &wire.Update{Round: s.ID(), Step: 0, Attempt: j.Attempt, Base: g, Unit: j.Unit, Replica: 1 - j.Replica, Samples: 20, Loss: 1,
			Raw: raw, Residual: content.Sum([]byte("res-b")), Payload: content.Sum([]byte(payload)), Size: 4}
	}
	n.onUpdate("peer-b", partner(content.Sum([]byte("another raw")), "p-b1"))
	if n.Credit() != 0 {
		t.Fatalf("credited %d for a replica that disagrees", n.Credit())
	}
	n.onUpdate("peer-b", partner(raw, "p-b2"))
	n.onUpdate("peer-b", partner(raw, "p-b3"))
	if n.Credit() != 20 {
		t.Fatalf("credit %d, want the unit's 20 samples, once", n.Credit())
	}
}

// TestNodeFollowsGroupLeader: in a round coordinated by a group of
// trackers, the node takes Opens and Closes from any member of the
// group at the highest term it has seen, and refuses a deposed
// leader's (a lower term) and a non-member's.
func TestNodeFollowsGroupLeader(t *testing.T) {
	const (
		trackerB = "12D3KooWPhE3uLopstLtMMJpRoK2NaCvW3FMs4grT9PuWjZB945h"
		trackerC = "12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NZ"
	)
	s := round.Defaults()
	s.Model = round.Model{Arch: "mlp", Vocab: 256, Ctx: 16, Dim: 16, Layers: 1, Hidden: 64, Window: 4, Seed: 7}
	s.Dataset = round.Dataset{Builtin: true}
	s.InnerSteps, s.Batch = 5, 4
	s.Inner.LR = 0.01
	s.TargetSamples = 40
	s.Deadline = time.Minute
	s.VerificationRate = 0
	s.Trackers = []string{trackerID, trackerB}
	s.TrackerAddrs = []string{"/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/2"}
	g := content.Sum([]byte("C0"))
	n, err := New(Config{ID: "me", Role: wire.RoleWorker, Spec: s, Genesis: g})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	open := &wire.Open{Round: s.ID(), Step: 0, Base: g, Members: []string{"me", "peer-b"}, Units: 2, Term: 3}
	if err := n.Receive(now, trackerC, open); err == nil {
		t.Fatal("an Open from a peer outside the group was accepted")
	}
	if err := n.Receive(now, trackerB, open); err != nil {
		t.Fatalf("the leader's Open: %v", err)
	}
	if n.term != 3 {
		t.Fatalf("term %d after an Open of term 3", n.term)
	}
	n.Ready()
	old := *open
	old.Term = 2
	if err := n.Receive(now, trackerID, &old); err == nil || !strings.Contains(err.Error(), "deposed") {
		t.Fatalf("an Open of a deposed leader: %v", err)
	}
	cl := &wire.Close{Round: s.ID(), Step: 0, Base: g, Included: []wire.Included{{Peer: "peer-b", Unit: 1, Payload: g, Weight: 20}}, Term: 2}
	if err := n.Receive(now, trackerID, cl); err == nil || !strings.Contains(err.Error(), "deposed") {
		t.Fatalf("a Close of a deposed leader: %v", err)
	}
	newer := *open
	newer.Term = 4
	if err := n.Receive(now, trackerID, &newer); err != nil || n.term != 4 {
		t.Fatalf("the Open of the next leader: %v (term %d)", err, n.term)
	}
	payload := []byte("an update")
	u := &wire.Update{Round: s.ID(), Step: 0, Base: g, Unit: 0, Samples: 20, Raw: g, Residual: g,
		Payload: content.Sum(payload), Size: uint64(len(payload)), Data: payload}
	if r, _ := wire.Validate(n, trackerB, u); r != wire.Reject {
		t.Fatalf("an Update from a member of the group: %s, want reject", r)
	}
}
