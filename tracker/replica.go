package tracker

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/tracker/wire"
)

// A replicated tracker: a group of trackers (package tracker/group) feeds
// every replica the same inputs in the same order, so that every replica
// holds the same tracker. A replica that catches up from a snapshot of
// another needs more than the State, which keeps only what a restart
// needs: the membership (soft state, rebuilt from heartbeats after a
// restart) and the clocks of the periodic work decide what the tracker
// does next. Snapshot and Restore carry all of it, so that a restored
// tracker given the same inputs as the original does exactly what the
// original does.

// replicaSnapshot is the form of Snapshot.
type replicaSnapshot struct {
	State       json.RawMessage   `json:"state"`
	Members     []snapMember      `json:"members,omitempty"` // by lastSeen, then ID
	Refused     map[string]string `json:"refused,omitempty"`
	Refusals    uint64            `json:"refusals,omitempty"`
	Clock       time.Time         `json:"clock"`
	Announce    bool              `json:"announce,omitempty"`
	LastAnn     time.Time         `json:"last_ann"`
	LastSwept   time.Time         `json:"last_swept"`
	QuietUntil  time.Time         `json:"quiet_until"`
	Exclusions  int               `json:"exclusions,omitempty"`
	DealtAtExcl int               `json:"dealt_at_excl,omitempty"`
	Lost        []cid.Cid         `json:"lost,omitempty"`
	LateLost    []cid.Cid         `json:"late_lost,omitempty"` // the same for the late deal's payloads (late.go)
	Dirty       bool              `json:"dirty,omitempty"`
}

type snapMember struct {
	ID       string    `json:"id"`
	Role     wire.Role `json:"role"`
	LastSeen time.Time `json:"last_seen"`
	Since    time.Time `json:"since"`
	Step     uint64    `json:"step,omitempty"`
	Head     cid.Cid   `json:"head"`
	Said     uint64    `json:"said,omitempty"`
}

// Snapshot returns the whole of the tracker (its State, membership and
// clocks) in a form Restore reads back. Call it between a Ready and the
// next input: what Ready has not handed out yet is not in it.
func (t *Tracker) Snapshot() ([]byte, error) {
	if len(t.out) > 0 || len(t.events) > 0 || len(t.hold.fetches) > 0 || len(t.lateFetches) > 0 {
		return nil, errors.New("tracker: snapshot with output not yet taken by Ready")
	}
	st, err := EncodeState(t.st)
	if err != nil {
		return nil, err
	}
	s := replicaSnapshot{State: st, Refused: t.refused, Refusals: t.refusals, Clock: t.lv.clock,
		Announce: t.announce, LastAnn: t.lastAnn, LastSwept: t.lastSwep, QuietUntil: t.quietUntil,
		Exclusions: t.exclusions, DealtAtExcl: t.dealtAtExcl, Dirty: t.dirty}
	for m := t.lv.first; m != nil; m = m.next {
		s.Members = append(s.Members, snapMember{ID: m.id, Role: m.role, LastSeen: m.lastSeen, Since: m.since,
			Step: m.step, Head: m.head, Said: m.said})
	}
	// Payloads given up on matter only while the step that asked for
	// them is open: the next Open forgets them.
	for _, p := range slices.Sorted(maps.Keys(t.hold.lost)) {
		if t.st.Phase != PhaseOpen {
			break
		}
		c, err := cid.Cast([]byte(p))
		if err != nil {
			return nil, fmt.Errorf("tracker: snapshot: lost payload: %w", err)
		}
		s.Lost = append(s.Lost, c)
	}
	if d := t.late; d != nil {
		for _, p := range slices.Sorted(maps.Keys(d.lost)) {
			c, err := cid.Cast([]byte(p))
			if err != nil {
				return nil, fmt.Errorf("tracker: snapshot: lost late payload: %w", err)
			}
			s.LateLost = append(s.LateLost, c)
		}
	}
	return json.Marshal(&s)
}

