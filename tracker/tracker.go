package tracker

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// Tracker is the coordinator of a round as a deterministic state machine:
// messages and clock ticks go in (Receive, Tick), messages to publish come
// out (Ready), and at every decision its State goes out too, for the
// driver to persist before any message announcing the decision leaves.
// It holds no goroutines, sockets or clocks: the time is whatever the
// driver passes.
//
// A Tracker is not safe for concurrent use.
type Tracker struct {
	cfg   Config
	spec  *round.Spec
	round cid.Cid
	st    *State
	dirty bool // st changed since the last decision (updates, commits): persist at the next Tick
	// persist is set by a decision: the next Ready carries the state,
	// which the driver persists before it publishes anything.
	persist bool

	trackerID string   // the spec's tracker, canonical
	trackers  []string // the spec's trackers (a group's members), canonical
	anchors   map[string]bool

	members  map[string]*member
	refused  map[string]string   // peers refused admission to a closed round, and why
	refusals uint64              // changes to refused
	assigned map[unitCopy]string // of the open step
	// stepMembers holds the members of the current step's Open.
	stepMembers map[string]bool
	updates     map[unitCopy]*wire.Update
	hold        holding   // the open step's payloads: which the driver holds
	late        *lateDeal // the index of State.Late
	lateFetches []Fetch   // late payloads to ask the driver for, with the next Ready
	// Counts of the open step kept as updates arrive, so that a step of
	// thousands of units is not rescanned for every update: the copies of
	// each unit that have not arrived, the units whose every copy has, and
	// how many exclusions there had been when the units were dealt
	// (after one, the counts no longer tell what counts; see maybeClose).
	// The copies still to come are len(assigned) − len(updates).
	missing     map[uint32]uint8
	arrived     int
	exclusions  int
	dealtAtExcl int
	// votes counts the closed step's commits by result (live or not).
	votes    map[string]int
	lv       liveness
	out      []wire.Msg
	announce bool // republish the current phase's message at the next Tick
	lastAnn  time.Time
	lastSwep time.Time // when silent members were last forgotten
	// quietUntil holds decisions back after a restart until the members
	// have had time to announce themselves again: membership is soft
	// state, and a quorum of the first few to speak is no quorum.
	quietUntil time.Time
	events     []Event
}

// Config configures a Tracker.
type Config struct {
	Spec    *round.Spec
	Genesis cid.Cid // C_0: Spec.InitCheckpoint, or the checkpoint the model's seed makes
	// MinMembers is how many live workers it takes to open a step
	// (default 1).
	MinMembers int
	// Spares is how many units a step deals beyond its target, as a
	// fraction of the target's units, when there are workers to spare
	// (see DealtUnits); 0 deals exactly the target's worth.
	Spares float64
	// Admit decides, in a closed round, whether a peer's access token
	// gives it standing at now; a peer without standing is not a member.
	// It must be a pure function of its arguments (and of keys fixed at
	// start). In an open round it is not called.
	Admit func(peer string, token []byte, now time.Time) error
	// Anchors are peers the tracker's operator vouches for (the round's
	// own observer, run beside the tracker): in an open round each has
	// the standing of a step's worth of verified work (spec
	// TargetSamples), so that its commit outweighs any number of fresh
	// peer IDs. See the package doc, Quorum.
	Anchors []string
	// Newcomers is how many workers without standing an open round's
	// step admits, as a fraction of the established ones (at least 8;
	// 0 means 1: see NewcomerPlaces). Lower, a swarm of fresh IDs takes
	// fewer places and a round admits its volunteers more slowly.
	Newcomers float64
	// MaxOpenSize bounds the encoded size of an Open (default
	// DefaultMaxOpenSize): a step with more live workers than fit lists
	// those with standing first (see the package doc, Membership).
	MaxOpenSize int
	// AuditSecret, if set, is a secret of the tracker's operator (at
	// least 16 bytes, fixed for the round) from which each Close's
	// AuditKey is derived (see wire.Audits): revealed only in the Close,
	// it keeps the step's audits unpredictable even to a worker that
	// sends its update last. Without it, the audits are picked from the
	// Close alone.
	AuditSecret []byte
}

