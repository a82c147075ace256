package tracker

import (
	"fmt"
	"maps"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// Late updates (Spec.LateWeight > 0): no update is lost for coming after
// its step closed. When a step closes, the tracker keeps its deal
// (State.Late) until the next step closes. An update of that deal that
// comes in the meantime, for a unit the Close neither included nor
// disputed, is taken like an update of the open step (its payload
// fetched and held), and the next Close includes it with weight
// Spec.LateSamples(samples): the pseudo-gradient of C_t is applied to
// C_{t+1}, one step stale. Late updates are verified like any other:
//
//   - replicas of a unit that both come late must agree on the raw
//     pseudo-gradient, or the unit is disputed (Dispute of the late step)
//     and left out; agreeing replicas give one update, replica 0's;
//   - a late replica of a unit whose other replica the Close included
//     is compared with it: if they differ, the unit is disputed, and the
//     third computation excludes whichever lied (the included update
//     stays in the checkpoint it helped make, as any caught too late);
//   - the Close that merges late updates is audited as any Close is
//     (wire.Audits): an audit of a late update names its own step, base
//     and attempt.
//
// An update of an attempt that was dealt again, of a step older than
// the last closed one, or once the next step has closed, is refused.

// LateStep is the deal of the last step that closed, while late updates
// of it may still join the next Close.
type LateStep struct {
	Open *wire.Open `json:"open"` // the step's Open: its base, attempt and deal
	// OnTime holds the updates the step had received when it closed
	// (without Data): a late copy of one is a repeat, and a late replica
	// is compared with its partner.
	OnTime []*wire.Update `json:"on_time,omitempty"`
	// Taken lists the units the step's Close included or disputed,
	// sorted: a late update of one joins no Close.
	Taken   []uint32       `json:"taken,omitempty"`
	Updates []*wire.Update `json:"updates,omitempty"` // late updates received, without Data
	Held    []cid.Cid      `json:"held,omitempty"`    // their payloads the driver holds
}

// Merged is a late update that the current step's Close includes, with
// the step it was computed for.
type Merged struct {
	Step    uint64       `json:"step"`
	Attempt uint32       `json:"attempt,omitempty"`
	Base    cid.Cid      `json:"base"`
	Peer    string       `json:"peer"`
	Update  *wire.Update `json:"update"`
}

// lateDeal is the index of State.Late.
type lateDeal struct {
	assigned map[unitCopy]string
	onTime   map[unitCopy]*wire.Update
	taken    map[uint32]bool
	updates  map[unitCopy]*wire.Update
	// waiting, held, payloads and lost are as in holding, for the late
	// copies.
	waiting  map[string][]unitCopy
	held     map[unitCopy]bool
	payloads map[string]bool
	lost     map[string]bool
}

// keepLate records, as the open step closes with included and
// disputes, its deal for late updates, if the round takes them.
func (t *Tracker) keepLate(included []wire.Included, disputes []*Dispute) {
	st := t.st
	st.Late = nil
	t.late = nil
	if !(t.spec.LateWeight > 0) {
		return
	}
	taken := map[uint32]bool{}
	for _, in := range included {
		taken[in.Unit] = true
	}
	for _, d := range disputes {
		taken[d.Unit] = true
	}
	st.Late = &LateStep{Open: st.Open, OnTime: slices.Clone(st.Updates)}
	for u := range taken {
		st.Late.Taken = append(st.Late.Taken, u)
	}
	slices.Sort(st.Late.Taken)
	t.restoreLate()
}

// restoreLate rebuilds the index of State.Late.
func (t *Tracker) restoreLate() {
	l := t.st.Late
	t.late = nil
	if l == nil {
		return
	}
	o := l.Open
	d := &lateDeal{assigned: map[unitCopy]string{}, onTime: map[unitCopy]*wire.Update{}, taken: map[uint32]bool{},
		updates: map[unitCopy]*wire.Update{}, waiting: map[string][]unitCopy{}, held: map[unitCopy]bool{},
		payloads: map[string]bool{}, lost: map[string]bool{}}
	for _, a := range round.Assign(t.spec.Seed, wire.AssignStep(o.Step, o.Attempt), o.Members, int(o.Units), t.spec.VerificationRate) {
		d.assigned[unitCopy{uint32(a.Unit), uint8(a.Replica)}] = a.Peer
	}
	for _, u := range l.OnTime {
		d.onTime[unitCopy{u.Unit, u.Replica}] = u
	}
	for _, u := range l.Taken {
		d.taken[u] = true
	}
	for _, c := range l.Held {
		d.payloads[c.KeyString()] = true
	}
	t.late = d
	for _, u := range l.Updates {
		k := unitCopy{u.Unit, u.Replica}
		d.updates[k] = u
		t.wantLate(k, u)
	}
}

// lateUpdate takes an update of the last closed step's deal (see the
// comment at the top of this file).
func (t *Tracker) lateUpdate(from string, m *wire.Update) error {
	l, d := t.st.Late, t.late
	if !m.Base.Equals(l.Open.Base) {
		return fmt.Errorf("late update from base %s, but step %d's base is %s", m.Base, m.Step, l.Open.Base)
	}
	key := unitCopy{m.Unit, m.Replica}
	if d.assigned[key] != from {
		return fmt.Errorf("unit %d replica %d of step %d is not assigned to %s", m.Unit, m.Replica, m.Step, from)
	}
	if want := uint32(t.spec.UnitSamples()); m.Samples != want {
		return fmt.Errorf("update claims %d samples, a unit has %d", m.Samples, want)
	}
	for _, old := range []*wire.Update{d.onTime[key], d.updates[key]} {
		if old == nil {
			continue
		}
		if old.Payload.Equals(m.Payload) {
			return nil // a repeat
		}
		return fmt.Errorf("second, different update for unit %d replica %d of step %d", m.Unit, m.Replica, m.Step)
	}
	u := *m
	u.Data = nil
	d.updates[key] = &u
	l.Updates = append(l.Updates, &u)
	t.dirty = true
	if !d.taken[m.Unit] {
		t.wantLate(key, &u)
		return nil
	}
	// The unit is in already (or disputed): a late replica is compared
	// with the partner the Close took.
	partner := d.onTime[unitCopy{m.Unit, 1 - m.Replica}]
	if partner == nil || partner.Raw.Equals(m.Raw) || t.disputed(m.Step, m.Attempt, m.Unit) {
		return nil
	}
	dp := &Dispute{Step: m.Step, Attempt: m.Attempt, Unit: m.Unit, Base: m.Base,
		Peers: [2]string{d.assigned[unitCopy{m.Unit, 0}], d.assigned[unitCopy{m.Unit, 1}]}}
	if m.Replica == 0 {
		dp.Raws = [2]string{m.Raw.String(), partner.Raw.String()}
	} else {
		dp.Raws = [2]string{partner.Raw.String(), m.Raw.String()}
	}
	sortDispute(dp)
	t.st.Disputes = append(t.st.Disputes, dp)
	t.save()
	t.event(wire.EventDispute, dp.Step, "", "unit %d: late replica %s computed another pseudo-gradient than %s, whose update step %d included", dp.Unit, from, d.assigned[unitCopy{m.Unit, 1 - m.Replica}], m.Step)
	return nil
}

// disputed reports whether a dispute of the unit of a step's attempt is
// open.
func (t *Tracker) disputed(step uint64, attempt uint32, unit uint32) bool {
	return slices.ContainsFunc(t.st.Disputes, func(d *Dispute) bool {
		return !d.Audit && d.Step == step && d.Attempt == attempt && d.Unit == unit
	})
}

// wantLate asks for the payload of a late copy, as want does for the
// open step's.
func (t *Tracker) wantLate(k unitCopy, u *wire.Update) {
	d := t.late
	p := u.Payload.KeyString()
	switch {
	case d.payloads[p]:
		d.held[k] = true
	case d.lost[p]:
	default:
		if _, asked := d.waiting[p]; !asked {
			t.lateFetches = append(t.lateFetches, Fetch{Payload: u.Payload, Size: u.Size, Provider: d.assigned[k]})
		}
		d.waiting[p] = append(d.waiting[p], k)
	}
}

// heldLate is Held for the late copies whose payload is payload, if any.
func (t *Tracker) heldLate(payload cid.Cid, ok bool) {
	d := t.late
	if d == nil {
		return
	}
	p := payload.KeyString()
	copies, asked := d.waiting[p]
	if !asked {
		return
	}
	delete(d.waiting, p)
	if !ok {
		d.lost[p] = true
		return
	}
	d.payloads[p] = true
	t.st.Late.Held = append(t.st.Late.Held, payload)
	t.dirty = true
	for _, k := range copies {
		d.held[k] = true
	}
}

// mergeLate returns the late updates the Close of the open step
// includes, by the rules of closeStep for a step's own updates, and the
// disputes of late replicas that disagree; it records them in
// State.Merged.
func (t *Tracker) mergeLate() ([]wire.Included, []*Dispute) {
	l, d := t.st.Late, t.late
	t.st.Merged = nil
	if d == nil || l.Open.Step+1 != t.st.Step {
		return nil, nil
	}
	var included []wire.Included
	var disputes []*Dispute
	units := map[uint32]bool{}
	for k := range d.updates {
		if !d.taken[k.unit] {
			units[k.unit] = true
		}
	}
	merge := func(r uint8, u *wire.Update) {
		peer := d.assigned[unitCopy{u.Unit, r}]
		included = append(included, wire.Included{Peer: peer, Unit: u.Unit, Payload: u.Payload, Weight: t.spec.LateSamples(u.Samples)})
		t.st.Merged = append(t.st.Merged, &Merged{Step: l.Open.Step, Attempt: l.Open.Attempt, Base: l.Open.Base, Peer: peer, Update: u})
	}
	for _, u := range slices.Sorted(maps.Keys(units)) {
		var c [2]*wire.Update
		for r := range uint8(2) {
			k := unitCopy{u, r}
			if up := d.updates[k]; up != nil && !t.Excluded(d.assigned[k]) {
				c[r] = up
			}
		}
		// A late replica is also compared with an update of its partner
		// that came in time but was not included (its payload was not
		// held).
		for r := range uint8(2) {
			if c[r] == nil {
				if up := d.onTime[unitCopy{u, r}]; up != nil && !t.Excluded(d.assigned[unitCopy{u, r}]) && (c[1-r] != nil) && !up.Raw.Equals(c[1-r].Raw) {
					c[r] = up
				}
			}
		}
		if c[0] != nil && c[1] != nil && !c[0].Raw.Equals(c[1].Raw) {
			dp := &Dispute{Step: l.Open.Step, Attempt: l.Open.Attempt, Unit: u, Base: l.Open.Base,
				Peers: [2]string{d.assigned[unitCopy{u, 0}], d.assigned[unitCopy{u, 1}]},
				Raws:  [2]string{c[0].Raw.String(), c[1].Raw.String()}}
			sortDispute(dp)
			disputes = append(disputes, dp)
			continue
		}
		for r := range uint8(2) {
			if c[r] != nil && d.held[unitCopy{u, r}] {
				merge(r, c[r])
				break
			}
		}
	}
	return included, disputes
}

// lateFor reports whether an update is of the last closed step's deal,
// which takes late updates while the step after it is open or closing.
func (t *Tracker) lateFor(m *wire.Update) bool {
	l := t.st.Late
	return t.late != nil && m.Step == l.Open.Step && m.Attempt == l.Open.Attempt && m.Step+1 >= t.st.Step
}
