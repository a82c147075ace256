package tracker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shoal-network/shoal/tracker/wire"
)

// TestReplayedHellos replays a departed peer's Hellos, as anyone who saw
// them on the gossip topic can: an old one half an hour later, and an
// older one after a newer one. Neither may count the peer as live.
func TestReplayedHellos(t *testing.T) {
	h := newHarness(t, testSpec(4, 0), nil)
	h.join(wire.RoleWorker, "w1")
	h.tick(time.Second)
	step, head := h.tr.Head()
	first := &wire.Hello{Round: h.tr.Round(), Role: wire.RoleObserver, Step: step, Head: head, Time: unixTime(h.now)}
	h.mustReceive("w2", first)
	h.tick(10 * time.Second)
	last := &wire.Hello{Round: h.tr.Round(), Role: wire.RoleObserver, Step: step, Head: head, Time: unixTime(h.now)}
	h.mustReceive("w2", last)
	// An older Hello after a newer one: refused.
	if err := h.receive("w2", first); err == nil {
		t.Error("a Hello older than the last one heard from its peer was heard")
	}
	// w2 leaves; half an hour later its last Hello comes again.
	h.tick(30 * time.Minute)
	if slices.Contains(h.tr.Members(wire.RoleObserver, h.now), "w2") {
		t.Fatal("w2 is live after half an hour of silence")
	}
	if err := h.receive("w2", last); err == nil {
		t.Error("a Hello sent half an hour ago was heard")
	}
	if got := h.tr.Members(wire.RoleObserver, h.now); slices.Contains(got, "w2") {
		t.Errorf("a replayed Hello made the departed w2 live again: observers %v", got)
	}
	// A Hello from the far future is refused too; w2's own, sent now, is heard.
	future := *last
	future.Time = unixTime(h.now.Add(time.Hour))
	if err := h.receive("w2", &future); err == nil {
		t.Error("a Hello sent an hour ahead of the tracker's clock was heard")
	}
	now := *last
	now.Time = unixTime(h.now)
	h.mustReceive("w2", &now)
	if got := h.tr.Members(wire.RoleObserver, h.now); !slices.Contains(got, "w2") {
		t.Errorf("w2's fresh Hello was not heard: observers %v", got)
	}
}

// TestSybilQuorumTakeover: in an open round with one honest anchor (the
// round's own observer) and one honest worker, 20 fresh peer IDs say
// Hello as observers and commit an attacker's checkpoint before the
// honest peers commit theirs. Fresh IDs have no standing: the attacker's
// result is not finalised, the honest one is.
func TestSybilQuorumTakeover(t *testing.T) {
	h := newHarness(t, testSpec(2, 0), nil)
	h.anchors = []string{"anchor"}
	h.restart()
	h.settle()
	h.join(wire.RoleObserver, "anchor")
	h.join(wire.RoleWorker, "w1")
	h.tick(time.Second)
	h.sendAll()
	h.wantPhase(0, PhaseClosed)
	var sybils []string
	for i := range 20 {
		sybils = append(sybils, fmt.Sprintf("sybil-%02d", i))
	}
	h.join(wire.RoleObserver, sybils...)
	attack, honest := cidOf("poisoned"), cidOf("C1")
	h.commit(attack, sybils...)
	h.tick(time.Second)
	if s, _ := h.tr.Step(); s != 0 {
		t.Fatalf("20 fresh peer IDs finalised %s", h.tr.Finals()[0].Checkpoint)
	}
	h.commit(honest, "w1", "anchor")
	h.wantPhase(1, PhaseOpen)
	f := h.tr.Finals()[0]
	if !f.Checkpoint.Equals(honest) {
		t.Fatalf("finalised %s, want the honest %s", f.Checkpoint, honest)
	}
	for _, p := range f.Providers {
		if slices.Contains(sybils, p) {
			t.Errorf("the Final names %s, a fresh ID without standing, as provider", p)
		}
	}
}

// TestSilentSybilsDoNotStall: 3,000 peer IDs say Hello and nothing
// more. They weigh nothing in the quorum, so the honest workers'
// commits still finalise the step, with no anchor (the bootstrap
// quorum: the workers whose updates the step includes) and with one.
func TestSilentSybilsDoNotStall(t *testing.T) {
	for _, anchored := range []bool{false, true} {
		t.Run(fmt.Sprintf("anchored=%v", anchored), func(t *testing.T) {
			h := newHarness(t, testSpec(2, 0), nil)
			honest := []string{"w1", "w2"}
			if anchored {
				h.anchors = []string{"anchor"}
				h.restart()
				h.settle()
				h.join(wire.RoleObserver, "anchor")
				honest = append(honest, "anchor")
			}
			h.join(wire.RoleWorker, "w1", "w2")
			h.tick(time.Second)
			h.sendAll()
			h.wantPhase(0, PhaseClosed)
			for i := range 3000 {
				role := wire.RoleObserver
				if i%2 == 0 {
					role = wire.RoleWorker
				}
				h.join(role, fmt.Sprintf("sybil-%04d", i))
			}
			h.commit(cidOf("C1"), honest...)
			h.tick(time.Second)
			h.wantPhase(1, PhaseOpen)
		})
	}
}
