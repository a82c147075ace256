package tracker

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// Quorum returns the weight of commits behind one result that finalises
// the closed step at now: more than half the weight of the live members
// in good standing (see Standing).
func (t *Tracker) Quorum(now time.Time) int64 {
	total, _ := t.Standing(now)
	return total/2 + 1
}

// Standing returns the weight of the live members in good standing at
// now, by which commits are counted. In a closed round every admitted
// member weighs 1. In an open round a member weighs its standing: the
// samples of its work a replica confirmed (Entry.Verified), plus a
// step's worth (spec TargetSamples) for an anchor (Config.Anchors); a
// fresh peer ID weighs nothing. While no live member has standing, each
// live peer whose update the closed step's Close includes weighs 1, and
// bootstrap is true.
func (t *Tracker) Standing(now time.Time) (total int64, bootstrap bool) {
	_, total, bootstrap = t.support(now, "")
	return total, bootstrap
}

// maybeFinalise finalises the closed step once one result has the
// commits of a quorum. After a commit (only = its result) it looks at
// that result alone; a Tick (only = "") looks at every result, which
// catches a quorum that shrank as members fell silent. The weights are
// counted as messages arrive (see liveness), so neither scans the
// members.
func (t *Tracker) maybeFinalise(now time.Time, only string) error {
	st := t.st
	if st.Phase != PhaseClosed || now.Before(t.quietUntil) {
		return nil
	}
	if t.votes == nil {
		t.votes = map[string]int{}
		for _, r := range st.Commits {
			t.votes[r]++
		}
	}
	results := []string{only}
	if only == "" {
		results = slices.Sorted(maps.Keys(t.votes))
	}
	live := round.Liveness(t.spec)
	for _, r := range results {
		// Count only members still alive and in good standing, as the
		// quorum does: a quorum of the departed or of peers excluded
		// since they committed does not speak for the round.
		behind, total, bootstrap := t.support(now, r)
		if behind == 0 || 2*behind <= total {
			continue
		}
		// The providers are the first voters by ID that count in the
		// quorum: keep the smallest wire.MaxProviders IDs, sorted,
		// rather than sort them all.
		var providers []string
		voters := 0
		for p, pr := range st.Commits {
			if m := t.members[p]; pr == r && m != nil && now.Sub(m.lastSeen) <= live && !t.Excluded(p) && t.counts(p, bootstrap) {
				voters++
				if len(providers) == wire.MaxProviders && p > providers[len(providers)-1] {
					continue
				}
				i, _ := slices.BinarySearch(providers, p)
				providers = slices.Insert(providers, i, p)
				if len(providers) > wire.MaxProviders {
					providers = providers[:wire.MaxProviders]
				}
			}
		}
		result, err := cid.Decode(r)
		if err != nil {
			return fmt.Errorf("tracker: corrupt commit in state: %w", err)
		}
		t.finalise(now, result, providers, voters)
		return nil
	}
	return nil
}

// finalise records result as the closed step's checkpoint, agreed by
// voters members (live, in good standing), of which providers are the
// first by ID: the ledger counts the included units and verified pairs,
// and every commit of another result is a mismatch.
func (t *Tracker) finalise(now time.Time, result cid.Cid, providers []string, voters int) {
	st := t.st
	f := &wire.Final{Round: t.round, Step: st.Step, Base: st.Base, Checkpoint: result, Providers: providers}
	for _, in := range st.Close.Included {
		e := t.entry(in.Peer)
		e.Units++
		e.Samples += int64(in.Weight)
	}
	for _, p := range st.Verified {
		for _, peer := range p.Peers {
			t.entry(peer).Verified += int64(p.Samples)
			t.reweigh(peer) // its standing grew
		}
	}
	want := result.String()
	var mismatched []string
	for p, r := range st.Commits {
		// Only members get a ledger entry (a state saved before commits
		// were limited to members may hold others').
		if r != want && t.member(p) {
			mismatched = append(mismatched, p)
		}
	}
	slices.Sort(mismatched)
	for _, p := range mismatched {
		got, _ := cid.Decode(st.Commits[p])
		t.mismatch(p, st.Step, got, result)
	}
	t.audit()
	st.Finals = append(st.Finals, f)
	st.PrevVerified = st.Verified
	st.Step++
	st.Base = result
	st.Attempt = 0
	st.Phase, st.Open, st.Updates, st.Close, st.Commits, st.Verified, st.Merged = PhaseIdle, nil, nil, nil, nil, nil, nil
	t.votes = nil
	t.resetVoters()
	t.save()
	t.publish(f)
	t.event(wire.EventFinal, f.Step, "", "C_%d = %s (%d commits)", f.Step+1, result, voters)
	t.maybeOpen(now)
}