// Restore returns the tracker a Snapshot was taken of, with the given
// config (which must be the one the original was made with). Unlike
// New from a State, it starts no new epoch and does not hold decisions
// back: it is the same tracker, not a restarted one.
func Restore(cfg Config, snapshot []byte) (*Tracker, error) {
	var s replicaSnapshot
	if err := json.Unmarshal(snapshot, &s); err != nil {
		return nil, fmt.Errorf("tracker: snapshot: %w", err)
	}
	st, err := DecodeState(s.State)
	if err != nil {
		return nil, fmt.Errorf("tracker: snapshot: %w", err)
	}
	t, err := New(cfg, nil, s.Clock)
	if err != nil {
		return nil, err
	}
	t.Ready() // the new state it would persist: not this one
	if !st.Round.Equals(t.round) {
		return nil, fmt.Errorf("tracker: the snapshot holds round %s, not %s", st.Round, t.round)
	}
	if st.Ledger == nil {
		st.Ledger = map[string]*Entry{}
	}
	t.st = st
	t.exclusions = s.Exclusions
	// The members, heard from in the order they were: the liveness
	// counts are made as they were, then brought to the snapshot's clock.
	for _, sm := range s.Members {
		if t.members[sm.ID] != nil {
			return nil, fmt.Errorf("tracker: snapshot: member %s twice", sm.ID)
		}
		m := &member{id: sm.ID, role: sm.Role}
		t.members[sm.ID] = m
		t.touch(m, sm.Role, sm.LastSeen)
		m.since, m.step, m.head, m.said = sm.Since, sm.Step, sm.Head, sm.Said
	}
	t.advance(s.Clock)
	if s.Refused != nil {
		t.refused = s.Refused
	}
	t.refusals = s.Refusals
	t.announce, t.lastAnn, t.lastSwep, t.quietUntil = s.Announce, s.LastAnn, s.LastSwept, s.QuietUntil
	t.restore()
	t.dealtAtExcl = s.DealtAtExcl
	for _, c := range s.Lost {
		if t.st.Phase != PhaseOpen {
			return nil, errors.New("tracker: snapshot: payloads given up on, but no step open")
		}
		t.hold.lost[c.KeyString()] = true
		delete(t.hold.waiting, c.KeyString())
	}
	t.restoreLate()
	for _, c := range s.LateLost {
		if t.late == nil {
			return nil, errors.New("tracker: snapshot: late payloads given up on, but no late deal")
		}
		t.late.lost[c.KeyString()] = true
		delete(t.late.waiting, c.KeyString())
	}
	t.dirty, t.persist = s.Dirty, false
	// What restore asked to fetch is what the original is waiting for:
	// Pending lists it; no Ready hands it out again.
	t.hold.fetches, t.lateFetches = nil, nil
	return t, nil
}

// Pending returns the payloads the tracker is waiting for its driver to
// hold (asked for by a Fetch, not yet answered by Held), sorted by CID:
// what a driver taking over from another must fetch.
func (t *Tracker) Pending() []Fetch {
	var out []Fetch
	if d := t.late; d != nil {
		// The late copies' payloads, asked for in any phase.
		for _, p := range slices.Sorted(maps.Keys(d.waiting)) {
			if ks := d.waiting[p]; len(ks) > 0 {
				u := d.updates[ks[0]]
				out = append(out, Fetch{Payload: u.Payload, Size: u.Size, Provider: d.assigned[ks[0]]})
			}
		}
	}
	if t.st.Phase != PhaseOpen {
		return out
	}
	for _, p := range slices.Sorted(maps.Keys(t.hold.waiting)) {
		ks := t.hold.waiting[p]
		if len(ks) == 0 {
			continue
		}
		u := t.updates[ks[0]]
		if u == nil {
			continue
		}
		out = append(out, Fetch{Payload: u.Payload, Size: u.Size, Provider: t.assigned[ks[0]]})
	}
	return out
}

// State returns the tracker's state, as the last Ready that carried it
// did (for a driver that keeps a copy of it). It is the tracker's own:
// do not change it, and be done with it before the next input.
func (t *Tracker) State() *State { return t.st }

// Republish sends again, at once, what a peer that missed something
// needs: the last Final and the current step's Open or Close (a group's
// new leader announces itself so).
func (t *Tracker) Republish() { t.republish() }
