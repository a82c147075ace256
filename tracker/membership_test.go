package tracker

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/shoal-network/shoal/tracker/round"
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
	h.commit(cidOf("C2"), "w2", "w3")
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

// checkLiveness checks the liveness counts against a scan of the
// members at the index's clock.
func checkLiveness(t *testing.T, tr *Tracker) {
	t.Helper()
	lv := &tr.lv
	window := round.Liveness(tr.spec)
	var workers, observers, boot int
	var standing int64
	voters, bootVoters := map[string]int64{}, map[string]int{}
	for p, m := range tr.members {
		live := lv.clock.Sub(m.lastSeen) <= window
		if m.live != live {
			t.Fatalf("%s: live %v in the index, %v at its clock", p, m.live, live)
		}
		if !live || tr.Excluded(p) {
			continue
		}
		switch m.role {
		case wire.RoleWorker:
			workers++
		case wire.RoleObserver:
			observers++
		}
		standing += tr.weight(p)
		r, ok := tr.st.Commits[p]
		if ok {
			voters[r] += tr.weight(p)
		}
		if lv.included[p] {
			boot++
			if ok {
				bootVoters[r]++
			}
		}
	}
	if standing != lv.standing || boot != lv.boot {
		t.Fatalf("index counts standing %d and %d included live, a scan %d and %d", lv.standing, lv.boot, standing, boot)
	}
	for r, n := range lv.bootVoters {
		if n != bootVoters[r] {
			t.Fatalf("index counts %d live included voters of %s, a scan %d", n, r, bootVoters[r])
		}
	}
	if workers != lv.workers || observers != lv.observers {
		t.Fatalf("index counts %d workers and %d observers live, a scan %d and %d", lv.workers, lv.observers, workers, observers)
	}
	for r, n := range lv.voters {
		if n != voters[r] {
			t.Fatalf("index counts %d live voters of %s, a scan %d", n, r, voters[r])
		}
	}
	n, seenLive := 0, false
	var prev *member
	for m := lv.first; m != nil; prev, m = m, m.next {
		n++
		if m.prev != prev || tr.members[m.id] != m {
			t.Fatalf("list broken at %s", m.id)
		}
		if prev != nil && m.lastSeen.Before(prev.lastSeen) {
			t.Fatalf("list out of order at %s", m.id)
		}
		if m == lv.firstLive {
			seenLive = true
		}
		if m.live != seenLive {
			t.Fatalf("%s (live %v) on the wrong side of the first live member", m.id, m.live)
		}
	}
	if lv.last != prev || n != len(tr.members) {
		t.Fatalf("list of %d members, %d known", n, len(tr.members))
	}
}

// TestLivenessCounts drives a tracker with Hellos of random members and
// roles, a clock that now and then goes back, commits, exclusions and
// forgetting, and checks the counts kept as messages arrive against a
// scan after every message.
func TestLivenessCounts(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	h := newHarness(t, testSpec(4, 0.5), nil)
	tr := h.tr
	ids := make([]string, 40)
	for i := range ids {
		ids[i] = fmt.Sprintf("p%02d", i)
	}
	window := round.Liveness(h.spec)
	for i := range 20000 {
		switch k := rng.IntN(100); {
		case k < 60:
			role := wire.RoleWorker
			if rng.IntN(3) == 0 {
				role = wire.RoleObserver
			}
			p := ids[rng.IntN(len(ids))]
			step, head := tr.Head()
			tr.Receive(h.now, p, &wire.Hello{Round: tr.Round(), Role: role, Step: step, Head: head, Time: unixTime(h.now)})
		case k < 80:
			h.now = h.now.Add(time.Duration(rng.Int64N(int64(window / 4))))
		case k < 82:
			h.now = h.now.Add(-time.Duration(rng.Int64N(int64(window / 2))))
		case k < 83:
			h.now = h.now.Add(ForgetAfter / 4)
		case k < 84 && i%5 == 0:
			tr.exclude(ids[rng.IntN(len(ids))], tr.st.Step, "test")
		case k < 95:
			step, _ := tr.Step()
			tr.Receive(h.now, ids[rng.IntN(len(ids))], &wire.Commit{Round: tr.Round(), Step: step, Attempt: tr.st.Attempt, Base: tr.st.Base, Result: cidOf(fmt.Sprint("r", rng.IntN(2)))})
		default:
			if err := tr.Tick(h.now); err != nil {
				t.Fatal(err)
			}
			if _, p := tr.Step(); p == PhaseOpen && rng.IntN(2) == 0 {
				for k, p := range tr.assigned {
					u := h.update(p, k.unit, k.replica, "raw")
					tr.Receive(h.now, p, u)
				}
			}
		}
		readyHeld(tr, h.now)
		checkLiveness(t, tr)
		if got, want := tr.liveCount(tr.lv.clock, true, true), tr.scanLive(tr.lv.clock, true, true); got != want {
			t.Fatalf("%d live members counted, %d scanned", got, want)
		}
	}
	if s, _ := tr.Step(); s == 0 {
		t.Fatal("no step finalised: the traffic did not exercise the commits")
	}
}

// TestReceiveScansNoMembers checks, by counting the members visited,
// that under a running round's traffic (BenchmarkReceive's) no message
// makes the tracker scan its members.
func TestReceiveScansNoMembers(t *testing.T) {
	for _, n := range []int{100, 3000} {
		r := newReceiveBench(t, n)
		r.tr.lv.scanned = 0
		for range 6 * n {
			r.next(t)
		}
		if s := r.tr.lv.scanned; s != 0 {
			t.Errorf("%d members: %d member visits by scans", n, s)
		}
		if steps, _ := r.tr.Step(); steps < 2 {
			t.Errorf("%d members: %d steps, want at least 2", n, steps)
		}
	}
}