type unitCopy struct {
	unit    uint32
	replica uint8
}

// Event is something the tracker decided, for logs and dashboards.
type Event struct {
	Kind   wire.EventKind
	Step   uint64
	Peer   string
	Detail string
}

// New returns a tracker for a round, resumed from st, the state its
// driver last persisted (nil for a new round). A resumed tracker starts a
// new epoch; either way its first Ready carries the state to persist.
func New(cfg Config, st *State, now time.Time) (*Tracker, error) {
	if cfg.Spec == nil {
		return nil, errors.New("tracker: no spec")
	}
	if err := cfg.Spec.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Genesis.Defined() {
		return nil, errors.New("tracker: no genesis checkpoint")
	}
	if cfg.MinMembers < 1 {
		cfg.MinMembers = 1
	}
	if cfg.MaxOpenSize <= 0 {
		cfg.MaxOpenSize = DefaultMaxOpenSize
	}
	if n := len(cfg.AuditSecret); n > 0 && n < 16 {
		return nil, fmt.Errorf("tracker: audit secret of %d bytes: need at least 16", n)
	}
	if !(cfg.Newcomers >= 0 && cfg.Newcomers <= 100) {
		return nil, fmt.Errorf("tracker: newcomers %v: need a fraction of the established workers from 0 to 100", cfg.Newcomers)
	}
	if !(cfg.Spares >= 0 && cfg.Spares <= 1) {
		return nil, fmt.Errorf("tracker: spare units %v: need a fraction from 0 to 1", cfg.Spares)
	}
	t := &Tracker{cfg: cfg, spec: cfg.Spec, round: cfg.Spec.ID(), members: map[string]*member{}, refused: map[string]string{},
		trackerID: cfg.Spec.TrackerID(), trackers: cfg.Spec.TrackerIDs(), lv: liveness{voters: map[string]int64{}, bootVoters: map[string]int{}}, anchors: map[string]bool{}}
	for _, a := range cfg.Anchors {
		if c, err := round.CanonicalPeerID(a); err == nil {
			a = c
		}
		t.anchors[a] = true
	}
	switch {
	case st == nil:
		st = &State{Round: t.round, Base: cfg.Genesis, Ledger: map[string]*Entry{}}
		t.st = st
		t.save()
	case !st.Round.Equals(t.round):
		return nil, fmt.Errorf("tracker: the database holds round %s, not %s", st.Round, t.round)
	default:
		if st.Ledger == nil {
			st.Ledger = map[string]*Entry{}
		}
		t.st = st
		st.Epoch++
		if st.Open != nil {
			st.Open.Epoch = st.Epoch
		}
		if st.Close != nil {
			st.Close.Epoch = st.Epoch
		}
		t.save()
		t.restore()
		t.restoreLate()
		t.announce = true
		t.quietUntil = now.Add(round.HeartbeatInterval(cfg.Spec) * 3 / 2)
	}
	return t, nil
}

// restore rebuilds the indexes of the open step from the state.
func (t *Tracker) restore() {
	if t.st.Phase == PhaseIdle {
		return
	}
	t.dealUnits()
	t.resetVoters()
	t.updates = map[unitCopy]*wire.Update{}
	for _, c := range t.st.Held {
		t.hold.payloads[c.KeyString()] = true
	}
	for _, u := range t.st.Updates {
		k := unitCopy{u.Unit, u.Replica}
		t.updates[k] = u
		if t.st.Phase == PhaseOpen {
			t.want(k, u, t.assigned[k])
		}
	}
}

// save marks a decision: the state goes to the driver with the next
// Ready, to be persisted before any message announcing the decision
// leaves.
func (t *Tracker) save() {
	t.persist = true
	t.dirty = false
}

// Round returns the round ID.
func (t *Tracker) Round() cid.Cid { return t.round }

