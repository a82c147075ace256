package tracker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// lateSpec is testSpec with units of 4 samples and late updates at
// weight 0.5 (2 samples each).
func lateSpec(units int, rate, weight float64) *round.Spec {
	s := testSpec(units, rate)
	s.InnerSteps = 4
	s.TargetSamples = 4 * units
	s.LateWeight = weight
	return s
}

// stepUpdate is h.update for a copy of an earlier step's Open o.
func stepUpdate(h *harness, o *wire.Open, peer string, unit uint32, replica uint8, raw string) *wire.Update {
	data := fmt.Appendf(nil, "%s/%d/%d/%d/%d", peer, o.Step, o.Attempt, unit, replica)
	return &wire.Update{Round: h.tr.Round(), Step: o.Step, Attempt: o.Attempt, Base: o.Base, Unit: unit, Replica: replica,
		Samples: uint32(h.spec.UnitSamples()), Loss: 2.5, Raw: cidOf(raw), Residual: cidOf("residual/" + peer),
		Payload: content.Sum(data), Size: uint64(len(data)), Data: data}
}

// lateStep opens step 0 with workers w1 and w2 and two units, sends
// unit 0's update and lets the deadline close the step without unit 1:
// it returns the step's Open and the peer unit 1 was dealt to.
func lateStep(t *testing.T, h *harness) (*wire.Open, string) {
	t.Helper()
	h.join(wire.RoleWorker, "w1", "w2")
	h.tick(0)
	o := h.current()
	deal := h.deal()
	h.mustReceive(deal[unitCopy{0, 0}], h.update(deal[unitCopy{0, 0}], 0, 0, "raw/0"))
	h.tick(h.spec.Deadline)
	h.wantPhase(0, PhaseClosed)
	cl := only[*wire.Close](h.take())
	if len(cl) != 1 || len(cl[0].Included) != 1 || cl[0].Included[0].Unit != 0 {
		t.Fatalf("step 0 closed with %+v, want unit 0 alone", cl)
	}
	return o, deal[unitCopy{1, 0}]
}

// TestLateUpdateMerged: an update that comes after its step closed joins
// the next step's Close at its samples × late_weight, across a restart
// of the tracker; one later still, or in a round without late updates,
// is refused.
func TestLateUpdateMerged(t *testing.T) {
	h := newHarness(t, lateSpec(2, 0, 0.5), nil)
	o0, slow := lateStep(t, h)
	late := stepUpdate(h, o0, slow, 1, 0, "raw/late")
	h.mustReceive(slow, late) // while step 0 waits for its commits
	if err := h.receive(slow, late); err != nil {
		t.Fatalf("a repeat of the late update: %v", err)
	}
	other := stepUpdate(h, o0, slow, 1, 0, "raw/other")
	other.Payload = cidOf("another payload")
	if err := h.receive(slow, other); err == nil {
		t.Error("a second, different late update of the same copy was accepted")
	}
	if err := h.receive("w9", stepUpdate(h, o0, "w9", 1, 0, "raw/late")); err == nil {
		t.Error("a late update of a copy dealt to another peer was accepted")
	}
	h.commit(cidOf("C1"), "w1", "w2")
	h.wantPhase(1, PhaseOpen)
	h.restart()
	h.settle()
	h.wantPhase(1, PhaseOpen)
	h.sendAll()
	h.wantPhase(1, PhaseClosed)
	cl := only[*wire.Close](h.take())
	if len(cl) != 1 {
		t.Fatalf("%d Closes of step 1, want 1", len(cl))
	}
	var merged []wire.Included
	for _, in := range cl[0].Included {
		if in.Payload.Equals(late.Payload) {
			merged = append(merged, in)
		} else if in.Weight != 4 {
			t.Errorf("step 1's own update %+v has weight %d, want its 4 samples", in, in.Weight)
		}
	}
	if len(cl[0].Included) != 3 || len(merged) != 1 || merged[0].Weight != 2 || merged[0].Peer != slow || merged[0].Unit != 1 {
		t.Fatalf("step 1 includes %+v, want its two units and step 0's late unit 1 of %s at weight 2", cl[0].Included, slow)
	}
	if !slices.ContainsFunc(h.takeEvents(), func(e Event) bool { return e.Kind == wire.EventMerge }) {
		t.Error("no merge event")
	}
	// Step 0's deal is gone once step 1 closed: later still is refused.
	if err := h.receive(slow, stepUpdate(h, o0, slow, 0, 0, "raw/0")); err == nil {
		t.Error("an update of step 0 accepted once step 1 closed")
	}
	h.commit(cidOf("C2"), "w1", "w2")
	h.wantPhase(2, PhaseOpen)
	if err := h.receive(slow, stepUpdate(h, o0, slow, 0, 0, "raw/0")); err == nil {
		t.Error("an update of step 0 accepted at step 2")
	}
	h.checkState()

	// Without late_weight the late update is refused, as it always was.
	h = newHarness(t, lateSpec(2, 0, 0), nil)
	o0, slow = lateStep(t, h)
	if err := h.receive(slow, stepUpdate(h, o0, slow, 1, 0, "raw/late")); err == nil {
		t.Error("a late update accepted in a round without late_weight")
	}
}

