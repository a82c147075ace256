package tracker

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/shoal-network/shoal/tracker/wire"
)

// encodedSize returns the size of the state the storage holds and of the
// tracker's state in memory, encoded.
func (h *harness) encodedSize() (stored, mem int) {
	h.t.Helper()
	st, err := h.store.Load()
	if err != nil {
		h.t.Fatal(err)
	}
	b, err := EncodeState(st)
	if err != nil {
		h.t.Fatal(err)
	}
	m, err := EncodeState(h.tr.st)
	if err != nil {
		h.t.Fatal(err)
	}
	return len(b), len(m)
}

// TestNonMemberCommitsLeaveNoState sends 20,000 commits from peers that
// never said Hello, half for the closed step and half, of another
// result, for a finalised one: each is refused, and none leaves anything
// in the state, persisted or not; the ledger, once the step is
// finalised, holds members alone.
func TestNonMemberCommitsLeaveNoState(t *testing.T) {
	h := newHarness(t, testSpec(2, 0), nil)
	h.join(wire.RoleWorker, "w1", "w2", "w3")
	h.tick(0)
	h.finishStep(cidOf("C1"))
	h.sendAll()
	h.wantPhase(1, PhaseClosed)
	h.commit(cidOf("C2"), "w1")
	h.tick(time.Second)
	stored0, mem0 := h.encodedSize()
	ledger0 := len(h.tr.Ledger())
	accepted := 0
	for i := range 20000 {
		m := &wire.Commit{Round: h.tr.Round(), Step: 1, Base: h.tr.st.Base, Result: cidOf("junk")}
		if i%2 == 1 {
			m.Step, m.Base = 0, genesis
		}
		if err := h.receive(fmt.Sprintf("junk-%05d", i), m); err == nil {
			accepted++
		}
		if i%1000 == 999 {
			h.tick(time.Second)
			stored, mem := h.encodedSize()
			if stored != stored0 || mem != mem0 || len(h.tr.Ledger()) != ledger0 {
				t.Fatalf("after %d commits from non-members: stored state %d bytes (was %d), in memory %d (was %d), %d ledger entries (was %d)",
					i+1, stored, stored0, mem, mem0, len(h.tr.Ledger()), ledger0)
			}
		}
	}
	if accepted > 0 {
		t.Errorf("%d of 20000 commits from peers that never said hello accepted", accepted)
	}
	h.commit(cidOf("C2"), "w2")
	h.wantPhase(2, PhaseOpen)
	h.tick(time.Second)
	st, err := h.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	for p := range st.Ledger {
		if _, ok := h.alive[p]; !ok {
			t.Fatalf("persisted ledger holds %v, not only members", slices.Sorted(maps.Keys(st.Ledger)))
		}
	}
}