// TrackerID returns the tracker's peer ID (the spec's first tracker), in
// canonical form (CanonicalPeerID), as the transport names senders.
func (t *Tracker) TrackerID() string { return t.trackerID }

// IsTracker reports whether peer is one of the round's trackers (see
// wire.Grouped). The canonical IDs are computed once, in New: every
// message's validation asks.
func (t *Tracker) IsTracker(peer string) bool {
	return peer == t.trackerID || slices.Contains(t.trackers, peer)
}

// Step returns the current step and its phase.
func (t *Tracker) Step() (uint64, Phase) { return t.st.Step, t.st.Phase }

// Head returns the last finalised checkpoint and the step it starts.
func (t *Tracker) Head() (uint64, cid.Cid) { return t.st.Step, t.st.Base }

// Finals returns the Final of every finalised step, in order. The slice is
// shared; do not modify it.
func (t *Tracker) Finals() []*wire.Final { return t.st.Finals }

// Ledger returns a copy of the contribution ledger.
func (t *Tracker) Ledger() map[string]Entry {
	out := make(map[string]Entry, len(t.st.Ledger))
	for p, e := range t.st.Ledger {
		out[p] = *e
	}
	return out
}

// Excluded reports whether peer was caught lying.
func (t *Tracker) Excluded(peer string) bool {
	e := t.st.Ledger[peer]
	return e != nil && e.Excluded
}

// Dealt returns the peer the open step's Open dealt a unit copy to, or
// "" if the tracker holds no Open of that step and attempt or the Open
// dealt no such copy (see wire.Dealer): Validate ignores an Update from
// anyone else.
func (t *Tracker) Dealt(step uint64, attempt uint32, unit uint32, replica uint8) string {
	st := t.st
	if l := st.Late; t.late != nil && l.Open.Step == step && l.Open.Attempt == attempt && step+1 >= st.Step {
		return t.late.assigned[unitCopy{unit, replica}]
	}
	if st.Phase == PhaseIdle || st.Open == nil || st.Step != step || st.Attempt != attempt {
		return ""
	}
	return t.assigned[unitCopy{unit, replica}]
}