// verdict handles a replica's judgement of its partner, or a checker's
// settlement of a dispute.
func (t *Tracker) verdict(now time.Time, from string, m *wire.Verdict) error {
	st := t.st
	if m.Checked {
		for i, d := range st.Disputes {
			if d.Step != m.Step || d.Unit != m.Unit || d.Checker != from {
				continue
			}
			// Only the dispute's own peers are judged: a name in Bad that
			// is not one of them is ignored.
			for k, p := range d.Peers {
				switch {
				case p == "":
				case d.Raws[k] != "" && d.Raws[k] != m.Raw.String():
					t.exclude(p, m.Step, fmt.Sprintf("unit %d of step %d: its pseudo-gradient differs from the third computation's", m.Unit, m.Step))
				case slices.Contains(m.Bad, p):
					t.exclude(p, m.Step, fmt.Sprintf("unit %d of step %d: its payload does not follow from its pseudo-gradient and residual", m.Unit, m.Step))
				case slices.Contains(m.Withheld, p):
					// A peer live all the while the checker tried to fetch
					// what the check needs, and did not serve it, loses;
					// one that left meanwhile is not judged (nor is its
					// accuser: the accusation was neither borne out nor
					// refuted).
					if t.liveSince(p, d.AskedAt, now) {
						t.exclude(p, m.Step, fmt.Sprintf("unit %d of step %d: it did not serve the checker its residual or payload", m.Unit, m.Step))
					}
				case d.Accuser != "" && d.Accuser != p:
					// p was accused and passed the check: the accuser lied.
					t.exclude(d.Accuser, m.Step, fmt.Sprintf("unit %d of step %d: falsely accused %s", m.Unit, m.Step, p))
				}
			}
			t.entry(from).Checks++
			st.Disputes = slices.Delete(st.Disputes, i, i+1)
			t.save()
			return nil
		}
		return fmt.Errorf("verdict on step %d unit %d from %s, which is not its checker", m.Step, m.Unit, from)
	}
	// A replica's verdict on its partner: only a "bad" one, or one that
	// says the partner withheld its residual or payload, matters, and
	// only about the closed step's verified pairs.
	if len(m.Bad) == 0 && len(m.Withheld) == 0 {
		return nil
	}
	if st.Phase != PhaseClosed || m.Step != st.Step {
		if m.Step+1 != st.Step || len(st.Finals) == 0 {
			return fmt.Errorf("verdict on step %d, which is not the last closed step", m.Step)
		}
	}
	pair, ok := t.pairOf(m.Step, m.Unit)
	if !ok {
		return fmt.Errorf("verdict on step %d unit %d, which was not a verified pair", m.Step, m.Unit)
	}
	if pair.Peers[0] != from && pair.Peers[1] != from {
		return fmt.Errorf("verdict on unit %d from %s, which is not one of its replicas", m.Unit, from)
	}
	other := pair.Peers[0]
	if other == from {
		other = pair.Peers[1]
	}
	withheld := len(m.Bad) == 0
	if named := append(slices.Clone(m.Bad), m.Withheld...); !slices.Equal(named, []string{other}) {
		return fmt.Errorf("verdict on unit %d names %v, not the partner %s", m.Unit, named, other)
	}
	for _, d := range st.Disputes {
		if d.Step == m.Step && d.Unit == m.Unit {
			return nil // already disputed
		}
	}
	if withheld {
		// The partner did not serve its residual or payload: its update
		// is audited (a check of the partner alone; the replica accuses
		// no one, for the partner may just have been away).
		d := &Dispute{Step: m.Step, Attempt: pair.Attempt, Unit: m.Unit, Base: t.baseOf(m.Step),
			Peers: [2]string{other, ""}, Raws: [2]string{pair.Raw, ""}, Audit: true}
		st.Disputes = append(st.Disputes, d)
		t.event(wire.EventAudit, m.Step, other, "unit %d: audit of the update of %s, whose residual or payload %s could not fetch", m.Unit, other, from)
		t.save()
		return nil
	}
	d := &Dispute{Step: m.Step, Attempt: pair.Attempt, Unit: m.Unit, Base: t.baseOf(m.Step), Peers: pair.Peers, Accuser: from}
	sortDispute(d)
	st.Disputes = append(st.Disputes, d)
	t.event(wire.EventDispute, m.Step, from, "unit %d: %s says the payload of %s does not follow from its residual", m.Unit, from, other)
	t.save()
	return nil
}

// liveSince reports whether peer is a member that has been live from
// since (or before) to now without a gap longer than the liveness
// window.
func (t *Tracker) liveSince(peer string, since, now time.Time) bool {
	m := t.members[peer]
	return m != nil && !since.IsZero() && !m.since.After(since) && now.Sub(m.lastSeen) <= round.Liveness(t.spec)
}

// pairOf finds the verified pair of a unit in the closed step or the last
// finalised one.
func (t *Tracker) pairOf(step uint64, unit uint32) (Pair, bool) {
	var pairs []Pair
	switch {
	case step == t.st.Step && t.st.Phase == PhaseClosed:
		pairs = t.st.Verified
	case step+1 == t.st.Step:
		pairs = t.st.PrevVerified
	}
	for _, p := range pairs {
		if p.Unit == unit {
			return p, true
		}
	}
	return Pair{}, false
}

func (t *Tracker) baseOf(step uint64) cid.Cid {
	if step == t.st.Step {
		return t.st.Base
	}
	if step == 0 {
		return t.cfg.Genesis
	}
	return t.st.Finals[step-1].Checkpoint
}

func (t *Tracker) exclude(peer string, step uint64, reason string) {
	e := t.entry(peer)
	if e.Excluded {
		return
	}
	if m := t.members[peer]; m != nil && m.live {
		t.count(m, -1) // it no longer counts
	}
	e.Excluded, e.Reason, e.ExcludedAt = true, reason, t.st.Step
	t.exclusions++
	t.event(wire.EventExclude, step, peer, "%s", reason)
}

// excludedList returns the peers excluded from the round as an Open lists
// them: sorted, and only the wire.MaxExcluded most recently excluded
// (latest step first, then by ID) when there are more.
func (t *Tracker) excludedList() []string {
	var out []string
	for p, e := range t.st.Ledger {
		if e.Excluded {
			out = append(out, p)
		}
	}
	if len(out) > wire.MaxExcluded {
		slices.SortFunc(out, func(a, b string) int {
			if c := cmp.Compare(t.st.Ledger[b].ExcludedAt, t.st.Ledger[a].ExcludedAt); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		out = out[:wire.MaxExcluded]
	}
	slices.Sort(out)
	return out
}