// TestLateReplicaLiar: a late replica whose raw pseudo-gradient differs
// from its partner's, which the Close included, is disputed; the third
// computation excludes it and it joins no Close.
func TestLateReplicaLiar(t *testing.T) {
	h := newHarness(t, lateSpec(2, 1, 0.5), nil)
	h.join(wire.RoleWorker, "w1", "w2", "w3")
	h.tick(0)
	o0 := h.current()
	deal := h.deal()
	for _, k := range []unitCopy{{0, 0}, {0, 1}, {1, 0}} {
		h.mustReceive(deal[k], h.update(deal[k], k.unit, k.replica, fmt.Sprintf("raw/%d", k.unit)))
	}
	h.tick(h.spec.Deadline)
	h.wantPhase(0, PhaseClosed)
	h.take()
	liar := deal[unitCopy{1, 1}]
	lie := stepUpdate(h, o0, liar, 1, 1, "raw/lie")
	h.mustReceive(liar, lie)
	ds := disputeList(h.tr.st.Disputes)
	if len(ds) != 1 || ds[0].Step != 0 || ds[0].Unit != 1 || !ds[0].Base.Equals(genesis) {
		t.Fatalf("disputes %+v, want one of step 0 unit 1", ds)
	}
	h.commit(cidOf("C1"), "w1", "w2", "w3")
	opens := only[*wire.Open](h.take())
	checks := disputeChecks(opens[len(opens)-1].Checks)
	if len(checks) != 1 || checks[0].Step != 0 || checks[0].Unit != 1 {
		t.Fatalf("step 1's Open checks %+v, want step 0 unit 1", checks)
	}
	v := &wire.Verdict{Round: h.spec.ID(), Step: 0, Unit: 1, Checked: true, Raw: cidOf("raw/1"), Bad: []string{liar}}
	h.mustReceive(checks[0].Checker, v)
	if !h.tr.Ledger()[liar].Excluded {
		t.Fatalf("the late liar %s is not excluded", liar)
	}
	delete(h.alive, liar)
	if cl := h.tr.st.Close; cl != nil {
		t.Fatalf("step 1 closed already: %+v", cl)
	}
	for _, k := range []unitCopy{{0, 0}, {0, 1}, {1, 0}, {1, 1}} {
		if p := h.deal()[k]; p != "" && p != liar {
			h.mustReceive(p, h.update(p, k.unit, k.replica, fmt.Sprintf("raw/1-%d", k.unit)))
		}
	}
	h.tick(h.spec.Deadline)
	for _, c := range only[*wire.Close](h.take()) {
		if slices.ContainsFunc(c.Included, func(in wire.Included) bool { return in.Payload.Equals(lie.Payload) }) {
			t.Fatalf("Close %+v includes the liar's late update", c)
		}
	}
}

