package tracker

import (
	"cmp"
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

func (t *Tracker) maybeOpen(now time.Time) {
	if n := t.liveCount(now, true, false); n < t.cfg.MinMembers || n == 0 {
		return
	}
	st := t.st
	open := &wire.Open{Round: t.round, Step: st.Step, Attempt: st.Attempt, Epoch: st.Epoch, Base: st.Base}
	open.Excluded = t.excludedList()
	workers, admitted := t.stepWorkers(now, open)
	open.Checks = t.assignChecks(admitted)
	for _, c := range open.Checks {
		// A checker is a member of the step, even beyond its units.
		if i, found := slices.BinarySearch(workers, c.Checker); !found {
			workers = slices.Insert(workers, i, c.Checker)
		}
	}
	open.Members = workers
	open.Units = uint32(DealtUnits(t.spec, len(workers), t.cfg.Spares))
	st.Phase, st.Open, st.OpenedAt, st.Updates, st.Held, st.QuorumAt = PhaseOpen, open, now, nil, nil, time.Time{}
	st.Close, st.Commits, st.Verified = nil, nil, nil
	t.votes = nil
	t.resetVoters()
	t.save()
	t.dealUnits()
	t.updates = map[unitCopy]*wire.Update{}
	t.publish(open)
	t.event(wire.EventOpen, st.Step, "", "attempt %d, %d members, %d units, %d checks", st.Attempt, len(workers), open.Units, len(open.Checks))
}

// NewcomerPlaces returns how many newcomers (workers without standing or
// work in a finalised step) an open round's step admits beside
// established workers: at least 8, and else the fraction of them given
// (Config.Newcomers; 0 means 1, so that the workers of a step at most
// double from one step to the next).
func NewcomerPlaces(established int, fraction float64) int {
	if fraction <= 0 {
		fraction = 1
	}
	return max(8, int(fraction*float64(established)))
}

// DefaultMaxOpenSize is Config.MaxOpenSize when it is 0: the gossip
// layer's default message limit (p2p GossipOptions.MaxMessageSize).
const DefaultMaxOpenSize = 1 << 20

// stepWorkers returns the members of the step that open (of which only
// the Excluded list is set) will open, and the workers admitted to it,
// both sorted. The admitted are the live workers in good standing, but
//
//   - in an open round, of the workers without standing (no verified
//     work, no work in a finalised step: newcomers) at most
//     NewcomerPlaces of them, picked by a hash of the round's
//     seed, the step, the attempt and the peer ID, so that a flood of
//     fresh IDs gets no more than its share of the places, however early
//     it speaks, and that every step draws afresh;
//
// The members are the admitted, but no more than the step's unit copies
// (a member beyond them would get no work), nor than fit in an Open of
// Config.MaxOpenSize bytes: established workers first, by standing, then
// the hash order. A dispute's checker may be any admitted worker: it is
// made a member too.
func (t *Tracker) stepWorkers(now time.Time, open *wire.Open) (members, admitted []string) {
	live := t.Members(wire.RoleWorker, now)
	aStep := wire.AssignStep(open.Step, open.Attempt)
	type ranked struct {
		id     string
		weight int64
		hash   uint64
	}
	established := make([]ranked, 0, len(live))
	var newcomers []ranked
	for _, p := range live {
		r := ranked{id: p, weight: t.weight(p)}
		if e := t.st.Ledger[p]; t.spec.Admission == round.AdmissionClosed || r.weight > 0 || (e != nil && e.Units > 0) {
			established = append(established, r)
		} else {
			newcomers = append(newcomers, r)
		}
	}
	byRank := func(a, b ranked) int {
		return cmp.Or(cmp.Compare(b.weight, a.weight), cmp.Compare(a.hash, b.hash), strings.Compare(a.id, b.id))
	}
	for i := range newcomers {
		newcomers[i].hash = round.AssignHash(t.spec.Seed, aStep, 'n', []byte(newcomers[i].id))
	}
	newcomers = smallest(newcomers, NewcomerPlaces(len(established), t.cfg.Newcomers), byRank)
	n := len(established) + len(newcomers)
	units := DealtUnits(t.spec, n, t.cfg.Spares)
	copies := units
	if n > 1 {
		copies += int(math.Round(t.spec.VerificationRate * float64(units)))
	}
	// What the Open holds besides these members, at most: its fixed
	// fields, the excluded peers, and a Check per dispute, whose checker
	// may be a member more (see wire).
	budget := t.cfg.MaxOpenSize - 128
	for _, p := range open.Excluded {
		budget -= uvarintLen(len(p)) + len(p)
	}
	budget -= min(len(t.st.Disputes), wire.MaxChecks) * (10 + 3 + 34 + 2*(2+wire.MaxPeerLen))
	limit := min(n, copies, wire.MaxMembers-wire.MaxChecks)
	need := 0
	for _, r := range established {
		need += uvarintLen(len(r.id)) + len(r.id)
	}
	if len(established) > limit || need > budget {
		for i := range established {
			established[i].hash = round.AssignHash(t.spec.Seed, aStep, 'n', []byte(established[i].id))
		}
		slices.SortFunc(established, byRank)
	}
	admitted = make([]string, 0, n)
	for _, rs := range [][]ranked{established, newcomers} {
		for _, r := range rs {
			admitted = append(admitted, r.id)
			budget -= uvarintLen(len(r.id)) + len(r.id)
			if len(members) < limit && (budget >= 0 || len(members) == 0) {
				members = append(members, r.id)
			}
		}
	}
	slices.Sort(members)
	slices.Sort(admitted)
	return members, admitted
}

// smallest returns the k smallest of xs by cmp, sorted (xs itself, when
// it has no more than k), in O(n log k): a max-heap of the k smallest
// seen so far.
func smallest[T any](xs []T, k int, cmp func(a, b T) int) []T {
	if len(xs) <= k {
		slices.SortFunc(xs, cmp)
		return xs
	}
	h := slices.Clone(xs[:k])
	down := func(i int) {
		for {
			c := 2*i + 1
			if c >= len(h) {
				return
			}
			if c+1 < len(h) && cmp(h[c+1], h[c]) > 0 {
				c++
			}
			if cmp(h[c], h[i]) <= 0 {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for i := k/2 - 1; i >= 0; i-- {
		down(i)
	}
	for _, x := range xs[k:] {
		if cmp(x, h[0]) < 0 {
			h[0] = x
			down(0)
		}
	}
	slices.SortFunc(h, cmp)
	return h
}

func uvarintLen(n int) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(n))
}

// DealtUnits returns how many units a step deals to workers: the
// target's worth (Spec.UnitsPerStep) and, when there are more workers
// than that, up to spares times as many again (rounded up). A step closes
// as soon as its complete units reach the target, so with spares the
// slowest workers, and those that leave mid-step, do not hold every step
// to its deadline (the backup workers of synchronous SGD): a spare that
// arrives in time is included too, one that does not costs only its
// compute. Spare units read the data that the next units in order would
// (the dataset is read as a cycle).
func DealtUnits(s *round.Spec, workers int, spares float64) int {
	units := s.UnitsPerStep()
	if extra := int(math.Ceil(spares * float64(units))); extra > 0 && workers > units {
		units = min(workers, units+extra, wire.MaxUnits)
	}
	return units
}

// dealUnits computes the open step's assignment.
func (t *Tracker) dealUnits() {
	o := t.st.Open
	t.assigned = map[unitCopy]string{}
	t.missing = map[uint32]uint8{}
	for _, a := range round.Assign(t.spec.Seed, wire.AssignStep(o.Step, o.Attempt), o.Members, int(o.Units), t.spec.VerificationRate) {
		t.assigned[unitCopy{uint32(a.Unit), uint8(a.Replica)}] = a.Peer
		t.missing[uint32(a.Unit)]++
	}
	t.arrived, t.dealtAtExcl = 0, t.exclusions
	t.resetHolding()
	t.stepMembers = make(map[string]bool, len(o.Members))
	for _, p := range o.Members {
		t.stepMembers[p] = true
	}
}

// arrive counts the arrival of a unit copy's update: its payload is held.
func (t *Tracker) arrive(k unitCopy) {
	t.missing[k.unit]--
	if t.missing[k.unit] == 0 {
		t.arrived++
	}
}

// assignChecks gives unsettled disputes a checker among the workers other
// than their replicas: the checker a dispute already has while it is still
// a worker (a third computation may take longer than a step), else one
// chosen by a hash of the round seed and the dispute. A Check names an
// earlier step by step and unit only, so disputes of the current step
// (raised by an attempt that was dealt again) wait for it to be
// finalised, and of a unit disputed in several attempts one is checked at
// a time. Disputes left without a Check have no checker.
func (t *Tracker) assignChecks(workers []string) []wire.Check {
	type unitKey struct {
		step uint64
		unit uint32
	}
	t.dropStaleAudits()
	var checks []wire.Check
	asked := map[unitKey]bool{}
	for _, d := range t.st.Disputes {
		k := unitKey{d.Step, d.Unit}
		if d.Step >= t.st.Step || asked[k] || len(checks) == wire.MaxChecks {
			d.Checker = ""
			continue
		}
		var eligible []string
		for _, w := range workers {
			if w != d.Peers[0] && w != d.Peers[1] {
				eligible = append(eligible, w)
			}
		}
		if len(eligible) == 0 {
			d.Checker = ""
			continue
		}
		if !slices.Contains(eligible, d.Checker) {
			var b [8 + 8 + 4]byte
			binary.LittleEndian.PutUint64(b[:], t.st.Step)
			binary.LittleEndian.PutUint64(b[8:], d.Step)
			binary.LittleEndian.PutUint32(b[16:], d.Unit)
			d.Checker = eligible[round.AssignHash(t.spec.Seed, uint64(t.st.Attempt), 'c', b[:])%uint64(len(eligible))]
			d.AskedAt = t.lv.clock // the time of this Open (maybeOpen has just counted the members at it)
		}
		asked[k] = true
		checks = append(checks, wire.Check{Step: d.Step, Unit: d.Unit, Base: d.Base, Checker: d.Checker, Attempt: d.Attempt, Peers: d.judged()})
	}
	wire.SortChecks(checks)
	return checks
}

// maybeCloseOnUpdate is maybeClose after an update or a payload held,
// from counts kept as they arrive (a copy has arrived once its update
// has and its payload is held): it closes when every copy dealt has
// arrived, or when
// the units whose every copy has arrived reach the target. Either implies
// what maybeClose decides; what only maybeClose sees (copies dealt to
// peers that fell silent or were excluded) waits for the next Tick, which
// keeps an update's cost independent of the size of the step. After an
// exclusion in the step it falls back to maybeClose.
func (t *Tracker) maybeCloseOnUpdate(now time.Time) {
	if t.exclusions != t.dealtAtExcl {
		t.maybeClose(now)
		return
	}
	if now.Before(t.quietUntil) {
		return
	}
	if len(t.hold.held) == len(t.assigned) || t.arrived*t.spec.UnitSamples() >= t.spec.TargetSamples {
		t.closeStep(now)
		return
	}
	if t.arrived*t.spec.UnitSamples() >= t.spec.QuorumSamples() {
		t.quorumReached(now)
	}
}

// quorumReached notes that the open step's complete units reached the
// spec's quorum (below the target), and closes the step once the grace
// window since it first did has passed.
func (t *Tracker) quorumReached(now time.Time) {
	st := t.st
	if st.QuorumAt.IsZero() {
		st.QuorumAt = now
		t.dirty = true
	}
	if now.Sub(st.QuorumAt) >= t.spec.Grace {
		t.closeStep(now)
	}
}

// maybeClose closes the open step once the complete units reach the
// target samples, or once nothing more can be expected: every copy dealt
// to a peer that is still live and in good standing has arrived (its
// payload held), or its payload was given up on. A unit
// is complete when every copy dealt to such a peer has arrived; waiting
// for both copies of a replicated unit makes what a step includes
// independent of the order in which updates arrive, when they all arrive
// in time.
func (t *Tracker) maybeClose(now time.Time) {
	if now.Before(t.quietUntil) {
		return
	}
	live := round.Liveness(t.spec)
	expected := func(peer string) bool {
		m := t.members[peer]
		return m != nil && now.Sub(m.lastSeen) <= live && !t.Excluded(peer)
	}
	samples, pending := 0, false
	complete := map[uint32]bool{}
	for k, p := range t.assigned {
		if !t.hold.held[k] && !t.unavailable(k) && expected(p) {
			pending = true
			complete[k.unit] = false
		} else if _, seen := complete[k.unit]; !seen {
			complete[k.unit] = true
		}
	}
	for u, ok := range complete {
		if !ok {
			continue
		}
		for r := range uint8(2) {
			if up := t.updates[unitCopy{u, r}]; up != nil && t.hold.held[unitCopy{u, r}] && !t.Excluded(t.assigned[unitCopy{u, r}]) {
				samples += int(up.Samples)
				break
			}
		}
	}
	if samples >= t.spec.TargetSamples || (!pending && len(t.hold.held) > 0) {
		t.closeStep(now)
		return
	}
	if samples >= t.spec.QuorumSamples() {
		t.quorumReached(now)
	}
}

// closeStep closes the open step with the updates received: one per unit;
// of a replicated unit whose replicas agree, replica 0's; of one whose
// replicas disagree, none (the unit goes to a third computation). Only
// updates whose payload the tracker's side holds are included; the others
// are left out and count against their authors (see withheld). A step
// with nothing to include is reopened.
func (t *Tracker) closeStep(now time.Time) {
	st := t.st
	var included []wire.Included
	var verified []Pair
	var disputes []*Dispute
	units := slices.Sorted(maps.Keys(t.unitSet()))
	for _, u := range units {
		a, b := t.updates[unitCopy{u, 0}], t.updates[unitCopy{u, 1}]
		// Updates of a peer excluded since it sent them are dropped.
		if a != nil && t.Excluded(t.assigned[unitCopy{u, 0}]) {
			a = nil
		}
		if b != nil && t.Excluded(t.assigned[unitCopy{u, 1}]) {
			b = nil
		}
		// So are those whose payload the tracker's side does not hold;
		// but replicas that disagree are disputed all the same (a dispute
		// needs no payload), so that withholding dodges no comparison.
		disagree := a != nil && b != nil && !a.Raw.Equals(b.Raw)
		if a != nil && !t.hold.held[unitCopy{u, 0}] {
			t.withheld(t.assigned[unitCopy{u, 0}], u)
			if !disagree {
				a = nil
			}
		}
		if b != nil && !t.hold.held[unitCopy{u, 1}] {
			t.withheld(t.assigned[unitCopy{u, 1}], u)
			if !disagree {
				b = nil
			}
		}
		switch {
		case a != nil && b != nil && a.Raw.Equals(b.Raw):
			included = append(included, wire.Included{Peer: t.assigned[unitCopy{u, 0}], Unit: u, Payload: a.Payload, Weight: a.Samples})
			verified = append(verified, Pair{Unit: u, Attempt: st.Attempt, Raw: a.Raw.String(), Peers: [2]string{t.assigned[unitCopy{u, 0}], t.assigned[unitCopy{u, 1}]}, Samples: a.Samples})
		case a != nil && b != nil:
			d := &Dispute{Step: st.Step, Attempt: st.Attempt, Unit: u, Base: st.Base,
				Peers: [2]string{t.assigned[unitCopy{u, 0}], t.assigned[unitCopy{u, 1}]},
				Raws:  [2]string{a.Raw.String(), b.Raw.String()}}
			sortDispute(d)
			disputes = append(disputes, d)
		case a != nil:
			included = append(included, wire.Included{Peer: t.assigned[unitCopy{u, 0}], Unit: u, Payload: a.Payload, Weight: a.Samples})
		case b != nil:
			included = append(included, wire.Included{Peer: t.assigned[unitCopy{u, 1}], Unit: u, Payload: b.Payload, Weight: b.Samples})
		}
	}
	own := slices.Clone(included)
	merged, lateDisputes := t.mergeLate()
	included = append(included, merged...)
	st.Disputes = append(st.Disputes, disputes...)
	st.Disputes = append(st.Disputes, lateDisputes...)
	for _, d := range append(disputes, lateDisputes...) {
		t.event(wire.EventDispute, d.Step, "", "unit %d: replicas %s and %s computed different pseudo-gradients", d.Unit, d.Peers[0], d.Peers[1])
	}
	if len(merged) > 0 {
		t.event(wire.EventMerge, st.Step, "", "%d late updates of step %d included, each at weight %g of its samples", len(merged), st.Late.Open.Step, t.spec.LateWeight)
	}
	if len(included) == 0 {
		// Nothing arrived (or everything is disputed): deal the step
		// again to whoever is there now.
		t.event(wire.EventReopen, st.Step, "", "attempt %d got no usable update", st.Attempt)
		t.dealAgain(now)
		return
	}
	wire.SortIncluded(included)
	t.keepLate(own, disputes)
	cl := &wire.Close{Round: t.round, Step: st.Step, Epoch: st.Epoch, Base: st.Base, Included: included}
	cl.AuditKey = t.auditKey(st.Step, st.Attempt)
	st.Phase, st.Close, st.ClosedAt, st.Commits, st.Verified, st.Held = PhaseClosed, cl, now, nil, verified, nil
	t.votes = nil
	t.resetVoters()
	t.save()
	t.publish(cl)
	t.event(wire.EventClose, st.Step, "", "%d updates included, %d verified pairs", len(included), len(verified))
}

// dealAgain deals the current step again, as a new attempt, to whoever
// is there now: after an attempt that got nothing usable, or a closed
// step that got no quorum by its deadline.
func (t *Tracker) dealAgain(now time.Time) {
	st := t.st
	st.Attempt++
	if st.Attempt >= wire.MaxAttempt {
		st.Attempt = 0
	}
	st.Phase, st.Open, st.Updates, st.Held = PhaseIdle, nil, nil, nil
	st.Close, st.Commits, st.Verified, st.Merged = nil, nil, nil, nil
	t.votes = nil
	t.resetVoters()
	t.save()
	t.maybeOpen(now)
}

// maybeRedeal deals a closed step again once the spec's deadline has
// passed since it closed without a quorum of commits: the members that
// could make one left, or could not apply the Close (a payload nobody
// serves). ClosedAt is persisted, so the deadline holds across restarts.
func (t *Tracker) maybeRedeal(now time.Time) {
	st := t.st
	if st.Phase != PhaseClosed || now.Sub(st.ClosedAt) < t.spec.Deadline {
		return
	}
	t.event(wire.EventReopen, st.Step, "", "attempt %d closed %v ago and got no quorum of commits by the deadline", st.Attempt, now.Sub(st.ClosedAt).Round(time.Second))
	t.dealAgain(now)
}

func sortDispute(d *Dispute) {
	if d.Peers[0] > d.Peers[1] {
		d.Peers[0], d.Peers[1] = d.Peers[1], d.Peers[0]
		d.Raws[0], d.Raws[1] = d.Raws[1], d.Raws[0]
	}
}

func (t *Tracker) unitSet() map[uint32]bool {
	s := map[uint32]bool{}
	for k := range t.updates {
		s[k.unit] = true
	}
	return s
}
