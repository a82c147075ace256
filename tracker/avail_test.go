package tracker

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/tracker/wire"
)

// withholdingUpdate returns an update of peer's copy k whose payload, a
// CID named by seed, nobody serves: the harness stalls its fetch.
func (h *harness) withholdingUpdate(peer string, k unitCopy, seed string) *wire.Update {
	u := h.update(peer, k.unit, k.replica, fmt.Sprintf("raw/%d", k.unit))
	u.Payload, u.Size, u.Data = cidOf("never served/"+seed), 1<<20, nil
	if h.stalled == nil {
		h.stalled = map[cid.Cid]bool{}
	}
	h.stalled[u.Payload] = true
	return u
}

// TestWithheldPayloadDoesNotHaltRound: a member says Hello and sends one
// Update naming a payload that is never served. The step must close
// without it (at the deadline: the author is live, so its copy is
// awaited until then) and finalise, and the round go on.
func TestWithheldPayloadDoesNotHaltRound(t *testing.T) {
	h := newHarness(t, testSpec(3, 0), nil)
	h.join(wire.RoleWorker, "w1", "w2", "x")
	h.tick(0)
	h.take()
	deal := h.deal()
	var bad unitCopy
	for _, k := range slices.SortedFunc(maps.Keys(deal), cmpUnitCopy) {
		if deal[k] == "x" {
			bad = k
			h.mustReceive("x", h.withholdingUpdate("x", k, "1"))
			continue
		}
		h.mustReceive(deal[k], h.update(deal[k], k.unit, k.replica, fmt.Sprintf("raw/%d", k.unit)))
	}
	if h.fetches != len(deal) {
		t.Fatalf("the tracker asked for %d payloads, want %d (one per update)", h.fetches, len(deal))
	}
	h.wantPhase(0, PhaseOpen) // x's copy may still come
	h.tick(h.spec.Deadline)
	h.wantPhase(0, PhaseClosed)
	cl := only[*wire.Close](h.take())
	if len(cl) != 1 {
		t.Fatalf("%d Closes published, want 1", len(cl))
	}
	for _, in := range cl[0].Included {
		if in.Peer == "x" || in.Unit == bad.unit {
			t.Fatalf("the Close includes %+v, whose payload the tracker does not hold", in)
		}
	}
	if len(cl[0].Included) != len(deal)-1 {
		t.Fatalf("the Close includes %d updates, want %d", len(cl[0].Included), len(deal)-1)
	}
	var withheld []Event
	for _, e := range h.takeEvents() {
		if e.Kind == wire.EventWithheld {
			withheld = append(withheld, e)
		}
	}
	if len(withheld) != 1 || withheld[0].Peer != "x" {
		t.Fatalf("withheld events %+v, want one of x", withheld)
	}
	if e := h.tr.Ledger()["x"]; e.Withheld != 1 || e.Excluded {
		t.Fatalf("x's ledger entry %+v, want one update withheld, not excluded yet", e)
	}
	h.commit(cidOf("C1"), "w1", "w2")
	h.wantPhase(1, PhaseOpen)
}

// TestWithholderExcluded: a peer whose payloads are never had, step after
// step, is excluded once it has withheld WithheldLimit updates and more
// than it had included; a payload its driver gave up on closes the step
// without waiting for the deadline.
func TestWithholderExcluded(t *testing.T) {
	h := newHarness(t, testSpec(3, 0), nil)
	h.join(wire.RoleWorker, "w1", "w2", "x")
	h.tick(0)
	for step := range uint64(WithheldLimit) {
		h.take()
		deal := h.deal()
		for _, k := range slices.SortedFunc(maps.Keys(deal), cmpUnitCopy) {
			if deal[k] == "x" {
				u := h.withholdingUpdate("x", k, fmt.Sprint(step))
				h.stalled[u.Payload], h.lost = false, map[cid.Cid]bool{u.Payload: true}
				h.mustReceive("x", u)
				continue
			}
			h.mustReceive(deal[k], h.update(deal[k], k.unit, k.replica, fmt.Sprintf("raw/%d", k.unit)))
		}
		if !slices.Contains(slices.Collect(maps.Values(deal)), "x") {
			t.Fatalf("step %d dealt x nothing", step)
		}
		h.tick(time.Second) // the payload given up on is awaited no longer
		h.wantPhase(step, PhaseClosed)
		h.commit(cidOf(fmt.Sprint("C", step+1)), "w1", "w2")
		h.wantPhase(step+1, PhaseOpen)
		if x := slices.Contains(h.current().Members, "x"); x != (step+1 < WithheldLimit) {
			t.Fatalf("step %d: x a member of the next step: %v", step, x)
		}
	}
	e := h.tr.Ledger()["x"]
	if !e.Excluded || !strings.Contains(e.Reason, "withheld payloads") || e.Withheld != WithheldLimit {
		t.Fatalf("x's ledger entry %+v, want excluded for withheld payloads", e)
	}
}

