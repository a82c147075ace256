package tracker

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/shoal-network/shoal/tracker/round"
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

// TestAdmissionRateLimited: in an open round, 1,000 fresh worker IDs say
// Hello before three honest newcomers. The step's Open lists every
// established worker and at most 8 newcomers (a quarter of 4 is less),
// the same whatever the order of the Hellos, and drawn afresh at every
// attempt.
func TestAdmissionRateLimited(t *testing.T) {
	established := []string{"e1", "e2", "e3", "e4"}
	var sybils []string
	for i := range 1000 {
		sybils = append(sybils, fmt.Sprintf("sybil-%04d", i))
	}
	honest := []string{"n1", "n2", "n3"}
	open := func(order []string) *wire.Open {
		h := newHarness(t, testSpec(64, 0.5), nil)
		// The established workers have work in finalised steps to
		// their name (two of them verified).
		for i, p := range established {
			h.tr.st.Ledger[p] = &Entry{Units: 3, Samples: 3, Verified: int64(i % 2)}
		}
		h.join(wire.RoleWorker, order...)
		h.tick(time.Second)
		return h.current()
	}
	first := open(slices.Concat(sybils, honest, established))
	newcomers := 0
	for _, p := range first.Members {
		if !slices.Contains(established, p) {
			newcomers++
		}
	}
	for _, p := range established {
		if !slices.Contains(first.Members, p) {
			t.Errorf("established worker %s left out of the Open", p)
		}
	}
	if newcomers != 8 {
		t.Errorf("the Open lists %d newcomers among %d members, want 8", newcomers, len(first.Members))
	}
	again := open(slices.Concat(established, honest, sybils))
	if !slices.Equal(first.Members, again.Members) {
		t.Errorf("the newcomers depend on who spoke first: %d members, then %d others", len(first.Members), len(again.Members))
	}
	// Another attempt of the step draws other newcomers.
	h := newHarness(t, testSpec(64, 0.5), nil)
	for _, p := range established {
		h.tr.st.Ledger[p] = &Entry{Units: 3, Samples: 3}
	}
	h.join(wire.RoleWorker, slices.Concat(sybils, honest, established)...)
	h.tick(time.Second)
	o0 := slices.Clone(h.current().Members)
	h.tick(h.spec.Deadline) // nothing arrives: the step is dealt again
	if o1 := h.current(); o1.Attempt != 1 || slices.Equal(o0, o1.Members) {
		t.Errorf("attempt %d lists the same %d members as attempt 0", o1.Attempt, len(o1.Members))
	}
}

// TestOpenBoundedByMembers: 100,000 live workers, with peer IDs of the
// usual length, in a closed round whose steps have more unit copies than
// that. The Open still fits the gossip layer's message limit; and with
// few units, it lists no more members than the step has unit copies.
func TestOpenBoundedByMembers(t *testing.T) {
	for _, c := range []struct {
		units, maxMembers int
	}{
		{200_000, 0}, // bounded by size
		{10, 15},     // by unit copies: 10 units, 5 of them replicated
	} {
		t.Run(fmt.Sprint(c.units, "units"), func(t *testing.T) {
			spec := testSpec(c.units, 0.5)
			spec.Admission = round.AdmissionClosed
			h := newHarness(t, spec, nil)
			h.admit = func(string, []byte, time.Time) error { return nil }
			h.restart()
			h.settle()
			step, head := h.tr.Head()
			for i := range 100_000 {
				// 52 characters, as an Ed25519 libp2p peer ID.
				p := fmt.Sprintf("12D3KooW%044d", i)
				h.mustReceive(p, &wire.Hello{Round: h.tr.Round(), Role: wire.RoleWorker, Step: step, Head: head, Time: unixTime(h.now)})
			}
			if err := h.tr.Tick(h.now); err != nil {
				t.Fatal(err)
			}
			o := h.current()
			b, err := wire.Marshal(o)
			if err != nil {
				t.Fatalf("the Open of %d members does not encode: %v", len(o.Members), err)
			}
			if len(b) > DefaultMaxOpenSize {
				t.Errorf("the Open of %d members is %d bytes, over the gossip limit of %d", len(o.Members), len(b), DefaultMaxOpenSize)
			}
			if c.maxMembers > 0 && len(o.Members) > c.maxMembers {
				t.Errorf("the Open lists %d members for %d unit copies", len(o.Members), c.maxMembers)
			}
			t.Logf("%d members, %d units, %d bytes", len(o.Members), o.Units, len(b))
		})
	}
}

// TestSmallest checks the heap selection of a step's newcomers against
// a full sort.
func TestSmallest(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		xs := make([]int, rng.IntN(100))
		for i := range xs {
			xs[i] = rng.IntN(50)
		}
		k := 1 + rng.IntN(20)
		want := slices.Sorted(slices.Values(xs))
		want = want[:min(k, len(want))]
		if got := smallest(slices.Clone(xs), k, cmp.Compare[int]); !slices.Equal(got, want) {
			t.Fatalf("smallest %d of %v: %v, want %v", k, xs, got, want)
		}
	}
}