// replicatedLateStep opens step 0 with every unit replicated on workers
// w1 to w3 and lets the deadline close it with unit 0 alone, its replicas
// agreeing: it returns the harness, the step's Open and its deal.
func replicatedLateStep(t *testing.T) (*harness, *wire.Open, map[unitCopy]string) {
	t.Helper()
	return replicatedLateStepWith(t, nil)
}

// replicatedLateStepWith is replicatedLateStep that calls more, if not
// nil, before the deadline passes.
func replicatedLateStepWith(t *testing.T, more func(*harness, map[unitCopy]string)) (*harness, *wire.Open, map[unitCopy]string) {
	t.Helper()
	h := newHarness(t, lateSpec(2, 1, 0.5), nil)
	h.join(wire.RoleWorker, "w1", "w2", "w3")
	h.tick(0)
	o0 := h.current()
	deal := h.deal()
	for _, k := range []unitCopy{{0, 0}, {0, 1}} {
		h.mustReceive(deal[k], h.update(deal[k], k.unit, k.replica, "raw/0"))
	}
	if more != nil {
		more(h, deal)
	}
	h.tick(h.spec.Deadline)
	h.wantPhase(0, PhaseClosed)
	return h, o0, deal
}

// TestLateRepliesDisagree: replicas of a unit that both come late and
// disagree are disputed when the next step closes and left out of it.
func TestLateRepliesDisagree(t *testing.T) {
	h, o0, deal := replicatedLateStep(t)
	h.wantPhase(0, PhaseClosed)
	a := stepUpdate(h, o0, deal[unitCopy{1, 0}], 1, 0, "raw/1")
	b := stepUpdate(h, o0, deal[unitCopy{1, 1}], 1, 1, "raw/lie")
	h.mustReceive(deal[unitCopy{1, 0}], a)
	h.mustReceive(deal[unitCopy{1, 1}], b)
	wantUnitDisputed(t, h, a, b)
}

// wantUnitDisputed finishes step 0 and closes step 1, and checks that
// unit 1 of step 0 is disputed and that step 1 includes none of ups,
// its replicas' updates.
func wantUnitDisputed(t *testing.T, h *harness, ups ...*wire.Update) {
	t.Helper()
	h.commit(cidOf("C1"), "w1", "w2", "w3")
	h.take()
	h.sendAll()
	h.wantPhase(1, PhaseClosed)
	cl := only[*wire.Close](h.take())[0]
	for _, in := range cl.Included {
		for _, u := range ups {
			if in.Payload.Equals(u.Payload) {
				t.Fatalf("step 1 includes %+v, a replica of a unit whose replicas disagree", in)
			}
		}
	}
	ds := disputeList(h.tr.st.Disputes)
	if !slices.ContainsFunc(ds, func(d *Dispute) bool { return d.Step == 0 && d.Unit == 1 && d.Base.Equals(genesis) }) {
		t.Fatalf("disputes %+v, want one of step 0 unit 1", ds)
	}
}

