package tracker

import (
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