// TestClosedStepDeadline: a closed step that gets no quorum of commits
// is dealt again, as a new attempt, once the deadline has passed since
// it closed; the deadline runs from the persisted ClosedAt, so it holds
// across a restart too.
func TestClosedStepDeadline(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprint("restart=", restart), func(t *testing.T) {
			h := newHarness(t, testSpec(2, 0), nil)
			h.join(wire.RoleWorker, "w1", "w2", "w3")
			h.tick(0)
			h.sendAll()
			h.wantPhase(0, PhaseClosed)
			closedAt := h.tr.st.ClosedAt
			h.commit(cidOf("C1"), "w1") // one of three: no quorum
			h.tick(time.Second)
			if restart {
				h.restart()
				h.settle()
				h.wantPhase(0, PhaseClosed)
				if !h.tr.st.ClosedAt.Equal(closedAt) {
					t.Fatalf("closed at %v after the restart, want %v", h.tr.st.ClosedAt, closedAt)
				}
			}
			h.take()
			h.takeEvents()
			h.tick(closedAt.Add(h.spec.Deadline - time.Second).Sub(h.now))
			h.wantPhase(0, PhaseClosed)
			h.tick(time.Second)
			h.wantPhase(0, PhaseOpen)
			opens := only[*wire.Open](h.take())
			if len(opens) != 1 || opens[0].Step != 0 || opens[0].Attempt != 1 {
				t.Fatalf("published Opens %+v, want step 0 attempt 1", opens)
			}
			var why []string
			for _, e := range h.takeEvents() {
				if e.Kind == wire.EventReopen {
					why = append(why, e.Detail)
				}
			}
			if len(why) != 1 || !strings.Contains(why[0], "no quorum") {
				t.Fatalf("reopen events %q, want one saying there was no quorum", why)
			}
			if st := h.tr.st; st.Close != nil || st.Commits != nil {
				t.Fatalf("the old attempt's Close %v and commits %v are still held", st.Close, st.Commits)
			}
			// The new attempt runs its course.
			h.finishStep(cidOf("C1'"))
			h.wantPhase(1, PhaseOpen)
		})
	}
}

// TestWithholdingDodgesNoDispute: replicas that computed different
// pseudo-gradients are disputed even when one of them withholds its
// payload: withholding is no way around the comparison of replicas.
func TestWithholdingDodgesNoDispute(t *testing.T) {
	h := newHarness(t, testSpec(1, 1), nil)
	h.join(wire.RoleWorker, "w1", "x")
	h.tick(0)
	h.take()
	deal := h.deal()
	if len(deal) != 2 {
		t.Fatalf("%d copies dealt, want a replicated unit", len(deal))
	}
	for _, k := range slices.SortedFunc(maps.Keys(deal), cmpUnitCopy) {
		if deal[k] == "x" {
			u := h.withholdingUpdate("x", k, "1")
			u.Raw = cidOf("another pseudo-gradient")
			h.mustReceive("x", u)
			continue
		}
		h.mustReceive(deal[k], h.update(deal[k], k.unit, k.replica, "raw"))
	}
	h.tick(h.spec.Deadline)
	if n := len(h.tr.st.Disputes); n != 1 {
		t.Fatalf("%d disputes, want the replicas' disagreement disputed", n)
	}
	if d := h.tr.st.Disputes[0]; d.Peers != [2]string{"w1", "x"} {
		t.Fatalf("dispute %+v, want between w1 and x", d)
	}
}

// TestLateCommitOfVoidedClose: a commit of the Close of an attempt that
// was voided (the step dealt again after its deadline passed without a
// quorum) arrives after the new attempt closed: it is refused, and the
// same peer's commit of the new Close still counts.
func TestLateCommitOfVoidedClose(t *testing.T) {
	h := newHarness(t, testSpec(2, 0), nil)
	h.join(wire.RoleWorker, "w1", "w2", "w3")
	h.tick(0)
	h.sendAll()
	h.wantPhase(0, PhaseClosed)
	h.tick(h.spec.Deadline + time.Second) // no quorum: dealt again
	h.wantPhase(0, PhaseOpen)
	h.sendAll()
	h.wantPhase(0, PhaseClosed)
	if h.tr.st.Attempt != 1 {
		t.Fatalf("attempt %d, want 1", h.tr.st.Attempt)
	}
	late := &wire.Commit{Round: h.tr.Round(), Step: 0, Base: h.tr.st.Base, Result: cidOf("C1 of attempt 0")}
	if err := h.tr.Receive(h.now, "w1", late); err == nil || !strings.Contains(err.Error(), "attempt 0") {
		t.Fatalf("a commit of the voided attempt's Close: %v, want it refused", err)
	}
	if len(h.tr.st.Commits) != 0 {
		t.Fatalf("commits %v after a late commit of the voided Close", h.tr.st.Commits)
	}
	h.commit(cidOf("C1"), "w1", "w2", "w3")
	h.wantPhase(1, PhaseOpen)
	if got := h.tr.Finals()[0].Checkpoint; !got.Equals(cidOf("C1")) {
		t.Fatalf("finalised %s, want C1", got)
	}
}