// TestLateUpdateAudited: a merged late update that no replica confirmed
// is audited as an update of its own step, from its own base.
func TestLateUpdateAudited(t *testing.T) {
	h, o0, deal := replicatedLateStep(t)
	late := stepUpdate(h, o0, deal[unitCopy{1, 0}], 1, 0, "raw/1")
	h.mustReceive(deal[unitCopy{1, 0}], late)
	h.commit(cidOf("C1"), "w1", "w2", "w3")
	h.take()
	h.sendAll()
	h.wantPhase(1, PhaseClosed)
	cl := only[*wire.Close](h.take())[0]
	if !slices.ContainsFunc(cl.Included, func(in wire.Included) bool { return in.Payload.Equals(late.Payload) }) {
		t.Fatalf("step 1 includes %+v, not the late update", cl.Included)
	}
	h.commit(cidOf("C2"), "w1", "w2", "w3")
	h.wantPhase(2, PhaseOpen)
	var audit *Dispute
	for _, d := range h.tr.st.Disputes {
		if d.Audit && d.Peers[0] == deal[unitCopy{1, 0}] && d.Unit == 1 && d.Step == 0 {
			audit = d
		}
	}
	if audit == nil || !audit.Base.Equals(genesis) || audit.Raws[0] != late.Raw.String() {
		t.Fatalf("audits %+v, want one of the late update as step 0 unit 1 from the genesis", h.tr.st.Disputes)
	}
}

// TestQuorumClosing: a step whose complete units reach the quorum closes
// the grace window later, across a restart, without waiting for the rest
// until its deadline; the rest then joins the next step late. Without a
// quorum it waits.
func TestQuorumClosing(t *testing.T) {
	for _, quorum := range []float64{0, 0.5} {
		spec := lateSpec(4, 0, 0.5)
		spec.Quorum, spec.Grace = quorum, 10*time.Second
		h := newHarness(t, spec, nil)
		h.join(wire.RoleWorker, "w1", "w2", "w3", "w4")
		h.tick(0)
		o0 := h.current()
		deal := h.deal()
		for u := range uint32(2) {
			h.mustReceive(deal[unitCopy{u, 0}], h.update(deal[unitCopy{u, 0}], u, 0, fmt.Sprintf("raw/%d", u)))
		}
		h.tick(6 * time.Second)
		h.wantPhase(0, PhaseOpen)
		h.restart()
		h.settle() // 12 s: the grace has passed, counted from before the restart
		if quorum == 0 {
			h.wantPhase(0, PhaseOpen)
			h.tick(h.spec.Deadline)
			h.wantPhase(0, PhaseClosed)
			continue
		}
		h.wantPhase(0, PhaseClosed)
		if d := h.now.Sub(t0); d >= spec.Deadline {
			t.Fatalf("closed after %v, the deadline", d)
		}
		for u := uint32(2); u < 4; u++ {
			h.mustReceive(deal[unitCopy{u, 0}], stepUpdate(h, o0, deal[unitCopy{u, 0}], u, 0, fmt.Sprintf("raw/%d", u)))
		}
		h.commit(cidOf("C1"), "w1", "w2", "w3", "w4")
		h.take()
		h.sendAll()
		h.wantPhase(1, PhaseClosed)
		cl := only[*wire.Close](h.take())[0]
		late := 0
		for _, in := range cl.Included {
			if in.Weight == 2 {
				late++
			}
		}
		if len(cl.Included) != 6 || late != 2 {
			t.Fatalf("step 1 includes %+v, want its 4 units and step 0's 2 late ones at weight 2", cl.Included)
		}
	}
}

// TestLateReplicaAgainstWithheldPartner: a late replica is compared with
// its partner's update that came in time but whose payload was not held
// (so the Close left it out): if they differ, the unit is disputed and
// neither joins a Close.
func TestLateReplicaAgainstWithheldPartner(t *testing.T) {
	var withheld *wire.Update
	h, o0, deal := replicatedLateStepWith(t, func(h *harness, deal map[unitCopy]string) {
		withheld = h.update(deal[unitCopy{1, 0}], 1, 0, "raw/1")
		h.lost = map[cid.Cid]bool{withheld.Payload: true}
		h.mustReceive(deal[unitCopy{1, 0}], withheld)
	})
	late := stepUpdate(h, o0, deal[unitCopy{1, 1}], 1, 1, "raw/lie")
	h.mustReceive(deal[unitCopy{1, 1}], late)
	wantUnitDisputed(t, h, late, withheld)
}