// Members returns the live members of the given role at now, sorted.
func (t *Tracker) Members(role wire.Role, now time.Time) []string {
	var out []string
	live := round.Liveness(t.spec)
	t.advance(now)
	if !now.Before(t.lv.clock) {
		// The live members are at the end of the list.
		for m := t.lv.firstLive; m != nil; m = m.next {
			if m.role == role && !t.Excluded(m.id) {
				out = append(out, m.id)
			}
		}
	} else {
		for p, m := range t.members {
			t.lv.scanned++
			if m.role == role && now.Sub(m.lastSeen) <= live && !t.Excluded(p) {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out
}

// PeerState is what the tracker knows of a peer that announced itself.
type PeerState struct {
	ID       string
	Role     wire.Role
	LastSeen time.Time
	Step     uint64 // the step of its head
	Live     bool   // heard from within Liveness
	Excluded bool
	Refused  string // why a closed round refused it, if it did
}

// Peers returns every peer heard from since the tracker started and not
// forgotten since (see ForgetAfter), sorted by ID.
func (t *Tracker) Peers(now time.Time) []PeerState {
	live := round.Liveness(t.spec)
	out := make([]PeerState, 0, len(t.members))
	for id, m := range t.members {
		out = append(out, PeerState{ID: id, Role: m.role, LastSeen: m.lastSeen, Step: m.step,
			Live: now.Sub(m.lastSeen) <= live, Excluded: t.Excluded(id)})
	}
	for id, why := range t.refused {
		out = append(out, PeerState{ID: id, Role: wire.RoleWorker, Refused: why})
	}
	slices.SortFunc(out, func(a, b PeerState) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// StandingChanges returns how many times the peers without standing
// changed since the tracker started: exclusions (see Excluded), and
// changes to the refused peers (see Refused). A driver that keeps a copy
// of them need copy them again only when these change.
func (t *Tracker) StandingChanges() (exclusions, refusals uint64) {
	return uint64(t.exclusions), t.refusals
}

// Refused returns the peers a closed round refused since the tracker
// started, and why.
func (t *Tracker) Refused() map[string]string { return maps.Clone(t.refused) }

// Ready is what the tracker has for its driver since the last call.
//
// The driver's contract is raft's: persist, then publish. When State is
// not nil, the driver saves it durably before it sends any message of
// Publish; if the save fails, it publishes nothing and stops driving the
// tracker (the state in memory then holds decisions that are neither
// durable nor announced). State is the tracker's own: the driver must not
// change it, and must be done with it before the next Receive or Tick.
type Ready struct {
	State   *State
	Publish []wire.Msg // to gossip on the round's topic, in order
	Events  []Event    // what the tracker decided, for logs and dashboards
	// Fetch lists the payloads the driver is to fetch and hold, each
	// answered by a call to Held (see Fetch).
	Fetch []Fetch
}

// Ready returns what the tracker has for its driver and forgets it.
func (t *Tracker) Ready() Ready {
	rd := Ready{Publish: t.out, Events: t.events, Fetch: append(t.hold.fetches, t.lateFetches...)}
	if t.persist {
		rd.State = t.st
	}
	t.out, t.events, t.persist, t.hold.fetches, t.lateFetches = nil, nil, false, nil, nil
	return rd
}

func (t *Tracker) event(kind wire.EventKind, step uint64, peer, format string, args ...any) {
	t.events = append(t.events, Event{Kind: kind, Step: step, Peer: peer, Detail: fmt.Sprintf(format, args...)})
}

func (t *Tracker) publish(m wire.Msg) { t.out = append(t.out, m) }

// Receive handles a message from a peer. It returns an error, for the
// driver's log, when the message is refused; a refused message changes
// nothing.
func (t *Tracker) Receive(now time.Time, from string, m wire.Msg) error {
	if r, err := wire.Validate(t, from, m); r != wire.Accept {
		return err
	}
	switch m := m.(type) {
	case *wire.Hello:
		return t.hello(now, from, m)
	case *wire.Update:
		return t.update(now, from, m)
	case *wire.Commit:
		return t.commit(now, from, m)
	case *wire.Verdict:
		return t.verdict(now, from, m)
	}
	return nil // the tracker's own messages, relayed back
}

func (t *Tracker) hello(now time.Time, from string, m *wire.Hello) error {
	if t.Excluded(from) {
		return fmt.Errorf("hello from %s, excluded from the round", from)
	}
	if err := t.helloTime(now, from, m.Time); err != nil {
		return err
	}
	if t.spec.Admission == round.AdmissionClosed {
		err := errors.New("the round is closed and this tracker has no admission check")
		if t.cfg.Admit != nil {
			err = t.cfg.Admit(from, m.Token, now)
		}
		if err != nil {
			if mb := t.members[from]; mb != nil {
				t.forget(mb)
			}
			reason := "no valid access token: " + err.Error()
			if t.refused[from] != reason {
				t.event(wire.EventRefused, t.st.Step, from, "%s", reason)
				t.refused[from] = reason
				t.refusals++
			}
			return errors.New(reason)
		}
		if _, ok := t.refused[from]; ok {
			delete(t.refused, from)
			t.refusals++
		}
	}
	mb := t.members[from]
	if mb == nil {
		mb = &member{id: from, role: m.Role}
		t.members[from] = mb
		t.announce = true // a newcomer needs the current step
	}
	t.touch(mb, m.Role, now)
	mb.step, mb.head, mb.said = m.Step, m.Head, m.Time
	if m.Step < t.st.Step || (m.Step == t.st.Step && !m.Head.Equals(t.st.Base)) {
		t.announce = true // it is behind or astray
	}
	return nil
}

// helloTime refuses a Hello whose time (the sender's clock) is more than
// round.Liveness from the tracker's now, either way, or older than the
// last Hello heard from the peer: a Hello replayed later cannot keep a
// departed peer counted for longer than one liveness window after it was
// sent. The window is also the allowance for clock skew between peer and
// tracker. A Hello of the same second as the last one is heard (a node
// says Hello again at once when its head changes).
func (t *Tracker) helloTime(now time.Time, from string, sent uint64) error {
	window := uint64(round.Liveness(t.spec).Seconds())
	clock := uint64(max(now.Unix(), 0))
	switch {
	case sent > clock+window:
		return fmt.Errorf("hello from %s sent at %d, more than %d s after the tracker's clock (%d)", from, sent, window, clock)
	case sent+window < clock:
		return fmt.Errorf("hello from %s sent at %d, more than %d s before the tracker's clock (%d): stale or replayed", from, sent, window, clock)
	}
	if mb := t.members[from]; mb != nil && sent < mb.said {
		return fmt.Errorf("hello from %s sent at %d, before its last hello (%d): replayed", from, sent, mb.said)
	}
	return nil
}

func (t *Tracker) update(now time.Time, from string, m *wire.Update) error {
	st := t.st
	if t.lateFor(m) {
		return t.lateUpdate(from, m)
	}
	if st.Phase != PhaseOpen || m.Step != st.Step || m.Attempt != st.Attempt {
		return fmt.Errorf("update for step %d attempt %d, but step %d attempt %d is %s", m.Step, m.Attempt, st.Step, st.Attempt, st.Phase)
	}
	if !m.Base.Equals(st.Base) {
		return fmt.Errorf("update from base %s, but the step's base is %s", m.Base, st.Base)
	}
	key := unitCopy{m.Unit, m.Replica}
	if t.assigned[key] != from {
		return fmt.Errorf("unit %d replica %d is not assigned to %s", m.Unit, m.Replica, from)
	}
	if want := uint32(t.spec.UnitSamples()); m.Samples != want {
		return fmt.Errorf("update claims %d samples, a unit has %d", m.Samples, want)
	}
	if old := t.updates[key]; old != nil {
		if old.Payload.Equals(m.Payload) {
			return nil // a repeat
		}
		return fmt.Errorf("second, different update for unit %d replica %d", m.Unit, m.Replica)
	}
	u := *m
	u.Data = nil
	t.updates[key] = &u
	st.Updates = append(st.Updates, &u)
	t.dirty = true
	t.want(key, &u, from)
	t.maybeCloseOnUpdate(now)
	return nil
}

func (t *Tracker) commit(now time.Time, from string, m *wire.Commit) error {
	st := t.st
	// A commit costs the tracker state (a commit of the closed step, a
	// mismatch in the ledger): only a member's is heard.
	if !t.member(from) {
		return fmt.Errorf("commit for step %d from %s, which is not a member (no hello)", m.Step, from)
	}
	if m.Step < st.Step {
		// A commit for a finalised step: check it against the record.
		f := st.Finals[m.Step]
		if f.Base.Equals(m.Base) && !f.Checkpoint.Equals(m.Result) {
			t.mismatch(from, m.Step, m.Result, f.Checkpoint)
		}
		return nil
	}
	if st.Phase != PhaseClosed || m.Step != st.Step || !m.Base.Equals(st.Base) {
		return fmt.Errorf("commit for step %d from %s, but step %d is %s", m.Step, m.Base, st.Step, st.Phase)
	}
	if m.Attempt != st.Attempt {
		// A commit of an earlier attempt's Close, voided when the step
		// was dealt again: it says nothing of this Close.
		return fmt.Errorf("commit for attempt %d of step %d, but the step's Close is of attempt %d", m.Attempt, m.Step, st.Attempt)
	}
	if prev, ok := st.Commits[from]; ok {
		if prev == m.Result.String() {
			return nil
		}
		return fmt.Errorf("second, different commit for step %d", m.Step)
	}
	if st.Commits == nil {
		st.Commits = map[string]string{}
	}
	r := m.Result.String()
	t.advance(now) // before the commit counts, so that the counts hold at now
	st.Commits[from] = r
	if mb := t.members[from]; mb != nil && mb.live && !t.Excluded(from) {
		t.lv.voters[r] += mb.weight
		if t.lv.included[from] {
			t.lv.bootVoters[r]++
		}
	}
	if t.votes != nil {
		t.votes[r]++
	}
	t.dirty = true
	return t.maybeFinalise(now, r)
}

// member reports whether peer is a member of the round: it said Hello
// and was admitted, and has not been forgotten since; or it is one of
// the open step's workers (named in the step's Open, so known from the
// state after a restart, before it says Hello again).
func (t *Tracker) member(peer string) bool {
	return t.members[peer] != nil || t.stepMembers[peer]
}

func (t *Tracker) mismatch(peer string, step uint64, got, want cid.Cid) {
	t.entry(peer).Mismatches++
	t.dirty = true
	t.event(wire.EventMismatch, step, peer, "committed %s, finalised %s", got, want)
}

func (t *Tracker) entry(peer string) *Entry {
	e := t.st.Ledger[peer]
	if e == nil {
		e = &Entry{}
		t.st.Ledger[peer] = e
	}
	return e
}

// Tick advances the tracker's clock: it opens a step when there are
// members, closes one at its deadline, reopens one that got nothing or
// that got no quorum of commits by its deadline after it closed,
// forgets silent members, and republishes what latecomers need. Tick
// returns an error only for a commit in the state that does not decode
// (a state damaged outside the tracker).
func (t *Tracker) Tick(now time.Time) error {
	st := t.st
	if now.Before(t.quietUntil) {
		if t.announce {
			t.announce = false
			t.lastAnn = now
			t.republish()
		}
		return nil
	}
	switch st.Phase {
	case PhaseIdle:
		t.maybeOpen(now)
	case PhaseOpen:
		t.maybeClose(now)
		if st.Phase == PhaseOpen && now.Sub(st.OpenedAt) >= t.spec.Deadline {
			t.closeStep(now)
		}
	case PhaseClosed:
		if err := t.maybeFinalise(now, ""); err != nil {
			return err
		}
		t.maybeRedeal(now)
	}
	if t.dirty {
		t.save()
	}
	if t.announce && now.Sub(t.lastAnn) >= round.HeartbeatInterval(t.spec) {
		t.announce = false
		t.lastAnn = now
		t.republish()
	}
	if now.Sub(t.lastSwep) >= round.Liveness(t.spec) {
		t.lastSwep = now
		t.forgetSilent(now)
	}
	return nil
}

// ForgetAfter is how long a member may be silent before the tracker
// forgets it (membership is soft state; its ledger entry stays, and a
// Hello makes it a member again). Under churn, the member table then
// holds the peers of the last hours, not every peer ever seen.
const ForgetAfter = time.Hour

// forgetSilent drops the members silent for longer than ForgetAfter (and
// at least ten liveness windows).
func (t *Tracker) forgetSilent(now time.Time) {
	horizon := max(ForgetAfter, 10*round.Liveness(t.spec))
	t.advance(now)
	for m := t.lv.first; m != nil && now.Sub(m.lastSeen) > horizon; m = t.lv.first {
		t.forget(m)
	}
}

// republish sends again what a peer that missed something needs: the
// last Final and the current step's Open or Close. A message still
// waiting in Ready (just decided) moves to its place in that sequence
// rather than going out twice.
func (t *Tracker) republish() {
	st := t.st
	var msgs []wire.Msg
	if n := len(st.Finals); n > 0 {
		msgs = append(msgs, st.Finals[n-1])
	}
	switch st.Phase {
	case PhaseOpen:
		msgs = append(msgs, st.Open)
	case PhaseClosed:
		msgs = append(msgs, st.Open, st.Close)
	}
	t.out = slices.DeleteFunc(t.out, func(m wire.Msg) bool { return slices.Contains(msgs, m) })
	t.out = append(t.out, msgs...)
}
